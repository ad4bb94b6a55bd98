"""Every shipped sample record as the shipped specs map it, for tests that hold all specs to a rule."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gateway.ingest import commands
from mappings.engine import Mapped
from mappings.readers import READERS, ReaderError, read
from mappings.specs import SOURCES
from profiles.registry import Registry

SAMPLES = Path(__file__).resolve().parents[1] / "mappings/samples"


def mapped_samples() -> Iterator[Mapped]:
    """The records a spec maps; records no spec matches and files refused whole (the XXE
    sample) are the ingest tests' business."""
    engine = commands.build_engine(Registry())
    for source in SOURCES:
        for path in sorted((SAMPLES / source).iterdir()):
            if path.suffix.lower() not in READERS:
                continue
            try:
                records = list(read(path, source))
            except ReaderError:
                continue
            for record in records:
                mapped = engine.map(record)
                if mapped:
                    yield mapped


def workbook(path: Path, rows: list[list[object]], merged: tuple[str, ...] = ()) -> Path:
    """An .xlsx of one sheet holding ``rows``, with the ``merged`` ranges (``"J5:J7"``)."""
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    for cells in merged:
        book.active.merge_cells(cells)
    book.save(path)
    return path
