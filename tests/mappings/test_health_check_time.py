"""The 体检's Encounter starts when its Observations are effective: a 体检日期 with a time of day
keeps it (Beijing time), one without stays a date."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mappings import normalise
from tests.ingest_output import SAMPLES, mapped_resources
from tests.samples import workbook


def check_with_date(tmp_path: Path, when: str) -> dict[str, dict[str, Any]]:
    text = (SAMPLES / "community-health/老年人健康管理.csv").read_text(encoding="utf-8-sig")
    header, first = list(csv.reader(io.StringIO(text)))[:2]
    first[header.index("体检日期")] = when
    path = tmp_path / "老年人健康管理.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, first])
    return mapped_resources(path, "community-health")[0]


def test_a_check_date_with_a_time_starts_the_encounter_at_that_time(tmp_path: Path) -> None:
    assert check_with_date(tmp_path, "2026-06-15 09:30")["check"]["period"] == {"start": "2026-06-15T09:30:00+08:00"}


def test_the_encounter_starts_when_the_row_s_observations_are_effective(tmp_path: Path) -> None:
    resources = check_with_date(tmp_path, "2026-06-15 09:30")
    assert resources["check"]["period"]["start"] == resources["blood-pressure"]["effectiveDateTime"]


@pytest.mark.parametrize("when", ["2026-06-15", "2026/6/15", "20260615"])
def test_a_check_date_without_a_time_stays_a_date(tmp_path: Path, when: str) -> None:
    assert check_with_date(tmp_path, when)["check"]["period"] == {"start": "2026-06-15"}


@pytest.mark.parametrize("when", ["2026年6月15日 09:30", "2026年6月15日09:30", "2026.6.15 09:30", "20260615 09:30"])
def test_a_check_date_with_a_time_is_read_however_its_day_is_written(tmp_path: Path, when: str) -> None:
    """Each of these days alone is read (2026年6月15日, 2026.6.15, 20260615); followed by a time
    of day, only the ones written with - or / were, and the others quarantined the row
    (mapping.bad-date)."""
    assert check_with_date(tmp_path, when)["check"]["period"] == {"start": "2026-06-15T09:30:00+08:00"}


@pytest.mark.parametrize("when", ["1949年12月31日 00:00", "1949.12.31 00:00", "19491231 00:00:00"])
def test_a_date_written_with_a_time_of_day_is_its_day(when: str) -> None:
    """A birth date exported with the midnight of its date cell is the day, as 1949-12-31 00:00 is."""
    assert normalise.fhir_date(when) == "1949-12-31"


def test_the_xlsx_of_a_check_dated_in_a_date_cell_says_what_its_csv_says(tmp_path: Path) -> None:
    """A 体检日期 typed into a date cell (yyyy-mm-dd) has no time of day, as the same date in
    the CSV export has none: the Encounter of each starts on the day alone."""
    from openpyxl import Workbook

    text = (SAMPLES / "community-health/老年人健康管理.csv").read_text(encoding="utf-8-sig")
    header, first = list(csv.reader(io.StringIO(text)))[:2]
    column = header.index("体检日期")
    first[column] = datetime.fromisoformat(first[column])
    book = Workbook()
    book.active.append(header)
    book.active.append(first)
    book.active.cell(row=2, column=column + 1).number_format = "yyyy-mm-dd"
    book.save(tmp_path / "老年人健康管理.xlsx")
    [resources] = mapped_resources(tmp_path / "老年人健康管理.xlsx", "community-health")
    assert resources["check"]["period"] == {"start": "2026-06-15"}


def test_a_check_time_written_as_an_excel_serial_keeps_its_time_of_day(tmp_path: Path) -> None:
    """46188.375 is 2026-06-15 09:00, a 体检日期 cell formatted General: it started at midnight."""
    assert check_with_date(tmp_path, "46188.375")["check"]["period"] == {"start": "2026-06-15T09:00:00+08:00"}


def test_a_check_time_in_a_general_number_cell_of_a_workbook_keeps_its_time_of_day(tmp_path: Path) -> None:
    text = (SAMPLES / "community-health/老年人健康管理.csv").read_text(encoding="utf-8-sig")
    header, first = list(csv.reader(io.StringIO(text)))[:2]
    cells: list[Any] = list(first)
    cells[header.index("体检日期")] = 46188.375
    path = workbook(tmp_path / "老年人健康管理.xlsx", [header, cells])
    period = mapped_resources(path, "community-health")[0]["check"]["period"]
    assert period == {"start": "2026-06-15T09:00:00+08:00"}
