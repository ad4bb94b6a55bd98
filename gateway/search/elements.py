"""The element names ``_elements`` may give: a resource type's top-level elements by their JSON
names (``deceased[x]`` as ``deceasedBoolean`` and ``deceasedDateTime``), bare or qualified by
a type (``Patient.name``).  Checked where a search is parsed, applied where answers are shaped.

A bare name applies to the search's matches (and to what a read returns); a qualified one to
every resource of its type, matched or included, so ``_elements=subject,Patient.name`` cuts
Encounters to their subject and the Patients an ``_include`` adds to their names (as R5's
search page words it; R4 says nothing of included resources, which stay whole unless named).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from profiles.registry import r4_base_types


def json_names(name: str, spec: dict[str, Any]) -> list[str]:
    """The JSON names of an element: ``deceased[x]`` is deceasedBoolean, deceasedDateTime."""
    stem = name.removesuffix("[x]")
    if stem == name:
        return [name]
    return [stem + t["code"][:1].upper() + t["code"][1:] for t in spec.get("types", [])]


@cache
def element_names(kind: str) -> frozenset[str]:
    """Every top-level element of ``kind`` by JSON name (none for an unknown type)."""
    definition = r4_base_types().get(kind)
    children = definition["nodes"][kind] if definition else {}
    return frozenset(json_name for name, spec in children.items() for json_name in json_names(name, spec))


def unknown_element(searched: str, written: str) -> str | None:
    """Why an ``_elements`` name selects nothing (the type it names and its element), or None
    when it names an element of its type (``searched``'s, when it names none)."""
    kind, _, element = written.rpartition(".")
    return None if element in element_names(kind or searched) else f"{kind or searched}.{element}"


def wanted_of(kind: str, elements: list[str] | tuple[str, ...], matched: bool) -> list[str]:
    """The names that cut a resource of ``kind``: those qualified with its type, and the bare
    ones too when it is a match."""
    prefix = f"{kind}."
    qualified = [name[len(prefix) :] for name in elements if name.startswith(prefix)]
    return qualified + [name for name in elements if "." not in name] if matched else qualified
