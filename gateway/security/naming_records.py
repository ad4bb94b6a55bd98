"""Records naming records, as data: which reference search parameters of a type name other
records whose visibility a restricted client's view of it depends on, and which of them
place it among their people's records (``naming_records.json`` beside this module,
:class:`~gateway.security.access.PersonalData`).

The rule is the gateway's own privacy policy, not a FHIR conformance resource, so it lives
with the other rules of who sees what rather than among the package's definitions; it is
checked against those definitions once, when the rule is built (a serving master builds it
before its workers fork): a misspelt type or parameter would otherwise silently protect
nothing, and a placing parameter whose records are not judged would show a record placed by
a stranger's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from gateway.messages import Worded
from profiles.registry import Registry

PATH = Path(__file__).parent / "naming_records.json"


class NamingRecordsError(Worded, ValueError):
    """An entry of the rule the definitions do not support, naming the file, the type and the
    parameter: the gateway does not start with a privacy rule that would protect nothing."""


@dataclass(frozen=True)
class NamingRecords:
    """The rule, checked: ``through``, type → the reference parameters naming records whose
    visibility a record's depends on; ``placing``, type → those of them through which the
    records it names place it among their people's records when it names none of them (a
    Provenance of a resident's reading alone is hers, as one naming her is)."""

    through: dict[str, tuple[str, ...]]
    placing: dict[str, tuple[str, ...]]


@cache
def _shipped() -> dict[str, Any]:
    """The shipped rule's content (its ``types`` and ``placing`` entries: type → parameter →
    why), read once per process."""
    return orjson.loads(PATH.read_bytes())


def naming_records(registry: Registry, document: Mapping[str, Any] | None = None) -> NamingRecords:
    """The rule from ``document`` (the shipped file's content by default: its ``types`` and,
    if any, its ``placing``), each entry checked to be a resource type and a reference search
    parameter of it that ``registry`` defines, and each placing one to be listed under
    ``types`` for its type: the records that place a resource must be judged, or one naming
    a stranger's record alone would be shown; and each placing type to be in the Patient
    compartment, as placing is an alternative to being in it, which a type outside it never
    is (:class:`NamingRecordsError` otherwise)."""
    document = _shipped() if document is None else document
    through: dict[str, tuple[str, ...]] = {}
    for kind, parameters in document["types"].items():
        if registry.base_types.get(kind, {}).get("kind") != "resource":
            raise NamingRecordsError("access.naming-records-unknown-type", file=PATH.name, type=kind)
        defined = registry.search_parameters(kind)
        for code in parameters:
            if code not in defined:
                raise NamingRecordsError(
                    "access.naming-records-unknown-parameter", file=PATH.name, type=kind, parameter=code
                )
            if defined[code]["type"] != "reference":
                raise NamingRecordsError(
                    "access.naming-records-not-reference",
                    file=PATH.name,
                    type=kind,
                    parameter=code,
                    kind=defined[code]["type"],
                )
        through[kind] = tuple(parameters)
    placed: dict[str, tuple[str, ...]] = {}
    for kind, parameters in document.get("placing", {}).items():
        for code in parameters:
            if code not in through.get(kind, ()):
                raise NamingRecordsError(
                    "access.naming-records-placing-unjudged", file=PATH.name, type=kind, parameter=code
                )
        if kind not in registry.patient_compartment:
            raise NamingRecordsError("access.naming-records-placing-no-compartment", file=PATH.name, type=kind)
        placed[kind] = tuple(parameters)
    return NamingRecords(through, placed)
