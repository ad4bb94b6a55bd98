"""``yiyang demo --database X --out D`` exports the archive to ``D/demo`` once, when every
sample source is in: each source's ingest exported the whole archive again (four times)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from gateway import export
from gateway.cli import main
from gateway.export import resource_files
from gateway.storage import sqlite_url


@pytest.fixture(scope="module")
def demo_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter[str]]:
    """The demo run into a database and a folder: the folder, and how many times each file
    of it was written."""
    folder = tmp_path_factory.mktemp("demo")
    written: Counter[str] = Counter()
    write_lines = export._write_lines

    def counted(target: Path, documents: Iterable[dict[str, Any]]) -> int:
        written[target.name] += 1
        return write_lines(target, documents)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "_write_lines", counted)
        database = sqlite_url(folder / "archive.sqlite")
        assert main(["demo", "--lang", "en", "--database", database, "--out", str(folder / "out")]) == 0
    return folder / "out" / "demo", written


def test_the_demo_writes_its_export_once(demo_export: tuple[Path, Counter[str]]) -> None:
    _, written = demo_export
    assert (written["Patient.ndjson"], set(written.values())) == (1, {1})


def test_the_demo_export_holds_each_resource_once(demo_export: tuple[Path, Counter[str]]) -> None:
    folder, _ = demo_export
    references = Counter(
        f"{resource['resourceType']}/{resource['id']}"
        for path in resource_files(folder)
        for resource in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    )
    assert (len(references) > 0, [reference for reference, count in references.items() if count > 1]) == (True, [])
