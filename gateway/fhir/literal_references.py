"""The literal ``Type/id`` references a resource makes: what ``$everything``, ``$document`` and
a Patient or Group export add beside a person's records (the organisation of a stay, the
practitioner of a contract), so that every reference a client receives resolves."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from gateway.security.access import Access
from gateway.storage.store import Stored, Transaction

#: a relative literal reference to the current version: ``Type/id``
LITERAL = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}")
#: targets read with one statement per type
BATCH = 500


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


def current_targets(
    tx: Transaction, access: Access, keys: Sequence[tuple[str, str]], since: str | None = None
) -> Iterator[Stored]:
    """The current resources of ``keys`` (type, id), in their order, that ``access`` lets the
    principal see, changed after ``since`` when given: read :data:`BATCH` keys at a time, one
    statement each, however many types they name."""
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        found = tx.resources.read_many(batch)
        targets = (found.get(key) for key in batch)
        yield from access.among_served(
            tx,
            [t for t in targets if t is not None and not t.deleted and (since is None or t.last_updated > since)],
        )
