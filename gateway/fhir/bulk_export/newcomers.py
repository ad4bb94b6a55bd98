"""The newcomers of an incremental Patient or Group export: people it sends in full (their
older records were hidden from the previous export), and the records naming them."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.fhir.bulk_export.job import Job
from gateway.fhir.bulk_export.people import (
    _active_members,
    _among,
    _members,
    _person_ids,
)
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.security.access import Access, PersonalData
from gateway.storage.resources import Referrers
from gateway.storage.store import Stored, Transaction


def _newcomers(tx: Transaction, job: Job, access: Access) -> frozenset[str]:
    """The people a Patient or Group export with ``_since`` sends in full: someone the
    client has begun to serve, or the Group has taken in, since its last export (their
    older records were not in it)."""
    if job.scope == "system" or job.since is None:
        return frozenset()
    return access.newly_served_people(tx, job.since) | _joined(tx, job.scope, job.since)


def _naming_newcomers(
    personal: PersonalData,
    tx: Transaction,
    job: Job,
    access: Access,
    members: dict[str, list[str]],
    served: frozenset[str] | None,
    newcomers: frozenset[str],
) -> Iterator[Stored]:
    """The records of the export's people that name a newcomer outside their compartment
    (a resident's Observation whose ``focus`` is someone the client has begun to serve, by
    id or by a number the newcomer holds): hidden from the previous export for naming
    someone it did not serve, visible now, and unchanged since, so neither the resident's
    ``_since`` nor the newcomer's compartment finds them.  Found by key in the index: the
    newcomer's reference rows and the rows of their numbers (``person_key`` by holder)."""
    naming = {kind: personal.references[kind] for kind in members if kind in personal.references}
    ours, holder = _among(_person_ids(tx, job), served), access.holder(tx)
    for person in sorted(newcomers):
        records = Referrers("Patient", person, naming, identified=IDENTIFIED_PEOPLE)
        yield from (
            stored
            for stored in access.among_served(tx, tx.resources.referrers(records))
            if stored.resource is not None and personal.in_compartment_of(stored.resource, ours, holder)
        )


def _joined(tx: Transaction, scope: str, since: str) -> frozenset[str]:
    """The people a Group export's Group names now but did not at ``since`` (its version
    then, from the history): every one of them if the Group did not exist yet."""
    if not scope.startswith("Group/"):
        return frozenset()
    then = tx.resources.as_of("Group", scope.removeprefix("Group/"), since)
    before = set(_active_members(then.resource, since)) if then is not None and then.resource else set()
    return frozenset(person for person in _members(tx, scope) if person not in before)
