"""``export_folder``: the archive as NDJSON in a folder that then holds this export alone."""

from __future__ import annotations

from pathlib import Path

from gateway.export import QUARANTINE_FILE, export_folder
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
