"""What an operation takes, read from its OperationDefinition: which parameters, the element of
a ``Parameters`` part carrying each (``valueInstant``, or ``resource`` for a resource), which
are given once at most, which are required (``min`` 1) and the codes a bound one takes; and
which it names only to refuse (``max`` 0: a parameter of
the base specification the gateway does not serve, and will not ignore either).  The
definitions are data (the Bulk Data IG's kick-offs in ``profiles/bulkdata``, ``Patient/$merge``
and ``Measure/$evaluate-measure`` in the provincial package), so a parameter an operation
takes is stated once, where a client reads it too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from profiles.registry import Registry, r4_resource_types


@dataclass(frozen=True)
class OperationInputs:
    """The ``in`` parameters of one or more operations (the first definition naming one answers)."""

    #: the element of a part carrying each parameter's value
    elements: Mapping[str, str]
    #: each parameter's FHIR type (``instant``, ``Reference``, ``Patient``)
    types: Mapping[str, str]
    #: the parameters given once at most (``max`` 1)
    single: frozenset[str]
    #: the parameters every call gives (``min`` 1), in the definition's order
    required: tuple[str, ...]
    #: the codes a parameter bound to a value set takes (its ``binding``), in the value set's order
    codes: Mapping[str, tuple[str, ...]]
    #: the parameters named with ``max`` 0, in the definition's order: none of the above, and
    #: refused rather than ignored, whatever the handling, since ignoring one would answer
    #: another question than asked (``$evaluate-measure``'s ``patient``)
    refused: tuple[str, ...]


def operation_inputs(definitions: Iterable[Mapping[str, Any]]) -> OperationInputs:
    elements: dict[str, str] = {}
    types: dict[str, str] = {}
    single: set[str] = set()
    required: list[str] = []
    codes: dict[str, tuple[str, ...]] = {}
    refused: list[str] = []
    for definition in definitions:
        for parameter in definition.get("parameter", []):
            name, kind = parameter["name"], parameter.get("type")
            if parameter["use"] != "in" or name in types or name in refused or not isinstance(kind, str):
                continue
            if parameter["max"] == "0":
                refused.append(name)
                continue
            types[name] = kind
            elements[name] = value_element(kind)
            if parameter["max"] == "1":
                single.add(name)
            if parameter["min"] >= 1:
                required.append(name)
            if "binding" in parameter:
                codes[name] = bound_codes(definition, parameter["binding"]["valueSet"])
    return OperationInputs(
        MappingProxyType(elements),
        MappingProxyType(types),
        frozenset(single),
        tuple(required),
        MappingProxyType(codes),
        tuple(refused),
    )


def bound_codes(definition: Mapping[str, Any], value_set: str) -> tuple[str, ...]:
    """The codes of the value set a parameter is bound to: one the definition contains
    (``#id``) and lists in its expansion, since the few codes an operation takes here are the
    gateway's choice, stated with the operation rather than as a package-wide value set."""
    for contained in definition.get("contained", []):
        if value_set == f"#{contained['id']}" and contained["resourceType"] == "ValueSet":
            return tuple(entry["code"] for entry in contained["expansion"]["contains"])
    raise LookupError(f"{definition.get('url')} contains no value set {value_set}")


def defined_inputs(registry: Registry, url: str) -> OperationInputs:
    """The ``in`` parameters of the operation ``registry`` defines at ``url``.  A built-in
    definition missing is the gateway's fault (a broken install), not the client's."""
    definition = registry.get(url)
    if definition is None:
        raise LookupError(f"the registry holds no {url}")
    return operation_inputs([definition])


def value_element(kind: str) -> str:
    """The element of a Parameters part holding a value of ``kind``."""
    if kind == "Resource" or kind in r4_resource_types():
        return "resource"
    return f"value{kind[0].upper()}{kind[1:]}"
