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
* ``sliceParts``: for each sub-extension that is itself complex (a part of a part), the same
  ``slices``, ``sliceBindings`` and ``sliceParts`` of its own parts, at any depth, and for any
  sub-extension its cardinalities (below);
* ``modifier``: present (true) for a modifier extension;
* ``contextInvariants``: present when the definition has ``contextInvariant``;
* the cardinalities that constrain anything, of the extension and of each part in its
  ``sliceParts``: ``valueMin``, the minimum of ``value[x]`` when above 0 (a simple extension
  must have a value); ``extensionCount``, ``[min, max]`` of ``extension`` (``[0, 0]``: a
  simple extension has no parts); ``sliceCounts``, each part's ``[min, max]`` by its URL (a
  max of None is ``*``).  The maximum of ``value[x]`` is in ``types`` (none when prohibited).
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


def cardinality(element: dict[str, Any] | None) -> list[int | None] | None:
    """``[min, max]`` of an element (max None for ``*``) when it constrains anything: a minimum
    above 0 or a maximum; None otherwise, or when the element states neither.  What is not a
    valid ``min`` or ``max`` constrains nothing here (the profile compiler reports it)."""
    if element is None:
        return None
    minimum, maximum = element.get("min"), element.get("max")
    low = minimum if type(minimum) is int and minimum > 0 else 0
    high = (
        int(maximum)
        if isinstance(maximum, str) and maximum.isascii() and maximum.isdigit() and len(maximum) < 10
        else None
    )
    return [low, high] if low or high is not None else None


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
    entry.update(_parts(by_id))
    root = elements[0] if elements and isinstance(elements[0], dict) else {}
    if root.get("isModifier"):
        entry["modifier"] = True
    if sd.get("contextInvariant"):
        entry["contextInvariants"] = sd["contextInvariant"]
    return entry


def _counts(by_id: dict[str, Any], holder: str) -> dict[str, Any]:
    """``valueMin`` and ``extensionCount`` of the extension or part whose element id is
    ``holder``, each present when it constrains anything."""
    counts: dict[str, Any] = {}
    value = cardinality(by_id.get(f"{holder}.value[x]"))
    if value is not None and value[0]:
        counts["valueMin"] = value[0]
    if (parts := cardinality(by_id.get(f"{holder}.extension"))) is not None:
        counts["extensionCount"] = parts
    return counts


def _parts(by_id: dict[str, Any]) -> dict[str, Any]:
    """``slices``, ``sliceBindings``, ``sliceCounts``, ``sliceParts`` and the cardinalities of
    the extension, each present when not empty.  Parts are gathered in one pass and summarised
    deepest first (no recursion: an ``--ig`` definition may nest parts as deep as it likes)."""
    below: dict[str, list[tuple[str, str]]] = {}
    for element_id in by_id:
        # "<holder>.extension:name" with a fixed url: deeper ids belong to the part itself
        holder, _, last = element_id.rpartition(".")
        url = by_id.get(f"{element_id}.url", {}).get("fixedUri")
        if last.startswith("extension:") and isinstance(url, str):
            below.setdefault(holder, []).append((element_id, url))
    holders = {"Extension", *below, *(element_id for parts in below.values() for element_id, _ in parts)}
    summaries: dict[str, dict[str, Any]] = {}
    for holder in sorted(holders, key=lambda element_id: element_id.count("."), reverse=True):
        slices: dict[str, list[str] | None] = {}
        slice_bindings: dict[str, list[str]] = {}
        slice_counts: dict[str, list[int | None]] = {}
        slice_parts: dict[str, dict[str, Any]] = {}
        for element_id, url in below.get(holder, ()):
            value = by_id.get(f"{element_id}.value[x]")
            slices[url] = value_types(value)
            if (binding := value_binding(value)) is not None:
                slice_bindings[url] = binding
            if (counts := cardinality(by_id.get(element_id))) is not None:
                slice_counts[url] = counts
            if summaries.get(element_id):
                slice_parts[url] = summaries[element_id]
        found = {
            "slices": slices,
            "sliceBindings": slice_bindings,
            "sliceCounts": slice_counts,
            "sliceParts": slice_parts,
            **_counts(by_id, holder),
        }
        summaries[holder] = {key: value for key, value in found.items() if value}
    return summaries["Extension"]
