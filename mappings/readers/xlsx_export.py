"""Excel (.xlsx) exports, read with openpyxl in read-only mode (streaming, no formulas run).

Cells keep their Excel types: a date cell arrives as a datetime, a long number that Excel
turned into a float arrives as a float — which the normalisers refuse for identifiers.  An
.xlsx row has no bytes of its own, so the record's raw form is the row's cell values as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from mappings.readers import ReaderError
from mappings.records import SourceRecord


def _json(value: Any) -> Any:
    """A cell value as JSON for the raw form: date, time and duration cells as text."""
    if isinstance(value, (date, datetime, time)):
        return value.isoformat()
    return str(value) if isinstance(value, timedelta) else value


def read_xlsx(path: Path, source: str) -> Iterator[SourceRecord]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for damaged files
        raise ReaderError(f"{path.name}: not a readable .xlsx ({type(exc).__name__})") from exc
    try:
        for sheet in workbook.worksheets:
            rows = sheet.iter_rows(values_only=True)
            header_row = next(rows, None)
            if header_row is None:
                continue
            header = [str(h).strip() if h is not None else f"列{i + 1}" for i, h in enumerate(header_row)]
            shape = frozenset(header)
            for number, values in enumerate(rows, start=2):
                if all(v in (None, "") for v in values):
                    continue
                fields = {name: (values[i] if i < len(values) else None) for i, name in enumerate(header)}
                raw = json.dumps({k: _json(v) for k, v in fields.items()}, ensure_ascii=False).encode()
                yield SourceRecord(source, path.name, f"sheet {sheet.title} row {number}", fields, raw, "column", shape)
    finally:
        workbook.close()
