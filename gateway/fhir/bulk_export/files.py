"""The NDJSON files a job writes, each resource once, and the deletions file."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.export import DELETED_FILE, deletion_bundles
from gateway.storage.store import Stored

FILE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}\.ndjson")
#: the file of an incremental export's deletions (no resource type is called so), and how
#: many DELETE entries each of its Bundles holds
DELETED = "Deleted"


@dataclass
class _NdjsonFiles:
    """One owner-only NDJSON file per type, opened when its first resource arrives; each
    resource written once (a resource in two residents' compartments appears once)."""

    folder: Path
    #: whether a written resource's key is kept (``seen``): one the job may meet again or
    #: asks about afterwards (:func:`.writing._remembers`), not each of millions
    remembers: Callable[[Stored], bool]
    handles: dict[str, IO[bytes]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    #: the Bundles (lines) of the deletions file: the manifest's ``count`` is the resources a
    #: file holds (IG v2), and each of its resources is one Bundle of up to 500 deletions
    deletions: int = 0

    def __enter__(self) -> _NdjsonFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles.values():
            handle.close()

    def add(self, stored: Stored, resource: dict[str, Any]) -> bool:
        """Write ``resource`` (the stored one, or cut by ``_elements``) unless already written."""
        if (stored.type, stored.id) in self.seen:
            return False
        if self.remembers(stored):
            self.seen.add((stored.type, stored.id))
        handle = self.handles.get(stored.type)
        if handle is None:
            path = self.folder / f"{stored.type}.ndjson"
            descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            handle = self.handles[stored.type] = os.fdopen(descriptor, "wb")
        handle.write(orjson.dumps(resource) + b"\n")
        self.counts[stored.type] = self.counts.get(stored.type, 0) + 1
        return True

    def add_deletions(self, references: Iterable[str]) -> None:
        """The deletions file (the IG's ``deleted`` output, :func:`deletion_bundles`)."""
        for bundle in deletion_bundles(references):
            handle = self.handles.get(DELETED)
            if handle is None:
                descriptor = os.open(self.folder / DELETED_FILE, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
                handle = self.handles[DELETED] = os.fdopen(descriptor, "wb")
            handle.write(orjson.dumps(bundle) + b"\n")
            self.deletions += 1

    def output(self) -> list[dict[str, Any]]:
        for handle in self.handles.values():
            handle.flush()
            os.fsync(handle.fileno())
        files = [
            {"type": kind, "file": f"{kind}.ndjson", "count": count} for kind, count in sorted(self.counts.items())
        ]
        if self.deletions:
            files.append({"type": "Bundle", "file": DELETED_FILE, "count": self.deletions, "deleted": True})
        return files
