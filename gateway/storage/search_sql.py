"""Portable SQL for a parsed search: the WHERE and ORDER BY of a page, and its includes.

Why hand-built SQL: the same text must run on SQLite and PostgreSQL (``?`` placeholders,
converted by the store), so it sticks to EXISTS, IN, row values, LIKE … ESCAPE and
MIN/MAX — no JSON operators, no dialect functions.  Every criterion is one EXISTS over the
resource's ``search_index`` rows (see ``gateway/search/indexer.py`` for their encoding);
values OR inside a criterion, criteria AND.

Decisions worth knowing:

* string ``:exact`` compares the raw text, which the indexer keeps in ``system`` of string
  rows; the default (starts-with) and ``:contains`` compare the normalised ``value``.
* date prefixes follow R4 on ranges: the resource's [low, high] against the value's;
  ``ap`` is an overlap with the value's range widened by 10 % of its distance to now.
* number and quantity ``eq`` / ``ne`` honour the value's precision (5.4 ⇒ [5.35, 5.45));
  ``ap`` is ±10 % of the value.
* text sorts by code point on both databases (every PostgreSQL text column is COLLATE "C",
  migration 0012).  Both put resources without a value last, and every order ends with
  ``r.id`` so pages are stable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from gateway.match_keys import DOCUMENTS, keyed_anywhere
from gateway.search.cursor import Value, order_columns
from gateway.search.indexer import NOT_INDEXED
from gateway.search.parameters import PRESENT
from gateway.search.query import Criterion, Include, SearchQuery, SearchValue
from gateway.search.values import MAX_INSTANT, MIN_INSTANT, format_instant, normalise
from gateway.storage.dialect import FENCE, OWNER_PROBE, VALUE_DRIVER, marks

COLUMNS = "r.type, r.id, r.version, r.last_updated, r.content"
#: sorts after every string that starts with a given prefix (the largest code point)
PAST_EVERY_PREFIX = "\U0010ffff"
#: ap on dates: the value's range widens by this share of its distance from now
APPROXIMATE = 0.1
#: index rows of one value at which it counts as common (see :func:`common_value_sql`)
COMMON_VALUE_ROWS = 1000

Sql = tuple[str, list[Any]]


def where_sql(query: SearchQuery, *, now: datetime | None = None, probed: bool = False) -> Sql:
    """The condition on ``resource r`` for all criteria (``1=1`` when there are none).

    The criterion likely to select the fewest resources comes first and drives the query from
    its index rows; the others are probed per candidate (a correlated EXISTS on the
    resource's own rows).  Both IN lists would otherwise be built in full: SQLite spent 40 ms
    listing the 10,000 people named 吴 to intersect them with the five born on one day.
    ``probed``: every criterion is probed, for candidates the caller lists itself (a few
    among thousands of matches, which a driving criterion would list in full first)."""
    builder = _Builder(now or datetime.now(UTC))
    types = (query.resource_type,)
    if probed:
        clauses = [builder.criterion(c, "r", types, probe=True) for c in query.criteria]
    elif (plan := _plan(query)) is not None:
        driver, probes, columns = plan
        clauses = [builder.criterion(driver, "r", types, probes=probes)]
        clauses += [builder.criterion(c, "r", types, probe=True) for c in columns]
    else:
        ordered = sorted(query.criteria, key=_breadth)
        clauses = [builder.criterion(c, "r", types, probe=index > 0) for index, c in enumerate(ordered)]
    return " AND ".join(clauses) or "1=1", builder.params


def _plan(query: SearchQuery) -> tuple[Criterion, list[Criterion], list[Criterion]] | None:
    """The narrowest criterion, when it can drive the query from its index rows; the others
    indexed, which are probed inside its subquery on its rows' ids (a candidate that fails
    them is dropped before its resource row is fetched: PostgreSQL had fetched every person
    born on the day, then looked for the name); and those answered by the resource table's
    own columns.  None when no criterion can drive."""
    ordered = sorted(query.criteria, key=_breadth)
    if not ordered or not _drives(ordered[0]):
        return None
    driver, *rest = ordered
    return driver, [c for c in rest if c.param not in NOT_INDEXED], [c for c in rest if c.param in NOT_INDEXED]


def _index_only(query: SearchQuery) -> tuple[Criterion, list[Criterion]] | None:
    """The driver and its probes, when the criteria can be answered from the index rows alone
    (none on the resource table's columns).  Deleted resources have no index rows, so the
    resource table need not be read to list or count the matches."""
    plan = _plan(query)
    return None if plan is None or plan[2] else (plan[0], plan[1])


def common_value_sql(query: SearchQuery) -> Sql | None:
    """When one value would drive the query and another criterion could drive it instead: a
    statement counting that value's index rows, up to :data:`COMMON_VALUE_ROWS`.

    The driver is chosen by the kind of each criterion, and a code is taken to be narrow;
    but half the people are ``gender=female`` and most encounters ``status=finished``.  In
    ``Patient?gender=female&name=赵`` gender drove, and PostgreSQL probed the name of each
    of 53,115 women (0.6 s on 300,000 resources).  Counting at most a thousand index rows
    costs about 80 µs on SQLite, and only such searches pay it; a common value is then
    marked (:func:`with_common_value`) and probed instead of driving.  A query of one
    criterion has no other to drive it, and is answered before any plan is made."""
    if len(query.criteria) < 2:
        return None
    plan = _plan(query)
    if plan is None or not _by_one_value(plan[0]) or not any(_drives(other) for other in plan[1]):
        return None
    # one value compared for equality: no date, so no clock
    rows, params = _matching_rows(query, plan[0], [], None, hint=VALUE_DRIVER)
    return f"SELECT COUNT(*) FROM (SELECT 1 {rows} LIMIT {COMMON_VALUE_ROWS}) common_rows", params


def few_candidates_sql(query: SearchQuery) -> Sql | None:
    """A statement counting the index rows of the criterion that drives the query, up to
    :data:`COMMON_VALUE_ROWS`; None when the query names its ids (``_id``: as many candidates
    as values) or has neither a driving criterion nor a chain (every resource of the type is a
    candidate).  A chain does not drive, but its rows bound the candidates all the same:
    ``Encounter?patient.identifier=…`` has the one person's few Encounters.

    A restricted client's search is checked one candidate at a time when the candidates are
    few (``Access.condition``): listing everyone the organisation serves costs the same for
    ``Patient?identifier=…`` as for the whole archive (about 200 ms on SQLite with 6,667
    people served among 20,000), while probing a thousand candidates costs a few."""
    plan = _plan(query)
    if plan is not None:
        driver, hint = plan[0], VALUE_DRIVER if _by_one_value(plan[0]) else ""
    else:
        chains = [c for c in query.criteria if c.chain is not None and c.type != "has" and c.missing is None]
        if not chains:
            return None
        # counted without what keeps the chain to targets the client may see: more candidates
        # at most, and a statement PostgreSQL plans without the rule's dozen subqueries
        driver, hint = replace(chains[0], within=(), shown=None), ""
    rows, params = _matching_rows(query, driver, [], None, hint=hint)
    return f"SELECT COUNT(*) FROM (SELECT 1 {rows} LIMIT {COMMON_VALUE_ROWS}) driver_rows", params


def names_ids(query: SearchQuery) -> bool:
    """Whether one criterion lists the ids of the matches (``_id=a,b``, not negated)."""
    return any(c.param == "_id" and c.modifier is None and c.missing is None for c in query.criteria)


def with_common_value(query: SearchQuery) -> SearchQuery:
    """The query with its driving criterion marked common (see :func:`common_value_sql`)."""
    plan = _plan(query)
    if plan is None:
        return query
    driver = plan[0]
    return replace(query, criteria=[replace(c, common=True) if c is driver else c for c in query.criteria])


def _by_one_value(driver: Criterion) -> bool:
    """Whether the driver compares one value for equality (a code, a reference, a uri): its
    rows are then read from the value index, whatever else the planner prefers (see
    :data:`VALUE_DRIVER`).  A range or a prefix has an index of its own."""
    if len(driver.values) != 1 or driver.modifier is not None:
        return False
    if driver.type in ("token", "reference"):
        return driver.values[0].code is not None
    return driver.type == "uri"


def _matching_rows(
    query: SearchQuery, driver: Criterion, probes: list[Criterion], now: datetime | None, hint: str = ""
) -> Sql:
    """``FROM search_index s1 WHERE …``: the index rows of every match (see
    :func:`_index_only`); ``hint`` follows the driver's table name."""
    builder = _Builder(now or datetime.now(UTC))
    rows = builder.criterion(driver, "r", (query.resource_type,), probes=probes, rows_only=True, hint=hint)
    return rows, builder.params


def _drives(criterion: Criterion) -> bool:
    """Whether a criterion selects index rows whose ids other criteria can be probed on: one
    on values (not absence, not a negation, not a column of the resource table)."""
    return (
        criterion.param not in NOT_INDEXED
        and criterion.missing is None
        and criterion.modifier != "not"
        and criterion.chain is None
    )


def _breadth(criterion: Criterion) -> int:
    """A rough rank of how many resources a criterion selects, from its kind alone: exact
    tokens and references few (but a value the store found common many), a date some, a name
    prefix many, a negation most."""
    if criterion.missing is not None or criterion.modifier == "not":
        return 6
    if criterion.common:
        return 5
    if criterion.param in ("_id", "_lastUpdated"):
        return 0 if criterion.param == "_id" else 5
    if criterion.type == "string":
        return {"exact": 2, "contains": 5}.get(criterion.modifier or "", 4)
    return {"token": 1, "reference": 1, "date": 3}.get(criterion.type, 3)


def _order_terms(query: SearchQuery) -> list[_Term]:
    """The page order's terms (``cursor.order_columns``) as expressions on ``resource r``."""
    terms = []
    for column in order_columns(query.sort):
        if column.indexed:
            aggregate = "MAX" if column.descending else "MIN"
            expression = (
                f"(SELECT {aggregate}(o.{column.column}) FROM search_index o "
                "WHERE o.type = r.type AND o.id = r.id AND o.name = ?)"
            )
            terms.append(_Term(expression, (column.param,), column.descending, True))
        else:
            terms.append(_Term(f"r.{column.column}", (), column.descending, False))
    return terms


def order_sql(terms: Sequence[_Term]) -> str:
    """ORDER BY terms: the ``_sort`` keys, resources without a value last, then the id."""
    return ", ".join(f"{term.expression} {'DESC' if term.descending else 'ASC'}{term.last_nulls}" for term in terms)


def page_sql(query: SearchQuery, *, now: datetime | None = None, restriction: Sql | None = None) -> Sql:
    """The whole statement for one page of matches (within ``restriction``, a condition on
    ``resource r`` saying what the client may see), each row :data:`COLUMNS` then its values
    of the order's terms, which the next page's ``_after`` carries (read by the same statement:
    a value changed meanwhile must not move where the next page starts).

    When the page is in id order, no restriction applies and one value drives, the page's ids
    are picked from the index rows alone and only their resources are fetched: PostgreSQL had
    fetched all 53,115 women of 300,000 resources to sort them for ``gender=female`` (0.45 s
    of a 0.9 s search).  ``NOT r.deleted`` stays as a guard (deleted resources have no rows).
    An order by index values takes :func:`_keyed_page_sql`."""
    answered = _index_only(query) if restriction is None and not query.sort else None
    # a page past a match (``_after``) starts there, not at an offset
    offset = query.offset if query.after is None else 0
    if answered is not None and _by_one_value(answered[0]):
        rows, params = _matching_rows(query, *answered, now, hint=VALUE_DRIVER)
        # no sort key: in ascending id order, the id the one value _after carries
        start, start_params = (" AND s1.id > ?", [*query.after]) if query.after is not None else ("", [])
        sql = (
            f"SELECT {COLUMNS}, r.id FROM resource r WHERE r.type = ? AND NOT r.deleted AND r.id IN "
            f"(SELECT DISTINCT s1.id {rows}{start} ORDER BY s1.id LIMIT ? OFFSET ?) ORDER BY r.id"
        )
        return sql, [query.resource_type, *params, *start_params, query.count, offset]
    where, where_params = _restricted(where_sql(query, now=now), restriction)
    terms = _order_terms(query)  # the id alone above: not made for that page
    if any(term.nullable or term.params for term in terms):  # a term of index values, not a column
        return _keyed_page_sql(query, terms, (where, where_params), offset)
    keys = ", ".join(term.expression for term in terms)
    if query.after is not None:
        past, past_params = _past(terms, query.after)
        where, where_params = f"{where} AND {past}", [*where_params, *past_params]
    sql = (
        f"SELECT {COLUMNS}, {keys} FROM resource r WHERE r.type = ? AND NOT r.deleted AND {where} "
        f"ORDER BY {order_sql(terms)} LIMIT ? OFFSET ?"
    )
    return sql, [query.resource_type, *where_params, query.count, offset]


def _keyed_page_sql(query: SearchQuery, terms: Sequence[_Term], where: Sql, offset: int) -> Sql:
    """A page in an order by index values: each candidate's values of the order computed once
    (a materialised CTE, columns ``k1``…), the page sought and sorted on those columns alone,
    and only its matches' resources read.

    The seek written on the subqueries themselves ran them again for each candidate, term by
    term, and the sort carried every candidate's content; PostgreSQL also compiled the
    statement's many subplans (JIT, 171 functions against 47).  MATERIALIZED keeps either
    planner from inlining the CTE, which would copy each subquery back into the seek."""
    names = [f"k{place}" for place in range(1, len(terms) + 1)]
    keyed = [_Term(name, (), term.descending, term.nullable) for name, term in zip(names, terms, strict=True)]
    values = ", ".join(f"{term.expression} AS {name}" for name, term in zip(names, terms, strict=True))
    key_params = [param for term in terms for param in term.params]
    past, past_params = _past(keyed, query.after) if query.after is not None else ("1=1", [])
    columns = ", ".join(names)
    sql = (
        f"WITH keyed AS MATERIALIZED (SELECT r.id AS id, {values} FROM resource r "
        f"WHERE r.type = ? AND NOT r.deleted AND {where[0]}) "
        f"SELECT {COLUMNS}, {columns} FROM (SELECT id, {columns} FROM keyed WHERE {past} "
        f"ORDER BY {order_sql(keyed)} LIMIT ? OFFSET ?) page JOIN resource r ON r.type = ? AND r.id = page.id "
        f"ORDER BY {order_sql(keyed)}"
    )
    params = [*key_params, query.resource_type, *where[1], *past_params, query.count, offset, query.resource_type]
    return sql, params


def _past(terms: Sequence[_Term], after: Sequence[Value]) -> Sql:
    """The condition on the order's terms of the matches past the one whose values of them
    are ``after``: a seek over the order, term by term (equal on the terms before, past
    on this one), written out rather than as a row value, since the terms may run in either
    direction and a missing value sorts last in both."""
    branches: list[str] = []
    params: list[Any] = []
    tied: list[str] = []
    tied_params: list[Any] = []
    for term, value in zip(terms, after, strict=True):
        if value is not None:  # nothing is past a match without a value but by a later term
            operator = "<" if term.descending else ">"
            beyond = f"{term.expression} {operator} ?"
            beyond_params = [*term.params, value]
            if term.nullable:
                beyond, beyond_params = f"({beyond} OR {term.expression} IS NULL)", [*beyond_params, *term.params]
            branches.append(" AND ".join([*tied, beyond]))
            params += [*tied_params, *beyond_params]
        tied.append(f"{term.expression} IS NULL" if value is None else f"{term.expression} = ?")
        tied_params += [*term.params] if value is None else [*term.params, value]
    return "(" + " OR ".join(f"({branch})" for branch in branches) + ")", params


def count_sql(query: SearchQuery, *, now: datetime | None = None, restriction: Sql | None = None) -> Sql:
    """How many resources match, for ``Bundle.total`` (a forbidden one is never counted);
    from the index rows alone when they can answer, without visiting each match's resource."""
    answered = _index_only(query) if restriction is None else None
    if answered is not None:
        rows, params = _matching_rows(query, *answered, now)
        return f"SELECT COUNT(DISTINCT s1.id) {rows}", params
    return current_matching_sql("COUNT(*)", query.resource_type, _restricted(where_sql(query, now=now), restriction))


def matching_among_sql(query: SearchQuery, ids: Sequence[str]) -> Sql:
    """Which of ``ids`` match the query (an export's ``_typeFilter``, asked of the resources
    it is about to write, a batch at a time)."""
    where, params = where_sql(query)
    return current_matching_sql("r.id", query.resource_type, (f"{where} AND r.id IN ({marks(ids)})", [*params, *ids]))


def ids_sql(query: SearchQuery, restriction: Sql | None = None) -> Sql:
    """The ids of every current match of the query within ``restriction`` (a condition on
    ``resource r``): a chain's few targets that a client may see (``Resources.chain_targets``)."""
    return current_matching_sql("r.id", query.resource_type, _restricted(where_sql(query), restriction))


def current_matching_sql(select: str, kind: str, where: Sql) -> Sql:
    """``select`` over the current (undeleted) resources of ``kind`` that meet ``where``, a
    condition on ``resource r``: the one statement a count, an export's ``_typeFilter`` and a
    measure's subjects each ask around their own select list."""
    condition, params = where
    return f"SELECT {select} FROM resource r WHERE r.type = ? AND NOT r.deleted AND {condition}", [kind, *params]


def _restricted(where: Sql, restriction: Sql | None) -> Sql:
    if restriction is None:
        return where
    return f"({where[0]}) AND ({restriction[0]})", [*where[1], *restriction[1]]


def include_sql(includes: Sequence[Include], page: Sequence[tuple[str, str]]) -> Sql | None:
    """The resources a page's references point at (``_include``), or None if nothing to fetch."""
    selects: list[str] = []
    params: list[Any] = []
    for include in includes:
        ids = [resource_id for kind, resource_id in page if kind == include.source_type]
        if not ids or not include.params:
            continue
        target = " AND s.system = ?" if include.target_type else ""
        selects.append(
            f"SELECT s.system, s.value FROM search_index s WHERE s.type = ? AND s.id IN ({marks(ids)}) "
            f"AND s.name IN ({marks(include.params)}) AND s.system IS NOT NULL{target}"
        )
        params += [include.source_type, *ids, *include.params]
        params += [include.target_type] if include.target_type else []
    return _fetch(selects, params)


def revinclude_sql(revincludes: Sequence[Include], page: Sequence[tuple[str, str]]) -> Sql | None:
    """The resources whose references point at a page's resources (``_revinclude``)."""
    selects: list[str] = []
    params: list[Any] = []
    for include in revincludes:
        for kind in dict.fromkeys(kind for kind, _ in page):
            if include.target_type not in (None, kind) or not include.params:
                continue
            ids = [resource_id for k, resource_id in page if k == kind]
            selects.append(
                f"SELECT s.type, s.id FROM search_index s WHERE s.name IN ({marks(include.params)}) "
                f"AND s.system = ? AND s.value IN ({marks(ids)}) AND s.type = ?"
            )
            params += [*include.params, kind, *ids, include.source_type]
    return _fetch(selects, params)


def _fetch(selects: list[str], params: list[Any]) -> Sql | None:
    if not selects:
        return None
    union = " UNION ".join(selects)
    # in one order on both databases (each had its own), and what a limit keeps is the same
    return (
        f"SELECT {COLUMNS} FROM resource r WHERE NOT r.deleted AND (r.type, r.id) IN ({union}) ORDER BY r.type, r.id",
        params,
    )


def _rows(source: str, conditions: Sequence[str]) -> str:
    """``FROM source WHERE …``: the rows of ``source`` meeting every condition."""
    return f"FROM {source} WHERE {' AND '.join(conditions)}" if conditions else f"FROM {source}"


def _like(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally (with ``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class _Term:
    """One term of a page's order: an expression on ``resource r`` (with its parameters) and
    its direction; a ``nullable`` one (a value from index rows) sorts a missing value last."""

    expression: str
    params: tuple[Any, ...]
    descending: bool
    nullable: bool

    @property
    def last_nulls(self) -> str:
        return " NULLS LAST" if self.nullable else ""


def _name_condition(criterion: Criterion, s: str, name: str) -> tuple[str, list[str]]:
    """The condition on the name of the rows ``s`` a criterion reads, the parameter's rows
    being named ``name``, and its parameters.  ``:missing`` reads the parameter's presence
    rows (:data:`PRESENT`) beside its own: R4 asks whether the element is there, and a
    Reference naming a person by ``identifier`` alone is there though no row of the
    parameter's own holds it."""
    if criterion.missing is None:
        return f"{s}.name = ?", [name]
    return f"{s}.name IN (?, ?)", [name, name + PRESENT]


class _Builder:
    """Accumulates parameters in text order; hands out fresh aliases for nested queries."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.params: list[Any] = []
        self.depth = 0

    def criterion(
        self,
        criterion: Criterion,
        owner: str,
        types: Sequence[str],
        probe: bool = False,
        probes: Sequence[Criterion] = (),
        rows_only: bool = False,
        hint: str = "",
    ) -> str:
        """One criterion as membership of the owner in the ids its index rows select.

        ``owner.id IN (SELECT s.id FROM search_index s WHERE s.type = ? AND s.name = ? …)``
        rather than a correlated EXISTS: both databases then start from the index
        (type, name, value) instead of visiting every resource of the type.  ``probe`` asks
        for the EXISTS instead, for a criterion checked on candidates another one found;
        ``probes`` are such criteria checked inside this one's subquery, on its rows' ids
        (behind a :data:`FENCE`, so PostgreSQL keeps each a probe of the candidate's own rows);
        ``rows_only`` asks for that subquery's FROM and WHERE alone (a driving criterion), with
        ``hint`` after its table (an index the planner must take)."""
        if criterion.param == "_id":
            # an id has no system: "|x" is x, and "sys|x" names no resource
            return self._column(criterion, lambda value: "1=0" if value.system else self._eq(f"{owner}.id", value.code))
        if criterion.param == "_lastUpdated":
            column = f"{owner}.last_updated"
            return self._column(criterion, lambda value: self._date(value, column, column))
        if criterion.type == "has":
            return self._has(criterion, owner, types)
        self.depth += 1
        s = f"s{self.depth}"
        name, names = _name_condition(criterion, s, criterion.param)
        if probe and len(types) == 1:
            # the candidate's own rows of the parameter, fenced, then tested against the values
            # (see FENCE): with the values beside its id, a plan for any values, which guesses
            # that a value matches a row or two, read every row of the value (or of the date
            # range) once per candidate instead
            member, select = "EXISTS", "SELECT 1"
            own = f"SELECT * FROM search_index {s} {OWNER_PROBE} WHERE {s}.type = ? AND {s}.id = {owner}.id AND {name}"
            source, conditions = f"({own} {FENCE}) {s}", []
            named = [*types, *names]
        elif len(types) == 1:
            member, select = f"{owner}.id IN", f"SELECT {s}.id"
            source, conditions = f"search_index {s} {hint}", [f"{s}.type = ?", name]
            named = [*types, *names]
        else:
            member, select = f"({owner}.type, {owner}.id) IN", f"SELECT {s}.type, {s}.id"
            condition, named = self._named(criterion, s, types)
            source, conditions = f"search_index {s}", [condition]
        self.params += named
        if criterion.missing is not None:
            return f"{'NOT ' if criterion.missing else ''}{member} ({select} {_rows(source, conditions)})"
        if criterion.chain is not None:
            conditions.append(self._chain(criterion, s))
            rows = _rows(source, conditions)
            return rows if rows_only else f"{member} ({select} {rows})"
        if criterion.type == "date":
            conditions.append(f"{s}.low IS NOT NULL")  # only dated rows are in search_index_range (0008)
        matches = " OR ".join(f"({self._match(criterion, value, s)})" for value in criterion.values)
        conditions.append(f"({matches})")
        conditions += [self.criterion(other, s, types, probe=True) for other in probes]
        rows = _rows(source, conditions)
        if rows_only:
            return rows
        return f"{'NOT ' if criterion.modifier == 'not' else ''}{member} ({select} {rows})"

    @staticmethod
    def _named(criterion: Criterion, s: str, types: Sequence[str]) -> tuple[str, list[str]]:
        """The condition on the rows of several types that hold the criterion's parameter, and
        its parameters: one name for all, or, for a chain whose types keep them under different
        names (``Criterion.rows_of``), each group of types with its own."""
        if not criterion.rows_of:
            name, names = _name_condition(criterion, s, criterion.param)
            return f"{s}.type IN ({marks(types)}) AND {name}", [*types, *names]
        groups: dict[str, list[str]] = {}
        for kind in types:
            groups.setdefault(criterion.rows_for(kind), []).append(kind)
        alternatives, params = [], []
        for rows_name, kinds in groups.items():
            name, names = _name_condition(criterion, s, rows_name)
            alternatives.append(f"({s}.type IN ({marks(kinds)}) AND {name})")
            params += [*kinds, *names]
        return f"({' OR '.join(alternatives)})", params

    def _column(self, criterion: Criterion, match: Callable[[SearchValue], str]) -> str:
        """_id and _lastUpdated: conditions on the resource table's own columns."""
        if criterion.missing is not None:
            return "1=0" if criterion.missing else "1=1"
        matches = " OR ".join(f"({match(value)})" for value in criterion.values)
        return f"{'NOT ' if criterion.modifier == 'not' else ''}({matches})"

    def _chain(self, criterion: Criterion, s: str) -> str:
        t = f"t{self.depth}"
        self.params.extend(criterion.targets)
        return f"({s}.system, {s}.value) IN (SELECT {t}.type, {t}.id {self._chained(criterion, t)})"

    def _has(self, criterion: Criterion, owner: str, types: Sequence[str]) -> str:
        """``_has:CarePlan:subject:status=active``: the owner is what the ``subject`` rows of the
        CarePlans matching the inner criterion point at (a chain read backwards)."""
        self.depth += 1
        s, t = f"s{self.depth}", f"t{self.depth}"
        self.params += [*criterion.targets, criterion.via, *types, *criterion.targets]
        return (
            f"({owner}.type, {owner}.id) IN (SELECT {s}.system, {s}.value FROM search_index {s} "
            f"WHERE {s}.type IN ({marks(criterion.targets)}) AND {s}.name = ? AND {s}.system IN ({marks(types)}) "
            f"AND {s}.id IN (SELECT {t}.id {self._chained(criterion, t)}))"
        )

    def _chained(self, criterion: Criterion, t: str) -> str:
        """``FROM resource t WHERE …``: the current resources of the chain's target types (as
        alias ``t``, whose type the caller has named) that meet its inner criterion and that
        the client may see: those listed (``criterion.shown``), or those ``criterion.within``
        keeps, written over ``resource r`` and the table ``served_people(id)`` selected once
        (the rule of one person nested in each condition, or a copy of the served people per
        target type, overflowed SQLite's parser).  Unrestricted, nothing more: an operator's
        chain is the inner criterion's own plan."""
        assert criterion.chain is not None
        inner = self.criterion(criterion.chain, t, criterion.targets)
        chained = f"FROM resource {t} WHERE {t}.type IN ({marks(criterion.targets)}) AND NOT {t}.deleted AND {inner}"
        if criterion.shown is not None:
            for pair in criterion.shown:
                self.params += pair
            listed = ", ".join("(?, ?)" for _ in criterion.shown)
            return f"{chained} AND ({t}.type, {t}.id) IN (VALUES {listed})" if listed else f"{chained} AND 1 = 0"
        if not criterion.within:
            return chained
        kinds = [kind for kind, _, _ in criterion.within]
        served_sql, served_params = criterion.served
        alternatives = " OR ".join(f"(r.type = ? AND {condition})" for _, condition, _ in criterion.within)
        self.params += [*served_params, *kinds]
        for kind, _, params in criterion.within:
            self.params += [kind, *params]
        # the targets selected first, then judged over everyone served, listed once
        return (
            f"FROM resource {t} WHERE ({t}.type, {t}.id) IN (WITH chained(type, id) AS (SELECT {t}.type, {t}.id "
            f"{chained}), served_people(id) AS ({served_sql}) SELECT r.type, r.id FROM chained c JOIN resource r "
            f"ON r.type = c.type AND r.id = c.id WHERE r.type NOT IN ({marks(kinds)}) OR {alternatives})"
        )

    def _match(self, criterion: Criterion, value: SearchValue, s: str) -> str:
        kind, modifier = criterion.type, criterion.modifier
        if kind == "string":
            if modifier == "exact":
                return self._eq(f"{s}.system", value.text)
            text = normalise(value.text or "")
            if modifier == "contains":
                self.params.append(f"%{_like(text)}%")
                return f"{s}.value LIKE ? ESCAPE '\\'"
            # starts-with as a range, which an index on value serves (LIKE cannot: SQLite's
            # LIKE ignores case, and PostgreSQL's needs pattern operators); the column sorts
            # by code point on both databases (COLLATE "C" on PostgreSQL, see 0001 and 0012)
            self.params += [text, text + PAST_EVERY_PREFIX]
            return f"{s}.value >= ? AND {s}.value < ?"
        if kind == "uri":
            return self._uri(value, modifier, s)
        if kind in ("token", "reference"):
            return self._token(value, s)
        if kind == "date":
            return self._date(value, f"{s}.low", f"{s}.high")
        return self._number(value, s)

    def _eq(self, column: str, value: Any) -> str:
        self.params.append(value)
        return f"{column} = ?"

    def _token(self, value: SearchValue, s: str) -> str:
        parts = []
        if value.system == "":
            parts.append(f"{s}.system IS NULL")
        elif value.system is not None and value.or_no_system:
            parts.append(f"({self._eq(f'{s}.system', value.system)} OR {s}.system IS NULL)")
        elif value.system is not None:
            parts.append(self._eq(f"{s}.system", value.system))
        if value.codes is not None:  # a :below or :above, the hierarchy's codes
            self.params += value.codes
            parts.append(f"{s}.value IN ({marks(value.codes)})")
        elif value.code is not None and value.system is None and (upper := keyed_anywhere(value.code)):
            parts.append(self._keyed_anywhere(value.code, upper, s))
        elif value.code is not None:
            parts.append(self._eq(f"{s}.value", value.code))
        return " AND ".join(parts) or "1=1"

    def _keyed_anywhere(self, code: str, upper: str, s: str) -> str:
        """A system-less code as written, or upper-cased under a national identity document's
        system (``match_keys.DOCUMENTS``, which ``as_keyed`` reads too), where the index holds
        its numbers so: a person stored ``…725X`` is found by ``identifier=…725x`` as by its
        system-qualified form.  Both values are listed first, so the index on value still drives it; a
        suffix is compared as text (``substr``), case and all, as both databases do alike."""
        exact, suffixes = sorted(DOCUMENTS.exact), list(DOCUMENTS.suffixes)
        ends = " OR ".join(f"substr({s}.system, length({s}.system) - {len(end) - 1}) = ?" for end in suffixes)
        self.params += [code, upper, code, *exact, *suffixes]
        return f"{s}.value IN (?, ?) AND ({s}.value = ? OR {s}.system IN ({marks(exact)}) OR {ends})"

    def _uri(self, value: SearchValue, modifier: str | None, s: str) -> str:
        text = value.text or ""
        if modifier == "below":
            # the URLs under it as a range, as a string's start is: a path's case counts (R4:
            # a uri matches precisely), and SQLite's LIKE ignores ASCII case
            under = text.rstrip("/") + "/"
            self.params += [text, under, under + PAST_EVERY_PREFIX]
            return f"{s}.value = ? OR ({s}.value >= ? AND {s}.value < ?)"
        if modifier == "above":
            prefixes = _uri_prefixes(text)
            self.params += prefixes
            return f"{s}.value IN ({marks(prefixes)})"
        return self._eq(f"{s}.value", text)

    def _date(self, value: SearchValue, low: str, high: str) -> str:
        pl, ph = value.low, value.high
        match value.prefix:
            case "eq":
                # low <= high <= ph, so "low <= ph" adds nothing but bounds the index range scan
                self.params += [pl, ph, ph]
                return f"{low} >= ? AND {low} <= ? AND {high} <= ?"
            case "ne":
                self.params += [pl, ph]
                return f"{low} < ? OR {high} > ?"
            case "gt":
                self.params.append(ph)
                return f"{high} > ?"
            case "lt":
                self.params.append(pl)
                return f"{low} < ?"
            case "ge":
                self.params += [ph, pl, ph]
                return f"{high} > ? OR ({low} >= ? AND {high} <= ?)"
            case "le":
                self.params += [pl, pl, ph]
                return f"{low} < ? OR ({low} >= ? AND {high} <= ?)"
            case "sa":
                self.params.append(ph)
                return f"{low} > ?"
            case "eb":
                self.params.append(pl)
                return f"{high} < ?"
        wide_low, wide_high = _approximate(pl or MIN_INSTANT, ph or MAX_INSTANT, self.now)
        self.params += [wide_high, wide_low]
        return f"{low} <= ? AND {high} >= ?"

    def _number(self, value: SearchValue, s: str) -> str:
        parts = []
        if value.system:
            parts.append(self._eq(f"{s}.system", value.system))
        if value.code:
            parts.append(self._eq(f"{s}.value", value.code))
        n = f"{s}.number"
        match value.prefix:
            case "eq":
                self.params += [value.number_low, value.number_high]
                parts.append(f"{n} >= ? AND {n} < ?")
            case "ne":
                self.params += [value.number_low, value.number_high]
                parts.append(f"({n} < ? OR {n} >= ?)")
            case "ap":
                margin = abs(value.number or 0.0) * APPROXIMATE
                self.params += [(value.number or 0.0) - margin, (value.number or 0.0) + margin]
                parts.append(f"{n} >= ? AND {n} <= ?")
            case prefix:
                self.params.append(value.number)
                parts.append(f"{n} {_NUMBER_OPERATORS[prefix]} ?")
        return " AND ".join(parts)


_NUMBER_OPERATORS = {"gt": ">", "sa": ">", "lt": "<", "eb": "<", "ge": ">=", "le": "<="}


def _approximate(low: str, high: str, now: datetime) -> tuple[str, str]:
    """The value's range widened by 10 % of the gap between it and now (FHIR leaves ap to us)."""
    start = datetime.fromisoformat(low)
    end = datetime.fromisoformat(high)
    gap = max(abs(now - start), abs(now - end)) * APPROXIMATE
    try:
        wide_low = format_instant(start - gap)
    except OverflowError:
        wide_low = MIN_INSTANT
    try:
        wide_high = format_instant(end + gap)
    except OverflowError:
        wide_high = MAX_INSTANT
    return wide_low, wide_high


def _uri_prefixes(url: str) -> list[str]:
    """``:above``: the url and every shorter path of it (``http://a/b/c`` → …/b/c, …/b, …)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return [url]
    segments = rest.rstrip("/").split("/")
    return [f"{scheme}://{'/'.join(segments[:n])}" for n in range(len(segments), 0, -1)]
