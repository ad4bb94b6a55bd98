"""Nothing happens to a person before they are born.

A visit, a follow-up, an assessment, a 家庭病床 period, a 签约 contract or an insurance cover
dated before its person's ``birthDate`` is a typing error in the source (a birth year for a
visit year, two dates swapped), and a clerk must correct it before the archive counts it: a
measure of who was visited in a year, or of how long someone was insured, would count it as
written.  Each resource stands alone, so the rule needs two: the dated resource and the
Patient it names.  The callers bring the Patient — the ingest from the same legacy record
(:meth:`AfterBirth.check_record`), the validator from the entries of a Bundle it validates
whole (:meth:`AfterBirth.check_bundle_entries`), the gateway from the archive or the same
transaction — and this module judges, so every path says the same thing in the same words.  A Patient's own death and
health-record filing date are judged against its own birth date (:func:`check_own_dates`).

What is refused and what is only said:

- the dates of the event itself (an Encounter's or EpisodeOfCare's ``period``, an Observation's
  ``effective[x]``, a CarePlan's ``period`` and ``created``, a Coverage's ``period`` …) before
  birth are errors;
- a Condition's ``onset[x]`` before birth is a warning: a congenital condition (先天畸形) may be
  found before birth, by prenatal screening;
- a Coverage held by a subscriber other than the beneficiary (a dependant on another person's
  policy) may have started before the dependant was born: the period is the policy's, so that
  is a warning too (the type's ``heldBy`` element names the holder).

Which elements date an event, which may precede the birth, which names the person and which
its holder is data in the package (:mod:`conformance.dated_resources`), so :class:`AfterBirth`
judges by what its registry says.

Dates are compared at the precision both have, as Beijing calendar days: a visit of
``1949-12`` beside a birth of ``1949-12-31`` is not judged, and a dateTime with a zone counts
on the day it was in China Standard Time (the ``birthDate`` written in an archive here is a
Beijing day).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from conformance.bundle_index import BundleIndex
from conformance.clock import CHINA
from conformance.dated_resources import DatedResource, DatedResources
from conformance.issues import Issue, IssueList
from profiles.registry import Registry

_CHOICE_TYPES = ("DateTime", "Period", "Instant", "Date")
#: how many of a moved birth date's contradicting resources its issue names (it counts them all)
NAMED_AT_MOST = 10


class AfterBirth:
    """The rule as a registry's packages state it (:class:`DatedResources`)."""

    def __init__(self, registry: Registry) -> None:
        self.dated = DatedResources(registry)

    def person_reference(self, resource: Mapping[str, Any]) -> str | None:
        """The literal reference to the person a dated resource is about (``Patient/1``, a
        Bundle's ``urn:uuid:…``), if it names one; what it resolves to must still be a Patient."""
        dated = self.dated.get(resource.get("resourceType", ""))
        node = resource.get(dated.person) if dated is not None else None
        reference = node.get("reference") if isinstance(node, dict) else None
        return reference if isinstance(reference, str) else None

    def check(self, resource: Mapping[str, Any], path: str, birth_date: Any, issues: IssueList) -> None:
        """Report, at ``path`` (the resource's FHIRPath), each date of ``resource`` certainly
        before ``birth_date``, the ``birthDate`` of the Patient :meth:`person_reference` names."""
        born = _first_day(birth_date) if isinstance(birth_date, str) else None
        dated = self.dated.get(resource.get("resourceType", ""))
        if born is None or dated is None:
            return
        severity = "warning" if _held_by_another(resource, dated) else "error"
        for element in dated.events:
            for where, value in _dates(resource, element, path):
                _judge(where, value, birth_date, born, severity, issues)
        for element in dated.prenatal:
            for where, value in _dates(resource, element, path):
                _judge(where, value, birth_date, born, "warning", issues)

    def check_record(self, resources: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Issue]]:
        """The issues of each resource of one legacy record (by its name in the record) dated
        before the birth of a Patient of the same record."""
        births = {
            f"Patient/{resource.get('id')}": resource.get("birthDate")
            for resource in resources.values()
            if resource.get("resourceType") == "Patient"
        }
        return self.check_all(resources, births.get)

    def check_all(
        self, resources: Mapping[str, Mapping[str, Any]], birth_date_of: Callable[[str], Any]
    ) -> dict[str, list[Issue]]:
        """:meth:`check` for each resource whose Patient ``birth_date_of`` knows."""
        found: dict[str, list[Issue]] = {}
        for name, resource in resources.items():
            reference = self.person_reference(resource)
            if reference is None:
                continue
            issues = IssueList()
            self.check(resource, resource["resourceType"], birth_date_of(reference), issues)
            if issues:
                found[name] = issues
        return found

    def check_bundle_entries(self, bundle: Mapping[str, Any], path: str, index: BundleIndex, issues: IssueList) -> None:
        """The rule between the entries of a Bundle validated whole (a document, ``yiyang
        validate``, ``$validate``): the Patient is the entry the reference resolves to by the
        Bundle's rules."""
        entries = bundle.get("entry")
        for position, entry in enumerate(entries if isinstance(entries, list) else ()):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            reference = self.person_reference(resource) if isinstance(resource, dict) else None
            if reference is None:
                continue
            full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            born = birth_date(index.resource(reference, full_url))
            self.check(resource, f"{path}.entry[{position}].resource", born, issues)

    def contradicting(self, patient: Mapping[str, Any], stored: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Of ``stored`` (what names this Patient as its person), those with a date that
        :meth:`check` refuses before the Patient's ``birthDate``: each would be a contradiction
        in the archive, as it would be refused if written now."""
        born = patient.get("birthDate")
        return [resource for resource in stored if self._before_birth(resource, born)]

    def check_stored_events(
        self,
        patient: Mapping[str, Any],
        path: str,
        stored: Iterable[Mapping[str, Any]],
        issues: IssueList,
        severity: str = "error",
    ) -> None:
        """A Patient's ``birthDate`` moved later against what the archive holds of them: one
        issue at ``path.birthDate`` counting the :meth:`contradicting` and naming the first
        :data:`NAMED_AT_MOST` of them."""
        contradicting = self.contradicting(patient, stored)
        if not contradicting:
            return
        names = [f"{r.get('resourceType')}/{r.get('id')}" for r in contradicting][:NAMED_AT_MOST]
        issues.add(
            severity,
            "rule.birth-date-after-events",
            f"{path}.birthDate",
            birthDate=patient.get("birthDate"),
            count=len(contradicting),
            resources=", ".join(names),
        )

    def _before_birth(self, resource: Mapping[str, Any], birth_date: Any) -> bool:
        """Whether the rule refuses (an error, not a warning) a date of ``resource``."""
        found = IssueList()
        self.check(resource, str(resource.get("resourceType")), birth_date, found)
        return any(issue.is_error for issue in found)


def born_later(before: Any, after: Any) -> bool:
    """Whether a ``birthDate`` changed from ``before`` to ``after`` may make dated events
    precede it: set where there was none, or its first possible day moved later (an earlier
    birth contradicts nothing the later one did not)."""
    moved = _first_day(after) if isinstance(after, str) else None
    if moved is None:
        return False
    was = _first_day(before) if isinstance(before, str) else None
    return was is None or moved > was


def birth_date(person: Mapping[str, Any] | None) -> Any:
    """The ``birthDate`` of what a person reference resolved to, if it is a Patient (a subject
    may be a Group)."""
    return person.get("birthDate") if person is not None and person.get("resourceType") == "Patient" else None


def check_own_dates(patient: Mapping[str, Any], path: str, health_record_url: str, issues: IssueList) -> None:
    """A Patient's own dates of what followed the birth: its death (``deceasedDateTime``) and
    the filing of its health record (建档日期, the ``filed`` part of ``health_record_url``)."""
    born_as = patient.get("birthDate")
    born = _first_day(born_as) if isinstance(born_as, str) else None
    if born is None:
        return
    for where, value in _dates(patient, "deceased", path):
        _judge(where, value, born_as, born, "error", issues)
    extensions = patient.get("extension")
    for index, extension in enumerate(extensions if isinstance(extensions, list) else ()):
        if not isinstance(extension, dict) or extension.get("url") != health_record_url:
            continue
        parts = extension.get("extension")
        for part_index, part in enumerate(parts if isinstance(parts, list) else ()):
            if isinstance(part, dict) and part.get("url") == "filed" and isinstance(part.get("valueDate"), str):
                where = f"{path}.extension[{index}].extension[{part_index}].value"
                _judge(where, part["valueDate"], born_as, born, "error", issues)


def _held_by_another(resource: Mapping[str, Any], dated: DatedResource) -> bool:
    """Whether what the resource dates is held by another than its person (its ``heldBy``)."""
    holder = resource.get(dated.held_by) if dated.held_by is not None else None
    person = resource.get(dated.person)
    if not isinstance(holder, dict) or not isinstance(person, dict):
        return False
    return holder.get("reference") != person.get("reference")


def _dates(resource: Mapping[str, Any], element: str, path: str) -> list[tuple[str, str]]:
    """(FHIRPath, value) of the date an element states first: a Period's start, else its end."""
    candidates = [(element, resource.get(element))]
    candidates += [(f"{element}{kind}", resource.get(f"{element}{kind}")) for kind in _CHOICE_TYPES]
    found = []
    for name, value in candidates:
        if isinstance(value, str):
            found.append((f"{path}.{name}", value))
        elif isinstance(value, dict):
            for end in ("start", "end"):
                if isinstance(value.get(end), str):
                    found.append((f"{path}.{name}.{end}", value[end]))
                    break
    return found


def _judge(where: str, value: str, birth_date: str, born: date, severity: str, issues: IssueList) -> None:
    last = _last_day(value)
    if last is not None and last < born:
        message = "rule.before-birth" if severity == "error" else "rule.before-birth-possible"
        issues.add(severity, message, where, date=value, birthDate=birth_date)


def _first_day(value: str) -> date | None:
    """The earliest Beijing day a date (of any precision) or dateTime may mean."""
    return _day_bounds(value, first=True)


def _last_day(value: str) -> date | None:
    """The latest Beijing day a date (of any precision) or dateTime may mean."""
    return _day_bounds(value, first=False)


def _day_bounds(value: str, *, first: bool) -> date | None:
    try:
        if len(value) == 4:
            return date(int(value), 1, 1) if first else date(int(value), 12, 31)
        if len(value) == 7:
            year, month = int(value[:4]), int(value[5:7])
            return date(year, month, 1 if first else calendar.monthrange(year, month)[1])
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None  # malformed: the primitive checks say so
    return moment.astimezone(CHINA).date() if moment.tzinfo is not None else moment.date()
