"""Reports written as their failing exchanges are read: a download is sent batch by batch, and
one an error stops after its first bytes says it is incomplete; ``yiyang report`` keeps the
bounds of ``/reports`` and never leaves a file cut short.  Run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
from flask import Flask

from conformance.validator import Validator
from gateway import create_app
from gateway.cli.report import write
from gateway.config import Config
from gateway.exchanges import purge
from gateway.reporting import ReportIncomplete
from gateway.services import Services
from gateway.storage.store import Store
from tests.gateway.test_exchanges import DAY, mixed, report_command

INCOMPLETE = "This report is incomplete"
PERIOD = {"since": DAY.isoformat(), "until": (DAY + timedelta(days=2)).isoformat(), "lang": "en"}


@pytest.fixture
def app(store: Store, database_url: str, validator: Validator) -> Iterator[Flask]:
    """The gateway over the test store; its exchange log closed before the store is."""
    services = Services(Config.load(database_url=database_url), registry=validator.registry)
    services.__dict__.update(store=store, validator=validator)
    made = create_app(services=services, secure=False)
    yield made
    made.extensions["yiyang.exchanges"].close()


@pytest.mark.parametrize("fmt", ["csv", "json", "junit"])
def test_a_download_an_error_stops_after_its_headers_ends_saying_it_is_incomplete(
    app: Flask, store: Store, fmt: str
) -> None:
    """The failing exchanges are read as the download is sent, after its 200: purged
    meanwhile, they can no longer be listed.  The file must not end as if whole (a CSV cut
    short is still a CSV): it says it is incomplete, a JSON or XML parser refuses it, and the
    error reaches the server, which drops the connection."""
    mixed(store)
    answer = app.test_client().get("/reports", query_string=PERIOD | {"_format": fmt})
    assert answer.status_code == 200
    purge(store, (DAY + timedelta(days=3)).isoformat())
    sent: list[bytes] = []
    with pytest.raises(ReportIncomplete):
        sent.extend(answer.response)
    body = b"".join(sent).decode("utf-8-sig")
    assert body.rstrip().splitlines()[-1].strip('"<!-> ').startswith(INCOMPLETE)
    if fmt == "json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(body)
    if fmt == "junit":
        with pytest.raises(ET.ParseError):
            ET.fromstring(body.encode())


def test_a_streamed_download_holds_what_a_whole_one_did(app: Flask, store: Store) -> None:
    """The JSON written piece by piece is the document it was: every failing exchange with
    its issues, in its section and in ``exchanges``."""
    mixed(store)
    client = app.test_client()
    document = client.get("/reports", query_string=PERIOD | {"_format": "json"}).json
    section = next(s for s in document["sections"] if s["id"] == "exchanges")
    listed = [(e["id"], len(e["findings"])) for e in document["exchanges"]]
    shown = [(r["link"], len(r["findings"])) for r in section["results"]]
    assert (listed, shown) == ([("3", 4), ("2", 4), ("1", 4)], listed)


def test_yiyang_report_lists_no_more_issues_than_the_setting_allows(
    store: Store, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command read every issue of up to a thousand exchanges, 10,000 each."""
    mixed(store)
    monkeypatch.setenv("YIYANG_REPORT_MAX_ISSUES", "5")
    report_command(database_url, tmp_path / "r.csv", "--until", "2026-12-02", "--format", "csv", "--lang", "en")
    rows = (tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()
    assert (len(rows), rows[-1].lstrip('"').startswith("Listing 5 of the 12 issues")) == (1 + 5 + 1, True)


def test_yiyang_report_refuses_a_limit_over_the_setting(
    store: Store, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed(store)
    monkeypatch.setenv("YIYANG_REPORT_MAX_LIMIT", "2")
    code = report_command(database_url, tmp_path / "r.json", "--format", "json", "--limit", "3", "--lang", "en")
    said = "--limit 3 is over the maximum of 2 (YIYANG_REPORT_MAX_LIMIT)"
    assert (code, said in capsys.readouterr().err, (tmp_path / "r.json").exists()) == (2, True, False)


def test_a_report_file_an_error_stopped_is_not_left_behind_cut_short(tmp_path: Path) -> None:
    """A report is written as it is read; stopped half way, the file it replaces stays as it
    was and no half of it is left to be opened as complete."""
    out = tmp_path / "r.csv"
    out.write_bytes(b"yesterday's report")

    def stopped(target: IO[bytes]) -> None:
        target.write(b"half a report")
        raise OSError("the disk is full")

    with pytest.raises(OSError, match="the disk is full"):
        write(out, stopped)
    assert (out.read_bytes(), sorted(p.name for p in tmp_path.iterdir())) == (b"yesterday's report", ["r.csv"])
