"""The archive as NDJSON: one file per resource type, plus the quarantine and the conflicts.

The store is the archive; NDJSON is what it looks like from outside (``yiyang export``, the
``--out`` folder of ``yiyang ingest``, bulk export).  Each file is written beside its final
name and moved into place, owner-only, so a reader never sees half a file.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from gateway.storage.store import Store

QUARANTINE_FILE = "quarantine.ndjson"
#: quarantine entries a later record with the same source key resolved, kept for the audit
RESOLVED_FILE = "quarantine-resolved.ndjson"
CONFLICTS_FILE = "identity-conflicts.ndjson"
#: what was deleted since an incremental export's ``since`` (Bulk Data IG v2's ``deleted``):
#: transaction Bundles of DELETE entries, this many to a line
DELETED_FILE, DELETIONS_PER_BUNDLE = "Deleted.ndjson", 500


def export_folder(
    store: Store, out_dir: Path, kinds: list[str] | None = None, since: str | None = None, extras: bool = True
) -> dict[str, int]:
    """Write the current resources (of ``kinds``, changed after ``since``) and, with
    ``extras``, the quarantine and conflict report; returns the lines written per file.
    Afterwards the folder holds this export alone: an earlier export's files that this one
    did not write are removed (a Patient.ndjson left from a full export looked like the
    answer of an incremental one that found no Patient)."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    written: dict[str, int] = {}
    with store.reading() as tx:
        # the archive comes type by type, and each type's file is written as it comes: an
        # export never holds more than a batch of resources
        for kind, stored in groupby(tx.resources.current(kinds, since), key=attrgetter("type")):
            resources = (found.resource or {} for found in stored)
            written[f"{kind}.ndjson"] = _write_lines(out_dir / f"{kind}.ndjson", resources)
        if since is not None:  # an incremental copy must learn what it holds that is gone
            gone = (found.reference for found in tx.resources.deleted_since(kinds, since))
            if lines := _write_lines(out_dir / DELETED_FILE, deletion_bundles(gone)):
                written[DELETED_FILE] = lines
            else:
                (out_dir / DELETED_FILE).unlink()
        if extras:
            written[QUARANTINE_FILE] = _write_lines(out_dir / QUARANTINE_FILE, tx.quarantine.entries())
            written[RESOLVED_FILE] = _write_lines(out_dir / RESOLVED_FILE, tx.quarantine.resolved_entries())
            written[CONFLICTS_FILE] = _write_lines(out_dir / CONFLICTS_FILE, tx.conflicts.entries())
    for stale in out_dir.glob("*.ndjson"):
        if stale.name not in written and (
            _is_resource_file(stale) or stale.name in (QUARANTINE_FILE, RESOLVED_FILE, CONFLICTS_FILE)
        ):
            stale.unlink(missing_ok=True)  # another export may have removed it first
    return written


def deletion_bundles(references: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Deleted resources, by reference, as Bulk Data IG v2 lists them: transaction Bundles of
    DELETE entries, :data:`DELETIONS_PER_BUNDLE` to a Bundle."""
    references = iter(references)
    while chunk := list(itertools.islice(references, DELETIONS_PER_BUNDLE)):
        entries = [{"request": {"method": "DELETE", "url": reference}} for reference in chunk]
        yield {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _is_resource_file(path: Path) -> bool:
    """Resource files are named after their type; quarantine, conflicts … are not."""
    return path.stem.isalpha() and path.stem[0].isupper()


def resource_files(out_dir: Path) -> Iterator[Path]:
    return (path for path in sorted(out_dir.glob("*.ndjson")) if _is_resource_file(path))


def _write_lines(target: Path, documents: Iterable[dict[str, Any]]) -> int:
    """Written aside, then renamed over the target: a reader never sees half a file.  The
    staging name is the process's own, so two ingests finishing into one folder at once do not
    rename each other's file away."""
    staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    count = 0
    descriptor = os.open(staging, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        for document in documents:
            handle.write(orjson.dumps(document) + b"\n")
            count += 1
    staging.replace(target)
    return count
