"""``yiyang validate`` and ``yiyang demo``.

``yiyang validate [--ig PATH]... [--profile URL]... [--format json|text] [--lang zh-CN|en] FILE...``
validates FHIR JSON or NDJSON files.  Exit status: 0 when no issue is an error or fatal, 1 when
one is, 2 for usage or I/O problems.  Other tools depend on this contract exactly.

``yiyang demo`` is the batch job on demo data: it validates the package's examples, ingests
every shipped sample export into one archive and shows the elder all sources share.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    add_language,
    existing_files,
    output_folder,
    unreadable,
    usage,
)
from gateway.config import Config
from gateway.messages import file_problem, text
from gateway.validation_io import FileReport, validate_file
from mappings.specs import SOURCES
from profiles.registry import DefinitionError, Registry, examples_dir

#: the 身份证号 of the elder whose records every sample source carries
DEMO_ELDER = "410105194912310020"


def register(commands: Any) -> None:
    validate = commands.add_parser("validate", help="cli.help.validate")
    validate.add_argument(
        "--ig",
        action="append",
        default=[],
        metavar="PATH",
        help="cli.help.validate.ig",
    )
    validate.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="URL",
        help="cli.help.validate.profile",
    )
    validate.add_argument("--format", choices=("json", "text"), default="text")
    add_language(validate)
    validate.add_argument(
        "--max-bytes",
        type=int,
        default=None,
        help="cli.help.validate.max-bytes",
    )
    validate.add_argument(
        "--reveal",
        action="store_true",
        help="cli.help.validate.reveal",
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(run=run_validate)

    demo = commands.add_parser("demo", help="cli.help.demo")
    add_language(demo)
    demo.add_argument("--out", type=Path, default=Path("out"), help="cli.help.demo.out")
    demo.add_argument("--reveal", action="store_true", help="cli.help.reveal-people")
    demo.set_defaults(run=run_demo)


def registry_with(args: argparse.Namespace, ig_paths: Sequence[str] = ()) -> Registry:
    """The package's definitions and those of each ``--ig`` in ``ig_paths``; one that cannot be
    loaded is a usage error naming the file (in a folder, the one at fault), worded in
    ``--lang``: one that cannot be read, or is not UTF-8 (a profile saved in GBK), as any file
    an option names is."""
    from conformance.issues import publish_messages_under

    base = Config.load().canonical_base
    publish_messages_under(base)
    registry = Registry(base)
    for path in ig_paths:
        try:
            registry.add_path(path)
        except DefinitionError as exc:
            if isinstance(exc.__cause__, (OSError, UnicodeDecodeError)):
                raise unreadable(args, Path(exc.path), exc.__cause__) from exc
            raise usage(args, f"cli.ig.{exc.problem}", path=exc.path) from exc
    return registry


def report_broken_definitions(validator: Any, lang: str) -> None:
    """Check the definitions ``--ig`` loaded as definitions (paths that exist, an extension's
    fixed url, a search parameter's expression …) and name each problem on standard error,
    where the definition was written; validation goes on without the broken part."""
    import sys

    for source in validator.registry.added:
        definitions = {id(r): r for r in source.by_url.values()}
        for resource in definitions.values():
            for issue in validator.validate(resource):
                if issue.message_id.startswith("definition."):
                    where = f"{resource.get('resourceType')}/{resource.get('id', '?')}"
                    sys.stderr.write(f"yiyang: --ig {source.name}: {where}: {issue.text(lang)} ({issue.expression})\n")


def run_validate(args: argparse.Namespace, out: IO[str]) -> int:
    existing_files(args.files, args)
    from gateway.limits import build_validator  # imported late: --help should not compile R4

    validator = build_validator(registry_with(args, args.ig), Config.load())
    report_broken_definitions(validator, args.lang)
    max_bytes = args.max_bytes if args.max_bytes is not None else Config.load().max_bytes
    worst = EXIT_OK
    for name in args.files:
        report = FileReport(Path(name), args.lang, reveal=args.reveal)
        try:
            validate_file(validator, report, args.profile, max_bytes, out, args.format)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise usage(args, "cli.file.unreadable", path=name, reason=file_problem(exc)) from exc
        if report.errors:
            worst = EXIT_INVALID
    return worst


def check_examples(validator: Any, lang: str) -> tuple[str, bool]:
    """Validate the package's examples: the valid ones must pass, the invalid ones fail."""
    counts = {"valid": [0, 0], "invalid": [0, 0]}
    for file in sorted(examples_dir().glob("*/*.json")):
        report = FileReport(file, lang)
        validate_file(validator, report, [], Config.load().max_bytes, None, "summary")
        kind = "invalid" if file.name.startswith("invalid") else "valid"
        counts[kind][0] += 1
        counts[kind][1] += bool(report.errors)
    (valid, failed), (invalid, rejected) = counts["valid"], counts["invalid"]
    tally = {"passed": valid - failed, "valid": valid, "rejected": rejected, "invalid": invalid}
    return text("cli.demo.examples", lang, tally), failed == 0 and rejected == invalid


def run_demo(args: argparse.Namespace, out: IO[str]) -> int:
    """The batch job on demo data: validate the package's examples, then ingest every shipped
    sample export of every source into one archive and show the elder who arrives from all
    of them as one Patient."""
    from conformance.validator import Validator
    from gateway.demo import sample_files
    from gateway.ingest.commands import ingest, summary
    from gateway.masking import masked_unless

    out = masked_unless(args.reveal, out)
    archive = output_folder(args, args.out) / "demo"
    registry = registry_with(args)
    line, all_right = check_examples(Validator(registry), args.lang)
    out.write(line + "\n")
    if archive.exists():
        shutil.rmtree(archive)
    for source in SOURCES:
        files = sample_files(source)
        if files:
            out.write(f"\n[{source}] " + ", ".join(f.name for f in files) + "\n")
            out.write(summary(ingest(source, files, archive, registry, lang=args.lang), args.lang) + "\n")
    _show_shared_elder(archive, out, args.lang, args.reveal)
    return EXIT_OK if all_right else EXIT_INVALID


def _show_shared_elder(archive: Path, out: IO[str], lang: str, reveal: bool) -> None:
    """The elder every source knows, as one Patient (``out`` masks their 身份证号; the name is
    masked here unless ``reveal``)."""
    from gateway.masking import mask_name

    patients = archive / "Patient.ndjson"
    if not patients.exists():
        return
    with patients.open(encoding="utf-8") as lines:
        people = [json.loads(line) for line in lines]
    for person in people:
        if any(i.get("value") == DEMO_ELDER for i in person.get("identifier", [])):
            name = person["name"][0].get("text", "")
            elder = {"id": person["id"], "name": name if reveal else mask_name(name)}
            out.write("\n" + text("cli.demo.shared-elder", lang, elder) + "\n")
            for identifier in person["identifier"]:
                out.write(f"  {identifier['system']}  {identifier['value']}\n")
    out.write("\n" + text("cli.demo.output-folder", lang, {"path": archive}) + "\n")
