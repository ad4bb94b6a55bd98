"""A Patient's birth date moved later (or set) against what the archive holds of them: one
judgement for the REST write that moves it (``Repository.judge_birth``) and the ingest that
adds it to a person stored without one, so both say the same thing to the same people.

What the writer may see and contradicts the birth is its issue (``rule.birth-date-after-events``);
what it may not see is not told to it (that would tell it what others hold of the person) but
becomes an identity conflict for the 主索引 staff, as a holder it may not see does."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.after_birth import AfterBirth
from conformance.issues import IssueList
from gateway.ingest.identity import Conflict
from gateway.security.access import Access
from gateway.security.withheld import withheld
from gateway.storage.resources import Referrers
from gateway.storage.store import Stored, Transaction


@dataclass
class BirthVerdict:
    """The issue about what the writer may see, and the conflict about what it may not."""

    issues: IssueList = field(default_factory=IssueList)
    hidden: Conflict | None = None


def judge_stored_events(
    tx: Transaction,
    rule: AfterBirth,
    rules: Access,
    patient: Mapping[str, Any],
    path: str,
    severity: str,
    written: Collection[str] = (),
    naming: Sequence[tuple[Stored, dict[str, Any]]] = (),
) -> BirthVerdict:
    """``patient`` (as it will be stored, with its id) against the current resources of the
    rule's dated types whose person element names it, found through the Patient compartment's
    search parameters.  ``path`` locates the Patient (its issue is at ``path.birthDate``);
    ``written``: references of resources the writer writes itself, judged with the record
    they come in rather than as the archive holds them now; ``naming``: stored resources each
    with the content about to replace it (a ``Patient/$merge`` preview's referrers, which name
    the Patient only once moved), judged as that content says."""
    params = {kind: names for kind, names in rules.personal.compartment.items() if rule.dated.get(kind)}
    person = f"Patient/{patient['id']}"
    held = {
        found.reference: (found, found.resource)
        for found in tx.resources.referrers(Referrers("Patient", str(patient["id"]), params))
    }
    held.update({stored.reference: (stored, content) for stored, content in naming})
    seen: list[dict[str, Any]] = []
    hidden: list[dict[str, Any]] = []
    for reference, (found, content) in held.items():
        if content is None or reference in written or rule.person_reference(content) != person:
            continue
        (hidden if rules.hides(tx, found) else seen).append(content)
    verdict = BirthVerdict()
    rule.check_stored_events(patient, path, seen, verdict.issues, severity)
    if verdict.issues:  # it names what it counts: only what the client's scopes read
        quoted = {str(r.get("resourceType")) for r in rule.contradicting(patient, seen)}
        verdict.issues = IssueList(withheld(issue, quoted) for issue in verdict.issues)
    if contradicting := rule.contradicting(patient, hidden):
        offered = ", ".join(f"{r.get('resourceType')}/{r.get('id')}" for r in contradicting)
        verdict.hidden = Conflict(str(patient["id"]), "birthDate", patient.get("birthDate"), offered)
    return verdict
