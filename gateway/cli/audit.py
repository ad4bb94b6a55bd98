"""``yiyang audit verify [--database URL]``: prove the audit trail's hash chain.

Exit 0 with one line (how many events, the first and last time) when every link holds; exit 1
naming the first broken link — its seq and what differs — when an event was edited, deleted or
inserted in the table.  Only the trail's head can be cut off unnoticed by the chain alone, so
the summary prints the head's seq and hash for an operator to keep elsewhere.
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
    verify.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.security.audit import verify
    from gateway.storage import open_store

    store = open_store(config_of(args).database_url)
    try:
        verdict = verify(store)
    finally:
        store.close()
    if verdict.intact:
        if verdict.events == 0:
            out.write("audit trail intact: no events\n")
        else:
            out.write(f"audit trail intact: {verdict.events} events, {verdict.first} … {verdict.last}\n")
        return EXIT_OK
    out.write(
        f"audit trail BROKEN at seq {verdict.broken_seq}: {verdict.problem} "
        f"({verdict.events} events before it verified)\n"
    )
    return EXIT_INVALID
