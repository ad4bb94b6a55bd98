"""What an operation takes, read from its OperationDefinition: which parameters, the element of
a ``Parameters`` part carrying each (``valueInstant``, or ``resource`` for a resource), and
which are given once at most.  The definitions are data (the Bulk Data IG's kick-offs in
``profiles/bulkdata``, ``Patient/$merge`` in the provincial package), so a parameter an
operation takes is stated once, where a client reads it too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from profiles.registry import r4_resource_types


@dataclass(frozen=True)
class OperationInputs:
    """The ``in`` parameters of one or more operations (the first definition naming one answers)."""

    #: the element of a part carrying each parameter's value
    elements: Mapping[str, str]
    #: each parameter's FHIR type (``instant``, ``Reference``, ``Patient``)
    types: Mapping[str, str]
    #: the parameters given once at most (``max`` 1)
    single: frozenset[str]


def operation_inputs(definitions: Iterable[Mapping[str, Any]]) -> OperationInputs:
    elements: dict[str, str] = {}
    types: dict[str, str] = {}
    single: set[str] = set()
    for definition in definitions:
        for parameter in definition.get("parameter", []):
            name, kind = parameter["name"], parameter.get("type")
            if parameter["use"] != "in" or name in types or not isinstance(kind, str):
                continue
            types[name] = kind
            elements[name] = value_element(kind)
            if parameter["max"] == "1":
                single.add(name)
    return OperationInputs(MappingProxyType(elements), MappingProxyType(types), frozenset(single))


def value_element(kind: str) -> str:
    """The element of a Parameters part holding a value of ``kind``."""
    if kind == "Resource" or kind in r4_resource_types():
        return "resource"
    return f"value{kind[0].upper()}{kind[1:]}"
