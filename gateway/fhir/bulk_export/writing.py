"""The run of a job: what it selects, in what order, and what it keeps in memory while it
writes its files."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from gateway.fhir.bulk_export.batches import _batches, _unless_halted
from gateway.fhir.bulk_export.deletions import _deleted
from gateway.fhir.bulk_export.files import _NdjsonFiles
from gateway.fhir.bulk_export.job import Job
from gateway.fhir.bulk_export.job_run import _JobRun, _Progress
from gateway.fhir.bulk_export.naming import (
    _may_name_by_number,
    _patients_named,
)
from gateway.fhir.bulk_export.newcomers import _naming_newcomers, _newcomers
from gateway.fhir.bulk_export.people import (
    _people,
)
from gateway.fhir.bulk_export.provenance import (
    PROVENANCE,
    _provenances,
    _provenances_since,
)
from gateway.fhir.bulk_export.supporting import (
    _changed_supporting,
    _outside_compartment,
)
from gateway.fhir.literal_references import current_targets
from gateway.fhir.search import shaped
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.storage.resources import Referrers
from gateway.storage.store import Stored


def _write(run: _JobRun, folder: Path, progress: _Progress) -> list[dict[str, Any]]:
    """Write the job's files into ``folder`` (made already) and return their manifest entries."""
    tx, job, access, filtering, halt = run.tx, run.job, run.access, run.filtering, run.halt
    # a person's export brings what its records refer to outside the compartment, unless
    # _type says which types it wants: a platform may not export those types alone
    supporting: dict[tuple[str, str], None] | None = {} if job.scope != "system" and job.types is None else None
    newcomers = _newcomers(tx, job, access)
    provenance = job.scope != "system" and PROVENANCE in (job.types or run.personal.compartment)
    with _NdjsonFiles(folder, _remembers(job, newcomers)) as files:

        def write(found: Iterable[Stored]) -> list[Stored]:
            """Write each of ``found`` not written yet, noting what it refers to outside the
            compartment; those it wrote."""
            written = []
            for stored in found:
                resource = shaped(stored.resource, None, job.elements)
                if files.add(stored, resource):
                    progress.written += 1
                    written.append(stored)
                    if supporting is not None:
                        supporting.update(dict.fromkeys(_outside_compartment(run.personal.compartment, resource)))
            return written

        for batch in _batches(_selected(run, newcomers)):
            _unless_halted(halt)
            written = write(filtering.kept(tx, batch))
            if provenance:
                write(_provenances(run, written))
        if provenance and job.since is not None:
            write(_provenances_since(run, files.seen))
        if supporting is not None and job.since is not None:
            changed = _changed_supporting(run, supporting)
            supporting.update(dict.fromkeys(changed))
        # what goes along is filtered and cut as the records are; with _since, one changed
        # since that the filter no longer keeps leaves the client's copy (as in a system export)
        dropped: list[str] = []
        for batch in _batches(current_targets(tx, access, list(supporting or {}))):
            _unless_halted(halt)
            kept = filtering.kept(tx, batch)
            for stored in kept:
                if files.add(stored, shaped(stored.resource, None, job.elements)):
                    progress.written += 1
            if job.since is not None:
                dropped += _filtered_out(batch, kept, job.since)
        if job.since is not None:
            files.add_deletions(itertools.chain(_deleted(run, job.since, frozenset(files.seen)), dropped))
        return files.output()


def _filtered_out(batch: list[Stored], kept: list[Stored], since: str) -> list[str]:
    """The references of ``batch`` changed after ``since`` that ``_typeFilter`` dropped: the
    client may hold an earlier version that matched."""
    held = {(stored.type, stored.id) for stored in kept}
    return [
        stored.reference for stored in batch if stored.last_updated > since and (stored.type, stored.id) not in held
    ]


def _remembers(job: Job, newcomers: frozenset[str]) -> Callable[[Stored], bool]:
    """Whether the key of a resource the job writes is kept: a key of each was ~170 MB a
    million resources, and a hospital's Patient export holds its whole archive.

    A system export meets each resource once: it keeps only the keys :func:`_deleted`
    asks about (with ``_since``, of the types ``_typeFilter`` filters).  A Patient or
    Group export meets a record once per person whose compartment holds it (the index
    rows :func:`_selected` reads), and once more if it names a newcomer
    (:func:`_naming_newcomers`): a record whose text names one Patient, no newcomer, and
    no one by number is met once, so only one naming two Patients or a newcomer
    (:func:`_patients_named` reads every reference as the index does) or perhaps someone
    by number (:func:`_may_name_by_number`) keeps its key; with ``_since``, so does one
    changed since, which :func:`_deleted` asks about.  A Provenance is met once more per
    exported record it targets (:func:`_provenances`): one of several targets keeps its key."""
    if job.scope == "system":
        filtered = {search.kind for search in job.type_filters} if job.since else set()
        return lambda stored: stored.type in filtered
    since = job.since

    def met_again(stored: Stored) -> bool:
        if (since is not None and stored.last_updated > since) or _may_name_by_number(stored):
            return True
        if stored.type == PROVENANCE and len(stored.resource.get("target", [])) > 1:
            return True
        if not newcomers and stored.json().count(b"Patient") < 2:
            return False  # the usual record names its resident alone: no reference is parsed
        named = set(_patients_named(stored))
        return len(named) > 1 or not newcomers.isdisjoint(named)

    return met_again


def _selected(run: _JobRun, newcomers: frozenset[str]) -> Iterator[Stored]:
    """The resources the job exports, type by type (system) or person by person."""
    tx, job, access = run.tx, run.job, run.access
    if job.scope == "system":
        for kind in job.types or sorted(tx.resources.counts()):
            yield from tx.resources.current([kind], job.since)
        return
    wanted = set(job.types or run.personal.compartment)
    # other Patients (Patient.link) are exported only as people of the export
    members = {
        kind: params for kind, params in run.personal.compartment.items() if kind in wanted and kind != "Patient"
    }
    people = access.served_people(tx) if access.restricted else None
    for patient in _people(tx, job, people):
        since = None if patient.id in newcomers else job.since
        if "Patient" in wanted and (since is None or patient.last_updated > since):
            yield patient
        # a resource naming someone else besides the resident is hidden from its client;
        # one naming the resident by number alone (their 身份证号) is theirs as one by id
        records = Referrers("Patient", patient.id, members, since, identified=IDENTIFIED_PEOPLE)
        yield from access.among_served(tx, tx.resources.referrers(records))
    if newcomers:
        yield from _naming_newcomers(run.personal, tx, job, access, members, people, newcomers)
