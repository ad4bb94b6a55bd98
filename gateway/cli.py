"""``yiyang`` command line.

``yiyang validate [--ig PATH]... [--profile URL]... [--format json|text] [--lang zh-CN|en] FILE...``
validates FHIR JSON or NDJSON files.  Exit status: 0 when no issue is an error or fatal, 1 when
one is, 2 for usage or I/O problems.  Other tools depend on this contract exactly.

``yiyang demo`` is the main job on demo data: it validates the package's examples, ingests
every shipped sample export into one archive and shows the elder all sources share.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from conformance.issues import DEFAULT_LANGUAGE, LANGUAGES
from gateway.validation_io import FileReport, validate_file
from mappings.readers import READERS
from mappings.specs import SOURCES
from profiles.registry import DefinitionError, Registry, examples_dir

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
SAMPLES = Path(__file__).resolve().parent.parent / "mappings" / "samples"
#: the 身份证号 of the elder whose records every sample source carries
DEMO_ELDER = "410105194912310020"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class UsageError(Exception):
    """Bad arguments or unreadable inputs: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors, as we want
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"yiyang: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="yiyang", description="医养互联网关 Yiyang Gateway")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    validate = commands.add_parser("validate", help="validate FHIR JSON / NDJSON files")
    validate.add_argument(
        "--ig",
        action="append",
        default=[],
        metavar="PATH",
        help="extra conformance resources: a JSON resource, a Bundle, a folder or a FHIR package",
    )
    validate.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="URL",
        help="also validate against this StructureDefinition (canonical URL)",
    )
    validate.add_argument("--format", choices=("json", "text"), default="text")
    validate.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE)
    validate.add_argument(
        "--max-bytes",
        type=int,
        default=None,
        help=f"largest JSON document accepted (default {DEFAULT_MAX_BYTES} or $YIYANG_MAX_BYTES)",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")

    demo = commands.add_parser("demo", help="validate the package examples and ingest every sample export")
    demo.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE)
    demo.add_argument("--out", type=Path, default=Path("out"), help="the archive goes to OUT/demo (rewritten)")

    ingest = commands.add_parser("ingest", help="map legacy records to validated FHIR, quarantining the rest")
    ingest.add_argument("--source", required=True, choices=SOURCES, help="which legacy system the files come from")
    ingest.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    ingest.add_argument("--bundle", action="store_true", help="also write a transaction Bundle of the output")
    ingest.add_argument("--strict", action="store_true", help="exit 1 when anything was quarantined")
    ingest.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE)
    ingest.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help=f"exports of that source ({', '.join(READERS)})",
    )

    quarantine = commands.add_parser("quarantine", help="work with quarantined records")
    quarantine_commands = quarantine.add_subparsers(dest="action", required=True, parser_class=_Parser)
    replay = quarantine_commands.add_parser("replay", help="re-run quarantined records after a fix")
    replay.add_argument(
        "--out", type=Path, default=Path("out"), help="the folder an earlier ingest wrote (default ./out)"
    )
    replay.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE)

    mappings = commands.add_parser("mappings", help="inspect mapping specs")
    mapping_commands = mappings.add_subparsers(dest="action", required=True, parser_class=_Parser)
    explain = mapping_commands.add_parser("explain", help="show how one record is mapped, field by field")
    explain.add_argument("source", choices=SOURCES)
    explain.add_argument("file", type=Path)
    explain.add_argument("--record", help='which record, e.g. "row 17" (default: the first)')
    explain.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE)
    return parser


def _registry(ig_paths: Sequence[str]) -> Registry:
    registry = Registry(os.environ.get("YIYANG_CANONICAL_BASE", "http://fhir.yiyang.cn"))
    for path in ig_paths:
        try:
            registry.add_path(path)
        except DefinitionError as exc:
            raise UsageError(f"--ig {exc}") from exc
    return registry


def _max_bytes(value: int | None) -> int:
    if value is not None:
        return value
    return int(os.environ.get("YIYANG_MAX_BYTES", DEFAULT_MAX_BYTES))


def run_validate(args: argparse.Namespace, out: IO[str]) -> int:
    from conformance.validator import Validator  # imported late: --help should not compile R4

    for name in args.files:
        if not Path(name).is_file():
            raise UsageError(f"cannot read {name}: no such file")
    validator = Validator(_registry(args.ig))
    worst = EXIT_OK
    for name in args.files:
        report = FileReport(Path(name), args.lang)
        try:
            validate_file(validator, report, args.profile, _max_bytes(args.max_bytes), out, args.format)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from exc
        if report.errors:
            worst = EXIT_INVALID
    return worst


def _example_files() -> Iterator[Path]:
    yield from sorted(examples_dir().glob("*/*.json"))


def run_demo(args: argparse.Namespace, out: IO[str]) -> int:
    """The main job on demo data: validate the package's examples, then ingest every shipped
    sample export of every source into one archive (SQLite identity index) and show the
    elder who arrives from all of them as one Patient."""
    from conformance.validator import Validator
    from gateway.ingest.commands import ingest, summary

    registry = _registry([])
    validator = Validator(registry)
    zh = args.lang == "zh-CN"
    counts = {"valid": [0, 0], "invalid": [0, 0]}
    for file in _example_files():
        report = FileReport(file, args.lang)
        validate_file(validator, report, [], DEFAULT_MAX_BYTES, None, "summary")
        kind = "invalid" if file.name.startswith("invalid") else "valid"
        counts[kind][0] += 1
        counts[kind][1] += bool(report.errors)
    valid_ok = counts["valid"][0] - counts["valid"][1]
    if zh:
        out.write(
            f"规范示例：合格示例 {valid_ok}/{counts['valid'][0]} 通过；不合格示例 {counts['invalid'][1]}/{counts['invalid'][0]} 被正确拒绝\n"
        )
    else:
        out.write(
            f"package examples: valid passing {valid_ok}/{counts['valid'][0]}; "
            f"invalid rejected {counts['invalid'][1]}/{counts['invalid'][0]}\n"
        )
    archive = args.out / "demo"
    if archive.exists():
        shutil.rmtree(archive)
    for source in SOURCES:
        files = sorted(p for p in (SAMPLES / source).glob("*") if p.is_file() and p.suffix.lower() in READERS)
        if files:
            out.write(f"\n[{source}] " + ", ".join(f.name for f in files) + "\n")
            out.write(summary(ingest(source, files, archive, registry, bundle=False), args.lang) + "\n")
    _show_shared_elder(archive, out, zh)
    all_right = valid_ok == counts["valid"][0] and counts["invalid"][1] == counts["invalid"][0]
    return EXIT_OK if all_right else EXIT_INVALID


def _show_shared_elder(archive: Path, out: IO[str], zh: bool) -> None:
    patients = archive / "Patient.ndjson"
    if not patients.exists():
        return
    with patients.open(encoding="utf-8") as lines:
        people = [json.loads(line) for line in lines]
    for person in people:
        if any(i.get("value") == DEMO_ELDER for i in person.get("identifier", [])):
            label = "同一老人在全部来源中合并为一个 Patient" if zh else "one elder from every source, one Patient"
            out.write(f"\n{label}: Patient/{person['id']} {person['name'][0].get('text', '')}\n")
            for identifier in person["identifier"]:
                out.write(f"  {identifier['system']}  {identifier['value']}\n")
    out.write(("\n输出目录：" if zh else "\noutput folder: ") + f"{archive}\n")


def run_ingest(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.ingest.commands import ingest, summary

    for path in args.files:
        if not path.is_file():
            raise UsageError(f"cannot read {path}: no such file")
    counts = ingest(args.source, args.files, args.out, _registry([]), args.bundle)
    out.write(summary(counts, args.lang) + "\n")
    if counts.file_errors or (args.strict and counts.quarantined):
        return EXIT_INVALID
    return EXIT_OK


def run_quarantine(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.ingest.commands import replay, summary

    counts = replay(args.out, _registry([]), out, args.lang)
    out.write(summary(counts, args.lang) + "\n")
    return EXIT_OK


def run_mappings(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.ingest.commands import explain

    if not args.file.is_file():
        raise UsageError(f"cannot read {args.file}: no such file")
    return explain(args.source, args.file, _registry([]), args.record, out, args.lang)


COMMANDS = {
    "validate": run_validate,
    "demo": run_demo,
    "ingest": run_ingest,
    "quarantine": run_quarantine,
    "mappings": run_mappings,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args, sys.stdout)
    except UsageError as exc:
        sys.stderr.write(f"yiyang: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INVALID
    # after BrokenPipeError, its subclass: an output folder that is a file, a full disk, no permission …
    except OSError as exc:
        sys.stderr.write(f"yiyang: error: {exc.strerror or exc}: {exc.filename or ''}\n")
        return EXIT_USAGE
    except sqlite3.Error as exc:  # another run holding the same --out folder, a damaged store
        sys.stderr.write(f"yiyang: error: archive store: {exc}\n")
        return EXIT_USAGE
    except json.JSONDecodeError as exc:  # a damaged line in an output file the gateway reads back
        sys.stderr.write(f"yiyang: error: a damaged JSON line in the output folder: {exc}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
