"""Stored bodies written before request bodies were localised, localised as a write is now.

Why: since 806e531 a write rewrites each reference on the gateway's own base
(``http://…/fhir/Patient/x``) as the relative one (``Patient/x``) before it is stored
(:func:`~gateway.fhir.archive_references.localise`).  A resource stored before then may keep
the absolute spelling, which the search index reads as another server's: a search by the
relative reference, ``$everything`` and the check that keeps a delete from pulling a target
out from under its referrers all miss it.  Reading such references as local in the indexer
instead was a security fault (what the index reads as ours must be what the write checks
read as ours), so the mend goes through the write path's own ``localise`` and nothing else.

Each resource it changes gets a new version, written by the store's write primitive as an
update is (its index rows made anew from the new body, its owner kept): the version a client
wrote stays in the history as it was written, a version's content never changes under its
ETag, and an incremental export (``--since``, ``$export?_since``) passes the change on.
Older versions are left as they are.

A rewrite must pass what its creator's write would meet today: the index then reads the
references as ours, and the checks of whom and for whom a client writes never read them
(the absolute spelling slipped past them, which was the fault 806e531 closed).  A stay an
elderly-care platform stored naming ``{base}/Patient/li``, mended, would make it serve 李.
So the rewrite is judged (:func:`as_its_creator`) as an update by each client of the
organisation that created the resource; one any of them would be refused stays as stored,
and the run names it for review (the operator decides: a PUT of the relative form, as the
operator, stores it).  What no one is recorded to have created (the operator's writes, and
any client's before creators were recorded, migration 9) is held back the same way unless the
operator, having reviewed the list, asks for it to be rewritten (``--trust-unowned``).

A conditional reference on the own base (``http://…/fhir/Patient?identifier=…``) is left as
stored: a write resolves the relative form, or refuses it unresolved, and a stored body has
no write left to do either; the index reads it as no resource of the archive either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.fhir.archive_references import localise
from gateway.fhir.errors import FhirError
from gateway.fhir.repository import check_authorised
from gateway.security.access import OPERATOR, Access, PersonalData
from gateway.security.principal import Principal, acting
from gateway.storage.store import Store, Stored, Transaction

#: resources read per batch, and so at most rewritten per write transaction
BATCH = 500


#: whether a current version may be stored again as the localised body given
Allowed = Callable[[Stored, dict[str, Any]], bool]
#: the :data:`Allowed` of one batch, made in its rewrite's transaction: what every resource
#: of the batch is judged by (the registered clients) is read there once
Judge = Callable[[Transaction], Allowed]


@dataclass(frozen=True)
class Localised:
    """What a run did: the current resources it read, those it wrote a new version of, and
    those it left as stored since their creator could not write them so (``Type/id``)."""

    scanned: int
    rewritten: int
    held: tuple[str, ...] = ()


def localise_archive(store: Store, base_url: str, judge: Judge, batch: int = BATCH) -> Localised:
    """Every current resource whose body holds a reference ``localise`` rewrites on
    ``base_url``, stored again with that reference relative, if ``judge`` allows.  Read
    ``batch`` at a time, each batch's rewrites one transaction of their own, so a server may
    keep serving meanwhile and an interrupted run leaves whole batches done; run again, it
    finds nothing left to do but what it held back."""
    scanned = rewritten = 0
    held: list[str] = []
    after: tuple[str, str] | None = None
    while True:
        with store.reading(snapshot=False) as tx:
            keys = tx.resources.keys_after(after, None, batch)
        if not keys:
            return Localised(scanned, rewritten, tuple(held))
        with store.reading(snapshot=False) as tx:
            found = tx.resources.read_many(keys)
        scanned += len(found)
        stale = [key for key, stored in found.items() if _localised(stored, base_url) is not None]
        if stale:
            written, kept = store.atomically(lambda tx, stale=stale: _rewrite(tx, stale, base_url, judge))
            rewritten, held = rewritten + written, held + kept
        after = keys[-1]


def _rewrite(tx: Transaction, keys: Sequence[tuple[str, str]], base_url: str, judge: Judge) -> tuple[int, list[str]]:
    """The resources of ``keys`` written anew, localised, as read now holding their rows (a
    write since the batch was read may have localised or deleted one already); returns how
    many were written, and those ``judge`` kept as stored."""
    written, held = 0, []
    allowed = judge(tx)
    for kind, resource_id in keys:
        current = tx.resources.read(kind, resource_id, for_update=True)
        mended = _localised(current, base_url) if current is not None else None
        if current is None or mended is None:
            continue
        if allowed(current, mended):
            tx.resources.write(mended, method="PUT", current=current)
            written += 1
        else:
            held.append(f"{kind}/{resource_id}")
    return written, held


def as_its_creator(personal: PersonalData, trust_unowned: bool = False) -> Judge:
    """A rewrite is allowed when every client of the organisation that created the resource
    may write it so (:func:`~gateway.fhir.repository.check_authorised`, as an update of the
    stored version; ``personal`` says which resources concern whom):
    which of them wrote it is not recorded.  One created by an organisation none of whose
    clients is registered is held back, as no one can say what its writer might name.

    A resource with no recorded creator is held back too unless ``trust_unowned``: the
    operator's writes record none, but so did every client's before creators were recorded
    (migration 9), and a platform's stay of that time naming ``{base}/Patient/li``, mended,
    would make it serve 李.  The operator, having reviewed what the run lists, says so.

    The registered clients are read once a batch, in its transaction, not once a resource."""

    def judge(tx: Transaction) -> Allowed:
        # organisation → the principals of its clients, but the operator's: an operator's
        # client writes anything, and only says the organisation has a client registered
        writers: dict[str, list[Principal]] = {}
        for client in tx.security.clients():
            principals = writers.setdefault(client.organization, [])
            if client.role != OPERATOR:
                principals.append(
                    Principal(client.id, client.organization, frozenset(client.scopes.split()), client.role)
                )

        def allowed(stored: Stored, mended: dict[str, Any]) -> bool:
            creator = tx.resources.owner(stored.type, stored.id)
            if creator is None:
                return trust_unowned
            if creator not in writers:
                return False
            for writer in writers[creator]:
                token = acting.set(writer)  # whom the owner checks judge
                try:
                    check_authorised(tx, Access(writer, personal), mended, stored)
                except FhirError:
                    return False
                finally:
                    acting.reset(token)
            return True

        return allowed

    return judge


def _localised(stored: Stored, base_url: str) -> dict[str, Any] | None:
    """The body of a current version with its own-base references localised, or None when
    there is nothing to localise (or it is deleted)."""
    if stored.deleted or stored.resource is None:
        return None
    mended = orjson.loads(stored.json())  # a copy: localise rewrites in place
    localise(mended, base_url, conditions=False)
    return mended if mended != stored.resource else None
