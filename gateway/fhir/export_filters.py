"""``_typeFilter`` and ``_elements`` of a bulk export (Bulk Data Access IG v2): which resources
of a type it keeps, and which of their elements.

An elderly-care platform that wants only its residents' finished stays and active care plans
names them as the searches it would send the gateway, ``_typeFilter=Encounter?status=finished``.
A resource of a filtered type is exported when any search of its type matches it; the other
types are exported whole, each type filtered on its own, as the IG has it.  The searches are
the gateway's own (the parameters, modifiers, prefixes and chains of ``GET [base]/Encounter?…``),
checked at kick-off so that a mistyped one is a 400 there rather than a failed job later, and
asked by the job of what it is about to write (:class:`Filtering`).

Commas separate searches within one value, as the IG has it; a comma inside a search's own
value is percent-encoded within its (itself percent-encoded) query: ``status%3Dplanned%252Cin-progress``.

``_elements`` cuts the exported resources as a search's cuts its matches (``shaped``): a bare
name every resource, ``Type.element`` that type's, the mandatory elements kept and the
resource marked SUBSETTED; only top-level elements, as the IG allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from gateway.fhir.errors import FhirError
from gateway.fhir.parameters import query_pairs
from gateway.fhir.search import Searcher
from gateway.search.elements import element_names, unknown_element
from gateway.search.query import RESULT_PARAMETERS, SearchQuery
from gateway.security.access import Access
from gateway.storage.store import Stored, Transaction

PARAMETER = "_typeFilter"
#: searches one kick-off may ask for: the job runs each over the whole archive as it starts
MAX_SEARCHES = 32


class TypeFilter(NamedTuple):
    """One search of a ``_typeFilter``: its resource type and its query as the client wrote it
    (a pair, as the scopes hook asks it: :func:`gateway.security.scopes.type_filter_needs`)."""

    kind: str
    criteria: str

    def __str__(self) -> str:
        return f"{self.kind}?{self.criteria}"


def written_searches(values: Iterable[str]) -> list[TypeFilter]:
    """The searches ``_typeFilter`` values hold, as written: each value split at its commas,
    each search trimmed and split at its first ``?`` (none: no criteria).  The job and the
    scopes hook read them here alike, so the hook asks the scopes of the searches the job runs."""
    return [TypeFilter(*search.strip().partition("?")[::2]) for value in values for search in value.split(",")]


def type_filters(
    values: Iterable[str], searcher: Searcher, check_type: Callable[[str, str], None], given: int = 0
) -> list[TypeFilter]:
    """The searches of a kick-off's ``_typeFilter`` values, each checked as a search of its
    type (``check_type(kind, parameter)`` refuses a type the export cannot hold).  A search
    must choose matches and only choose them: ``Encounter?`` would keep every Encounter and
    say nothing, and a result parameter (``_sort``, ``_count``, ``_elements`` …) has no
    meaning in an export, whose files are neither ordered nor paged.  ``given``: the searches
    the kick-off's other values hold, which count towards :data:`MAX_SEARCHES` too."""
    written = written_searches(values)
    if given + len(written) > MAX_SEARCHES:
        count = given + len(written)
        raise FhirError(400, "http.export-too-many-type-filters", PARAMETER, count=count, limit=MAX_SEARCHES)
    found: list[TypeFilter] = []
    for search in written:
        if not search.kind or not search.criteria:
            raise FhirError(400, "http.export-type-filter-form", PARAMETER, value=str(search))
        check_type(search.kind, PARAMETER)
        parse(searcher, search)
        if search not in found:
            found.append(search)
    return found


def parse(searcher: Searcher, search: TypeFilter) -> SearchQuery:
    """The search's query; a refusal names ``_typeFilter``, where the client wrote it."""
    pairs = query_pairs(search.criteria, PARAMETER)
    if shaping := sorted({name for name, _ in pairs} & RESULT_PARAMETERS):
        raise FhirError(400, "http.export-type-filter-result-parameter", PARAMETER, parameter=", ".join(shaping))
    try:
        query = searcher.parse(search.kind, pairs)
    except FhirError as refused:
        raise FhirError(refused.status, refused.message_id, PARAMETER, **refused.params) from refused
    if not query.criteria:
        raise FhirError(400, "http.export-type-filter-form", PARAMETER, value=str(search))
    return query


class Filtering:
    """A job's searches, parsed once, applied to what the job is about to write: a resource
    of a filtered type is kept when one of its type's searches matches it.  They are asked of
    a batch of the job's own resources at a time (``_id`` among them), never listed whole: an
    elderly-care home's export of its residents asking ``Observation?code=8480-6`` would
    otherwise hold every blood pressure of the province in memory."""

    def __init__(self, searches: Sequence[TypeFilter], searcher: Searcher, access: Access) -> None:
        self.searcher = searcher
        self.access = access
        self.queries: dict[str, list[SearchQuery]] = {}
        for search in searches:
            self.queries.setdefault(search.kind, []).append(parse(searcher, search))

    def kept(self, tx: Transaction, batch: Sequence[Stored]) -> list[Stored]:
        """The resources of ``batch`` the export keeps, in their order."""
        ids: dict[str, list[str]] = {}
        for stored in batch:
            if stored.type in self.queries:
                ids.setdefault(stored.type, []).append(stored.id)
        matched = {
            (kind, resource_id)
            for kind, candidates in ids.items()
            for query in self.queries[kind]
            for resource_id in self.searcher.matching_among(tx, query, candidates, self.access)
        }
        return [stored for stored in batch if stored.type not in ids or (stored.type, stored.id) in matched]


def export_elements(values: Iterable[str], kinds: Iterable[str]) -> list[str]:
    """The names of a kick-off's ``_elements`` values (comma lists, repeatable), each a
    top-level element of one of the ``kinds`` the export may hold, named with its type
    (``Patient.name``) or bare: a name that cuts nothing is a client's mistake, refused (400)."""
    kinds = list(kinds)
    names: list[str] = []
    for value in values:
        for name in (part.strip() for part in value.split(",")):
            if not name:
                continue
            if "." in name:
                known = name.partition(".")[0] in kinds and unknown_element("", name) is None
            else:
                known = any(name in element_names(kind) for kind in kinds)
            if not known:
                raise FhirError(400, "search.unknown-element", "_elements", element=name)
            if name not in names:
                names.append(name)
    return names
