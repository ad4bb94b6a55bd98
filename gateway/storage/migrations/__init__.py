"""Versioned schema migrations: ``NNNN_name.sql`` files applied in order, each exactly once.

A store records the versions it has in ``schema_migration``; :func:`apply` runs the missing
ones, each in its own transaction with its version row, so an interrupted upgrade leaves the
store at the last whole version and the next upgrade goes on from there; processes upgrading
one store at once take turns migration by migration (``Dialect.schema_lock``).  A migration is
written once for both databases, with ``{json}``, ``{bool}``, ``{serial}`` and ``{real}`` for
the column types that differ (see ``dialect.py``); where the statements themselves differ (SQLite
cannot change a column's type), once per database: ``NNNN_name.sqlite.sql`` and
``NNNN_name.postgresql.sql``.  A new text column that is compared or sorted is ``{bytewise}``:
text compares by code point on both databases (0012), whatever collation a PostgreSQL
database was created with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.messages import Worded
from gateway.storage.store import Executor, StoreError

FOLDER = Path(__file__).parent


DATABASES = ("sqlite", "postgresql")


def available(database: str) -> list[tuple[int, Path]]:
    """The migrations of ``database`` (a dialect's name), in order: each version's file for
    both databases, or the one written for this database."""
    found = []
    for path in sorted(FOLDER.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        written_for = path.suffixes[-2][1:] if len(path.suffixes) > 1 else None
        if written_for in (None, database):
            found.append((int(path.name[:4]), path))
    return found


LATEST = available(DATABASES[0])[-1][0]


class SchemaTooNew(Worded, StoreError):
    """The archive's schema is newer than this software's: a newer gateway has upgraded it,
    and this one would read and write tables it does not know as if it did (``db upgrade``
    said "11 → 11" and the commands went on)."""

    def __init__(self, have: int, latest: int) -> None:
        Worded.__init__(self, "store.schema-too-new", have=have, latest=latest)
        StoreError.__init__(self, str(self))


def current_version(sql: Executor) -> int:
    sql.execute("CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)")
    row = sql.one("SELECT MAX(version) FROM schema_migration")
    return int(row[0]) if row and row[0] is not None else 0


@dataclass(frozen=True)
class Upgrade:
    """What one upgrade did: the version it found once it held the schema lock (another
    process's upgrade it waited for counts as before it) and the migrations it applied
    itself, not those another process applied meanwhile."""

    before: int
    applied: list[int]


def apply(sql: Executor, target: int = LATEST) -> Upgrade:
    applied: list[int] = []
    _begin(sql)
    try:
        have = current_version(sql)
    finally:
        sql.execute("COMMIT")
    if have > LATEST:
        raise SchemaTooNew(have, LATEST)
    for version, path in available(sql.dialect.name):
        if version <= have or version > target:
            continue
        _begin(sql)
        try:
            if current_version(sql) >= version:  # another process upgraded meanwhile
                sql.execute("ROLLBACK")
                continue
            for statement in statements(sql.dialect.ddl(path.read_text(encoding="utf-8"))):
                sql.execute(statement)
            sql.execute(
                "INSERT INTO schema_migration (version, applied) VALUES (?, ?)",
                (version, datetime.now(UTC).isoformat(timespec="seconds")),
            )
        except BaseException:
            sql.execute("ROLLBACK")
            raise
        sql.execute("COMMIT")
        applied.append(version)
    return Upgrade(have, applied)


def _begin(sql: Executor) -> None:
    """A transaction that may change the schema, begun when no other process's is open."""
    sql.execute(sql.dialect.begin)
    if sql.dialect.schema_lock is not None:
        sql.execute(sql.dialect.schema_lock)


def statements(script: str) -> list[str]:
    """The statements of a migration (they hold no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
