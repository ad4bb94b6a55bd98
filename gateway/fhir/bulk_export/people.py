"""The people a Patient or Group export is of: those ``patient`` names, a Group's active
members, those the client serves."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from gateway.fhir.bulk_export.batches import BATCH
from gateway.fhir.bulk_export.job import Job
from gateway.fhir.errors import FhirError
from gateway.search.values import date_range
from gateway.storage.resources import now_instant
from gateway.storage.store import Stored, Transaction


def _people(tx: Transaction, job: Job, served: frozenset[str] | None = None) -> Iterator[Stored]:
    """The Patients of a Patient export (all of them, or those its ``patient`` parameter
    named) or of a Group export: those its active members name as ``Patient/<id>`` (not a
    resident who left the home or has not moved in yet: see :func:`_outside`), and of them
    only those ``patient`` named, if it did; with ``served``, only those people.  One at a time, as the
    archive is read: a province's archive holds millions of people."""
    people = _all_people(tx, job)
    return people if served is None else (patient for patient in people if patient.id in served)


def _outside(period: Any, now: str) -> bool:
    """Whether ``now`` falls outside a Group membership's period: it ended before (a resident
    who left the home is a member no longer, whether the Group says inactive or gives the day
    they left) or begins after (a resident booked to move in is not the home's yet, and their
    archive is not the home's to receive)."""
    if not isinstance(period, dict):
        return False
    start, end = period.get("start"), period.get("end")
    try:
        begins_later = isinstance(start, str) and date_range(start)[0] > now
        ended = isinstance(end, str) and date_range(end)[1] < now
    except ValueError:
        return False  # the profile judges a malformed date; membership stays as written
    return begins_later or ended


def _all_people(tx: Transaction, job: Job) -> Iterator[Stored]:
    chosen = _person_ids(tx, job)
    if chosen is None:
        return tx.resources.current(["Patient"])
    return _chosen_people(tx, chosen)


def _chosen_people(tx: Transaction, chosen: list[str]) -> Iterator[Stored]:
    """The current Patients of ``chosen``, in its order, read :data:`BATCH` at a time in one
    statement (a statement each before: a Group of 5,000 residents was 5,000 reads)."""
    for start in range(0, len(chosen), BATCH):
        ids = chosen[start : start + BATCH]
        found = tx.resources.read_many([("Patient", patient_id) for patient_id in ids])
        for patient_id in ids:
            patient = found.get(("Patient", patient_id))
            if patient is not None and not patient.deleted:
                yield patient


def _person_ids(tx: Transaction, job: Job) -> list[str] | None:
    """The ids of the Patients a Patient or Group export is of (None: every Patient): those
    its ``patient`` parameter named, and of a Group export, only those of them who are the
    Group's active members."""
    if job.scope == "Patient":
        return job.patients
    members = _members(tx, job.scope)
    return members if job.patients is None else [person for person in members if person in job.patients]


def _among(chosen: list[str] | None, served: frozenset[str] | None) -> Callable[[str], bool]:
    """Whether a person is one of ``chosen`` (None: anyone) and, given ``served``, one of them."""
    if chosen is None:
        return served.__contains__ if served is not None else _anyone
    return frozenset(_listed_people(chosen, served) or ()).__contains__


def _listed_people(chosen: list[str] | None, served: frozenset[str] | None) -> list[str] | None:
    """The people of ``chosen`` (None: anyone) who are, given ``served``, among them; None:
    anyone.  A list for the store to look records up by (:class:`Referrers`)."""
    if chosen is None:
        return list(served) if served is not None else None
    return [person for person in chosen if served is None or person in served]


def _anyone(_person: str) -> bool:
    return True


def _members(tx: Transaction, scope: str) -> list[str]:
    """The Patient ids a Group export's active members name, in the Group's order.  A Group
    deleted after the kick-off fails the job: exported empty, it read as a home without
    residents, and a platform synchronising from it would drop their archives."""
    group = tx.resources.read("Group", scope.removeprefix("Group/"))
    if group is None or group.deleted or not group.resource:
        raise FhirError(404, "http.export-group-gone", group=scope)
    return _active_members(group.resource, now_instant())


def _active_members(group: dict[str, Any], moment: str) -> list[str]:
    """The Patient ids of a Group's members active at ``moment``, in the Group's order."""
    return list(
        dict.fromkeys(
            member["entity"]["reference"].removeprefix("Patient/")
            for member in group.get("member", [])
            if not member.get("inactive")
            and not _outside(member.get("period"), moment)
            and re.fullmatch(r"Patient/[^/]+", member.get("entity", {}).get("reference", ""))
        )
    )
