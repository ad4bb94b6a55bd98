"""``yiyang export`` and ``yiyang db upgrade``: the store seen from outside, and its schema."""

from __future__ import annotations

import argparse
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import EXIT_OK, Parser, add_database, add_language, config_of
from gateway.messages import text


def register(commands: Any) -> None:
    export = commands.add_parser("export", help="write the archive as NDJSON, one file per resource type")
    add_database(export)
    add_language(export)
    export.add_argument("--out", type=Path, required=True, help="folder for the NDJSON files")
    export.add_argument("--since", metavar="INSTANT", help="only resources changed after this instant")
    export.add_argument(
        "--type", action="append", dest="types", metavar="TYPE", help="only this resource type (repeatable)"
    )
    export.set_defaults(run=run_export)

    db = commands.add_parser("db", help="manage the store")
    db_commands = db.add_subparsers(dest="action", required=True, parser_class=Parser)
    upgrade = db_commands.add_parser("upgrade", help="apply the schema migrations the store lacks")
    add_database(upgrade)
    upgrade.set_defaults(run=run_upgrade)


def run_export(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.export import export_folder
    from gateway.services import Services

    services = Services(config_of(args, reading=True))
    try:
        since = _since(args.since)
        _check_types(args.types or [], services.repository.resource_types)
        written = export_folder(services.store, args.out, args.types, since, extras=not (args.types or since))
    finally:
        services.close()
    for name, lines in sorted(written.items()):
        out.write(f"{args.out / name}  {lines}\n")
    out.write(text("cli.exported", args.lang, {"files": len(written), "lines": sum(written.values())}) + "\n")
    return EXIT_OK


def _check_types(types: list[str], known: Collection[str]) -> None:
    """An unknown type (``Foo``, ``patient``) would export nothing and look like an empty archive."""
    from gateway.cli.common import UsageError

    unknown = [kind for kind in types if kind not in known]
    if unknown:
        raise UsageError(f"--type {', '.join(unknown)}: not a FHIR R4 resource type (names are case-sensitive)")


def _since(text: str | None) -> str | None:
    if text is None:
        return None
    from gateway.cli.common import UsageError
    from gateway.storage.resources import store_instant

    try:
        return store_instant(text)
    except ValueError as exc:
        raise UsageError(
            f"--since {text!r} is not an instant with a time zone (e.g. 2026-12-01T08:00:00+08:00)"
        ) from exc


def run_upgrade(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.storage import open_store

    store = open_store(config_of(args).database_url, upgrade=False)
    try:
        before = store.schema_version()
        applied = store.upgrade()
        after = store.schema_version()
    finally:
        store.close()
    steps = ", ".join(str(v) for v in applied) or "-"
    out.write(f"schema {before} → {after} (applied: {steps})\n")
    return EXIT_OK
