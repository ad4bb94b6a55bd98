"""Storage: one interface (``store.py``), two databases, versioned migrations.

The only package that imports database drivers.  ``open_store(url)`` takes
``sqlite:///PATH`` (the embedded default) or ``postgresql://…`` and returns a store whose
schema is up to date.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote, unquote

from gateway.storage.store import Indexer, Store, StoreError

SQLITE_PREFIX = "sqlite:///"
#: seconds a SQLite connection waits for another process's lock on the database (its write
#: lock, an upgrade's, a checkpoint's) before it fails with "database is locked": two ingests
#: into one store take turns instead of quarantining good records.  The configuration's
#: default (``Config.sqlite_busy_timeout_seconds``), owned here so the store needs no config
SQLITE_BUSY_TIMEOUT_SECONDS = 60

#: a password libpq takes as a parameter of the URL's query (``password``, ``sslpassword``)
_QUERY_PASSWORD = re.compile(r"([?&][^=&#]*password=)[^&#]*", re.IGNORECASE)


def displayable_url(url: str) -> str:
    """A database URL fit for a message or a log: its password never leaves the process,
    whether written before the host or, as libpq also takes it, in the query.  A SQLite
    path is shown as it is (an ``@`` or ``:`` in a file name is no password)."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower().startswith("sqlite"):
        return url
    credentials, at, host = rest.rpartition("@")
    shown = f"{scheme}://{credentials.split(':')[0]}{at}{host}" if at else url
    return _QUERY_PASSWORD.sub(r"\1***", shown)


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///PATH`` URL names (``sqlite:////data/a.sqlite`` an absolute
    path), its path percent-decoded as UTF-8 as a URL's is: ``%20`` named a file literally
    called ``%20``.  A space or 汉字 written as it is stays itself.  ValueError when an escape
    spells no UTF-8 (``%FF``)."""
    return Path(unquote(url.removeprefix(SQLITE_PREFIX), errors="strict"))


def sqlite_url(path: Path | str) -> str:
    """The URL naming the SQLite file at ``path``, escaped so that :func:`sqlite_path` reads
    that path back (a folder called ``a%20b`` stays itself)."""
    return SQLITE_PREFIX + quote(str(path))


def open_store(
    url: str,
    indexer: Indexer | None = None,
    *,
    upgrade: bool = True,
    connections: int = 4,
    busy_timeout_s: int = SQLITE_BUSY_TIMEOUT_SECONDS,
) -> Store:
    """The store ``url`` names, its schema upgraded unless ``upgrade`` is false.  On PostgreSQL
    it holds at most ``connections`` at once (SQLite writes through one connection a process,
    and reads through one a thread); on SQLite a connection waits ``busy_timeout_s`` for
    another process's lock (``YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS``)."""
    if url.startswith("sqlite://"):
        from gateway.storage.sqlite import SQLiteStore

        store: Store = SQLiteStore(url, indexer, busy_timeout_s=busy_timeout_s)
    elif url.startswith(("postgresql://", "postgres://")):
        from gateway.storage.postgres import PostgresStore

        store = PostgresStore(url, indexer, pool_size=connections)
    else:
        raise StoreError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://…")
    if upgrade:
        store.upgrade()
    return store
