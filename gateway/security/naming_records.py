"""Records naming records, as data: which reference search parameters of a type name other
records whose visibility a restricted client's view of it depends on
(``naming_records.json`` beside this module, :class:`~gateway.security.access.PersonalData`).

The rule is the gateway's own privacy policy, not a FHIR conformance resource, so it lives
with the other rules of who sees what rather than among the package's definitions; it is
checked against those definitions once, when the rule is built (a serving master builds it
before its workers fork): a misspelt type or parameter would otherwise silently protect
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
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


@cache
def _shipped() -> dict[str, dict[str, str]]:
    """The shipped rule's entries (type → parameter → why), read once per process."""
    return orjson.loads(PATH.read_bytes())["types"]


def naming_records(
    registry: Registry, entries: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Type → the reference parameters naming records, from ``entries`` (the shipped file's
    by default), each checked to be a resource type and a reference search parameter of it
    that ``registry`` defines (:class:`NamingRecordsError` otherwise)."""
    rule: dict[str, tuple[str, ...]] = {}
    for kind, parameters in (_shipped() if entries is None else entries).items():
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
        rule[kind] = tuple(parameters)
    return rule
