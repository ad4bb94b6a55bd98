"""The Provenances a Patient or Group export holds: those whose ``target`` is one of the
records it exports (IG v2)."""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from typing import Any

from gateway.fhir.bulk_export.batches import _batches, _unless_halted
from gateway.fhir.bulk_export.job import Job
from gateway.fhir.bulk_export.job_run import _JobRun
from gateway.search.indexer import referenced_key
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.search.query import Include, SearchQuery
from gateway.security.access import PersonalData
from gateway.storage.store import Stored

PROVENANCE = "Provenance"
#: the Provenances of a batch of records, found as ``_revinclude=Provenance:target`` finds them
_PROVENANCE_OF = SearchQuery(PROVENANCE, revinclude=[Include(PROVENANCE, ("target",))])


def _provenances(run: _JobRun, written: Sequence[Stored]) -> list[Stored]:
    """The Provenances targeting records a Patient or Group export has just written, that it
    holds (its client may read them, ``_typeFilter`` keeps them): one statement on the
    ``target`` index rows of the batch.  The IG (v2) has such an export hold every Provenance
    whose target is in the Patient compartment; the compartment's own parameter finds only
    those targeting a Patient, which the export's people bring along already (and which are
    not asked again here)."""
    records = [stored for stored in written if stored.type not in ("Patient", PROVENANCE)]
    return run.kept(run.tx.resources.included(_PROVENANCE_OF, records)) if records else []


def _targets(resource: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What a Provenance (a version of it: ``None`` once deleted) targets, as (type, id), read
    as the index reads its ``target`` references."""
    targets = resource.get("target", []) if resource else []
    return [key for target in targets if isinstance(target, dict) and (key := referenced_key(target)) is not None]


def _targeted(personal: PersonalData, job: Job) -> dict[str, list[str]]:
    """The compartment's parameters, per type, of the records a Patient or Group export
    holds the Provenances of (:func:`_provenances`): the types it exports but Patient
    (whose Provenances are in its compartment) and Provenance itself."""
    wanted = job.types or personal.compartment
    return {
        kind: params
        for kind, params in personal.compartment.items()
        if kind in wanted and kind not in ("Patient", PROVENANCE)
    }


def _provenances_since(run: _JobRun, written: Container[tuple[str, str]]) -> Iterator[Stored]:
    """The Provenances changed after ``_since``, not ``written`` already, that target a
    record the export holds (one of its people's, its client may see, ``_typeFilter``
    keeps): one unchanged since is not written, so :func:`_provenances` never asks for
    them.  Per :data:`BATCH` of them, one statement on the index finds which of their
    targets are the people's records, one reads those to judge them as the export does."""
    tx, targeted, people, since = run.tx, _targeted(run.personal, run.job), run.people(), run.job.since
    # of everyone's records, every Provenance changed since may be one; of a Group's or the
    # named people's, those targeting their records are found from their index rows
    changed = (
        tx.resources.current([PROVENANCE], since)
        if people is None
        else tx.resources.referring_into(PROVENANCE, ["target"], targeted, people, since, IDENTIFIED_PEOPLE)
    )
    for batch in _batches(changed):
        _unless_halted(run.halt)
        fresh = [(found, _targets(found.resource)) for found in batch if (found.type, found.id) not in written]
        targets = [key for _, keys in fresh for key in keys]
        within = tx.resources.in_compartment(targets, targeted, people, IDENTIFIED_PEOPLE)
        records = tx.resources.read_many(sorted(within)).values() if within else ()
        held = {(stored.type, stored.id) for stored in run.kept(records)}
        yield from run.kept(found for found, keys in fresh if not held.isdisjoint(keys))
