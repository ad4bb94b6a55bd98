"""Parse a FHIR search request into a :class:`SearchQuery` the SQL builder can trust.

Why parse fully up front: every value is checked (dates, numbers, prefixes, modifiers) before
any SQL exists, so a bad request is refused with a message naming the parameter instead of
silently matching nothing, and the SQL builder only ever sees well-formed values.

The request is a list of (key, value) pairs, as from a query string or a form body: repeated
keys AND, commas inside one value OR (``\\,`` is a literal comma).  With ``handling="strict"``
(the server's default) an unknown parameter or modifier is an error; with ``"lenient"`` it is
recorded in :attr:`SearchQuery.ignored` so the server can report what it did not apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from gateway import messages
from gateway.match_keys import as_keyed
from gateway.search import cursor
from gateway.search.cursor import Value
from gateway.search.elements import unknown_element
from gateway.search.parameters import BY_IDENTIFIER, Parameter, SearchParameters
from gateway.search.values import date_range, local_reference, natural_number, queried_date

PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
SORTABLE_TYPES = frozenset({"string", "date", "token", "number", "quantity", "uri"})
MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    #: below/above: subsumption in a code system of the registry (:meth:`_Parser._subsumption`)
    "token": {"not", "missing", "below", "above"},
    "reference": {"missing", "identifier"},
    "uri": {"below", "above", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
}
#: Modifiers R4 defines that this gateway does not implement (an unsupported, not unknown, modifier).
UNSUPPORTED_MODIFIERS = frozenset({"text", "in", "not-in", "of-type", "iterate"})
#: the _summary values this server implements (``true`` from the definitions' isSummary flags)
SUMMARY_VALUES = ("count", "true", "data", "text", "false")
TOTAL_VALUES = ("none", "estimate", "accurate")
DEFAULT_COUNT, MAX_COUNT = 20, 1000
IGNORED_CONTROLS = frozenset({"_format", "_pretty"})
#: result controls of one value (0..1 in R4): given twice, which counted would be the server's
#: choice, not the client's, so the second is refused, as a read's ``_summary`` and a
#: history's ``_count`` are
GIVEN_ONCE = frozenset({"_count", "_offset", "_after", "_summary", "_total"})
ITERATE_MODIFIERS = frozenset({"iterate", "recurse"})
#: what one search may ask at most: each limit keeps the SQL within what both databases parse
#: (SQLite refuses expression trees deeper than 1,000 and LIKE patterns over 50,000 bytes), so
#: an oversized request is the client's 400, not the store's failure
LIMITS = {"criteria": 64, "values": 100, "characters": 1000, "sort keys": 8, "includes": 16}
EXAMPLES = {
    "date": "ge2026-11-01, 2026-11-01T09:30:00+08:00",
    "number": "gt5.4",
    "quantity": "le6.1|http://unitsofmeasure.org|mmol/L",
    "missing": "true / false",
    "count": f"0–{MAX_COUNT}",
    "offset": "0, 20, 40",
    "summary": " / ".join(SUMMARY_VALUES),
    "total": " / ".join(TOTAL_VALUES),
    "include": "Encounter:subject:Patient",
    "has": "Patient?_has:CarePlan:subject:status=active",
    "string": "张",
    "uri": "http://fhir.yiyang.cn/StructureDefinition/yy-patient",
    "token": "urn:oid:2.16.156.10011.1.3|410105194912310020",
    "reference": "Patient/zhang-xiuying",
}

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]+", re.ASCII)


class SearchError(ValueError):
    """A search request the gateway will not run; its wording is in ``messages.json`` beside
    this module, which the gateway's one catalog merges."""

    def __init__(self, message_id: str, params: dict[str, Any], expression: str) -> None:
        super().__init__(message_id, params, expression)
        self.message_id = message_id
        self.params = params
        #: the request key at fault (e.g. "birthdate:exact"), for OperationOutcome.issue.expression
        self.expression = expression

    def text(self, lang: str = "zh-CN") -> str:
        return messages.text(self.message_id, lang, self.params)

    def __str__(self) -> str:
        return self.text("en")


@dataclass(frozen=True)
class SearchValue:
    """One OR-alternative of a criterion; which fields are set depends on the parameter type.

    token: ``system`` None = any system, "" = no system; ``code`` None = any code;
    ``or_no_system``: the system named is the element's own (a ``code`` element, which holds
    the bare code), so values written without a system match it too.
    reference: ``system`` = target type (or None), ``code`` = id or absolute URL.
    string, uri: ``text``.  date: ``low``/``high``.  number, quantity: ``number`` and the
    ``[number_low, number_high)`` interval its precision denotes; quantity adds system, code.
    """

    prefix: str = "eq"
    text: str | None = None
    system: str | None = None
    code: str | None = None
    low: str | None = None
    high: str | None = None
    number: float | None = None
    number_low: float | None = None
    number_high: float | None = None
    or_no_system: bool = False
    #: token: the codes any of which matches, ``code`` and those it subsumes or is subsumed by
    #: (``:below``, ``:above``), in place of ``code`` alone
    codes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Criterion:
    """One search parameter occurrence: its values OR together."""

    #: the name of the index rows it reads (``Parameter.rows``: ``phonetic`` reads ``name``'s)
    param: str
    type: str
    modifier: str | None = None
    values: tuple[SearchValue, ...] = ()
    missing: bool | None = None
    #: for a chain (``subject:Patient.name=…``): the types searched and the criterion on them
    targets: tuple[str, ...] = ()
    chain: Criterion | None = None
    #: the store found its one value common (a gender, a status): another criterion should
    #: drive the query (see ``search_sql.common_value_sql``)
    common: bool = False
    #: for a chain searched for a restricted client: per target type, the SQL condition on
    #: ``resource r`` keeping what it may see (a chain must not reach a hidden person either),
    #: written over the table ``served_people(id)`` that ``served`` (SQL, parameters) selects
    within: tuple[tuple[str, str, tuple[Any, ...]], ...] = ()
    served: tuple[str, tuple[Any, ...]] = ("", ())
    #: for such a chain to few targets (``Resources.few_targets``): the (type, id) of those it
    #: may see, judged beforehand as a read judges them (``Access.shown_targets``), to which
    #: the chain keeps instead of :attr:`within`
    shown: tuple[tuple[str, str], ...] | None = None
    #: for ``_has`` (type "has"): the reference parameter of the target type that points back
    via: str = ""
    #: for a chain's criterion on target types that keep its rows under different names
    #: (``performer.phonetic``: an Organization's own, a Practitioner's ``name``'s): each type
    #: and the name it reads, in place of :attr:`param`
    rows_of: tuple[tuple[str, str], ...] = ()

    def rows_for(self, kind: str) -> str:
        """The name of the index rows the criterion reads of type ``kind``: its own
        (:attr:`param`) unless :attr:`rows_of` names another."""
        return dict(self.rows_of).get(kind, self.param)


@dataclass(frozen=True)
class SortKey:
    #: as for :attr:`Criterion.param`
    param: str
    type: str
    descending: bool = False


@dataclass(frozen=True)
class Include:
    """``_include`` / ``_revinclude``: references named ``params`` held by ``source_type``."""

    source_type: str
    params: tuple[str, ...]
    target_type: str | None = None
    #: ``:iterate`` (R4; ``:recurse`` in earlier versions): applied to what was included too
    iterate: bool = False


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    sort: list[SortKey] = field(default_factory=list)
    include: list[Include] = field(default_factory=list)
    revinclude: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    total: str | None = None
    #: unknown or unsupported parameters skipped under handling=lenient
    ignored: list[SearchError] = field(default_factory=list)
    #: what handling=lenient let pass within a parameter it applied (an unknown _elements name)
    notes: list[SearchError] = field(default_factory=list)
    #: request pairs the paging links must not repeat as written, each to what they say
    #: instead: None for a pair skipped under handling=lenient, the keys or names applied for a
    #: ``_sort`` or ``_elements`` only some of whose were (a link asks for what was searched)
    relinked: dict[tuple[str, str], str | None] = field(default_factory=dict)
    #: ``_after``: the values, one per column of the order (``cursor.order_columns``), of the
    #: match the page starts past; ``offset`` then says where the page stands, for the links
    #: other than ``next``
    after: tuple[Value, ...] | None = None


def parse_search(
    resource_type: str,
    pairs: Iterable[tuple[str, str]],
    parameters: SearchParameters,
    *,
    handling: str = "strict",
    base: str | None = None,
) -> SearchQuery:
    """Parse request pairs for a resource type; raise :class:`SearchError` on the first fault.
    ``base``: this server's base URL, so a reference value on it reads as the relative
    reference (``http://…/fhir/Patient/1`` finds ``Patient/1``, as FHIR asks)."""
    parser = _Parser(resource_type, parameters, base, lenient=handling == "lenient")
    for key, value in pairs:
        try:
            parser.add(key, value)
        except _Ignorable as exc:
            if handling != "lenient":
                raise exc.error from None
            parser.query.ignored.append(exc.error)
            parser.query.relinked[(key, value)] = None
    if parser.after is not None:
        # only a next link carries one, written for the order of its search (known only once
        # every _sort is read): in another order, or altered, it would start the page at a
        # place no link gave
        sort = parser.query.sort
        parser.query.after = cursor.decode(parser.after, sort)
        if parser.query.after is None:
            params = {"name": "_after", "value": parser.after, "example": cursor.example(sort)}
            raise SearchError("http.not-a-page-cursor", params, "_after")
    return parser.query


class _Ignorable(Exception):
    """An unknown or unsupported parameter or modifier: an error unless handling=lenient."""

    def __init__(self, error: SearchError) -> None:
        super().__init__(error.message_id)
        self.error = error


class _Parser:
    def __init__(
        self, resource_type: str, parameters: SearchParameters, base: str | None = None, lenient: bool = False
    ) -> None:
        self.parameters = parameters
        self.query = SearchQuery(resource_type)
        self.base = base.rstrip("/") + "/" if base else None
        self.lenient = lenient
        #: the controls of :data:`GIVEN_ONCE` met so far
        self.given: set[str] = set()
        #: ``_after`` as given, read once the order is known (:func:`parse_search`)
        self.after: str | None = None

    @property
    def own(self) -> dict[str, Parameter]:
        return self.parameters.for_type(self.query.resource_type)

    def add(self, key: str, value: str) -> None:
        name = key.split(":", 1)[0]
        if name in IGNORED_CONTROLS:
            return
        if name == "_has":
            if value != "":  # R4: a parameter with an empty value is ignored, reverse chains too
                _within(key, "criteria", len(self.query.criteria) + 1)
                self.query.criteria.append(self._has(key, value))
        elif handler := _CONTROLS.get(name):
            _, colon, modifier = key.partition(":")
            if colon and not (name in ("_include", "_revinclude") and modifier in ITERATE_MODIFIERS):
                raise _Ignorable(SearchError("search.unsupported-modifier", _names(key), key))
            if name in GIVEN_ONCE:
                if name in self.given:
                    raise SearchError("http.repeated-parameter", {"name": name}, key)
                self.given.add(name)
            handler(self, key, value)
        elif value != "":  # R4: a parameter with an empty value is ignored
            _within(key, "criteria", len(self.query.criteria) + 1)
            self.query.criteria.append(self.criterion(self.query.resource_type, key, value))

    # -- criteria ----------------------------------------------------------------------------
    def criterion(self, resource_type: str, key: str, value: str, *, chained: str | None = None) -> Criterion:
        """``chained``: the parameter as the client wrote it, when ``key`` is its chain's tail."""
        head, dot, tail = key.partition(".")
        code, colon, modifier = head.partition(":")
        parameter = self._parameter(resource_type, code, key)
        if colon and not modifier:  # "name:=x" is no "name=x": a modifier lost on the way
            self._check_modifier(parameter, modifier, key)
        if dot:
            if chained:
                raise SearchError("search.chain-too-deep", {"param": chained}, chained)
            return self._chain(parameter, modifier, tail, value, key)
        if modifier == "missing":
            if value not in ("true", "false"):
                raise SearchError("search.bad-value", _bad(key, value, EXAMPLES["missing"]), key)
            return Criterion(parameter.rows, parameter.type, modifier, missing=value == "true")
        if modifier and parameter.type == "reference" and modifier in parameter.targets:
            return Criterion(parameter.rows, parameter.type, None, self._values(parameter.type, value, key, modifier))
        if modifier == "identifier" and parameter.type == "reference":
            if parameter.canonical:  # a bare URL: no identifier to match, so nothing ever would
                raise _Ignorable(SearchError("search.identifier-on-canonical", {"param": parameter.code}, key))
            # R4: a token on Reference.identifier, with or without a reference beside it
            return Criterion(parameter.rows + BY_IDENTIFIER, "token", None, self._values("token", value, key, None))
        if modifier:
            self._check_modifier(parameter, modifier, key)
        values = self._values(parameter.type, value, key, None)
        if parameter.implicit_systems:
            values = tuple(
                replace(v, or_no_system=True) if v.system in parameter.implicit_systems else v for v in values
            )
        if parameter.type == "token" and modifier in ("below", "above"):
            return Criterion(parameter.rows, parameter.type, None, self._subsumption(values, modifier == "above"))
        return Criterion(parameter.rows, parameter.type, modifier or None, values)

    def _subsumption(self, values: tuple[SearchValue, ...], above: bool) -> tuple[SearchValue, ...]:
        """A token's ``:below`` (``:above``) values, each ``system|code`` matching that code
        and every code below (above) it in the system's is-a hierarchy, when the registry
        holds one with the code (R4 search.html#token); otherwise, and for a code without a
        system, whose hierarchy no one named, the code itself."""
        terminology = self.parameters.terminology
        widened = []
        for value in values:
            codes = terminology.subsumed(value.system, value.code, above) if value.system and value.code else None
            widened.append(replace(value, codes=tuple(sorted(codes))) if codes and len(codes) > 1 else value)
        return tuple(widened)

    def _parameter(self, resource_type: str, code: str, key: str) -> Parameter:
        parameter = self.parameters.get(resource_type, code)
        if parameter is None:
            raise _Ignorable(SearchError("search.unknown-parameter", {"param": code, "type": resource_type}, key))
        return parameter

    def _check_modifier(self, parameter: Parameter, modifier: str, key: str) -> None:
        if modifier in MODIFIERS.get(parameter.type, set()):
            return
        message = "search.unsupported-modifier" if modifier in UNSUPPORTED_MODIFIERS else "search.unknown-modifier"
        raise _Ignorable(SearchError(message, {"param": parameter.code, "modifier": modifier}, key))

    def _chain(self, parameter: Parameter, modifier: str, tail: str, value: str, key: str) -> Criterion:
        if parameter.type != "reference":
            raise SearchError("search.not-chainable", {"param": parameter.code, "chain": tail}, key)
        if modifier and modifier not in parameter.targets:
            self._check_modifier(parameter, modifier, key)
            if modifier == "identifier":  # R4: no chaining after it (it names no resource)
                raise SearchError("search.chain-after-identifier", {"param": parameter.code, "chain": tail}, key)
        targets = (modifier,) if modifier else parameter.targets
        chained_code = tail.split(":", 1)[0].split(".", 1)[0]
        chained_rows = {t: found.rows for t in targets if (found := self.parameters.get(t, chained_code)) is not None}
        usable = tuple(chained_rows)
        if not usable:
            params = {"param": parameter.code, "chain": chained_code, "targets": ", ".join(targets) or "-"}
            raise _Ignorable(SearchError("search.unknown-chain-parameter", params, key))
        chain = self.criterion(usable[0], tail, value, chained=key)
        if len(set(chained_rows.values())) > 1:
            chain = replace(chain, rows_of=tuple(chained_rows.items()))
        return Criterion(parameter.code, "reference", targets=usable, chain=chain)

    def _has(self, key: str, value: str) -> Criterion:
        """``_has:CarePlan:subject:status=active`` (R4 reverse chaining): the resources that an
        active CarePlan's ``subject`` points at.  One level, as chains are."""
        _, source, via, rest = (key.split(":", 3) + ["", "", ""])[:4]
        bad = SearchError("search.bad-has", {"param": key, "example": EXAMPLES["has"]}, key)
        if not (_RESOURCE_TYPE.fullmatch(source) and via and rest):
            raise bad
        if rest.startswith("_has:"):
            raise SearchError("search.chain-too-deep", {"param": key}, key)
        parameter = self._parameter(source, via, key)
        if parameter.type != "reference" or self.query.resource_type not in parameter.targets:
            raise bad
        chain = self.criterion(source, rest, value, chained=key)
        return Criterion("_has", "has", targets=(source,), chain=chain, via=via)

    def _on_this_server(self, piece: str) -> list[str]:
        """A reference value on this server's base as ``Type/id`` too, which is how a relative
        reference is indexed (one stored before such references were made relative is indexed
        as written, so both are asked)."""
        relative = local_reference(piece, self.base) if self.base and "://" in piece else None
        return [relative, piece] if relative is not None and relative.count("/") == 1 else [piece]

    def _values(self, kind: str, value: str, key: str, target: str | None) -> tuple[SearchValue, ...]:
        parse = _VALUE_PARSERS[kind]
        values = []
        pieces = _split(value, ",", keep_escapes=True)
        if kind not in _SPLIT_AT_BAR:
            pieces = [_unescaped(piece) for piece in pieces]
        _within(key, "values", len(pieces))  # as the client wrote them, before the own-base forms
        if kind == "reference" and self.base:
            pieces = [relative for piece in pieces for relative in self._on_this_server(piece)]
        for piece in pieces:
            _within(key, "characters", len(piece))
            if piece:
                try:
                    values.append(parse(piece, target))
                except (ValueError, ArithmeticError):
                    raise SearchError("search.bad-value", _bad(key, piece, EXAMPLES[kind]), key) from None
        if not values:
            raise SearchError("search.bad-value", _bad(key, value, EXAMPLES.get(kind, "…")), key)
        return tuple(values)

    # -- result controls -----------------------------------------------------------------------
    def _count(self, key: str, value: str) -> None:
        self.query.count = min(_natural(key, value, "count"), MAX_COUNT)

    def _offset(self, key: str, value: str) -> None:
        self.query.offset = _natural(key, value, "offset")

    def _after(self, key: str, value: str) -> None:
        """The match a page starts past, as a ``next`` link writes it (judged once the order
        is known, by :func:`parse_search`)."""
        self.after = value

    def _sort(self, key: str, value: str) -> None:
        """Each key a sortable parameter of the type; under handling=lenient an unknown one is
        skipped and the rest applied, in their order."""
        items = [item for item in value.split(",") if item]
        applied = []
        for item in items:
            code = item.removeprefix("-")
            if code in ("_id", "_lastUpdated"):
                kind, rows = code, code
            elif (parameter := self.own.get(code)) is not None and parameter.type in SORTABLE_TYPES:
                kind, rows = parameter.type, parameter.rows
            else:
                error = SearchError("search.unknown-sort", {"param": code, "type": self.query.resource_type}, key)
                if not self.lenient:
                    raise _Ignorable(error)
                self.query.ignored.append(error)
                continue
            self.query.sort.append(SortKey(rows, kind, item.startswith("-")))
            _within(key, "sort keys", len(self.query.sort))
            applied.append(item)
        if len(applied) < len(items):
            self.query.relinked[(key, value)] = ",".join(applied) or None

    def _include(self, key: str, value: str) -> None:
        _within(key, "includes", len(self.query.include) + len(self.query.revinclude) + 1)
        spec = self._include_spec(key, value, reverse=False)
        # one naming another source type adds nothing to these matches, but may to what an
        # iterating include brings
        if spec.source_type == self.query.resource_type or spec.iterate:
            self.query.include.append(spec)

    def _revinclude(self, key: str, value: str) -> None:
        _within(key, "includes", len(self.query.include) + len(self.query.revinclude) + 1)
        self.query.revinclude.append(self._include_spec(key, value, reverse=True))

    def _include_spec(self, key: str, value: str, *, reverse: bool) -> Include:
        if value == "*" and not reverse:
            value = f"{self.query.resource_type}:*"
        source, _, rest = value.partition(":")
        code, _, target = rest.partition(":")
        bad = SearchError("search.bad-include", {"control": key, "value": value, "example": EXAMPLES["include"]}, key)
        if not _RESOURCE_TYPE.fullmatch(source) or not code or (target and not _RESOURCE_TYPE.fullmatch(target)):
            raise bad
        references = {c: p for c, p in self.parameters.for_type(source).items() if p.type == "reference"}
        iterate = key.partition(":")[2] in ITERATE_MODIFIERS
        if code != "*" and code not in references:
            raise _Ignorable(SearchError("search.unknown-parameter", {"param": code, "type": source}, key))
        named = tuple(references) if code == "*" else (code,)
        # a target none of them may point at (a typo, Encounter:subject:Patinet) would include
        # nothing, silently; a parameter without targets may point at any type
        if target and not any(target in references[c].targets or not references[c].targets for c in named):
            raise bad
        return Include(source, named, target or None, iterate)

    def _summary(self, key: str, value: str) -> None:
        self.query.summary = _choice(key, value, SUMMARY_VALUES, "summary")

    def _total(self, key: str, value: str) -> None:
        self.query.total = _choice(key, value, TOTAL_VALUES, "total")

    def _elements(self, key: str, value: str) -> None:
        """Each name an element of its type (the searched one unless it names another); an
        unknown one selects nothing: refused, or under handling=lenient noted and the rest
        applied (so the links keep the parameter, with the names applied)."""
        names = [e.strip() for e in value.split(",") if e.strip()]
        applied = []
        for name in names:
            unknown = unknown_element(self.query.resource_type, name)
            if unknown is not None:
                error = SearchError("search.unknown-element", {"element": unknown}, key)
                if not self.lenient:
                    raise error
                self.query.notes.append(error)
                continue
            self.query.elements.append(name)
            applied.append(name)
        if len(applied) < len(names):
            self.query.relinked[(key, value)] = ",".join(applied) or None


_CONTROLS = {
    "_count": _Parser._count,
    "_offset": _Parser._offset,
    "_after": _Parser._after,
    "_sort": _Parser._sort,
    "_include": _Parser._include,
    "_revinclude": _Parser._revinclude,
    "_summary": _Parser._summary,
    "_total": _Parser._total,
    "_elements": _Parser._elements,
}
#: the parameters that shape a result rather than choose its matches (R4 search.html,
#: "Modifying Search Results"), and the controls every answer takes
RESULT_PARAMETERS = frozenset(_CONTROLS) | IGNORED_CONTROLS


# -- values ------------------------------------------------------------------------------------
def _within(key: str, what: str, count: int) -> None:
    if count > LIMITS[what]:
        raise SearchError("search.too-large", {"param": key, "limit": LIMITS[what]}, key)


def _split(text: str, separator: str, keep_escapes: bool = False) -> list[str]:
    """Split at unescaped separators and undo the escapes (``\\,`` ``\\|`` ``\\$`` ``\\\\``),
    or keep them for the next split: a value's commas are split first, then a token's ``|``,
    and undoing ``\\|`` and ``\\\\`` at the first split made the second read them again (a
    token ``A\\|1`` was refused for two bars, ``HIS\\\\0042`` matched no ``HIS\\0042``)."""
    if "\\" not in text:  # nothing escaped (nearly always): str.split, not a Python loop per character
        return text.split(separator)
    pieces, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(f"\\{char}" if keep_escapes else char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    pieces.append("".join(current))
    return pieces


def _unescaped(text: str) -> str:
    """A value with its escapes undone (what :func:`_split` leaves when it keeps them)."""
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def _prefixed(text: str) -> tuple[str, str]:
    if text[:2] in PREFIXES:
        return text[:2], text[2:]
    return "eq", text


def _string_value(text: str, _target: str | None) -> SearchValue:
    return SearchValue(text=text)


def _token_value(text: str, _target: str | None) -> SearchValue:
    parts = _split(text, "|")
    if len(parts) == 1:
        return SearchValue(code=parts[0])
    if len(parts) > 2:
        raise ValueError("more than one '|'")
    if parts == ["", ""]:  # neither a system nor a code: it selects nothing in particular
        raise ValueError("a bare '|'")
    return SearchValue(system=parts[0], code=as_keyed(parts[0], parts[1]) or None)


def _reference_value(text: str, target: str | None) -> SearchValue:
    if "://" in text or text.startswith("urn:"):
        return SearchValue(code=text)
    kind, slash, ident = text.rpartition("/")
    if slash and (not _RESOURCE_TYPE.fullmatch(kind) or not ident):
        raise ValueError("not Type/id")
    if slash and target and kind != target:
        raise ValueError("type differs from the modifier")
    return SearchValue(system=kind or target, code=ident)


def _date_value(text: str, _target: str | None) -> SearchValue:
    prefix, rest = _prefixed(text)
    low, high = date_range(queried_date(rest))
    return SearchValue(prefix=prefix, low=low, high=high)


def _number_parts(text: str) -> tuple[float, float, float]:
    """The number and the [low, high) interval its significant digits denote (5.4 → 5.35, 5.45)."""
    if not _NUMBER.fullmatch(text):
        raise ValueError("not a number")
    number = Decimal(text)
    half = Decimal(5).scaleb(number.as_tuple().exponent - 1)
    return float(number), float(number - half), float(number + half)


def _number_value(text: str, _target: str | None) -> SearchValue:
    prefix, rest = _prefixed(text)
    number, low, high = _number_parts(rest)
    return SearchValue(prefix=prefix, number=number, number_low=low, number_high=high)


def _quantity_value(text: str, _target: str | None) -> SearchValue:
    parts = _split(text, "|")
    if len(parts) not in (1, 3):
        raise ValueError("expected number|system|code")
    prefix, rest = _prefixed(parts[0])
    number, low, high = _number_parts(rest)
    system, code = (parts[1] or None, parts[2] or None) if len(parts) == 3 else (None, None)
    return SearchValue(prefix=prefix, number=number, number_low=low, number_high=high, system=system, code=code)


#: the types whose values are split again at ``|`` (their parsers undo the escapes)
_SPLIT_AT_BAR = frozenset({"token", "quantity"})
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)

_VALUE_PARSERS = {
    "string": _string_value,
    "uri": _string_value,
    "token": _token_value,
    "reference": _reference_value,
    "date": _date_value,
    "number": _number_value,
    "quantity": _quantity_value,
}


def _natural(key: str, value: str, example: str) -> int:
    """A non-negative integer that both databases accept for LIMIT / OFFSET."""
    number = natural_number(value)
    if number is None:
        raise SearchError("search.bad-value", _bad(key, value, EXAMPLES[example]), key)
    return number


def _choice(key: str, value: str, choices: tuple[str, ...], example: str) -> str:
    if value not in choices:
        raise SearchError("search.bad-value", _bad(key, value, EXAMPLES[example]), key)
    return value


def _bad(param: str, value: str, example: str) -> dict[str, str]:
    return {"param": param, "value": value, "example": example}


def _names(key: str) -> dict[str, str]:
    name, _, modifier = key.partition(":")
    return {"param": name, "modifier": modifier}
