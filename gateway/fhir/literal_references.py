"""The literal ``Type/id`` references a resource makes: what ``$everything``, ``$document`` and
a Patient or Group export add beside a person's records (the organisation of a stay, the
practitioner of a contract), so that every reference a client receives resolves."""

from __future__ import annotations

import re
from typing import Any

#: a relative literal reference to the current version: ``Type/id``
LITERAL = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}")


def literal_references(value: Any) -> list[str]:
    """Every literal ``Type/id`` reference in a resource, in document order (contained
    ``#id`` references and URLs elsewhere are not the archive's to include)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            reference = item.get("reference")
            if isinstance(reference, str) and LITERAL.fullmatch(reference):
                found.append(reference)
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found
