"""The planner's statistics after a load: ``$ingest`` and a replay refresh them as ``yiyang
ingest`` does, by one rule (``Store.analyze_after``), so a posted file of thousands of people
is not planned as the empty archive it landed in."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from conformance.id_card import check_char
from gateway.fhir import operations
from gateway.ingest import commands
from gateway.mllp import WrittenSince
from gateway.storage import open_store
from gateway.storage.store import STALE_ROWS, Store
from profiles.registry import Registry
from tests.conftest import MakeServices
from tests.gateway.test_ingest import teach_the_code_table
from tests.gateway.test_storage import planner_statistics
from tests.ingest_output import SAMPLES

#: people enough for a load past the rule's floor, each a Patient of their own
PEOPLE = STALE_ROWS + 10


def people_file(people: int = PEOPLE) -> bytes:
    """The sample 个人基本信息表.csv's first row, once per person, each with numbers of their own."""
    header, row = (SAMPLES / "community-health/个人基本信息表.csv").read_text(encoding="utf-8-sig").splitlines()[:2]
    columns = header.split(",")
    lines = [header]
    for number in range(people):
        cells = row.split(",")
        body = f"41010219560801{2 * number:03d}"  # even: a woman's
        cells[columns.index("序号")] = str(number + 1)
        cells[columns.index("个人档案编号")] = f"41010200100{number:06d}"
        cells[columns.index("身份证号")] = body + check_char(body)
        cells[columns.index("医保人员编号")] = f"411748086935{number:08d}"
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def test_an_ingest_posted_of_many_people_gives_the_planner_statistics(make_services: MakeServices) -> None:
    """``$ingest`` never analysed: PostgreSQL planned the archive as empty until autovacuum
    came, SQLite until a connection opened anew."""
    services = make_services()
    before = planner_statistics(services.store, "resource")
    answer = operations.ingest(
        operations.build_pipeline(services.repository, services.engine),
        "community-health",
        people_file(),
        ".csv",
        "个人基本信息表.csv",
        "en",
        services.reader_limits,
        services.stopping,
    )
    mapped = next(p["valueInteger"] for p in answer["parameter"] if p["name"] == "mapped")
    after = planner_statistics(services.store, "resource")
    assert (before <= 0, mapped, after > 0) == (True, PEOPLE, True)


def written(store: Store, count: int, start: int = 0) -> None:
    with store.transaction() as tx:
        for number in range(start, start + count):
            tx.resources.write({"resourceType": "Patient", "id": f"p{number}"})


def test_a_load_is_analysed_when_it_grew_the_archive_by_more_than_a_tenth(database_url: str, tmp_path: Path) -> None:
    """A small load into a large archive changes little the planner goes by: no pass over
    every table for it."""
    store = open_store(database_url)
    try:
        written(store, 1000)
        judged = [store.analyze_after(STALE_ROWS)]  # never analysed: beyond the floor alone
        store.analyze()
        judged += [store.analyze_after(STALE_ROWS + 100), store.analyze_after(STALE_ROWS + 101)]
    finally:
        store.close()
    assert judged == [False, False, True]


def test_a_listener_asks_the_rule_of_what_it_wrote_since_it_last_refreshed(database_url: str) -> None:
    """An archive of 1,000 resources, analysed: stale beyond 150 written.  60 written find the
    statistics fresh, 151 refresh them, and the count begins anew."""
    store = open_store(database_url)
    try:
        written(store, 1000)
        store.analyze()
        since = WrittenSince(store)
        judged = [since.wrote(resources) for resources in (40, 20, 91, 150, 1)]
    finally:
        store.close()
    assert judged == [False, False, True, False, True]


@pytest.mark.parametrize(("people", "analysed"), [(PEOPLE, True), (1, False)])
def test_a_replay_landing_many_records_gives_the_planner_statistics(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, people: int, analysed: bool
) -> None:
    """A replay never analysed: a code table's fix that landed thousands of quarantined people
    left them planned as the archive before; a replay of a few needs no pass over every table."""
    waiting = tmp_path / "个人基本信息表.csv"
    waiting.write_bytes(people_file(people).replace(",回族,".encode(), ",火星族,".encode()))  # an unknown 民族
    store = open_store(database_url)
    try:
        commands.ingest("community-health", [waiting], None, Registry(), store=store)
        teach_the_code_table(tmp_path, monkeypatch)
        commands.replay(None, Registry(), io.StringIO(), "en", store=store)
        statistics = planner_statistics(store, "resource")
    finally:
        store.close()
    assert (statistics > 0) == analysed
