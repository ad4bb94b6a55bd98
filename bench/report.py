"""The auditors' report over many recorded exchanges, against merely scanning them.

    python -m bench.report [--exchanges 1000000] [--days 90] [--rounds 2] [--keep DIR]

Fills a SQLite store with ``--exchanges`` deterministic exchange records over ``--days`` days
through the store's own ``Exchanges.append`` (40 clients of 20 organisations, 6 source
systems; 60 % reads with nothing to judge, 30 % passing pushes, 8 % failing ones with 1–3
issues among 30 rules, 2 % refused; 1–3 resource verdicts per push), then times, in the same
run and alternating for ``--rounds`` rounds (best of each kept, the machine is shared):

    scan     every exchange row read into Python (SELECT * FROM exchange, all columns)
    report   report_and_details over the whole period (grouped SQL + the pure builder) and
             render it as the served /reports does: as HTML (charts included, each failing
             exchange's issues counted) and as JSON (its failing exchanges read in full)

and prints both times and their ratio (goal: the report within 3× of the scan).  ``--keep DIR``
keeps the store there and reuses it on the next run.

    python -m bench.report --hot-path

instead measures what recording exchanges costs each request, in CPU time: the hooks on the
request's path (an authenticated read of one Patient, in a request context), and the log's
background thread making each record and appending it in batches of 200 on SQLite.  (Timing
whole reads with and without the hooks was tried first: on this shared machine its rounds
scatter by ±50 µs, more than what is measured.)
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

from conformance.report.model import Verdict
from gateway.exchanges import append
from gateway.reporting import Rendering, ReportQuery, render, report_and_details
from gateway.storage import open_store, sqlite_url
from gateway.storage.exchange_tables import Appended
from gateway.storage.store import Store

FIRST_DAY = date(2026, 9, 1)
CHUNK = 50_000
RULES = [f"rule.bench-{n:02d}" for n in range(30)]
LOCATIONS = [f"Patient.identifier[{n}].value" for n in range(4)] + ["Patient.address[0].district", "Encounter.period"]
PROFILE = "http://fhir.yiyang.cn/StructureDefinition/yy-"
SOURCES = ["hospital", "elderly-care", "community-health", "insurance", "hl7v2", "operator"]
TYPES = ["Patient", "Encounter", "Observation", "Coverage"]


def exchanges(count: int, days: int, seed: int = 7) -> Iterator[Appended]:
    """``count`` exchange records, deterministic for a seed."""
    rng = random.Random(seed)
    for index in range(count):
        day = FIRST_DAY + timedelta(days=index * days // count)
        client = rng.randrange(40)
        draw = rng.random()
        verdict = (
            Verdict.SKIP
            if draw < 0.6
            else Verdict.PASS
            if draw < 0.9
            else Verdict.FAIL
            if draw < 0.98
            else Verdict.ERROR
        )
        kind = rng.choice(TYPES)
        verdicts, issues = [], []
        if verdict in (Verdict.PASS, Verdict.FAIL):
            for seq in range(rng.randint(1, 3)):
                failed = verdict == Verdict.FAIL and seq == 0
                verdicts.append((kind, f"r{index}-{seq}", PROFILE + kind.lower(), not failed, int(failed), 0, 1))
            if verdict == Verdict.FAIL:
                for _ in range(rng.randint(1, 3)):
                    rule = RULES[min(int(rng.expovariate(0.15)), len(RULES) - 1)]
                    text = f"{rule}：示例说明 / example text"
                    issues.append((0, "error", rule, rng.choice(LOCATIONS), text, text, None))
        head = (
            f"{day.isoformat()}T0{index % 10}:00:00.000000Z",
            day.isoformat(),
            f"client-{client:02d}",
            f"org-{client // 2:02d}",
            SOURCES[client % len(SOURCES)],
            "rest",
            "create" if verdict != Verdict.SKIP else "read",
            {Verdict.SKIP: 200, Verdict.PASS: 201, Verdict.FAIL: 422, Verdict.ERROR: 403}[verdict],
            verdict,
            f" {kind} ",
            len(verdicts) or 1,
            len(issues),
            0,
        )
        yield head, verdicts, issues


def fill(store: Store, count: int, days: int) -> float:
    """Append the records in transactions of CHUNK; returns seconds taken."""
    start = time.perf_counter()
    records = exchanges(count, days)
    while chunk := list(islice(records, CHUNK)):
        with store.transaction() as tx:
            append(tx, chunk)
    return time.perf_counter() - start


def scan(store: Store) -> tuple[float, int]:
    start = time.perf_counter()
    rows = 0
    with store.reading() as tx:
        for _ in tx.sql.execute("SELECT * FROM exchange"):
            rows += 1
    return time.perf_counter() - start, rows


def report(store: Store, days: int) -> tuple[float, int, int]:
    """Seconds to build and render, and the sizes of the HTML and JSON written."""
    start = time.perf_counter()
    built, read = report_and_details(store, ReportQuery(FIRST_DAY, FIRST_DAY + timedelta(days=days - 1)), "zh-CN")
    html = render(built, Rendering("html", "zh-CN"))
    json = render(built, Rendering("json", "zh-CN", exchanges=read))
    return time.perf_counter() - start, len(html), len(json)


def hot_path(batches: int = 100, batch: int = 200) -> tuple[float, float]:
    """CPU µs per request of the exchange hooks on the request's path (a read of one Patient
    by an authenticated client), and per record of the log's thread (making the row and
    appending it, in batches of ``batch``), on SQLite."""
    from flask import Response, g

    from gateway.api import build_app
    from gateway.api.exchanges import record, start
    from gateway.config import Config
    from gateway.exchanges import ExchangeLog
    from gateway.security.principal import Principal
    from gateway.services import Services

    with tempfile.TemporaryDirectory() as folder:
        services = Services(Config.load(database_url=sqlite_url(Path(folder) / "hot.sqlite")))
        app = build_app(services)
        # the thread never wakes by itself: each flush below is timed on its own
        buffer = ExchangeLog(services.store, 0, interval=3600, batch=batch * batches + 1)
        answer = Response(b'{"resourceType":"Patient","id":"p1"}', status=200, content_type="application/fhir+json")
        on_request = in_background = 0.0
        with app.test_request_context("/fhir/Patient/p1"):
            g.principal = Principal("bench", "bench-org", frozenset({"system/*.cruds"}), "hospital")
            for _ in range(batches):
                began = time.process_time()
                for _ in range(batch):
                    start()
                    record(buffer, answer)
                on_request += time.process_time() - began
                began = time.process_time()
                buffer.flush()
                in_background += time.process_time() - began
        buffer.close()
        services.close()
    count = batches * batch
    return on_request / count * 1e6, in_background / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hot-path", action="store_true", help="the cost of recording exchanges to a read instead")
    parser.add_argument("--exchanges", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the store in this folder and reuse it")
    args = parser.parse_args()
    if args.hot_path:
        on_request, in_background = hot_path()
        print(f"  on the request's path  {on_request:5.1f} µs CPU per request (the hooks)")
        print(f"  on the log's thread    {in_background:5.1f} µs CPU per record (made and appended, batches of 200)")
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"exchanges-{args.exchanges}-{args.days}.sqlite"
        fresh = not path.exists()
        store = open_store(sqlite_url(path))
        try:
            if fresh:
                took = fill(store, args.exchanges, args.days)
                print(f"filled {args.exchanges:,} exchanges in {took:.1f} s ({args.exchanges / took:,.0f}/s)")
            with store.reading() as tx:
                counts = [tx.sql.one(f"SELECT COUNT(*) FROM {t}")[0] for t in ("exchange_verdict", "exchange_issue")]
            print(f"store: {args.exchanges:,} exchanges, {counts[0]:,} resource verdicts, {counts[1]:,} issues")
            scanned = built = float("inf")
            for _ in range(args.rounds):
                seconds, rows = scan(store)
                scanned = min(scanned, seconds)
                seconds, html, json = report(store, args.days)
                built = min(built, seconds)
        finally:
            store.close()
    print(f"  scan    {scanned:6.2f} s  ({rows:,} rows, {rows / scanned:,.0f} rows/s)")
    print(f"  report  {built:6.2f} s  (build + HTML {html / 1e6:.1f} MB + JSON {json / 1e6:.1f} MB)")
    print(f"  ratio   {built / scanned:6.2f}×  (goal ≤ 3×)")


if __name__ == "__main__":
    main()
