"""CDA R2 writes times as HL7 v3 TS (``YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]``); a 健康档案 document whose
generator writes the birth time with its time of day, as many WS/T 483 / WS/T 500 generators do,
is as legitimate as one writing the day alone and must not be quarantined for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.ingest.commands import build_engine
from mappings.readers import cda
from profiles.registry import Registry

SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/健康档案-张秀英.xml"


@pytest.mark.parametrize("written", ["19491231", "19491231000000", "194912310830+0800", "19491230160000+0000"])
def test_a_birth_time_written_as_any_hl7_timestamp_gives_the_birth_date(tmp_path: Path, written: str) -> None:
    path = tmp_path / SAMPLE.name
    path.write_bytes(
        SAMPLE.read_bytes().replace(b'birthTime value="19491231"', f'birthTime value="{written}"'.encode())
    )
    [record] = cda.read_cda(path, "community-health")
    mapped = build_engine(Registry()).map(record)
    assert mapped is not None
    assert (mapped.resources["patient"].get("birthDate"), mapped.problems) == ("1949-12-31", [])
