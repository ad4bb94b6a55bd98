"""Setting values at FSH-style element paths: ``identifier[+].value``, ``name[=].given[0]``.

``[+]`` appends a new item, ``[=]`` reuses the item the previous ``[+]`` created at that
place, ``[n]`` addresses an index.  The concrete FHIRPath of what was set is returned, so the
engine can record where each value came from.
"""

from __future__ import annotations

import re
from typing import Any

_SEGMENT = re.compile(r"(?P<name>_?[A-Za-z][A-Za-z0-9]*)(?:\[(?P<index>\+|=|\d+)\])?")


class PathError(ValueError):
    """A mapping spec names a path this module cannot address; a spec bug, not a data problem."""


def parse(path: str) -> list[tuple[str, str | None]]:
    segments = []
    for part in path.split("."):
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise PathError(f"bad path segment {part!r} in {path!r}")
        segments.append((match["name"], match["index"]))
    return segments


def set_path(resource: dict[str, Any], segments: list[tuple[str, str | None]], value: Any) -> str:
    """Put ``value`` at the path; returns its FHIRPath (``identifier[1].value``)."""
    node: Any = resource
    written: list[str] = []
    for position, (name, index) in enumerate(segments):
        last = position == len(segments) - 1
        if index is None:
            written.append(name)
            if last:
                node[name] = value
            else:
                node = node.setdefault(name, {})
            continue
        items = node.setdefault(name, [])
        if index == "+":
            items.append(value if last else {})
            slot = len(items) - 1
        elif index == "=":
            if not items:
                raise PathError(f"[=] before any [+] at {name!r}")
            slot = len(items) - 1
            if last:
                items[slot] = value
        else:
            slot = int(index)
            while len(items) <= slot:
                items.append({})
            if last:
                items[slot] = value
        written.append(f"{name}[{slot}]")
        node = items[slot]
    return ".".join(written)
