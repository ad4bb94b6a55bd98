"""Size and shape limits checked before any recursive walk touches an instance.

The walks (structure, profiles, Bundle references, FHIRPath) recurse once per JSON level, so a
Bundle nested 198 deep or an extension nested 500 deep used to end in ``RecursionError`` — and
in NDJSON, every later line was lost with it.  One iterative pass here measures depth, counts
values, Bundle entries and contained resources, and refuses what is over a limit with a single
fatal issue located at the first offending element.  Only containers are pushed on the stack,
so the pass costs a few microseconds on an ordinary resource.
"""

from __future__ import annotations

from typing import Any

from conformance.issues import Issue
from conformance.limits import Limits


def preflight(document: Any, path: str, limits: Limits) -> tuple[Issue | None, int]:
    """The fatal issue refusing ``document`` (None when it is within every limit) and its size
    in JSON values, which scales the FHIRPath budget."""
    if type(document) is not dict and type(document) is not list:
        return None, 1
    max_depth, max_nodes = limits.max_depth, limits.max_nodes
    # (value, depth) of containers only; paths are built for the rare refusal alone (_locate)
    stack: list[tuple[Any, int]] = [(document, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            return Issue("fatal", "input.too-deep", _locate(document, path, max_depth), {"limit": max_depth}), nodes
        nodes += len(value)
        if type(value) is dict:
            if "entry" in value or "contained" in value:
                refused = _counts(value, path, limits)
                if refused is not None:
                    return refused, nodes
            children = value.values()
        else:
            children = value
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
        if nodes > max_nodes:
            return Issue("fatal", "input.too-many-nodes", path, {"limit": max_nodes}), nodes
    return None, nodes


def _counts(value: dict[str, Any], path: str, limits: Limits) -> Issue | None:
    entries = value.get("entry")
    if type(entries) is list and len(entries) > limits.max_bundle_entries and value.get("resourceType"):
        return Issue(
            "fatal", "input.too-many-entries", path, {"count": len(entries), "limit": limits.max_bundle_entries}
        )
    contained = value.get("contained")
    if type(contained) is list and len(contained) > limits.max_contained:
        return Issue(
            "fatal", "input.too-many-contained", path, {"count": len(contained), "limit": limits.max_contained}
        )
    return None


def _locate(document: Any, path: str, max_depth: int) -> str:
    """The FHIRPath-like location of the first value nested deeper than the limit."""
    stack: list[tuple[Any, int, str]] = [(document, 1, path or str(_type_of(document)))]
    while stack:
        value, depth, where = stack.pop()
        if depth > max_depth:
            return where
        children = value.items() if type(value) is dict else enumerate(value)
        for key, child in children:
            if type(child) is dict or type(child) is list:
                step = f"{where}.{key}" if type(value) is dict else f"{where}[{key}]"
                stack.append((child, depth + 1, step))
    return path


def _type_of(document: Any) -> str:
    rtype = document.get("resourceType") if isinstance(document, dict) else None
    return rtype if isinstance(rtype, str) else ""
