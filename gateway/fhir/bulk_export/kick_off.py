"""The checks of a kick-off's parameters that need no job: ``_type``, ``_since``,
``_outputFormat``, ``patient`` and where each was given."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from gateway.fhir.bulk_export.people import (
    _members,
)
from gateway.fhir.errors import FhirError, not_found
from gateway.fhir.export_parameters import kick_off_parts
from gateway.fhir.parameters import instant, listed_types, unsupported_parameter
from gateway.fhir.repository import ID
from gateway.search.query import IGNORED_CONTROLS
from gateway.security.access import Access
from gateway.storage.store import Transaction

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
#: what a ``patient`` parameter names: a Patient by a relative reference
PATIENT_REFERENCE = re.compile(rf"Patient/({ID.pattern})")


def _parameters(
    parameters: Sequence[tuple[str, str]], lenient: bool, where: Sequence[str] | None = None
) -> tuple[list[str] | None, str | None, list[FhirError]]:
    """``_type`` (comma lists, repeatable) and ``_since`` of a kick-off; ``_outputFormat``
    must be NDJSON.  The parameters the IG's operations take (:func:`kick_off_parts`) are
    those honoured; besides them, a kick-off may carry the controls every answer takes (R4
    http.html: ``_format``, the format of its errors, and ``_pretty``).  Those of one value
    (``_since``, ``_outputFormat``) are refused given twice: of two ``_since``, taking either
    would silently drop the other, and the later one loses the changes in between.  Any other
    parameter is refused as every endpoint refuses one, unless ``lenient``: then it is ignored,
    and its refusal returned for the manifest to report.  A refusal names where the parameter
    was given (``where``, by default its name)."""
    honoured = kick_off_parts()
    types: list[str] = []
    since = None
    given: set[str] = set()
    ignored: list[FhirError] = []
    for (name, value), at in zip(parameters, where if where is not None else _names(parameters), strict=True):
        if name not in honoured.types and name not in IGNORED_CONTROLS:
            refused = unsupported_parameter(name, "$export", honoured.types, at)
            if not lenient:
                raise refused
            ignored.append(refused)
            continue
        if name in honoured.single:
            if name in given:
                raise FhirError(400, "http.repeated-parameter", at, name=name)
            given.add(name)
        if name == "_type":
            types += [kind for kind in listed_types(value) if kind not in types]
        elif name == "_since":
            since = instant({name: value}, name, at)
        elif name == "_outputFormat":
            if value.replace(" ", "+") not in OUTPUT_FORMATS:  # an unescaped "+" reads as a space
                raise FhirError(400, "http.export-output-format", at, format=value)
    return types or None, since, ignored


def _names(parameters: Sequence[tuple[str, str]]) -> list[str]:
    """Where a query string's parameters were given: at their names."""
    return [name for name, _ in parameters]


@contextmanager
def _located(where: str) -> Iterator[None]:
    """Refusals of one given parameter's value name ``where`` it was given: the checks that
    raise them (a ``_typeFilter`` search's, an ``_elements`` name's) know only its name."""
    try:
        yield
    except FhirError as refused:
        refused.expression = where
        raise


def _patient_id(reference: str, scope: str) -> str:
    """The id a ``patient`` parameter names: a Patient by a relative reference (one on this
    server's base arrives relative), for a Patient or Group export alone."""
    if scope == "system":
        raise FhirError(400, "http.export-patient-system")
    found = PATIENT_REFERENCE.fullmatch(reference)
    if found is None:
        raise FhirError(400, "http.export-patient-reference", value=reference)
    return found.group(1)


def _check_visible(tx: Transaction, kind: str, resource_id: str, access: Access, where: str | None = None) -> None:
    """The Group, or a Patient named by ``patient``, exists and the principal may see it: a
    hidden one is absent (404), as on read, so that an elderly-care client cannot tell
    someone it does not serve from no one."""
    found = tx.resources.read(kind, resource_id)
    if found is None or access.hides(tx, found):
        raise not_found(kind, resource_id, where)
    if found.deleted:
        raise FhirError(410, "http.gone", where, reference=found.reference, when=found.last_updated)


def _check_members(tx: Transaction, scope: str, patients: dict[str, str]) -> None:
    """Each Patient ``patient`` names (by where it was named) is one of the Group's active
    members: one who is not SHOULD be answered with an error (IG v2).  Left out in silence, a
    resident who had left the home, or was marked inactive, came back as an empty export, as
    if the archive held nothing of them.  Asked before whether the Patient exists, and
    answered alike whether it does: the client reads the Group's members, not the archive."""
    if not patients:
        return
    members = set(_members(tx, scope))
    for patient_id, at in patients.items():
        if patient_id not in members:
            raise FhirError(400, "http.export-patient-not-member", at, reference=f"Patient/{patient_id}", group=scope)
