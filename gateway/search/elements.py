"""The element names ``_elements`` may give: a resource type's top-level elements by their JSON
names (``deceased[x]`` as ``deceasedBoolean`` and ``deceasedDateTime``) or, for a choice
element, by its base name (``deceased``: whichever of its types the resource has; R4 asks for
"base element names", and a client cannot know which type each match carries), bare or
qualified by a type (``Patient.name``).  Checked where a search is parsed, applied where
answers are shaped.

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
def element_names(kind: str) -> dict[str, tuple[str, ...]]:
    """Every name ``_elements`` may give for a top-level element of ``kind`` (none for an
    unknown type), with the JSON names it selects: a JSON name itself, a choice element's
    base name each of its types' names."""
    definition = r4_base_types().get(kind)
    children = definition["nodes"][kind] if definition else {}
    names: dict[str, tuple[str, ...]] = {}
    for name, spec in children.items():
        written = tuple(json_names(name, spec))
        names.update((json_name, (json_name,)) for json_name in written)
        if name.endswith("[x]"):
            names[name.removesuffix("[x]")] = written
    return names


def unknown_element(searched: str, written: str) -> str | None:
    """Why an ``_elements`` name selects nothing (the type it names and its element), or None
    when it names an element of its type (``searched``'s, when it names none)."""
    kind, _, element = written.rpartition(".")
    return None if element in element_names(kind or searched) else f"{kind or searched}.{element}"


def wanted_of(kind: str, elements: list[str] | tuple[str, ...], matched: bool) -> list[str]:
    """The JSON names that cut a resource of ``kind``: those qualified with its type, and the
    bare ones too when it is a match."""
    prefix = f"{kind}."
    qualified = [name[len(prefix) :] for name in elements if name.startswith(prefix)]
    named = qualified + [name for name in elements if "." not in name] if matched else qualified
    selects = element_names(kind)
    return [json_name for name in named for json_name in selects.get(name, (name,))]
