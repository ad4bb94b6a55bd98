"""``yiyang conformance check FILE|DIR… [--format html|json|junit|xlsx|csv] [--out FILE]
[--lang zh-CN|en] [--profile URL]…`` — exported files validated resource by resource and
reported in the formats of ``yiyang report`` (JUnit: one testcase per resource, failing when
the resource has an error).

Exit status: 0 when no resource has an error, 1 when one does, 2 for usage or I/O problems.
The validator is the one ``gateway/services.py`` builds; no database is opened.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import EXIT_INVALID, EXIT_OK, Parser, UsageError, add_language, config_of


def register(commands: Any) -> None:
    from gateway.cli.report import add_output
    from gateway.reporting import FORMATS

    conformance = commands.add_parser("conformance", help="check participants' data against the provincial rules")
    actions = conformance.add_subparsers(dest="action", required=True, parser_class=Parser)
    check = actions.add_parser("check", help="validate exported FHIR files (NDJSON, JSON, Bundles) into a report")
    check.add_argument(
        "paths", nargs="+", type=Path, metavar="FILE|DIR", help="files, or folders of .ndjson/.json files"
    )
    check.add_argument(
        "--profile", action="append", default=[], metavar="URL", help="also hold every resource to this profile"
    )
    add_output(check, FORMATS, required=False)
    add_language(check)
    check.set_defaults(run=run_check)


def run_check(args: argparse.Namespace, out: IO[str]) -> int:
    from conformance.report.aggregate import file_report
    from conformance.report.svg import percent
    from gateway.cli.report import write
    from gateway.fhir.repository import default_profiles
    from gateway.file_check import FileChecker, files_in
    from gateway.masking import mask_text
    from gateway.reporting import generated_now, render, words_in
    from gateway.services import Services

    for path in args.paths:
        if not path.exists():
            raise UsageError(f"cannot read {path}: no such file or folder")
    files = files_in(args.paths)
    if not files:
        raise UsageError("no .json, .ndjson or .jsonl file in " + ", ".join(map(str, args.paths)))
    if args.format == "xlsx" and args.out is None:
        raise UsageError("--format xlsx needs --out FILE")
    services = Services(config_of(args))
    checker = FileChecker(
        services.validator,
        default_profiles(services.registry),
        services.config.max_bytes,
        args.lang,
        args.profile,
    )
    checked = [resource for path in files for resource in checker.check(path)]
    named = mask_text(", ".join(map(str, files)))
    report = file_report(checked, [("report.scope.files", named)], generated_now())
    write(args.out, render(report, args.format, args.lang, args.table))
    if args.out is not None:
        summary = report.summary
        words = words_in(args.lang)
        line = {"path": args.out, "total": summary.total, "rate": percent(summary.rate), "failed": summary.failed}
        out.write(words("report.cli.checked", line) + "\n")
    return EXIT_INVALID if report.summary.failed else EXIT_OK
