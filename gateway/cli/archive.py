"""``yiyang export``, ``yiyang db upgrade``, ``yiyang db reindex`` and ``yiyang db localise``:
the store seen from outside, its schema, its search index and the references it stores."""

from __future__ import annotations

import argparse
import time
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    Parser,
    add_database,
    add_language,
    config_of,
    output_folder,
    usage,
)
from gateway.messages import text


def register(commands: Any) -> None:
    export = commands.add_parser("export", help="cli.help.export")
    add_database(export)
    add_language(export)
    export.add_argument("--out", type=Path, required=True, help="cli.help.export.out")
    export.add_argument("--since", metavar="INSTANT", help="cli.help.export.since")
    export.add_argument("--type", action="append", dest="types", metavar="TYPE", help="cli.help.export.type")
    export.set_defaults(run=run_export)

    db = commands.add_parser("db", help="cli.help.db")
    db_commands = db.add_subparsers(dest="action", required=True, parser_class=Parser)
    upgrade = db_commands.add_parser("upgrade", help="cli.help.db.upgrade")
    add_database(upgrade)
    add_language(upgrade)
    upgrade.set_defaults(run=run_upgrade)
    reindex = db_commands.add_parser("reindex", help="cli.help.db.reindex")
    add_database(reindex)
    add_language(reindex)
    reindex.add_argument("--type", action="append", dest="types", metavar="TYPE", help="cli.help.db.reindex.type")
    reindex.set_defaults(run=run_reindex)
    localise = db_commands.add_parser("localise", help="cli.help.db.localise")
    add_database(localise)
    localise.add_argument("--base", metavar="URL", help="cli.help.db.localise.base")
    localise.add_argument("--trust-unowned", action="store_true", help="cli.help.db.localise.trust-unowned")
    add_language(localise)
    localise.set_defaults(run=run_localise)


def run_export(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.export import export_folder
    from gateway.services import Services

    folder = output_folder(args, args.out)
    services = Services(config_of(args, reading=True))
    try:
        since = _since(args)
        _check_types(args, services.repository.resource_types)
        # every write stamped before it has committed: the next --since it misses nothing
        as_of = services.store.settled_instant()
        written = export_folder(services.store, folder, args.types, since, extras=not (args.types or since))
    finally:
        services.close()
    for name, lines in sorted(written.items()):
        out.write(f"{args.out / name}  {lines}\n")
    out.write(text("cli.exported", args.lang, {"files": len(written), "lines": sum(written.values())}) + "\n")
    out.write(text("cli.export.next-since", args.lang, {"instant": as_of}) + "\n")
    return EXIT_OK


def _check_types(args: argparse.Namespace, known: Collection[str]) -> None:
    """An unknown type (``Foo``, ``patient``) would export nothing and look like an empty
    archive; so would the audit trail, which is kept apart from the archive's resources."""
    from gateway.fhir.repository import READ_ONLY

    unknown = [kind for kind in args.types or [] if kind not in known]
    if unknown:
        raise usage(args, "cli.export.unknown-type", types=", ".join(unknown))
    apart = [kind for kind in args.types or [] if kind in READ_ONLY]
    if apart:
        raise usage(args, "cli.export.not-archived", types=", ".join(apart))


def _since(args: argparse.Namespace) -> str | None:
    if args.since is None:
        return None
    from gateway.storage.resources import store_instant

    try:
        return store_instant(args.since)
    except ValueError as exc:
        raise usage(args, "cli.export.bad-since", since=args.since) from exc


def run_upgrade(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.storage import open_store

    config = config_of(args)
    store = open_store(config.database_url, upgrade=False, busy_timeout_s=config.sqlite_busy_timeout_seconds)
    try:
        # the version found once this process held the schema lock: one read before it
        # waited for another upgrade said "0 → 18" of an archive the other had brought to 8
        done = store.upgrade()
        after = store.schema_version()
    finally:
        store.close()
    steps = ", ".join(str(v) for v in done.applied) or "-"
    said = {"before": done.before, "after": after, "steps": steps}
    out.write(text("cli.db.upgraded", args.lang, said) + "\n")
    return EXIT_OK


def run_reindex(args: argparse.Namespace, out: IO[str]) -> int:
    """The search index made anew from the resources as they are stored, after an upgrade
    whose gateway extracts search values an older one did not."""
    from gateway.services import Services

    services = Services(config_of(args, reading=True))
    try:
        _check_types(args, services.repository.resource_types)
        started = time.monotonic()
        count = sum(services.store.reindex(args.types))
        services.store.analyze()
    finally:
        services.close()
    seconds = f"{time.monotonic() - started:.1f}"
    out.write(text("cli.db.reindexed", args.lang, {"count": count, "seconds": seconds}) + "\n")
    return EXIT_OK


def run_localise(args: argparse.Namespace, out: IO[str]) -> int:
    """References an archive stored on the gateway's own base before request bodies were
    localised, rewritten as the relative ones a write stores now
    (``gateway/fhir/localise_archive.py``)."""
    from gateway.fhir.localise_archive import as_its_creator, localise_archive
    from gateway.security.access import PersonalData
    from gateway.services import Services

    config = config_of(args, reading=True)
    base = args.base or config.base_url  # the base `serve` announces with this configuration
    if not _is_base(base):
        raise usage(args, "cli.db.localise.bad-base", base=base)
    services = Services(config)
    try:
        personal = PersonalData(services.registry, services.store.indexer)
        done = localise_archive(services.store, base, as_its_creator(personal, args.trust_unowned))
    finally:
        services.close()
    said = "cli.db.localised" if done.rewritten or done.held else "cli.db.localised-nothing"
    out.write(text(said, args.lang, {"scanned": done.scanned, "rewritten": done.rewritten, "base": base}) + "\n")
    if not done.held:
        return EXIT_OK
    out.write(text("cli.db.localise-held", args.lang, {"count": len(done.held)}) + "\n")
    out.writelines(f"  {reference}\n" for reference in done.held)
    return EXIT_INVALID


def _is_base(url: str) -> bool:
    """An http(s) URL with a host, which own-base references could be spelt on (a mistyped
    ``--base`` would otherwise rewrite nothing and say the archive is clean)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        return (
            parts.scheme.lower() in ("http", "https") and bool(parts.hostname) and not (parts.query or parts.fragment)
        )
    except ValueError:
        return False
