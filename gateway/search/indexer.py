"""Search index rows for a resource, written beside it so searches never read JSON.

Why rows and not JSON queries: the same SQL must run on SQLite and PostgreSQL, and a
narrow (name, system, value, low, high, number) table indexes well on both.  Each row's
encoding is the contract with ``gateway/storage/search_sql.py`` and the table comment in
``migrations/0001_resources.sql``; one addition: a string row keeps the raw text in
``system`` (otherwise unused by strings) so ``:exact`` can compare case and accents.

Values arrive as FHIR JSON; their datatype is told from their shape (a Coding has ``code``,
a Period ``start``/``end``…), which serves fhirpathpy results and direct walks alike.
Values that do not parse (a malformed date in a resource that was stored anyway) yield no
row: the validator reports them, search simply cannot find them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from conformance.stored_references import References
from gateway.match_keys import as_keyed
from gateway.search.parameters import (
    BY_IDENTIFIER,
    IDENTIFIED_PEOPLE,
    PRESENT,
    UNINDEXED_REFERENCES,
    Extractor,
    Parameter,
    SearchParameters,
    identified_person,
)
from gateway.search.values import MAX_INSTANT, MIN_INSTANT, date_range, normalise
from profiles.registry import Registry

#: (name, system, value, low, high, number)
Row = tuple[str, str | None, str | None, str | None, str | None, float | None]
Cells = tuple[str | None, str | None, str | None, str | None, float | None]
Encoder = Callable[[Any], Iterator[Cells]]


@dataclass(frozen=True, slots=True)
class Indexed:
    """A parameter that writes rows of its own, with what writing them needs.  Slotted, not a
    NamedTuple: CPython 3.11 reads a slot by name with a specialised instruction, a
    NamedTuple's field through a descriptor, which cost a Patient's rows 7% of their time."""

    code: str
    #: the top-level element without which it has no values (None: not known, as of a union)
    element: str | None
    #: how its values are found in a resource
    extract: Extractor
    #: how a value becomes its rows' cells
    encode: Encoder
    #: (a reference parameter's) the types a delete asks its rows about
    targets: tuple[str, ...]
    #: whether it may point at a Patient (and so name a person by number alone)
    naming: bool
    #: (a reference parameter's) the name of its rows of ``Reference.identifier``, which its
    #: ``:identifier`` modifier searches (:data:`BY_IDENTIFIER`); None for another type
    by_identifier: str | None
    #: the name of its presence row (:data:`PRESENT`), written when the resource holds its
    #: element but no value of it makes a row of its own
    present: str


#: Parameters the resource table answers from its own columns.
NOT_INDEXED = frozenset({"_id", "_lastUpdated"})

#: The searchable parts of a HumanName and of an Address (the two share only "text").
_STRING_PARTS = (
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)


class SearchIndexer:
    """Turns a resource into its search index rows; build once, reuse for every write."""

    def __init__(self, registry: Registry, parameters: SearchParameters | None = None) -> None:
        self.parameters = parameters or SearchParameters(registry)
        self._indexed: dict[str, tuple[Indexed, ...]] = {}

    def rows(self, resource: dict[str, Any], references: References | None = None) -> list[Row]:
        """Every index row of the resource, de-duplicated, in parameter order (with a
        :data:`PRESENT` row for a parameter whose element is there but made no row), then a
        :data:`UNINDEXED_REFERENCES` row for each ``Type/id`` reference no reference
        parameter's rows hold (an extension's ``valueReference``, a contained resource's
        reference), encoded as a reference row: a delete finds the resource pointing at its
        target by the index alone, so without it the target could be deleted from under it.
        ``references``: the resource's, when the writer found them already (for the checks of
        what a stored resource may name), so the resource is not walked for them twice."""
        rows: dict[Row, None] = {}
        held: set[Cells] = set()
        for parameter in self.indexed(resource["resourceType"]):
            if parameter.element is not None and parameter.element not in resource:
                continue  # nothing to extract (an Encounter's ``account``): about half a type's
            code, targets = (parameter.code,), parameter.targets  # a row opens with its code
            values, indexed = parameter.extract(resource), False
            for value in values:
                for cells in parameter.encode(value):
                    rows[code + cells] = None
                    indexed = True
                    if targets and cells[0] in targets:  # a delete asks for these
                        held.add(cells)
                if parameter.by_identifier is not None:
                    for cells in _identifier(value):
                        rows[(parameter.by_identifier, *cells)] = None
                if parameter.naming:  # by the parameter that names them: whose compartment they place it in
                    for key in identified_person(value, resource):
                        rows[(IDENTIFIED_PEOPLE, parameter.code, key, None, None, None)] = None
            if values and not indexed:  # there, though no row holds a value of it: :missing asks
                rows[(parameter.present, None, None, None, None, None)] = None
        for node in references if references is not None else References(resource, ""):
            for cells in _reference(node):
                if cells[0] is not None and cells not in held:  # Type/id: what a delete asks for
                    rows[(UNINDEXED_REFERENCES, *cells)] = None
        return list(rows)

    def indexed(self, resource_type: str) -> tuple[Indexed, ...]:
        """The parameters of a type that write rows, each with its encoder, chosen once per
        type: not those the resource table answers, nor one whose rows another's serve.  Sorted
        out again for every write, the choice cost a Patient's rows a tenth of their time.
        Each with the top-level element it needs (:attr:`Parameter.element`), so a parameter
        of an element the resource lacks is passed over without calling its extractor."""
        found = self._indexed.get(resource_type)
        if found is None:
            found = self._indexed[resource_type] = tuple(
                Indexed(
                    code=code,
                    element=parameter.element,
                    extract=parameter.extract,
                    encode=ENCODERS[parameter.type],
                    targets=_targets(parameter),
                    naming=parameter.type == "reference" and (not parameter.targets or "Patient" in parameter.targets),
                    by_identifier=code + BY_IDENTIFIER if parameter.type == "reference" else None,
                    present=code + PRESENT,
                )
                for code, parameter in self.parameters.for_type(resource_type).items()
                if code not in NOT_INDEXED and parameter.rows == code
            )
        return found


def _targets(parameter: Parameter) -> tuple[str, ...]:
    """The types a reference parameter's rows say a resource points at, as a delete asks
    (none for a parameter of another type)."""
    return parameter.targets if parameter.type == "reference" else ()


def _token(value: Any) -> Iterator[Cells]:
    if isinstance(value, bool):
        yield None, "true" if value else "false", None, None, None
    elif isinstance(value, str):
        yield None, value, None, None, None
    elif isinstance(value, dict):
        if "coding" in value:  # CodeableConcept
            for coding in value["coding"]:
                yield from _token(coding)
        elif "code" in value:  # Coding
            yield value.get("system"), value["code"], None, None, None
        elif "value" in value:  # Identifier, ContactPoint
            system = value.get("system")
            yield system, as_keyed(system, str(value["value"])), None, None, None


def _string(value: Any) -> Iterator[Cells]:
    if isinstance(value, str):
        yield value, normalise(value), None, None, None
    elif isinstance(value, dict):
        for part in _STRING_PARTS:
            item = value.get(part)
            for text in item if isinstance(item, list) else [item]:
                if isinstance(text, str):
                    yield text, normalise(text), None, None, None


def _date(value: Any) -> Iterator[Cells]:
    if isinstance(value, str):
        try:
            low, high = date_range(value)
        except ValueError:
            return
        yield None, None, low, high, None
    elif isinstance(value, dict) and ("start" in value or "end" in value):  # Period
        try:
            low = date_range(value["start"])[0] if "start" in value else MIN_INSTANT
            high = date_range(value["end"])[1] if "end" in value else MAX_INSTANT
        except ValueError:
            return
        yield None, None, low, high, None
    elif isinstance(value, dict) and ("event" in value or "repeat" in value):  # Timing
        # R4 search: of a schedule "only the outer limits matter", its events and the period
        # its repetitions keep within (a boundsDuration or boundsRange counts from a start the
        # Timing does not state)
        for event in value.get("event", []):
            yield from _date(event)
        repeat = value.get("repeat")
        if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
            yield from _date(repeat["boundsPeriod"])


def _reference(value: Any) -> Iterator[Cells]:
    reference = value.get("reference") if isinstance(value, dict) else value  # canonical: a bare URL
    if not isinstance(reference, str) or reference.startswith("#"):
        return
    parts = reference.split("/")
    if "://" not in reference and not reference.startswith("urn:") and len(parts) in (2, 4):
        yield parts[0], parts[1], None, None, None  # Type/id or Type/id/_history/n
    else:
        yield None, reference, None, None, None


def referenced_id(reference: str, kind: str) -> str | None:
    """The id of the ``kind`` resource the index reads a reference's text as naming
    (``Patient/1``, or a version of it, names Patient 1), or None when it reads it as naming
    none (another type, an absolute URL, a urn, a contained resource's ``#…``): for a reader
    that judges a reference as the index does without indexing the whole resource (a bulk
    export's text test)."""
    found = referenced_key(reference)
    return found[1] if found is not None and found[0] == kind else None


def referenced_key(reference: Any) -> tuple[str, str] | None:
    """The (type, id) the index reads a reference (its text, or a Reference) as naming, or
    None (see :func:`referenced_id`): what a Provenance's ``target`` names, read from a
    version no longer indexed (a bulk export's deletions)."""
    for found_kind, found_id, *_ in _reference(reference):
        if found_kind is not None:
            return found_kind, found_id
    return None


def _identifier(value: Any) -> Iterator[Cells]:
    """A Reference's ``identifier`` as a token row's cells (none for a canonical, a bare URL,
    which has no identifier: R4 does not take the modifier on one)."""
    identifier = value.get("identifier") if isinstance(value, dict) else None
    if isinstance(identifier, dict) and "value" in identifier:
        yield from _token(identifier)


def _quantity(value: Any) -> Iterator[Cells]:
    """A row for the coded unit and, when it differs, one for the human unit without a system:
    ``36.5||℃`` finds a ``unit: "℃", code: "Cel"`` (either may match when no system is given)."""
    if isinstance(value, dict) and _is_number(value.get("value")):
        number, code, unit = float(value["value"]), value.get("code"), value.get("unit")
        yield value.get("system"), code or unit, None, None, number
        if code and isinstance(unit, str) and unit != code:
            yield None, unit, None, None, number


def _number(value: Any) -> Iterator[Cells]:
    if _is_number(value):
        yield None, None, None, None, float(value)


def _uri(value: Any) -> Iterator[Cells]:
    if isinstance(value, str):
        yield None, value, None, None, None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


ENCODERS: dict[str, Encoder] = {
    "token": _token,
    "string": _string,
    "date": _date,
    "reference": _reference,
    "quantity": _quantity,
    "number": _number,
    "uri": _uri,
}
