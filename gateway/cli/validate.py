"""``yiyang validate``, and the package examples' check ``yiyang demo`` runs.

``yiyang validate [--ig PATH]... [--profile URL]... [--format json|text] [--lang zh-CN|en] FILE...``
validates FHIR JSON or NDJSON files.  Exit status: 0 when no issue is an error or fatal, 1 when
one is, 2 for usage or I/O problems.  Other tools depend on this contract exactly.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    add_language,
    existing_files,
    unreadable,
    usage,
)
from gateway.config import Config
from gateway.messages import file_problem, text
from gateway.validation_io import FileReport, validate_file
from profiles.registry import DefinitionError, Registry, examples_dir


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
