"""Search as an interaction: parse the request, run it in a transaction, answer a searchset.

Pages follow an order that always ends with the resource id.  The ``next`` link carries the
last match shown (``_after``: its values of the order, ``gateway/search/cursor.py``), and the
next page starts past it whatever was written or deleted meanwhile; the other links count by
offset, which returns the same resources as long as the archive does not change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import orjson

from gateway.fhir.errors import FhirError
from gateway.fhir.paging import page_links
from gateway.fhir.parameters import query_pairs, refuse_nul_in, unsupported_value
from gateway.messages import issue
from gateway.search import cursor
from gateway.search.cursor import Value
from gateway.search.elements import json_names, wanted_of
from gateway.search.parameters import SearchParameters
from gateway.search.query import SUMMARY_VALUES, SearchError, SearchQuery, parse_search
from gateway.security.access import Access
from gateway.storage.access_sql import Sql
from gateway.storage.store import Stored, Transaction
from profiles.registry import r4_base_types

#: elements every resource keeps under _elements (FHIR: mandatory and modifier elements stay)
_KEPT = ("resourceType", "id", "meta")
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


@cache
def _mandatory(kind: str) -> frozenset[str]:
    """The JSON names of a resource type's top-level elements with a minimum of one (each
    choice name of a ``value[x]``): Observation's status and code."""
    definition = r4_base_types().get(kind)
    children = definition["nodes"][kind] if definition else {}
    return frozenset(
        json_name for name, spec in children.items() if spec.get("min", 0) >= 1 for json_name in json_names(name, spec)
    )


@cache
def _summary_elements(path: str) -> dict[str, str | None]:
    """The children of the base model's node ``path`` (``Patient``, ``Patient.link``) that the
    R4 definitions mark as summary (isSummary), by JSON name: each to the node its own
    children are cut by (a backbone element), or None to keep it whole (a datatype)."""
    kind = path.split(".", 1)[0]
    definition = r4_base_types().get(kind)
    children = definition["nodes"].get(path, {}) if definition else {}
    return {
        json_name: spec.get("node")
        for name, spec in children.items()
        if spec.get("summary")
        for json_name in json_names(name, spec)
    }


def _summary(value: dict[str, Any], path: str) -> dict[str, Any]:
    """``value`` (at node ``path``) cut down to its summary elements, backbones recursively."""
    wanted = _summary_elements(path)
    kept: dict[str, Any] = {}
    for key, child in value.items():
        name = key.lstrip("_")
        if name not in wanted:
            continue
        node = wanted[name]
        if node is None or key.startswith("_"):
            kept[key] = child
        elif isinstance(child, list):
            kept[key] = [_summary(item, node) if isinstance(item, dict) else item for item in child]
        else:
            kept[key] = _summary(child, node) if isinstance(child, dict) else child
    return kept


#: rounds of ``:iterate`` includes after the first, at most (a cycle of references ends sooner:
#: nothing is included twice), the resources they may add to one page, and how many of a
#: round's resources one statement asks about (the databases bound a statement's parameters)
MAX_INCLUDE_ROUNDS, MAX_ITERATED, ITERATE_CHUNK = 8, 1000, 500


def _included(tx: Transaction, query: SearchQuery, matches: list[Stored], access: Access | None) -> list[Stored]:
    """What ``_include``/``_revinclude`` add to a page: every include applies to the matches,
    and the ``:iterate`` ones again to what each round added, until a round adds nothing (or
    :data:`MAX_ITERATED` more have come, as R4 lets a server limit what it includes).
    Each round keeps only what the principal may see before the next looks further, so an
    iteration never passes through a resource the client could not have been given.  A
    query without includes (most) returns at once: the rounds' set-up cost a search by
    identifier 15–18 µs of CPU for nothing."""
    if not query.include and not query.revinclude:
        return []
    visible = access.only_visible if access else lambda _tx, found: found
    found = visible(tx, tx.resources.included(query, matches))
    iterating = replace(
        query,
        include=[include for include in query.include if include.iterate],
        revinclude=[include for include in query.revinclude if include.iterate],
    )
    seen = {(stored.type, stored.id) for stored in [*matches, *found]}
    frontier, rounds, room = found, 0, MAX_ITERATED
    while frontier and room > 0 and (iterating.include or iterating.revinclude) and rounds < MAX_INCLUDE_ROUNDS:
        added: dict[tuple[str, str], Stored] = {}
        for start in range(0, len(frontier), ITERATE_CHUNK):
            for stored in tx.resources.included(iterating, frontier[start : start + ITERATE_CHUNK]):
                if (stored.type, stored.id) not in seen:
                    added.setdefault((stored.type, stored.id), stored)
        frontier = visible(tx, list(added.values()))[:room]
        seen.update((stored.type, stored.id) for stored in frontier)
        found += frontier
        room -= len(frontier)
        rounds += 1
    return found


@dataclass
class SearchResult:
    query: SearchQuery
    matches: list[Stored]
    included: list[Stored] = field(default_factory=list)
    total: int | None = None
    #: whether matches follow this page, when no ``total`` tells it (``_total=none``)
    more: bool | None = None
    #: the last match's values of the order, where the next page starts (None without one)
    after: tuple[Value, ...] | None = None


#: the parameters that choose a page of the matches, which a conditional interaction refuses
PAGING = frozenset({"_count", "_offset", "_after"})


class Searcher:
    def __init__(
        self, parameters: SearchParameters, page_size: int, max_page_size: int, base_url: str | None = None
    ) -> None:
        self.parameters = parameters
        self.page_size = page_size
        self.max_page_size = max_page_size
        self.base_url = base_url

    def parse(
        self, kind: str, pairs: Sequence[tuple[str, str]], handling: str = "strict", where: str | None = None
    ) -> SearchQuery:
        """Every search's criteria come through here (a query, a form, ``If-None-Exist``, a
        conditional reference or Bundle entry).  A refused parameter is located at its name,
        or at ``where`` the criteria are written (a Bundle entry's ``request.url``): among
        hundreds of entries, its name alone does not say which to mend."""
        refuse_nul_in(pairs)
        explicit_count = any(key == "_count" for key, _ in pairs)
        try:
            query = parse_search(kind, pairs, self.parameters, handling=handling, base=self.base_url)
        except SearchError as error:
            raise FhirError(400, error.message_id, where or error.expression, **error.params) from error
        count = query.count if explicit_count else self.page_size
        # set on the query just parsed, which no one else holds (a copy cost 7 µs a search)
        query.count = min(count, self.max_page_size)
        return query

    def search(self, tx: Transaction, query: SearchQuery, access: Access | None = None) -> SearchResult:
        """One page; with ``access``, only what the principal may see is matched, counted or
        included."""
        query = _chains_within(tx, query, access)
        restriction = _restriction(tx, query, access)
        if query.summary == "count":
            return SearchResult(query, [], [], tx.resources.count(query, restriction))
        if query.total == "none" or query.after is not None:
            # nothing is counted, or a page past a match stands at an offset that deletions have
            # made too far on to judge by the total: one match beyond the page is read to tell
            # whether another page follows (a full last page must not link an empty one)
            beyond = tx.resources.page(replace(query, count=query.count + 1), False, restriction)
            matches = beyond.matches[: query.count]
            included = _included(tx, query, matches, access)
            total = None if query.total == "none" else tx.resources.count(query, restriction)
            # a page of none (_count=0) has no next: it would be at the same offset, itself again
            more = 0 < query.count < len(beyond.matches)
            return SearchResult(query, matches, included, total, more, _last(beyond.keys[: query.count]))
        page = tx.resources.page(query, True, restriction)
        included = _included(tx, query, page.matches, access)
        return SearchResult(query, page.matches, included, page.total, after=_last(page.keys))

    def matching(
        self,
        tx: Transaction,
        kind: str,
        criteria: str,
        access: Access | None = None,
        count: int = 2,
        where: str | None = None,
    ) -> list[Stored]:
        """The resources a conditional interaction's criteria (a query string) select, among
        those ``access`` lets the principal see; ``count`` at most are fetched (two by
        default, as a conditional create or update needs only "none, one or many").  Criteria
        that select nothing in particular (``_count=1``, ``code=``, ``_sort=_id``) are refused:
        they would match every resource of the type, and a conditional delete delete them all.
        Refused at ``where``, where the criteria are written (a Bundle entry's ``request.url``,
        ``ifNoneExist`` or conditional reference: of hundreds of entries, the one to mend), or
        else a paging parameter at its name, as any refused query parameter is."""
        pairs = query_pairs(criteria.lstrip("?"))
        if paging := sorted({name for name, _ in pairs} & PAGING):
            # a conditional interaction acts on every match: a delete of "the page at _offset=5"
            # deleted them all
            raise FhirError(400, "http.conditional-paging", where or paging[0], parameter=", ".join(paging))
        query = self.parse(kind, pairs, where=where)
        if not query.criteria:
            raise FhirError(400, "http.conditional-needs-criteria", where)
        query = _chains_within(tx, query, access)
        restriction = _restriction(tx, query, access)
        return tx.resources.search(replace(query, count=count), False, restriction)[0]

    def matching_among(
        self, tx: Transaction, query: SearchQuery, ids: Sequence[str], access: Access | None = None
    ) -> frozenset[str]:
        """Which of ``ids`` the query's criteria match (an export's ``_typeFilter``), its chains
        kept to the targets ``access`` lets the principal see; what it may see of the matches
        themselves is the caller's to judge."""
        return tx.resources.matching_among(_chains_within(tx, query, access), ids)


def _last(keys: list[tuple[Value, ...]]) -> tuple[Value, ...] | None:
    """The values of a page's last match, which its next link carries (none on an empty page)."""
    return keys[-1] if keys else None


def _restriction(tx: Transaction, query: SearchQuery, access: Access | None) -> Sql | None:
    """What the principal may see of the query's type, as a condition checked candidate by
    candidate when the criteria leave few (``Resources.few_candidates``)."""
    if access is None or not access.restricted:
        return None
    return access.condition(query.resource_type, few=tx.resources.few_candidates(query))


def _chains_within(tx: Transaction, query: SearchQuery, access: Access | None) -> SearchQuery:
    """The query with each chain kept to the targets the principal may see: without it,
    ``Observation?performer:Patient.identifier=…`` would tell a platform whether a person it
    does not serve performed an Observation it may see, and ``Flag?author:Device.patient=…``
    what a Device hidden from it says.  Targets its inner criterion leaves few of
    (``Resources.few_targets``) are judged first, each as a read judges it, and listed
    (``Access.shown_targets``), as a search's few candidates are checked one by one."""
    if access is None or not access.restricted or not any(c.chain for c in query.criteria):
        return query
    criteria = []
    for criterion in query.criteria:
        if criterion.chain is not None and tx.resources.few_targets(criterion):
            shown = access.shown_targets(tx, criterion)
            criteria.append(criterion if shown is None else replace(criterion, shown=shown))
            continue
        found = access.within_served(criterion.targets) if criterion.chain is not None else None
        if found is not None and found[1]:
            (served_sql, served_params), conditions = found
            within = tuple((kind, sql, tuple(params)) for kind, (sql, params) in conditions)
            criterion = replace(criterion, within=within, served=(served_sql, tuple(served_params)))
        criteria.append(criterion)
    return replace(query, criteria=criteria)


def searchset(
    result: SearchResult,
    base_url: str,
    path: str,
    pairs: Sequence[tuple[str, str]],
    lang: str = "zh-CN",
    *,
    as_stored: bool = False,
) -> dict[str, Any]:
    """The searchset Bundle of a result: matches, then includes, with self/first/next/previous
    links that repeat the request with another offset.  Parameters skipped under
    ``Prefer: handling=lenient`` are left out of the links (a sort key or element name, of
    its parameter) and named in an outcome entry.
    ``as_stored`` (a JSON answer): resources the search does not cut down go in as the JSON
    text they were stored as, which orjson writes out without parsing it."""
    query = result.query
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = _links(result, base_url, path, pairs)
    whole = as_stored and query.summary is None and not query.elements
    entries = [_entry(stored, base_url, "match", query, whole) for stored in result.matches]
    entries += [_entry(stored, base_url, "include", query, whole) for stored in result.included]
    if query.ignored or query.notes:
        issues = [
            issue("warning", error.message_id, lang, error.params, error.expression)
            for error in [*query.ignored, *query.notes]
        ]
        entries.append(outcome_entry(issues))
    if entries:
        bundle["entry"] = entries
    return bundle


def outcome_entry(issues: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset's entry (``search.mode`` outcome) of what answering it skipped or noted: the
    parameters ``Prefer: handling=lenient`` let pass, of a search or of ``$everything``."""
    return {"resource": {"resourceType": "OperationOutcome", "issue": issues}, "search": {"mode": "outcome"}}


def _links(result: SearchResult, base_url: str, path: str, pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """The searchset's paging links: the request as searched, with another offset, and on
    ``next`` the ``_after`` of the page's last match."""
    query = result.query
    # what was searched: a pair skipped under lenient handling left out (by the pair, not its
    # key, which another pair may share), a _sort or _elements cut to what it applied
    pairs = [(key, linked) for key, value in pairs if (linked := query.relinked.get((key, value), value)) is not None]
    if result.more is not None:
        more = result.more
    else:
        more = 0 < query.count == len(result.matches) and (
            result.total is None or query.offset + query.count < result.total
        )
    # the next page starts past this one's last match: an offset shifted when a match before
    # it was deleted between the pages (one was on no page) or written (one was on two).
    # Only a next link carries it, so a last page (a search by identifier's) writes none
    last = cursor.encode(query.sort, result.after) if more and result.after is not None else None
    return page_links(
        f"{base_url}/{path}",
        pairs,
        query.count,
        query.offset,
        more=more,
        pages=query.summary != "count",
        total=result.total,
        cursor=("_after", last),
    )


def _entry(stored: Stored, base_url: str, mode: str, query: SearchQuery, whole: bool) -> dict[str, Any]:
    resource = (
        orjson.Fragment(stored.json())
        if whole
        else shaped(stored.resource or {}, query.summary, query.elements, matched=mode == "match")
    )
    return {"fullUrl": f"{base_url}/{stored.reference}", "resource": resource, "search": {"mode": mode}}


#: the _summary values a read honours (count is a search's)
READ_SUMMARIES = tuple(value for value in SUMMARY_VALUES if value != "count")
#: the parameters a read and a vread honour (the controls every answer takes are allowed too)
READ_HONOURED = ("_summary", "_elements")


def shaped_read(
    resource: dict[str, Any], summary: str | None, elements: str, where: str | None = None
) -> dict[str, Any]:
    """A read's resource as its ``_summary`` and ``_elements`` (a comma list) shape it, the
    same for a read, a vread and a Bundle's read entry."""
    check_read_summary(summary, where)
    return shaped(resource, summary, [element for element in elements.split(",") if element])


def read_controls(pairs: Iterable[tuple[str, str]], where: str | None = None) -> tuple[str | None, str]:
    """A read's ``_summary`` and ``_elements`` among its parameters, read alike for a read, a
    vread, the CapabilityStatement and a Bundle's read entry.  ``_elements`` given more than
    once names the elements of all, as a search takes it; ``_summary`` (0..1) given twice is
    a 400.  A read took the first of each and a Bundle entry the last: the second
    ``_elements`` was dropped from the answer, and which ``_summary`` counted differed."""
    summaries, elements = [], []
    for name, value in pairs:
        if name == "_summary":
            summaries.append(value)
        elif name == "_elements":
            elements.append(value)
    if len(summaries) > 1:
        raise FhirError(400, "http.repeated-parameter", where or "_summary", name="_summary")
    return (summaries[0] if summaries else None), ",".join(elements)


def check_read_summary(summary: str | None, where: str | None = None) -> None:
    """A read's ``_summary``, refused (400) unless it is one a read takes."""
    if summary is not None and summary not in READ_SUMMARIES:
        raise unsupported_value("_summary", summary, READ_SUMMARIES, where)


def shaped(
    resource: dict[str, Any], summary: str | None, elements: Sequence[str], *, matched: bool = True
) -> dict[str, Any]:
    """A resource cut down as ``_summary`` / ``_elements`` ask, marked SUBSETTED when cut.
    Its top-level mandatory elements always stay (R4 search.html), so what is returned is
    still a valid instance of its type.  ``_elements`` cuts an included resource only by the
    names qualified with its type (``gateway/search/elements.py``)."""
    kind = resource.get("resourceType", "")
    elements = wanted_of(kind, list(elements), matched)
    if summary == "true":
        mandatory = {k: v for k, v in resource.items() if k.lstrip("_") in _mandatory(kind)}
        kept = {"resourceType": kind, **mandatory, **_summary(resource, kind)}
    elif summary == "data":
        kept = {k: v for k, v in resource.items() if k != "text"}
    elif summary == "text":
        wanted = {*_KEPT, "text", *_mandatory(kind)}
        kept = {k: v for k, v in resource.items() if k.lstrip("_") in wanted}
    elif elements:
        wanted = {*elements, *_KEPT, *_mandatory(kind)}
        kept = {k: v for k, v in resource.items() if k in wanted or k.lstrip("_") in wanted}
    else:
        return resource
    meta = dict(kept.get("meta", {}))
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept
