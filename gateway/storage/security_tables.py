"""The tables authentication keeps in the store (see migrations/0004_clients.sql): the client
registry, the assertion ids already used, and the server's signing key.

They live in the store so every gunicorn worker (and ``yiyang client`` in another process)
sees one registry: a client revoked from the command line is refused by every worker once it
re-reads the status (``client_status_ms``, a second by default).  The rules (what a valid registration or assertion is) stay in
``gateway/security``; these classes only read and write rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.search.values import format_instant
from gateway.storage.resources import now_instant
from gateway.storage.store import Executor

_COLUMNS = "id, organization, role, scopes, jwks, secret_hash, status, created, rotated"


@dataclass(frozen=True, slots=True)
class ClientRow:
    """One registered client as stored."""

    id: str
    organization: str
    role: str
    scopes: str
    jwks: dict[str, Any] | None
    secret_hash: str | None
    status: str
    created: str
    rotated: str | None


def instant_of(epoch: float) -> str:
    """Seconds since the epoch in the store's fixed-width instant form (text order = time order)."""
    return format_instant(datetime.fromtimestamp(epoch, UTC))


class SecurityTables:
    """Clients, used assertion ids and server keys, on one transaction."""

    def __init__(self, sql: Executor) -> None:
        self.sql = sql

    # -- clients -----------------------------------------------------------------------------
    def client(self, client_id: str) -> ClientRow | None:
        row = self.sql.one(f"SELECT {_COLUMNS} FROM client WHERE id = ?", (client_id,))
        return self._row(row) if row else None

    def client_status(self, client_id: str) -> str | None:
        """Only the status: the one query an authenticated request makes once the worker's
        trust in the client has lapsed (a revoked client's tokens must stop working within
        ``client_status_ms``, not when they expire)."""
        row = self.sql.one("SELECT status FROM client WHERE id = ?", (client_id,))
        return row[0] if row else None

    def acts_for(self, organization: str) -> bool:
        """Whether a client, revoked or not, is registered for ``organization``."""
        return self.sql.one("SELECT 1 FROM client WHERE organization = ? LIMIT 1", (organization,)) is not None

    def clients(self) -> list[ClientRow]:
        return [self._row(row) for row in self.sql.all(f"SELECT {_COLUMNS} FROM client ORDER BY id")]

    def put_client(
        self,
        client_id: str,
        organization: str,
        role: str,
        scopes: str,
        jwks: dict[str, Any] | None,
        secret_hash: str | None,
    ) -> bool:
        """Register a client; False when the id is taken (registration never overwrites)."""
        row = self.sql.one(
            f"INSERT INTO client ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, NULL) "
            "ON CONFLICT (id) DO NOTHING RETURNING id",
            (
                client_id,
                organization,
                role,
                scopes,
                self.sql.dialect.json_in(jwks) if jwks is not None else None,
                secret_hash,
                now_instant(),
            ),
        )
        return row is not None

    def rotate(self, client_id: str, jwks: dict[str, Any] | None, secret_hash: str | None) -> bool:
        """Replace the client's credentials (keys or secret; the other is removed)."""
        row = self.sql.one(
            "UPDATE client SET jwks = ?, secret_hash = ?, rotated = ? WHERE id = ? RETURNING id",
            (self.sql.dialect.json_in(jwks) if jwks is not None else None, secret_hash, now_instant(), client_id),
        )
        return row is not None

    def revoke(self, client_id: str) -> bool:
        row = self.sql.one("UPDATE client SET status = 'revoked' WHERE id = ? RETURNING id", (client_id,))
        return row is not None

    def _row(self, row: Any) -> ClientRow:
        jwks = self.sql.dialect.json_out(row[4]) if row[4] is not None else None
        return ClientRow(row[0], row[1], row[2], row[3], jwks, row[5], row[6], row[7], row[8])

    # -- assertion ids -----------------------------------------------------------------------
    def use_assertion(self, client_id: str, jti: str, expires: float) -> bool:
        """Record an assertion id as used; False when it was used before (a replay).  One
        INSERT decides it, so two workers racing with the same assertion cannot both win."""
        self.sql.execute("DELETE FROM client_assertion WHERE expires < ?", (now_instant(),))
        row = self.sql.one(
            "INSERT INTO client_assertion (client_id, jti, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (client_id, jti) DO NOTHING RETURNING jti",
            (client_id, jti, instant_of(expires)),
        )
        return row is not None

    # -- server keys -------------------------------------------------------------------------
    def server_key(self, name: str, fresh: str) -> str:
        """The key called ``name``; ``fresh`` becomes it when there is none yet (the first
        worker to ask wins, the others read the winner's)."""
        self.sql.execute(
            "INSERT INTO server_key (name, secret, created) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
            (name, fresh, now_instant()),
        )
        row = self.sql.one("SELECT secret FROM server_key WHERE name = ?", (name,))
        return str(row[0]) if row else fresh
