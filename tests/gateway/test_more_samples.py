"""The generator of more records (bench/more_samples.py) yields records every source maps cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.more_samples import generate
from gateway.ingest import commands
from mappings.specs import SOURCES
from profiles.registry import Registry
from tests.ingest_output import ndjson


@pytest.mark.parametrize("source", SOURCES)
def test_generated_records_all_become_valid_fhir(source: str, tmp_path: Path) -> None:
    files = generate(source, 3, tmp_path / "in")
    counts = commands.ingest(source, files, tmp_path / "out", Registry(), bundle=False)
    assert (counts.read > 0, counts.quarantined, counts.file_errors) == (True, 0, [])


def test_generated_people_stay_distinct(tmp_path: Path) -> None:
    files = generate("elderly-care", 4, tmp_path / "in")
    commands.ingest("elderly-care", files, tmp_path / "out", Registry(), bundle=False)
    assert len(ndjson(tmp_path / "out" / "Patient.ndjson")) == 4
