"""``yiyang client add|list|rotate|revoke``: the registry of systems allowed to connect.

``yiyang client add --id ID --org ORGANIZATION-ID --role hospital|elderly-care|auditor|operator
--scope "system/Patient.rs system/Encounter.cu" (--jwks FILE | --secret-file FILE) [--database URL]
[--lang zh-CN|en]``

``--role`` is required and never guessed from the scopes: scopes say which interactions a
client may use, the role says whose records it may see (a hospital writes for its own
organisation, an elderly-care platform reads only the people it serves, an auditor reads audit
trails) — a wrong guess would open archives to the wrong party.  A secret is read from a file,
never from the command line (where ``ps`` and the shell history would show it), and only its
scrypt hash is stored.

Every line and error is worded in ``--lang``, except the header of ``client list``: its column
names are the fields of a tab-separated table that scripts read, so they stay one fixed form.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    Parser,
    UsageError,
    add_database,
    add_language,
    config_of,
    file_text,
    usage,
)
from gateway.messages import text
from gateway.security.clients import ROLES, RegistrationError, credentials


def register(commands: Any) -> None:
    client = commands.add_parser("client", help="cli.help.client")
    actions = client.add_subparsers(dest="action", required=True, parser_class=Parser)

    add = actions.add_parser("add", help="cli.help.client.add")
    add.add_argument("--id", required=True, help="cli.help.client.add.id")
    add.add_argument("--org", required=True, metavar="ORGANIZATION-ID", help="cli.help.client.add.org")
    add.add_argument(
        "--role",
        required=True,
        choices=ROLES,
        help="cli.help.client.add.role",
    )
    add.add_argument("--scope", required=True, help="cli.help.client.add.scope")
    _add_credentials(add)
    add.set_defaults(run=run_add)

    listing = actions.add_parser("list", help="cli.help.client.list")
    listing.set_defaults(run=run_list)

    rotate = actions.add_parser("rotate", help="cli.help.client.rotate")
    rotate.add_argument("--id", required=True)
    _add_credentials(rotate)
    rotate.set_defaults(run=run_rotate)

    revoke = actions.add_parser("revoke", help="cli.help.client.revoke")
    revoke.add_argument("--id", required=True)
    revoke.set_defaults(run=run_revoke)

    for action in (add, listing, rotate, revoke):
        add_database(action)
        add_language(action)


def _add_credentials(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--jwks", type=Path, metavar="FILE", help="cli.help.client.jwks")
    which.add_argument("--secret-file", type=Path, metavar="FILE", help="cli.help.client.secret-file")


def _read_credentials(args: argparse.Namespace) -> tuple[Any | None, str | None]:
    if args.jwks is None:
        return None, file_text(args, args.secret_file).strip()
    try:
        return json.loads(file_text(args, args.jwks)), None
    except json.JSONDecodeError as exc:
        raise usage(args, "cli.client.jwks-not-json", path=args.jwks, line=exc.lineno, column=exc.colno) from exc


def _store(args: argparse.Namespace, reading: bool = True) -> Any:
    """The archive the command works on; only ``client add`` may make one (registering the
    first client before the first ``serve``), the others refuse a path where there is none."""
    from gateway.storage import open_store

    config = config_of(args, reading=reading)
    return open_store(config.database_url, busy_timeout_s=config.sqlite_busy_timeout_seconds)


def run_add(args: argparse.Namespace, out: IO[str]) -> int:
    jwks, secret = _read_credentials(args)
    store = _store(args, reading=False)
    try:
        added = _register(store, args, jwks, secret)
    finally:
        store.close()
    if not added:
        raise usage(args, "cli.client.already-registered", id=args.id)
    out.write(text("cli.client.registered", args.lang, {"id": args.id, "org": args.org, "role": args.role}) + "\n")
    return EXIT_OK


def _register(store: Any, args: argparse.Namespace, jwks: Any | None, secret: str | None) -> bool:
    from gateway.security import clients

    try:
        return clients.register(store, args.id, args.org, args.role, args.scope, jwks, secret)
    except RegistrationError as exc:
        raise UsageError(exc.text(args.lang)) from exc


def run_list(args: argparse.Namespace, out: IO[str]) -> int:
    store = _store(args)
    try:
        with store.reading() as tx:
            rows = tx.security.clients()
    finally:
        store.close()
    out.write("id\torganization\trole\tstatus\tauth\tscopes\tcreated\trotated\n")
    for row in rows:
        method = "private_key_jwt" if row.jwks else "client_secret_basic"
        fields = (row.id, row.organization, row.role, row.status, method, row.scopes, row.created, row.rotated or "-")
        out.write("\t".join(fields) + "\n")
    return EXIT_OK


def run_rotate(args: argparse.Namespace, out: IO[str]) -> int:
    jwks, secret = _read_credentials(args)
    try:
        keys, secret_hash = credentials(jwks, secret)
    except RegistrationError as exc:
        raise UsageError(exc.text(args.lang)) from exc
    store = _store(args)
    try:
        with store.transaction() as tx:
            _check_not_revoked(args, tx.security.client(args.id))
            done = tx.security.rotate(args.id, keys, secret_hash)
    finally:
        store.close()
    return _changed(args, out, done, "cli.client.rotated")


def _check_not_revoked(args: argparse.Namespace, row: Any | None) -> None:
    """A revoked client stays revoked (nothing restores it): new credentials would let it in
    no more, and "credentials replaced" read as if it could connect again.  Refused as a
    client ``add`` of a registered id is, saying what to do instead, and nothing is changed."""
    if row is not None and row.status == "revoked":
        raise usage(args, "cli.client.rotate-revoked", id=args.id)


def run_revoke(args: argparse.Namespace, out: IO[str]) -> int:
    store = _store(args)
    try:
        with store.transaction() as tx:
            done = tx.security.revoke(args.id)
    finally:
        store.close()
    return _changed(args, out, done, "cli.client.revoked")


def _changed(args: argparse.Namespace, out: IO[str], done: bool, message_id: str) -> int:
    """The line a rotation or revocation ends with, one wording for both; an id no client has
    is wrong data in a well-formed command, so exit 1 rather than a usage error."""
    said = message_id if done else "cli.client.unknown"
    out.write(text(said, args.lang, {"id": args.id}) + "\n")
    return EXIT_OK if done else EXIT_INVALID
