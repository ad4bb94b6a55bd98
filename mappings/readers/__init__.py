"""Readers turn one legacy file into :class:`~mappings.records.SourceRecord` values, streaming.

Each reader knows one format (CSV, Excel, JSON, CDA XML, HL7 v2) and nothing about FHIR.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

from mappings.records import SourceRecord

#: file suffix → (module, function); modules are imported only when a file needs them
READERS = {
    ".csv": ("mappings.readers.csv_export", "read_csv"),
    ".xlsx": ("mappings.readers.xlsx_export", "read_xlsx"),
    ".json": ("mappings.readers.json_export", "read_json"),
    ".ndjson": ("mappings.readers.json_export", "read_json"),
    ".xml": ("mappings.readers.cda", "read_cda"),
    ".hl7": ("mappings.readers.hl7v2", "read_hl7"),
}


class ReaderError(ValueError):
    """The file as a whole cannot be read (wrong format, undecodable, unsafe XML …)."""


def read(path: Path, source: str) -> Iterator[SourceRecord]:
    found = READERS.get(path.suffix.lower())
    if found is None:
        raise ReaderError(f"{path.name}: no reader for {path.suffix or 'files without a suffix'}")
    module, function = found
    return getattr(importlib.import_module(module), function)(path, source)
