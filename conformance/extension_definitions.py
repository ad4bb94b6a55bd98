"""What checking an extension by its URL needs of the extension's definition.

One summary for both sources of definitions: ``tools/derive_core_extensions.py`` runs it over
the official R4 core definitions' snapshots (``profiles/base/r4-extensions.json``), and the
extension check runs it over the registry's own (the provincial package, ``--ig``), which are
usually differentials.  Per definition:

* ``contexts``: ``StructureDefinition.context`` as ``[type, expression]``;
* ``types``: the ``value[x]`` types allowed — empty when ``value[x]`` is prohibited (a complex
  extension), None when the definition does not constrain it;
* ``slices``: for a complex extension, each sub-extension URL (relative, as the definition fixes
  it) → its value types, in the same form;
* ``binding``: present when ``value[x]`` is bound required or extensible, as ``[strength,
  value set]``; ``sliceBindings``: the same for each bound sub-extension's value, by its URL
  (the weaker strengths judge nothing, so they are left out);
* ``modifier``: present (true) for a modifier extension;
* ``contextInvariants``: present when the definition has ``contextInvariant``.
"""

from __future__ import annotations

from typing import Any


def value_types(element: dict[str, Any] | None) -> list[str] | None:
    """The types a ``value[x]`` element allows: none when prohibited (max 0), None when the
    definition leaves it as the base Extension has it."""
    if element is None:
        return None
    if element.get("max") == "0":
        return []
    types = element.get("type")
    if not isinstance(types, list) or not types:
        return None
    return sorted(t["code"] for t in types if isinstance(t, dict) and isinstance(t.get("code"), str))


def value_binding(element: dict[str, Any] | None) -> list[str] | None:
    """``[strength, value set]`` of a ``value[x]`` element bound required or extensible."""
    binding = element.get("binding") if element is not None else None
    if not isinstance(binding, dict) or binding.get("strength") not in ("required", "extensible"):
        return None
    value_set = binding.get("valueSet")
    return [binding["strength"], value_set] if isinstance(value_set, str) and value_set else None


def summarise(sd: dict[str, Any], elements: list[Any]) -> dict[str, Any]:
    """The summary of an Extension definition from its snapshot or differential ``elements``."""
    by_id = {e["id"]: e for e in elements if isinstance(e, dict) and isinstance(e.get("id"), str)}
    contexts = sd.get("context")
    entry: dict[str, Any] = {
        "contexts": [
            [c["type"], c["expression"]]
            for c in (contexts if isinstance(contexts, list) else [])
            if isinstance(c, dict) and isinstance(c.get("type"), str) and isinstance(c.get("expression"), str)
        ],
        "types": value_types(by_id.get("Extension.value[x]")),
    }
    if (binding := value_binding(by_id.get("Extension.value[x]"))) is not None:
        entry["binding"] = binding
    slices: dict[str, list[str] | None] = {}
    slice_bindings: dict[str, list[str]] = {}
    for element_id in by_id:
        # "Extension.extension:name" only: deeper ids belong to the slice or to nested slices
        if element_id.startswith("Extension.extension:") and element_id.count(".") == 1:
            url = by_id.get(f"{element_id}.url", {}).get("fixedUri")
            if isinstance(url, str):
                slices[url] = value_types(by_id.get(f"{element_id}.value[x]"))
                if (binding := value_binding(by_id.get(f"{element_id}.value[x]"))) is not None:
                    slice_bindings[url] = binding
    if slices:
        entry["slices"] = slices
    if slice_bindings:
        entry["sliceBindings"] = slice_bindings
    root = elements[0] if elements and isinstance(elements[0], dict) else {}
    if root.get("isModifier"):
        entry["modifier"] = True
    if sd.get("contextInvariant"):
        entry["contextInvariants"] = sd["contextInvariant"]
    return entry
