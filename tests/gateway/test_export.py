"""``export_folder``: the archive as NDJSON in a folder that then holds this export alone."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.export import DELETED_FILE, QUARANTINE_FILE, export_folder
from gateway.storage.store import Store


def basic(resource_id: str) -> dict[str, str | dict[str, str]]:
    return {"resourceType": "Basic", "id": resource_id, "code": {"text": resource_id}}


def test_a_later_export_finding_nothing_leaves_no_earlier_file_behind(store: Store, tmp_path: Path) -> None:
    """A Basic.ndjson left from the full export looked like the incremental one's answer."""
    with store.transaction() as tx:
        tx.resources.write(basic("b1"))
    export_folder(store, tmp_path)
    written = export_folder(store, tmp_path, ["Basic"], since="9999-01-01T00:00:00.000000Z", extras=False)
    assert (written, sorted(path.name for path in tmp_path.glob("*.ndjson"))) == ({}, [])


def test_an_export_keeps_files_that_are_not_exports(store: Store, tmp_path: Path) -> None:
    (tmp_path / "notes.ndjson").write_text("{}\n", encoding="utf-8")
    export_folder(store, tmp_path, extras=False)
    assert sorted(path.name for path in tmp_path.glob("*.ndjson")) == ["notes.ndjson"]


def test_a_full_export_writes_the_quarantine_beside_the_resources(store: Store, tmp_path: Path) -> None:
    with store.transaction() as tx:
        tx.resources.write(basic("b2"))
    assert set(export_folder(store, tmp_path)) >= {"Basic.ndjson", QUARANTINE_FILE}


def test_an_incremental_export_lists_what_was_deleted_since(store: Store, tmp_path: Path) -> None:
    """Only the changed resources were written: a copy kept in step with --since kept what the
    archive had deleted, where $export?_since lists it (Bulk Data IG v2, ``deleted``)."""
    with store.transaction() as tx:
        tx.resources.write(basic("kept"))
        tx.resources.write(basic("gone"))
        since = tx.resources.read("Basic", "gone").last_updated
    with store.transaction() as tx:
        tx.resources.delete("Basic", "gone")
    export_folder(store, tmp_path, since=since, extras=False)
    bundles = [json.loads(line) for line in (tmp_path / DELETED_FILE).read_text(encoding="utf-8").splitlines()]
    assert [entry["request"] for bundle in bundles for entry in bundle["entry"]] == [
        {"method": "DELETE", "url": "Basic/gone"}
    ]
