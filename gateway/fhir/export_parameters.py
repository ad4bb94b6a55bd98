"""The parameters of a bulk export kick-off sent by POST (Bulk Data Access IG v2): a Parameters
body, read into the same (name, value) pairs a GET's query string gives, so that one set of
checks (:meth:`gateway.fhir.bulk_export.BulkExports.kick_off`) judges both forms.  Each pair
comes with where the body holds it, so that a refusal of a body's part names its FHIRPath
location (``Parameters.parameter[2].valueReference``) rather than a query parameter the client
never wrote.

Each part must carry the ``value[x]`` the IG's OperationDefinitions give it: a ``_since`` sent
as ``valueString``, or a ``patient`` as ``valueString``, is a client's mistake (400), not a
value the server guesses the meaning of.  Those definitions are data (``profiles/bulkdata``,
as the gateway implements them), read from the registry and compiled once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from gateway.fhir.errors import FhirError
from gateway.fhir.operation_inputs import OperationInputs, operation_inputs
from gateway.fhir.parameters import unsupported_parameter
from profiles.registry import bulk_data_operation

#: the IG's kick-off operations: system, Patient and Group level
BULK_DATA = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition"
EXPORT_OPERATIONS = tuple(f"{BULK_DATA}/{code}" for code in ("export", "patient-export", "group-export"))


@cache
def kick_off_parts() -> OperationInputs:
    """The ``in`` parameters of the three operations.  A part of a name none of them takes is
    unknown, whichever operation is kicked off (``patient`` at system level is then refused
    by the export's own rule, which says why).  The definitions are built in and answer
    before any ``--ig`` source, so every registry reads them alike and one reading serves
    the process."""
    definitions = [bulk_data_operation(url) for url in EXPORT_OPERATIONS]
    if any(definition is None for definition in definitions):
        raise LookupError(f"the registry holds not all of {EXPORT_OPERATIONS}")
    return operation_inputs(definition for definition in definitions if definition is not None)


@dataclass(frozen=True)
class KickOffArguments:
    """The kick-off's (name, value) pairs in the order given, and where each was given: its
    name in a query string, its ``value[x]`` in a Parameters body."""

    pairs: list[tuple[str, str]]
    where: list[str]

    @classmethod
    def of_query(cls, pairs: Sequence[tuple[str, str]]) -> KickOffArguments:
        return cls(list(pairs), [name for name, _ in pairs])


def body_arguments(document: Any, lenient: bool = False) -> KickOffArguments:
    """The arguments a Parameters body carries.  A part of a name the kick-off does not take
    is refused, as in a query string, unless ``lenient`` (``Prefer: handling=lenient``): then
    it is passed on without a value, located at its name, for the kick-off to ignore."""
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        found = document.get("resourceType") if isinstance(document, dict) else None
        raise FhirError(400, "http.wrong-type", "resourceType", found=found, expected="Parameters")
    parts = document.get("parameter", [])
    if not isinstance(parts, list):
        raise FhirError(400, "http.parameters-not-a-list", "Parameters.parameter")
    pairs: list[tuple[str, str]] = []
    where: list[str] = []
    for index, part in enumerate(parts):
        at = f"Parameters.parameter[{index}]"
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(name, str):
            raise FhirError(400, "http.parameter-needs-one-value", at)
        types = kick_off_parts().elements
        if name not in types:
            if not lenient:
                raise unsupported_parameter(name, "$export", types, f"{at}.name")
            # kept, valueless, for the kick-off to ignore and the manifest to report
            pairs.append((name, ""))
            where.append(f"{at}.name")
            continue
        expected = types[name]
        pairs.append((name, _value(part, name, expected, at)))
        where.append(f"{at}.{expected}")
    return KickOffArguments(pairs, where)


def _value(part: dict[str, Any], name: str, expected: str, at: str) -> str:
    """The part's one value, of the type ``expected``; a reference as its ``reference``."""
    given = [key for key in part if key.startswith("value") or key in ("resource", "part")]
    value = part.get(expected)
    if expected == "valueReference" and isinstance(value, dict):
        value = value.get("reference")
    if given != [expected] or not isinstance(value, str) or not value:
        found = given[0] if len(given) == 1 else None
        wrote = ", ".join(given) or "-"
        raise FhirError(
            400, "http.export-part-type", f"{at}.{found}" if found else at, name=name, expected=expected, found=wrote
        )
    return value
