"""Storage: one interface (``store.py``), two databases, versioned migrations.

The only package that imports database drivers.  ``open_store(url)`` takes
``sqlite:///PATH`` (the embedded default) or ``postgresql://…`` and returns a store whose
schema is up to date.
"""

from __future__ import annotations

import re

from gateway.config import Config
from gateway.storage.store import Indexer, Store, StoreError

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


def open_store(
    url: str,
    indexer: Indexer | None = None,
    *,
    upgrade: bool = True,
    connections: int = 4,
    busy_timeout_s: int = Config.sqlite_busy_timeout_seconds,
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
