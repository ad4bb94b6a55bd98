"""``yiyang audit verify [--database URL] [--anchor SEQ:HASH …]``: prove the audit trail's hash chain.

Exit 0 with one line (how many events, the first and last time, the head's seq and hash) when
every link holds; exit 1 naming the first broken link — its seq and what differs — when an event
was edited, deleted or inserted in the table.  The chain alone cannot show a trail cut off at its
newest end, or rewritten whole with every hash recomputed: an operator keeps the printed head
somewhere the database's writers cannot reach, and passes the heads kept from earlier runs as
``--anchor``; each must still be in the chain, unchanged.
"""

from __future__ import annotations

import argparse
from typing import IO, Any

from gateway.cli.common import EXIT_INVALID, EXIT_OK, Parser, add_database, config_of


def register(commands: Any) -> None:
    audit = commands.add_parser("audit", help="work with the audit trail")
    actions = audit.add_subparsers(dest="action", required=True, parser_class=Parser)
    verify = actions.add_parser("verify", help="check that no audit event was edited, deleted or inserted")
    add_database(verify)
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        type=_anchor,
        metavar="SEQ:HASH",
        help="a head printed by an earlier run, kept elsewhere: it must still be in the chain (repeatable)",
    )
    verify.set_defaults(run=run_verify)


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or int(seq) < 1 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise argparse.ArgumentTypeError(f"{text!r} is not SEQ:HASH (a seq from 1 and a 64-digit hex SHA-256)")
    return int(seq), digest


def _anchors(given: list[tuple[int, str]]) -> dict[int, str]:
    """The kept heads by seq; two different hashes kept for one seq cannot both be right."""
    from gateway.cli.common import UsageError

    anchors: dict[int, str] = {}
    for seq, digest in given:
        if anchors.setdefault(seq, digest) != digest:
            raise UsageError(f"--anchor gives two hashes for seq {seq}")
    return anchors


def run_verify(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.security.audit import verify
    from gateway.storage import open_store

    store = open_store(config_of(args).database_url)
    try:
        verdict = verify(store, _anchors(args.anchor))
    finally:
        store.close()
    if verdict.intact:
        if verdict.events == 0:
            out.write("audit trail intact: no events\n")
        else:
            out.write(
                f"audit trail intact: {verdict.events} events, {verdict.first} … {verdict.last}; "
                f"head {verdict.head_seq}:{verdict.head_hash}\n"
            )
        return EXIT_OK
    out.write(
        f"audit trail BROKEN at seq {verdict.broken_seq}: {verdict.problem} "
        f"({verdict.events} events before it verified)\n"
    )
    return EXIT_INVALID
