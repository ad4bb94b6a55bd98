"""Nothing lost when a process dies or two run at once: SIGKILL at random moments during
ingest and replay, then a normal run, gives the archive of an uninterrupted run (the long run
with 50 kills each is ``python -m bench.crash``); two ingests into one store take turns."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from bench.crash import crash_and_compare, differences, snapshot
from bench.legacy_samples import rows, write


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("export") / "个人基本信息表.csv"
    write(path, rows(400, seed=3, broken=0.1))
    return path


@pytest.mark.parametrize("action", ["ingest", "replay"])
def test_a_run_killed_at_random_moments_ends_as_an_uninterrupted_one(action: str, export: Path, tmp_path: Path) -> None:
    _, [interrupted], uninterrupted = crash_and_compare(tmp_path, export, action, 3, random.Random(11))
    assert differences(interrupted, uninterrupted) == []


def test_two_ingests_into_one_store_at_once_quarantine_nothing_for_contention(export: Path, tmp_path: Path) -> None:
    other = tmp_path / "其他社区-个人基本信息表.csv"
    write(other, rows(400, seed=4, broken=0.0))
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "ingest",
                "--source",
                "community-health",
                "--out",
                str(tmp_path),
                str(f),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for f in (export, other)
    ]
    errors = [child.communicate(timeout=300)[1].decode(errors="replace")[-2000:] for child in runs]
    reasons = {r["id"] for e in _quarantine(tmp_path) for r in e["reasons"]}
    assert ([c.returncode for c in runs], "ingest.internal-error" in reasons, snapshot(tmp_path).duplicates) == (
        [0, 0],
        False,
        [],
    ), errors  # a failed ingest's stderr


def _quarantine(out: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (out / "quarantine.ndjson").read_text(encoding="utf-8").splitlines()]
