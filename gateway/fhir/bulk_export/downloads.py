"""A finished file as a client fetches it: a restricted client's lines judged again."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from gateway.security.access import Access, PersonalData, Reader, current_content
from gateway.storage.store import Store, Stored

#: lines checked per reading transaction while a restricted client's file streams
_CHECKED_AT_ONCE = 500


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def _visible_lines(store: Store, path: Path, rules: Access) -> Iterator[bytes]:
    """Each line whose resource the client may see now and whose own content concerns only
    people it serves (judged as a version is, so a record since moved to a resident does not
    carry its earlier owner's data out; a line of the current version by that version whole,
    since ``_elements`` may have cut the line's references out).  Whom it serves is read once per file; the current
    versions once per :data:`_CHECKED_AT_ONCE` lines, a statement per type (a statement per
    line before: a file of 100,000 readings was 100,000 statements)."""
    with store.reading() as tx:
        people = rules.served_people(tx)
    serves = people.__contains__
    with path.open("rb") as handle:
        while batch := list(itertools.islice(handle, _CHECKED_AT_ONCE)):
            judged = [(line, orjson.loads(line)) for line in batch]
            with store.reading() as tx:
                current = tx.resources.read_many([(found["resourceType"], found["id"]) for _, found in judged])
                holder, read = rules.holder(tx), current_content(tx)
                kept = [
                    line
                    for line, found in judged
                    if _still_visible(
                        rules.personal, serves, holder, read, now := current.get((found["resourceType"], found["id"]))
                    )
                    and (_same_version(found, now) or rules.personal.concerns_only(found, serves, holder, read))
                ]
            yield from kept


def _same_version(line: dict[str, Any], current: Stored | None) -> bool:
    """Whether a line is of the current version, which :func:`_still_visible` has judged whole:
    a line cut by ``_elements`` may have lost the references that say whose it is (a reading
    cut to its ``code`` names no one, and was dropped from its own resident's file)."""
    meta = line.get("meta")
    return current is not None and isinstance(meta, dict) and meta.get("versionId") == str(current.version)


def _still_visible(
    personal: PersonalData,
    serves: Callable[[str], bool],
    holder: Callable[[str], str | None],
    read: Reader,
    current: Stored | None,
) -> bool:
    """The rule of a vread, of a version that concerns only people the client serves: the
    resource is visible now, judged by the current version's content against the people read
    once per file (its content is what its index rows, and so the SQL rule, are made of)."""
    return (
        current is not None
        and current.resource is not None
        and personal.concerns_only(current.resource, serves, holder, read)
    )
