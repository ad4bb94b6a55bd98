"""``yiyang audit verify [--database URL] [--anchor SEQ:HASH …] [--lang zh-CN|en]``: prove the audit
trail's hash chain.

Exit 0 with one line (how many events, the first and last time, the head's seq and hash) when
every link holds; exit 1 naming the first broken link — its seq and what differs — when an event
was edited, deleted or inserted in the table.  The chain alone cannot show a trail cut off at its
newest end, or rewritten whole with every hash recomputed: an operator keeps the printed head
somewhere the database's writers cannot reach, and passes the heads kept from earlier runs as
``--anchor``; each must still be in the chain, unchanged.  The head is the line's last word in
either language, so a script keeps it without reading the rest.
"""

from __future__ import annotations

import argparse
from typing import IO, TYPE_CHECKING, Any

from gateway.cli.common import EXIT_INVALID, EXIT_OK, Parser, add_database, add_language, config_of, usage
from gateway.messages import text
from gateway.search.values import ascii_digits

if TYPE_CHECKING:
    from gateway.security.audit import Verdict


def register(commands: Any) -> None:
    audit = commands.add_parser("audit", help="cli.help.audit")
    actions = audit.add_subparsers(dest="action", required=True, parser_class=Parser)
    verify = actions.add_parser("verify", help="cli.help.audit.verify")
    add_database(verify)
    add_language(verify)
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="cli.help.audit.verify.anchor",
    )
    verify.set_defaults(run=run_verify)


def _anchor(args: argparse.Namespace, given: str) -> tuple[int, str]:
    """One kept head.  Checked here rather than as an argparse type, which would word the
    error before ``--lang`` is known; still before the store is opened."""
    seq, _, digest = given.partition(":")
    if not ascii_digits(seq) or int(seq) < 1 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise usage(args, "cli.audit.bad-anchor", anchor=given)
    return int(seq), digest


def _anchors(args: argparse.Namespace) -> dict[int, str]:
    """The kept heads by seq; two different hashes kept for one seq cannot both be right."""
    anchors: dict[int, str] = {}
    for seq, digest in (_anchor(args, given) for given in args.anchor):
        if anchors.setdefault(seq, digest) != digest:
            raise usage(args, "cli.audit.anchor-conflict", seq=seq)
    return anchors


def run_verify(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.security.audit import verify
    from gateway.storage import open_store

    anchors = _anchors(args)
    config = config_of(args, reading=True)
    store = open_store(config.database_url, busy_timeout_s=config.sqlite_busy_timeout_seconds)
    try:
        verdict = verify(store, anchors)
    finally:
        store.close()
    message_id, params = _said(verdict)
    out.write(text(message_id, args.lang, params) + "\n")
    return EXIT_OK if verdict.intact else EXIT_INVALID


def _said(verdict: Verdict) -> tuple[str, dict[str, object]]:
    """The message id and values of the one line a verification prints."""
    if not verdict.intact:
        return "cli.audit.broken", {"seq": verdict.broken_seq, "problem": verdict.problem, "events": verdict.events}
    if verdict.events == 0:
        return "cli.audit.intact-empty", {}
    found = {"events": verdict.events, "first": verdict.first, "last": verdict.last}
    return "cli.audit.intact", {**found, "seq": verdict.head_seq, "hash": verdict.head_hash}
