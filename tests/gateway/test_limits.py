"""Every input limit is set in the one configuration and reaches the layer that enforces it."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Config
from gateway.limits import reader_limits, validator_limits
from tests.ingest_output import ndjson


def test_a_record_limit_set_in_the_environment_reaches_the_readers() -> None:
    config = Config.load({"YIYANG_RECORD_BYTES": "4096"})
    assert reader_limits(config).record_bytes == 4096


def test_a_bundle_limit_set_in_the_environment_reaches_the_validator() -> None:
    config = Config.load({"YIYANG_BUNDLE_ENTRIES": "100"})
    assert validator_limits(config).max_bundle_entries == 100


def test_a_cell_limit_in_the_configuration_reaches_the_ingest(tmp_path: Path) -> None:
    """The same row is read under the default limit and refused under a 10-character one."""
    from gateway.ingest import commands
    from profiles.registry import Registry

    export = tmp_path / "个人基本信息表.csv"
    export.write_text("序号,个人档案编号,姓名\n1,41010500100100101," + "王" * 50 + "\n", encoding="utf-8")
    tight = commands.ingest("community-health", [export], tmp_path / "a", Registry(), config=Config(cell_chars=10))
    [reason] = ndjson(tmp_path / "a" / "quarantine.ndjson")[0]["reasons"]
    assert (tight.read, reason["id"], "over the limit of 10" in reason["en"]) == (1, "ingest.unreadable", True)
