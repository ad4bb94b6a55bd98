"""``yiyang ingest``, ``yiyang quarantine replay`` and ``yiyang mappings explain``.

``--database URL`` ingests into the store the server reads; ``--out DIR`` keeps an embedded
store inside DIR and exports it there as NDJSON per type with ``quarantine.ndjson``.  Both
together write the store and export it to DIR.  With neither, ``YIYANG_DATABASE_URL`` names
the store, as for every command; without it too, ``--out ./out``.  An option beats the
environment: ``--out`` alone writes the folder's store whatever the variable says.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    Help,
    add_database,
    add_language,
    config_of,
    existing_files,
    output_folder,
    stopped_as_interrupted,
    usage,
)
from gateway.cli.validate import registry_with
from gateway.config import database_configured
from mappings.readers import READERS
from mappings.specs import SOURCES

DEFAULT_OUT = Path("out")


def register(commands: Any) -> None:
    from gateway.cli.common import Parser

    ingest = commands.add_parser("ingest", help="cli.help.ingest")
    ingest.add_argument("--source", required=True, choices=SOURCES, help="cli.help.ingest.source")
    add_targets(ingest, "cli.help.ingest.out")
    ingest.add_argument("--bundle", action="store_true", help="cli.help.ingest.bundle")
    ingest.add_argument("--strict", action="store_true", help="cli.help.ingest.strict")
    add_language(ingest)
    ingest.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help=Help("cli.help.ingest.files", readers=", ".join(READERS)),
    )
    ingest.set_defaults(run=run_ingest)

    quarantine = commands.add_parser("quarantine", help="cli.help.quarantine")
    quarantine_commands = quarantine.add_subparsers(dest="action", required=True, parser_class=Parser)
    replay = quarantine_commands.add_parser("replay", help="cli.help.quarantine.replay")
    add_targets(replay, "cli.help.quarantine.replay.out")
    add_language(replay)
    replay.set_defaults(run=run_replay)

    mappings = commands.add_parser("mappings", help="cli.help.mappings")
    mapping_commands = mappings.add_subparsers(dest="action", required=True, parser_class=Parser)
    explain = mapping_commands.add_parser("explain", help="cli.help.mappings.explain")
    explain.add_argument("source", choices=SOURCES)
    explain.add_argument("file", type=Path)
    explain.add_argument("--record", help="cli.help.mappings.explain.record")
    explain.add_argument("--reveal", action="store_true", help="cli.help.reveal-people")
    add_language(explain)
    explain.set_defaults(run=run_explain)


def add_targets(parser: argparse.ArgumentParser, out_help: str) -> None:
    """--out (``out_help``: its help's id) and --database, which :func:`targets` reads."""
    parser.add_argument("--out", type=Path, default=None, help=out_help)
    add_database(parser, "cli.help.database-in-out")


def _into_folder(args: argparse.Namespace) -> bool:
    """Whether the store is the folder's own: no ``--database`` and, unless ``--out`` is given
    (an option beats the environment), no ``YIYANG_DATABASE_URL``."""
    return args.database is None and (args.out is not None or not database_configured())


def targets(args: argparse.Namespace, reading: bool = False, within: str = "") -> tuple[Path | None, Any]:
    """(the folder to export to, the Services whose store to write, or None for the folder's);
    a command ``reading`` an archive (replay) refuses one that is not there.  ``within`` is
    the command's own folder inside ``--out`` (the demo's ``OUT/demo``)."""
    if _into_folder(args):
        from gateway.ingest.commands import ARCHIVE_FILE

        folder = output_folder(args, args.out or DEFAULT_OUT) / within
        if reading and not (folder / ARCHIVE_FILE).is_file():
            raise usage(args, "cli.no-archive", path=folder / ARCHIVE_FILE)
        return folder, None
    from gateway.services import Services

    folder = None if args.out is None else output_folder(args, args.out) / within
    return folder, Services(config_of(args, reading=reading))


def run_ingest(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.ingest.commands import ingest, summary

    files = existing_files(args.files, args)
    if args.bundle and args.out is None and not _into_folder(args):  # it wrote no Bundle, and said so nowhere
        raise usage(args, "cli.bundle-needs-out")
    folder, services = targets(args)
    registry = services.registry if services else registry_with(args)
    try:
        config = services.config if services else config_of(args)
        store = services.store if services else None
        with stopped_as_interrupted():
            counts = ingest(args.source, files, folder, registry, args.bundle, store, config, args.lang)
    finally:
        if services:
            services.close()
    out.write(summary(counts, args.lang) + "\n")
    if counts.file_errors or (args.strict and counts.quarantined):
        return EXIT_INVALID
    return EXIT_OK


def run_replay(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.ingest.commands import replay, summary

    folder, services = targets(args, reading=True)
    registry = services.registry if services else registry_with(args)
    try:
        config = services.config if services else config_of(args)
        with stopped_as_interrupted():
            counts = replay(folder, registry, out, args.lang, services.store if services else None, config)
    finally:
        if services:
            services.close()
    out.write(summary(counts, args.lang) + "\n")
    return EXIT_OK


def run_explain(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.ingest.commands import explain
    from gateway.masking import masked_unless

    existing_files([args.file], args)
    masked = masked_unless(args.reveal, out)
    return explain(
        args.source, args.file, registry_with(args), args.record, masked, args.lang, config_of(args), args.reveal
    )
