"""``$identity-conflicts``: the 主索引 staff's work list, the identity conflicts the identity merge
recorded (profiles/package/OperationDefinition-identity-conflicts.json), over REST.

An ingest and a REST write record a conflict where a source disagreed with the archive on a
person's demographics, where one organisation identifier was given two names, and where an
elderly-care client created a second record of a person beside a holder it may not see; the
staff settle the last with ``Patient/$merge``, which marks the entries of the pair resolved.
The answer is a ``Parameters``: one ``conflict`` part per entry, oldest first, and a ``next``
part with the URL of the next page, which resumes past the last entry shown (its place in the
list, as the search's opaque ``_after`` token writes it), so that an entry resolved or added
between two pages moves no other onto a second page or off every page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from orjson import OPT_SORT_KEYS, dumps

from gateway.fhir.errors import FhirError
from gateway.fhir.operation_inputs import defined_inputs
from gateway.fhir.parameters import honoured_only, unsupported_value, whole_number
from gateway.fhir.patient_merge import PATIENT
from gateway.fhir.repository import Repository
from gateway.search import cursor
from gateway.search.values import ascii_digits
from gateway.storage.ingest_tables import ListedConflict

#: the operation's definition (data in the package, under the configured canonical base)
DEFINITION = "identity-conflicts"
NAME = "$identity-conflicts"
STATUSES = ("open", "resolved", "all")
#: entries a page holds unless ``_count`` says otherwise (capped by the server's page size)
DEFAULT_COUNT = 50
#: the order the ``_after`` token is written for: by the entry's place in the list, which
#: the token carries as the "id" column of a search's
_ORDER: tuple[()] = ()
#: the entry's elements that name a record, each a reference in the answer when it is one
_REFERENCE_KINDS = ("Patient/", "Organization/")


def identity_conflicts(
    repository: Repository, pairs: Sequence[tuple[str, str]], address: str, lenient: bool = False
) -> dict[str, Any]:
    """One page of the work list as a Parameters, for the request's parameters (``pairs``);
    ``address`` is the operation's URL, which the ``next`` part repeats with the request's
    parameters and the page's cursor.  A parameter the definition does not take is refused
    (ignored, and left out of the ``next`` part, when ``lenient``: ``Prefer: handling=lenient``),
    as is one it takes once given twice: taking either would list other entries than asked."""
    registry = repository.validator.registry
    inputs = defined_inputs(registry, registry.url("OperationDefinition", DEFINITION))
    pairs, _ = honoured_only(pairs, NAME, tuple(inputs.types), lenient)  # the next link repeats these
    args: dict[str, str] = {}
    for name, value in pairs:
        if name in args and name in inputs.single:
            raise FhirError(400, "http.repeated-parameter", name, name=name)
        args.setdefault(name, value)
    status = args.get("status", "open")
    if status not in STATUSES:
        raise unsupported_value("status", status, STATUSES)
    patient = _patient(args.get("patient"), repository.config.base_url)
    count = min(whole_number(args, "_count", DEFAULT_COUNT), repository.config.max_page_size)
    after = _after(args.get("_after"))
    with repository.store.reading() as tx:
        listed = tx.conflicts.page(status, patient, after, count)
    shown = listed[:count]
    parameters = [{"name": "conflict", "part": _parts(found)} for found in shown]
    if len(listed) > count and shown:
        kept = [(k, v) for k, v in pairs if k not in ("_count", "_after")]
        token = cursor.encode(_ORDER, [str(shown[-1].seq)])
        query = urlencode([*kept, ("_count", str(count)), ("_after", token)])
        parameters.append({"name": "next", "valueUri": f"{address}?{query}"})
    answer: dict[str, Any] = {"resourceType": "Parameters"}
    if parameters:  # FHIR JSON has no empty arrays
        answer["parameter"] = parameters
    return answer


def _patient(text: str | None, base_url: str) -> str | None:
    """``patient`` as ``Patient/id``: given so (relative, or on this server's base), or as the
    id alone, as a reference search parameter of one target type takes it (R4
    search.html#reference); anything else is a 400 at it."""
    if text is None:
        return None
    relative = text.removeprefix(f"{base_url}/")
    found = PATIENT.fullmatch(relative if "/" in relative else f"Patient/{relative}")
    if found is None:
        raise FhirError(400, "http.identity-conflicts-patient", "patient", reference=text)
    return found[0]


def _after(token: str | None) -> int:
    """The place in the list a page resumes past (0: from the start), from the ``_after``
    token a ``next`` part wrote; one it did not write is a 400 at the parameter."""
    if token is None:
        return 0
    values = cursor.decode(token, _ORDER)
    # a seq is a 64-bit integer: a longer run of digits (an id may have 64) overflowed the driver
    place = values[0] if values is not None and isinstance(values[0], str) else ""
    if not (ascii_digits(place) and len(place) < 19):
        example = cursor.encode(_ORDER, ["1"])
        raise FhirError(400, "http.not-a-page-cursor", "_after", name="_after", value=token, example=example)
    return int(place)


def _parts(found: ListedConflict) -> list[dict[str, Any]]:
    """One entry as the parts of its ``conflict`` parameter, in the definition's order."""
    entry = found.entry
    people = dict.fromkeys(
        value for value in (entry.get(k) for k in ("person", "kept", "offered")) if _names(value, ("Patient/",))
    )
    parts: list[dict[str, Any]] = [{"name": "element", "valueString": str(entry.get("element"))}]
    parts += [{"name": "patient", "valueReference": {"reference": person}} for person in people]
    if entry.get("organization"):
        parts.append({"name": "organization", "valueReference": {"reference": entry["organization"]}})
    if entry.get("identifier"):
        parts.append({"name": "identifier", "valueString": entry["identifier"]})
    parts += [_value("kept", entry.get("kept")), _value("offered", entry.get("offered"))]
    parts += _strings(entry, (("source", "valueCode"), ("file", "valueString"), ("location", "valueString")))
    if found.recorded is not None:
        parts.append({"name": "recorded", "valueInstant": found.recorded})
    resolved = entry.get("resolved")
    if isinstance(resolved, dict):
        parts.append({"name": "resolved", "valueInstant": resolved.get("at")})
        parts += [
            {"name": name, "valueReference": {"reference": resolved[name]}}
            for name in ("merged", "into")
            if resolved.get(name)
        ]
    return parts


def _names(value: Any, kinds: tuple[str, ...] = _REFERENCE_KINDS) -> bool:
    """Whether an entry's value is a reference to a record of one of ``kinds``."""
    return isinstance(value, str) and value.startswith(kinds)


def _value(name: str, value: Any) -> dict[str, Any]:
    """A kept or offered value: a record's reference as a Reference, text as a string, and a
    structured value (a HumanName list, an extension) as its JSON text, which no single FHIR
    type of a part holds."""
    if _names(value):
        return {"name": name, "valueReference": {"reference": value}}
    if isinstance(value, str):
        return {"name": name, "valueString": value}
    return {"name": name, "valueString": dumps(value, option=OPT_SORT_KEYS).decode()}


def _strings(entry: dict[str, Any], names: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The entry's text elements ``names`` lists, each as the part of that name and element."""
    return [{"name": name, element: str(entry[name])} for name, element in names if entry.get(name) is not None]
