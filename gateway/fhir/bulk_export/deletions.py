"""The ``deleted`` output of an incremental export: what it would have held but was deleted
or left it since ``_since``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

from gateway.fhir.bulk_export.batches import _batches, _unless_halted
from gateway.fhir.bulk_export.job_run import _JobRun
from gateway.fhir.bulk_export.naming import (
    _may_name_by_number,
    _names_any,
)
from gateway.fhir.bulk_export.people import (
    _among,
    _person_ids,
)
from gateway.fhir.bulk_export.provenance import (
    PROVENANCE,
    _targeted,
    _targets,
)
from gateway.fhir.bulk_export.supporting import (
    _outside_types,
    _written_names,
)
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.security.access import current_content
from gateway.storage.store import Stored


def _deleted(run: _JobRun, since: str, exported: frozenset[tuple[str, str]]) -> Iterator[str]:
    """The resources the job would have exported but that were deleted after its
    ``_since`` (the IG's ``deleted``), by reference.  For a Patient or Group export each is
    judged by its contents before the deletion (each version since ``_since``: see below)
    as :func:`_selected` judges: in the
    compartment of one of the export's people (whoever else it names: a reading of a
    Group member whose focus is someone outside the Group was exported, so its deletion
    is listed) and, for an elderly-care client, concerning only people it serves.

    A Patient or Group export also lists what has left it since without being deleted: a
    resource changed after ``_since`` that this job did not export (``exported``) although
    a version of it since ``_since`` was the export's (a reading filed under a resident and
    moved to someone else's record, or one that now names someone the client does not
    serve).  The platform's copy may hold that version from its earlier export, and nothing
    else would ever tell it to drop it: its copy would keep another person's reading as
    its resident's.  Not only the version current at ``_since`` is judged: the earlier
    export read the archive after its kick-off, and may have sent a version written in
    between; a deletion listed for something the copy never held is harmless.

    Without ``_type`` it lists as well what it sent along outside the compartment and is
    deleted since (:func:`_supporting_deleted`)."""
    tx, job, access = run.tx, run.job, run.access
    if job.scope == "system":
        yield from (gone.reference for gone in tx.resources.deleted_since(job.types, since))
        # changed since, of a type _typeFilter filters, and no search keeps it any more:
        # the client's copy of its earlier version must go
        if filtered := sorted({search.kind for search in job.type_filters}):
            changed = tx.resources.current(filtered, since)
            yield from (stored.reference for stored in changed if (stored.type, stored.id) not in exported)
        return
    served = access.served_people(tx) if access.restricted else None
    chosen = _person_ids(tx, job)
    people, holder, read = _among(chosen, None), access.holder(tx), current_content(tx)
    # the records of the export's people some version of a Provenance targeted, and those
    # of them it lists as deleted (Provenances are judged after every other type)
    targeted, records, gone = _targeted(run.personal, job), run.people(), set[tuple[str, str]]()
    ours: set[tuple[str, str]] = set()

    def note_targets(versions: Iterable[Sequence[Stored]]) -> None:
        """Note which records the Provenance versions among ``versions`` target are the
        people's: one statement on the index for them all."""
        keys = [
            key
            for found in versions
            for version in found
            if version.type == PROVENANCE
            for key in _targets(version.resource)
        ]
        ours.update(tx.resources.in_compartment(keys, targeted, records, IDENTIFIED_PEOPLE), gone.intersection(keys))

    def held(stored: Stored) -> bool:
        """Whether this version was one the export holds.  Of a chosen few people (a
        Group's), one whose text names none of them and no one by number is not indexed
        to learn so.  A Provenance is held, too, if it targeted a record of theirs
        (:func:`_provenances_since`)."""
        return (
            stored.resource is not None
            and (
                (stored.type == PROVENANCE and not ours.isdisjoint(_targets(stored.resource)))
                or (
                    (
                        chosen is None
                        or stored.type == "Patient"
                        or _names_any(stored, people)
                        or _may_name_by_number(stored)
                    )
                    and run.personal.in_compartment_of(stored.resource, people, holder)
                )
            )
            and (served is None or run.personal.concerns_only(stored.resource, served.__contains__, holder, read))
        )

    # what an export without _type sent along outside the compartment and is deleted
    # since (mostly nothing): listed if a version the export held referred to it
    targets = _supporting_deleted(run, since) if job.types is None else frozenset()
    named: set[str] = set()

    def held_since(latest: Stored, versions: Sequence[Stored]) -> bool:
        """Whether a version of ``versions`` (from the one current at ``_since`` on) before
        ``latest`` was one the export holds; what such versions referred to among
        ``targets`` is named."""
        found = False
        for version in filter(held, (version for version in versions if version.version < latest.version)):
            found = True
            if not targets:
                break
            named.update(f"{kind}/{key}" for kind, key in _written_names(run, version))
        return found

    # their versions since are read BATCH resources at a time, a statement per type
    kinds = job.types or sorted(run.personal.compartment)
    # a Provenance's deletion is judged after its targets' (``gone``), in batches of its own
    order = ([kind for kind in kinds if kind != PROVENANCE], [PROVENANCE] if PROVENANCE in kinds else [])
    deletions = (_batches(tx.resources.deleted_since(some, since)) for some in order if some)
    for batch in itertools.chain.from_iterable(deletions):
        _unless_halted(run.halt)
        earlier = tx.resources.versions_since([(deleted.type, deleted.id) for deleted in batch], since)
        note_targets(earlier.values())
        for deleted in batch:
            if held_since(deleted, earlier.get((deleted.type, deleted.id), ())):
                if deleted.type in targeted:
                    gone.add((deleted.type, deleted.id))
                yield deleted.reference
    for batch in _batches(tx.resources.current(kinds, since)):
        _unless_halted(run.halt)
        # one exported again is asked only for the targets an earlier version may have named
        asked = [changed for changed in batch if targets or (changed.type, changed.id) not in exported]
        earlier = tx.resources.versions_since([(changed.type, changed.id) for changed in asked], since)
        note_targets(earlier.values())
        for changed in asked:
            key = (changed.type, changed.id)
            if held_since(changed, earlier.get(key, ())) and key not in exported:
                yield changed.reference
    yield from sorted(targets & named)


def _supporting_deleted(run: _JobRun, since: str) -> frozenset[str]:
    """The resources outside the Patient compartment deleted after ``since``, by reference:
    what a Patient or Group export without ``_type`` may have sent along and must now list
    as deleted, if a version it held referred to them.  The archive refuses to delete
    what a current resource refers to (``Repository.check_unreferenced``), so the referrers
    are among the resources changed or deleted since, whose versions :func:`_deleted`
    reads anyway."""
    return frozenset(
        gone.reference
        for gone in run.tx.resources.deleted_since(_outside_types(run.resource_types, run.personal), since)
    )
