"""``yiyang report`` — the auditors' report over recorded exchanges — and
``yiyang exchanges purge``, which applies the retention policy by hand.

``yiyang report --since DATE [--until DATE] [--org ID] [--source S] [--database URL]
--format html|json|junit|xlsx|csv --out FILE [--lang zh-CN|en] [--table failing|scorecard]
[--limit N] [--details N]`` writes the report and prints one line (two when the failing
exchanges listed are not all there are).  An HTML file shows the newest ``--details`` of them
in full, each with its first issues (a thousand exchanges of 10,000 issues each were ten
million rows); the file says how many it left out.  The bounds of ``/reports`` hold:
``--limit`` up to ``YIYANG_REPORT_MAX_LIMIT``, ``YIYANG_REPORT_MAX_ISSUES`` issues listed in
all; the file is written as its exchanges are read, batch by batch, never held whole.  Exit status: 0 when no exchange in the
period failed, 1 when one did (as ``yiyang validate`` does for files), 2 for usage problems.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    Parser,
    TypeRefusal,
    add_database,
    add_language,
    config_of,
    usage,
)

TABLE_CHOICES = ("failing", "scorecard")


def register(commands: Any) -> None:
    from gateway.reporting import DEFAULT_LIMIT, DETAILED, FORMATS

    report = commands.add_parser("report", help="cli.help.report")
    report.add_argument("--since", required=True, type=day, metavar="DATE", help="cli.help.report.since")
    report.add_argument("--until", type=day, metavar="DATE", help="cli.help.report.until")
    report.add_argument("--org", metavar="ID", help="cli.help.report.org")
    report.add_argument("--source", metavar="SOURCE", help="cli.help.report.source")
    add_database(report)
    add_output(report, FORMATS, required=True)
    report.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N", help="cli.help.report.limit")
    report.add_argument("--details", type=int, default=DETAILED, metavar="N", help="cli.help.report.details")
    add_language(report)
    report.set_defaults(run=run_report)

    exchanges = commands.add_parser("exchanges", help="cli.help.exchanges")
    actions = exchanges.add_subparsers(dest="action", required=True, parser_class=Parser)
    purge = actions.add_parser("purge", help="cli.help.exchanges.purge")
    purge.add_argument(
        "--before",
        type=day,
        metavar="DATE",
        help="cli.help.exchanges.purge.before",
    )
    add_database(purge)
    add_language(purge)
    purge.set_defaults(run=run_purge)


def add_output(parser: argparse.ArgumentParser, formats: tuple[str, ...], required: bool) -> None:
    """--format, --out and, where csv is one of the formats, --table; shared with ``yiyang
    conformance check`` and ``run``."""
    parser.add_argument("--format", choices=formats, required=required, default=None if required else "json")
    parser.add_argument(
        "--out",
        type=Path,
        required=required,
        metavar="FILE",
        help="cli.help.report.out-required" if required else "cli.help.report.out",
    )
    if "csv" in formats:
        parser.add_argument("--table", choices=TABLE_CHOICES, default="failing", help="cli.help.report.table")


def day(value: str) -> date:
    from gateway.reporting import parse_day

    try:
        return parse_day(value)
    except ValueError as exc:
        raise TypeRefusal("cli.type.day", value=value) from exc


def run_report(args: argparse.Namespace, out: IO[str]) -> int:
    from conformance.report.svg import percent
    from gateway.exchanges import today
    from gateway.reporting import (
        REPORT_SOURCES,
        Rendering,
        ReportQuery,
        file_report,
        recorded_for,
        words_in,
        write_report,
    )
    from gateway.storage import open_store

    until = args.until or today()
    if args.since > until:
        raise usage(args, "cli.report.since-after-until", since=args.since, until=until)
    if args.limit < 0:
        raise usage(args, "cli.report.negative-limit")
    if args.details < 0:
        raise usage(args, "cli.report.negative-details")
    if args.source is not None and args.source not in REPORT_SOURCES:
        raise usage(args, "cli.report.unknown-source", source=args.source, sources=", ".join(REPORT_SOURCES))
    config = config_of(args, reading=True)
    if args.limit > config.report_max_limit:  # the bounds of /reports: one run's memory stays flat
        raise usage(args, "cli.report.limit-too-large", limit=args.limit, most=config.report_max_limit)
    query = ReportQuery(args.since, until, args.org, args.source, args.limit)
    store = open_store(config.database_url, busy_timeout_s=config.sqlite_busy_timeout_seconds)
    try:
        if args.org is not None and not recorded_for(store, args.org):
            raise usage(args, "cli.report.unknown-org", org=args.org)
        report, exchanges = file_report(store, query, args.lang, args.format, config.report_max_issues, args.details)
        rendering = Rendering(args.format, args.lang, args.table, details=args.details, exchanges=exchanges)
        write(args.out, lambda target: write_report(target, report, rendering))
    finally:
        store.close()
    summary = report.summary
    out.write(
        words_in(args.lang)(
            "report.cli.written",
            {"path": args.out, "total": summary.total, "rate": percent(summary.rate), "failed": summary.failed},
        )
        + "\n"
    )
    shown = len(report.exchanges)
    if args.table == "failing" and shown < report.exchanges_total:  # the file says so too
        cut = {"shown": shown, "total": report.exchanges_total, "limit": args.limit}
        out.write(words_in(args.lang)("report.cli.failing-cut", cut) + "\n")
    return EXIT_INVALID if summary.failed else EXIT_OK


def run_purge(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.exchanges import cutoff, purge, today
    from gateway.reporting import words_in
    from gateway.storage import open_store

    if args.before is not None and args.before > today():  # 2099 for 2009: every record gone
        raise usage(args, "cli.report.purge-after-today", day=args.before, today=today())
    config = config_of(args, reading=True)
    words = words_in(args.lang)
    before = args.before.isoformat() if args.before else cutoff(config.exchange_retention_days)
    if before is None:
        out.write(words("report.cli.keep-all") + "\n")
        return EXIT_OK
    store = open_store(config.database_url, busy_timeout_s=config.sqlite_busy_timeout_seconds)
    try:
        count = purge(store, before)
    finally:
        store.close()
    out.write(words("report.cli.purged", {"count": count, "day": before}) + "\n")
    return EXIT_OK


def write(path: Path | None, data: bytes | Callable[[IO[bytes]], None]) -> None:
    """The report to its file (its folder made), or to standard output; ``data`` is its bytes
    or writes them as they are made.  A file is written beside its name and renamed once
    whole: a run stopped by an error leaves no file cut short to be read as complete (nor
    does it spoil the one an earlier run wrote)."""
    import sys

    if path is None:
        sys.stdout.flush()
        if callable(data):
            data(sys.stdout.buffer)
        else:
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        with part.open("wb") as target:
            if callable(data):
                data(target)
            else:
                target.write(data)
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
