"""Read → map → validate → merge identities → write, or quarantine with every reason.

Every record read ends in exactly one of two places: its resources are written to the store
(Provenance included) or the record goes to the quarantine.  ``Counts`` checks that
read = mapped + quarantined at the end of every run.

Everything one record produces — resources, identity keys, keyed-resource times, its ledger
entry, its quarantine entry — is written inside one savepoint, so it lands whole or not at
all.  Records are committed in batches (one durable commit per record would make the disk the
bottleneck): a process killed mid-batch loses the uncommitted batch entirely, and the next run
maps those records again, under the same ids, while the ledger skips the ones that landed.
"""

from __future__ import annotations

import copy
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

from conformance.after_birth import born_later
from conformance.issues import Issue
from conformance.validator import Validator
from gateway import exchanges
from gateway.ingest import keyed, organizations
from gateway.ingest.identity import (
    IDENTITY_LOCK,
    Conflict,
    DocumentMismatch,
    IdentityConflict,
    IdentityIndex,
    merge,
)
from gateway.ingest.ledger import Ledger, RecordHeld, hold
from gateway.ingest.organizations import OrganizationConflict
from gateway.ingest.provenance import provenance
from gateway.ingest.quarantine import Entry, Reason, entry_lock
from gateway.ingest.stored_events import judge_stored_events
from gateway.masking import mask_id_cards
from gateway.messages import LANGUAGES, Listed, text, worded
from gateway.security.access import Access, PersonalData, creator, foreign_owners, owner_references
from gateway.security.principal import acting
from gateway.security.withheld import Withheld, in_full
from gateway.storage.store import Store, StoreError, Transaction, retried, without_version
from mappings.engine import (
    Mapped,
    MappingEngine,
    Problem,
    content_digest,
    reference_nodes,
    rewrite_references,
    unread,
)
from mappings.records import UNPARSEABLE, Message, SourceRecord, unparseable_text
from mappings.specs import Spec

log = logging.getLogger("yiyang.ingest")


@dataclass(slots=True)
class Counts:
    read: int = 0
    mapped: int = 0
    quarantined: int = 0
    #: demographics a record disagreed on with the archive (kept, and reported)
    conflicts: int = 0
    #: names a record gave an Organization of the archive otherwise (for one identifier)
    organization_names: int = 0
    #: records mapped by an earlier run into the same archive exactly as they are now
    unchanged: int = 0
    #: mapped records of which an independent part failed and was quarantined alone
    partial: int = 0
    #: mapped records that landed without an optional qualifier FHIR has no code for, or
    #: without a second value of an element that takes one (``Outcome.omitted``: the codes,
    #: values and why are in the exchange record and the ACK)
    omitted: int = 0
    resources: Counter[str] = field(default_factory=Counter)
    #: why each file that could not be read was refused, worded when the run is reported
    file_errors: list[Message] = field(default_factory=list)
    #: file → its columns (fields) that hold values no mapping rule read, which no spec
    #: ignores: a column named otherwise than the spec expects, say; filled by ``finish``
    unread: dict[str, list[str]] = field(default_factory=dict)
    #: file → what its reader skipped: the hidden sheets of a workbook (``reader.hidden-sheet``,
    #: ``reader.very-hidden-sheet``) and the lines above a header it took for titles
    #: (``reader.title-line``)
    skipped: dict[str, list[Message]] = field(default_factory=dict)
    #: earlier quarantine entries a record of this run resolved: it landed with the same source
    #: key, so the version they hold is replaced, or they were its copies (kept for the audit,
    #: no longer open)
    resolved: int = 0

    @property
    def reconciled(self) -> bool:
        return self.read == self.mapped + self.quarantined


@dataclass(slots=True)
class Outcome:
    """What became of one record: its resources, or why it was quarantined."""

    record: SourceRecord
    mapped: Mapped | None
    resources: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    #: an earlier run already wrote this very record (see ledger.py): nothing to write
    unchanged: bool = False
    #: the record's entry in the ledger (scope, digest), marked written once it lands
    seen_as: tuple[str, str] | None = None
    #: (type, id) of each resource the record wrote
    written: list[tuple[str, str]] = field(default_factory=list)
    #: what the record is: its spec and source key once mapped, else its content
    identity: str = ""
    #: why its independent parts were left out, when the rest of the record landed without them
    parts: list[Reason] = field(default_factory=list)
    #: the optional qualifiers (an address type, a phone's use) mapping left out because FHIR has
    #: no code for them, each with the ConceptMap's reason: warnings, told with the record whatever
    #: becomes of it, never a reason to quarantine it (``Mapped.omitted``)
    omitted: list[Reason] = field(default_factory=list)
    #: the record (file, location) that landed with the same source key while this replayed
    #: one waited in the quarantine: its entry is resolved by it, not left open
    superseded_by: dict[str, str] | None = None
    #: the earlier quarantine entries of its source key, and of its copies, its landing
    #: resolved, counted for the run once the attempt that landed it stands (:meth:`Ingest._attempt`)
    resolved: int = 0

    @property
    def status(self) -> str:
        """mapped, partial, unchanged or quarantined."""
        if self.reasons:
            return "quarantined"
        if self.unchanged:  # (its parts, if any, still wait in the quarantine)
            return "unchanged"
        return "partial" if self.parts else "mapped"


def _note(by_part: dict[str | None, list[Reason]], part: str | None, reason: Reason) -> None:
    """A reason of the record's ``part``, said once: one date column feeding the effective
    time of twenty Observations made twenty identical reasons."""
    reasons = by_part.setdefault(part, [])
    if reason not in reasons:
        reasons.append(reason)


def _problem_reason(problem: Problem, severity: str = "error") -> Reason:
    words = worded(problem.message_id, problem.params)
    found = Reason(problem.message_id, words, problem.expression, str(problem.ref) if problem.ref else None)
    exchanges.reason(found.message_id, found.text, found.field, severity)
    return found


def source_of(mapped: Mapped, name: str, expression: str) -> str | None:
    """The legacy field behind a FHIRPath: the element itself or its nearest mapped ancestor;
    for an element that is missing because its value failed to map, the field that failed;
    else the one field its mapped descendants came from (a code system's verdict on
    ``…valueCoding`` is about the ``…valueCoding.code`` a column filled)."""
    element = _element_pattern(expression)
    best: tuple[int, str] | None = None
    beneath: set[str] = set()
    for (resource, path), ref in mapped.lineage.items():
        if resource != name:
            continue
        found = element.match(path)
        if (found is not None and found.end() == len(path)) or _within(expression, path):
            if best is None or len(path) > best[0]:
                best = (len(path), str(ref))
        elif found is not None and path[found.end()] in ".[":
            beneath.add(str(ref))
    if best:
        return best[1]
    bare = re.compile(
        ".".join(re.escape(part.split("[")[0]) for part in expression.split(".")).replace(r"\[x\]", "")
        + r"(?:[A-Z]\w*)?(?:\..*)?"
    )
    for (resource, path), ref in mapped.attempted.items():
        if resource == name and bare.fullmatch(path):
            return str(ref)
    return beneath.pop() if len(beneath) == 1 else None


@lru_cache(maxsize=1024)
def _element_pattern(expression: str) -> re.Pattern[str]:
    """The JSON paths an issue's FHIRPath names: a choice is written by its stem in FHIRPath
    (``extension[0].value``) or with ``[x]`` by a profile (``Observation.effective[x]``), and
    by its typed name in data (``valueCoding``)."""
    steps = []
    for step in expression.split("."):
        stem = step.removesuffix("[x]")
        name, bracket, index = stem.partition("[")
        steps.append(re.escape(name) + r"(?:[A-Z]\w*)?" + re.escape(bracket + index))
    return re.compile(r"\.".join(steps))


def _within(expression: str, path: str) -> bool:
    return expression.startswith(path + ".") or expression.startswith(path + "[")


def _reference(value: Any) -> str | None:
    """The literal reference of a Reference element, if it is one."""
    found = value.get("reference") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


class Ingest:
    """One run of records into the store; :meth:`finish` commits what is still pending."""

    def __init__(
        self,
        store: Store,
        validator: Validator,
        engine: MappingEngine,
        recorded: str | None = None,
        batch_size: int = 200,
        party: exchanges.Party | None = None,
    ) -> None:
        self.store = store
        self.validator = validator
        self.engine = engine
        self.recorded = recorded or datetime.now(UTC).isoformat(timespec="seconds")
        self.identity = IdentityIndex(validator.registry)
        self.ledger = Ledger()
        self.counts = Counts()
        self.batch_size = batch_size
        self._batch: ExitStack | None = None
        self._tx: Transaction | None = None
        self._pending = 0
        #: the resources this run wrote (each counted once however many records wrote it)
        self._touched: set[tuple[str, str]] = set()
        #: ``Type/id`` of what the records of the open batch wrote, and of what the batches
        #: committed so far wrote: only the latter landed, whatever befalls a later batch, and
        #: it is what the audit trail names (an $ingest failing its tenth batch wrote nine)
        self._landing: dict[str, None] = {}
        self.landed: dict[str, None] = {}
        #: the quarantine keys (source, identity, digest) this run has put entries under
        self._quarantined: set[tuple[str, str, str]] = set()
        #: who sent the records; each file they come from is one exchange (see gateway/exchanges.py)
        self.party = party or CLI
        self._exchange: exchanges.Collector | None = None
        self._exchange_file = ""
        #: file → (fields that held a value, fields a rule read, their other names): see Counts.unread
        self._fields: dict[str, tuple[dict[str, None], set[str], dict[str, str]]] = {}

    # -- one record ----------------------------------------------------------------------
    def process(
        self, record: SourceRecord, replaces: tuple[str, str] | None = None, refused: Sequence[Reason] = ()
    ) -> Outcome:
        """:meth:`_process`, its verdicts noted in the exchange under way: the caller's (an API
        request posting a file), else this run's own for the record's file."""
        ambient = exchanges.current()
        collector = ambient or self._exchange_of(record)
        collector.source = record.source
        if ambient is not None:
            return self._process(record, replaces, refused)
        token = exchanges.activate(collector)
        try:
            return self._process(record, replaces, refused)
        finally:
            exchanges.deactivate(token)

    def _process(
        self, record: SourceRecord, replaces: tuple[str, str] | None = None, refused: Sequence[Reason] = ()
    ) -> Outcome:
        """Map, check and write one record, or quarantine it.  ``replaces`` is the (identity,
        digest) of the quarantine entry a replayed record came from: it goes, whatever the
        record is now (its identity may have changed with the spec that now maps it).
        ``refused`` are reasons the caller found before mapping (an MLLP message without a
        control id): the record is quarantined with them, counted like any other."""
        self.counts.read += 1

        @exchanges.noted_once
        def attempt(_number: int) -> Outcome:
            return self._attempt(self._transaction(), record, replaces is not None, refused)

        try:
            outcome = self._attempted(attempt)
        except StoreError:
            self.abort()  # the database failed, not the record: stop rather than quarantine good data
            raise
        except Exception as error:  # noqa: BLE001 - one record's failure must not lose the rest of the run
            outcome = Outcome(record, None)
            outcome.reasons.append(self._reason("ingest.internal-error", error=f"{type(error).__name__}: {error}"))
        tx = self._transaction()
        outcome.identity = _identity(outcome)
        # a replay holds only the quarantined records, rebuilt from the quarantine: what their
        # file's columns were read for was told by the ingest of the file itself
        if outcome.mapped is not None and replaces is None:
            self._note_fields(outcome.mapped)
        if record.skipped and replaces is None:
            noted = self.counts.skipped.setdefault(record.file, [])
            noted.extend(line for line in record.skipped if line not in noted)
        if replaces:
            tx.quarantine.release(record.source, *replaces)
        spec = outcome.mapped.spec.id if outcome.mapped else None
        if outcome.reasons:
            self.counts.quarantined += 1
            identity = self._entry_identity(record, outcome)
            tx.quarantine.put(Entry(record, identity, outcome.reasons, spec).to_json())
            if outcome.superseded_by is not None:  # nothing will ever make it land: not left open
                tx.quarantine.resolve_entry(record.source, identity, content_digest(record), outcome.superseded_by)
                self.counts.resolved += 1
        else:
            self.counts.mapped += 1
            self.counts.resolved += outcome.resolved
            self.counts.unchanged += outcome.unchanged
            self.counts.omitted += bool(outcome.omitted)
            self._count(outcome)
        self._landing.update(dict.fromkeys(f"{kind}/{resource_id}" for kind, resource_id in outcome.written))
        if outcome.parts and not outcome.reasons and not outcome.unchanged:
            self.counts.partial += 1
            landed = [f"{kind}/{resource_id}" for kind, resource_id in outcome.written]
            tx.quarantine.put(
                Entry(record, self._entry_identity(record, outcome), outcome.parts, spec, landed).to_json()
            )
        self._pending += 1
        if self._pending >= self.batch_size:
            self.commit()
        return outcome

    def _attempted(self, attempt: Callable[[int], Outcome]) -> Outcome:
        """The record's ``attempt``, run again while the database gives it up for another
        writer's sake (:func:`retried`), and once more when another run holds the record
        uncommitted (:class:`RecordHeld`): after this batch is committed, so that while it
        waits for the other's commit it holds nothing the other could be waiting for."""
        try:
            return retried(attempt)
        except RecordHeld as held:
            self.commit()
            self._transaction().lock(held.lock)
            return retried(attempt)

    def _attempt(self, tx: Transaction, record: SourceRecord, replaying: bool, refused: Sequence[Reason]) -> Outcome:
        """The record judged and landed in a savepoint of the batch.  Attempted again (see
        :func:`retried`) when the database refused it for another writer's sake: a resource
        of it that a PUT created meanwhile (the record's ids are found free, then inserted,
        taking no lock), or a deadlock.  The savepoint undone, it is judged anew against what
        the other committed (a person whose proposed id another Patient took lands at the
        next id); the batch's earlier records stay, where the whole run stopped before.

        A record to be quarantined holds its entry, tried as its ledger record is
        (:class:`RecordHeld`): another run may write the same entry (a message no spec takes
        has no ledger record; a file ingested under two names has two), and that write, waited
        for in the database, deadlocked a run that held the identity lock since an earlier
        record with one waiting for that lock at its next record."""
        with tx.savepoint():
            if refused:
                outcome = Outcome(record, None, reasons=list(refused))
            else:
                outcome = self.evaluate(tx, record, replaying=replaying)
            if not outcome.reasons and not outcome.unchanged:
                self._land(tx, outcome)
            if outcome.reasons or (outcome.parts and not outcome.unchanged):
                hold(tx, entry_lock(record.source, _identity(outcome)))
        return outcome

    def _entry_identity(self, record: SourceRecord, outcome: Outcome) -> str:
        """The identity the record's quarantine entry is kept under: the record's own, but for a
        copy of another record of the run (one row twice in a file, the second quarantined as a
        duplicate of the first, two copies no spec takes, or one row in each of several files):
        its file and location too, so that its entry does not replace the first's, which holds
        the real reasons, nor one copy's another's (the third file's row 2 replaced the second
        file's, kept under its row alone).  A duplicate is always kept under its location, so a
        run of the file again, after the first landed, replaces it (the entries an earlier
        version kept under the location alone were renamed so by migration 0022)."""
        key = (record.source, outcome.identity, content_digest(record))
        duplicate = any(reason.message_id == "ingest.duplicate-row" for reason in outcome.reasons)
        if duplicate or key in self._quarantined:
            return f"{outcome.identity}|{record.file}|{record.location}"
        self._quarantined.add(key)
        return outcome.identity

    def _note_fields(self, mapped: Mapped) -> None:
        """Gather per file what its records held and what the rules read of it: the columns
        left unread are told once per file, at the end, not once per record."""
        valued, used, views = self._fields.setdefault(mapped.record.file, ({}, set(), {}))
        valued.update(dict.fromkeys(mapped.record.valued_fields()))
        used.update(mapped.used)
        views.update(mapped.record.views)

    def _count(self, outcome: Outcome) -> None:
        """Each resource the run wrote counted once, however many records wrote it: a person
        or a keyed resource that several records name, and a record's own resources (ids
        from its source key) that the same record repeated in another file wrote again."""
        named = sum(conflict.kind == "Organization" for conflict in outcome.conflicts)
        self.counts.organization_names += named
        self.counts.conflicts += len(outcome.conflicts) - named
        for written in outcome.written:
            if written not in self._touched:
                self._touched.add(written)
                self.counts.resources[written[0]] += 1

    def evaluate(self, tx: Transaction, record: SourceRecord, replaying: bool = False) -> Outcome:
        mapped = self.engine.map(record)
        outcome = Outcome(record, mapped)
        if mapped is None and UNPARSEABLE in record.fields:
            # the reader could not make a record of it: say why, not merely that no spec applies
            outcome.reasons.append(self._unreadable(record.fields[UNPARSEABLE]))
            return outcome
        if mapped is None:
            # a header names a file's columns, and one named otherwise than its spec expects is
            # the usual reason a table matches none; a message's or document's shape is its type
            nearest = self.engine.nearest(record) if record.field_label == "column" else None
            lacking = self._lacking_segments(record) if nearest is None else None
            if nearest is not None:
                spec, missing = nearest
                outcome.reasons.append(self._reason("ingest.no-spec-lacks", spec=spec.id, missing=Listed(missing)))
            elif lacking is not None:
                spec, missing = lacking
                words = {"spec": spec.id, "missing": Listed(missing)}
                outcome.reasons.append(self._reason("ingest.no-spec-segments", **words))
            else:
                fields = Listed(list(record.fields)[:8])
                outcome.reasons.append(self._reason("ingest.no-spec", fields=fields))
            if record.header is not None:
                # a sheet's header found under titles or group titles may be the wrong row
                outcome.reasons.append(self._reason("ingest.header-row", header=record.header))
            return outcome
        scope = f"{record.file}|{mapped.spec.id}|{mapped.spec.version}"
        digest = content_digest(record)
        outcome.identity = identity = f"{mapped.spec.id}|{mapped.identity}"
        earlier = self.ledger.arrive(tx, scope, digest, record.location, identity)
        if earlier is not None:
            first, this_run = earlier
            if this_run:
                outcome.reasons.append(self._reason("ingest.duplicate-row", first=first))
                return outcome
            if not replaying:
                outcome.unchanged = True
                # partly accepted the first time: its parts still wait in the quarantine, and
                # the sender of it again (an ACK lost) hears of them as it did then
                waiting = tx.quarantine.entry(record.source, identity, digest)
                if waiting is not None and waiting.get("partial"):
                    outcome.parts = [Reason.from_json(reason) for reason in waiting["reasons"]]
                return outcome
            # a partly accepted record replayed: mapped afresh, so a fix releases its parts
        outcome.seen_as = (scope, digest)
        outcome.omitted = [_problem_reason(problem, "warning") for problem in mapped.omitted]
        by_part: dict[str | None, list[Reason]] = {}
        for problem in mapped.problems:
            part = problem.resource if problem.resource in mapped.optional else None
            _note(by_part, part, _problem_reason(problem))
        for name, resource in mapped.resources.items():
            issues = self.validator.validate(resource)
            exchanges.judged(resource, (), issues)
            self._note_errors(by_part, mapped, name, issues)
        # rules that need two resources of the record: its Patient and what happened to them
        for name, issues in self.validator.after_birth.check_record(mapped.resources).items():
            self._note_errors(by_part, mapped, name, issues)
        if by_part and (None in by_part or not _independent(mapped, set(by_part))):
            outcome.reasons = [reason for reasons in by_part.values() for reason in reasons]
            return outcome
        other = self.ledger.clash(tx, identity, digest) if mapped.identity.startswith("key|") else None
        if other and self._would_change(tx, mapped):
            # another record of this run landed under this key, and this one says something else
            # (the same record exported twice, as CSV and as .xlsx, only repeats it)
            key = mapped.identity.removeprefix("key|")
            outcome.reasons.append(self._reason("ingest.duplicate-key", first=other, key=key))
            return outcome
        keyed = mapped.identity.startswith("key|")
        landed = self.ledger.landed_since(tx, identity, digest) if replaying and keyed else None
        if landed and self._would_change(tx, mapped):
            # a record with this source key and other content landed while this one waited in
            # the quarantine: replaying the older copy would overwrite the newer one
            key = mapped.identity.removeprefix("key|")
            outcome.reasons.append(self._reason("ingest.superseded", landed=" ".join(landed), key=key))
            outcome.superseded_by = {"file": landed[0], "location": landed[1]}
            return outcome
        # only independent parts failed: the rest lands
        _leave_out(mapped, outcome, {name: reasons for name, reasons in by_part.items() if name is not None})
        arrived = dict(mapped.resources)  # as mapped: the positions its lineage names
        outcome.reasons.extend(self._resolve_organizations(tx, mapped))
        if outcome.reasons:
            return outcome
        outcome.reasons.extend(self._merge_keyed(tx, mapped))
        if outcome.reasons:
            return outcome
        named = self._organization_names(tx, mapped, arrived)
        try:
            outcome.conflicts = [*self._resolve_people(tx, mapped), *named]
        except IdentityConflict as conflict:
            outcome.reasons.append(self._reason("ingest.identity-conflict", people=", ".join(conflict.person_ids)))
            return outcome
        except DocumentMismatch as mismatch:
            # the number may be a 身份证号 too (a 医保人员编号 often is one)
            number, archived, offered = map(mask_id_cards, (mismatch.number, mismatch.archived, mismatch.offered))
            person = f"Patient/{mismatch.person_id}"
            reason = self._reason(
                "ingest.document-mismatch", number=number, person=person, archived=archived, offered=offered
            )
            outcome.reasons.append(reason)
            return outcome
        outcome.reasons.extend(self._judge_added_births(tx, mapped, outcome))
        outcome.reasons.extend(self._leave_out_foreign(tx, mapped, outcome))
        if outcome.reasons:
            return outcome
        resources = list(mapped.resources.values())
        resources.append(provenance(mapped, resources, self.recorded, self.engine.base, arrived))
        outcome.resources = resources
        return outcome

    def _note_errors(
        self, by_part: dict[str | None, list[Reason]], mapped: Mapped, name: str, issues: Sequence[Issue]
    ) -> None:
        """The errors among one resource's issues, as reasons of its part of the record (an
        optional part fails alone)."""
        for issue in issues:
            if issue.is_error:
                part = name if name in mapped.optional else None
                _note(by_part, part, self._issue_reason(issue, mapped, name))

    @cached_property
    def personal(self) -> PersonalData:
        """Who may see what, for a birth date a record adds (:meth:`_judge_added_births`):
        made when first needed, as making it takes some 15 ms and an ``$ingest`` request
        makes an Ingest of its own."""
        return PersonalData(self.validator.registry, self.store.indexer)

    def _judge_added_births(self, tx: Transaction, mapped: Mapped, outcome: Outcome) -> list[Reason]:
        """A birth date the record adds to a person the archive holds without one (a Patient
        stored under ``warn``), or moves later (an ADT^A08 updating the person: no other record
        moves one the archive holds), is judged against what the archive holds of them, as a
        REST write moving it is (:func:`judge_stored_events`): what
        the sender may see and is now dated before the birth quarantines the record (the
        ingest lands nothing a rule refuses); what it may not see joins the record's identity
        conflicts for the 主索引 staff, and the record lands.  The record's own resources are
        judged with it (``check_record``), not as the archive holds them now.  Its issues join
        the exchange record as a reader is told them (no validator noted them: the record
        was quarantined, and its exchange called a pass)."""
        rule, rules = self.validator.after_birth, Access(acting.get(), self.personal)
        own = {f"{resource['resourceType']}/{resource['id']}" for resource in mapped.resources.values()}
        reasons: list[Reason] = []
        for name, person in mapped.resources.items():
            stored = tx.resources.read("Patient", person["id"]) if person["resourceType"] == "Patient" else None
            if stored is None or stored.resource is None:
                continue
            if not born_later(stored.resource.get("birthDate"), person.get("birthDate")):
                continue
            verdict = judge_stored_events(tx, rule, rules, person, "Patient", "error", own)
            exchanges.found_after(verdict.issues)
            reasons.extend(self._issue_reason(issue, mapped, name) for issue in verdict.issues)
            if verdict.hidden is not None:
                outcome.conflicts.append(verdict.hidden)
        return reasons

    def _leave_out_foreign(self, tx: Transaction, mapped: Mapped, outcome: Outcome) -> list[Reason]:
        """A client pushing legacy files over the API writes for its own organisation alone, as
        its REST writes do (the command line acts as the operator: no principal).  A resource
        naming another organisation as its owner refuses the record, unless it is an
        independent part: a hospital's ADT message names the 医保 fund as the payer of the
        Coverage its IN1 carries, and its stay and patient land while that part waits in the
        quarantine (the reasons for the whole record, if any, are returned)."""
        principal = acting.get()
        foreign = {name: owners for name, r in mapped.resources.items() if (owners := foreign_owners(tx, principal, r))}
        if not foreign:
            return []
        organization = principal.organization if principal else ""
        reasons = {
            name: self._owner_reason(mapped, name, organization, ", ".join(owners)) for name, owners in foreign.items()
        }
        if not set(foreign) <= mapped.optional or not _independent(mapped, set(foreign)):
            return list(reasons.values())
        _leave_out(mapped, outcome, {name: [reason] for name, reason in reasons.items()})
        return []

    def _owner_reason(self, mapped: Mapped, name: str, organization: str, owners: str) -> Reason:
        """``ingest.forbidden-organization`` at the part's owner reference and the legacy field
        it came from (IN1-3, the fund's 医保区划, for a Coverage's logical payor reference)."""
        found = self._reason("ingest.forbidden-organization", organization=organization, owner=owners)
        expression = _owner_expression(mapped.resources[name])
        if expression is None:
            return found
        return Reason(found.message_id, found.text, expression, source_of(mapped, name, expression))

    def _would_change(self, tx: Transaction, mapped: Mapped) -> bool:
        """Whether landing the record would change what the archive holds: a person as its
        Patients merge into them (two records of one source key that tell of the person
        differently, another phone, disagree as much as two that tell of a visit differently),
        or another resource under its id (keyed resources merge by key, so they do not count),
        its references to the record's Patients and Organizations pointing where the merge would
        point them: at a person or an organisation the archive knew already from another
        source, not at the record's own id."""
        try:
            renamed = self._organization_ids(tx, mapped)
        except OrganizationConflict:
            return True
        for name, resource in mapped.resources.items():
            if resource["resourceType"] != "Patient":
                continue
            try:
                person, _ = self._resolve_person(tx, mapped, name)
            except (IdentityConflict, DocumentMismatch):
                return True
            stored = tx.resources.read("Patient", person["id"])
            if stored is None or without_version(stored.content) != without_version(person):
                return True
            renamed[f"Patient/{resource['id']}"] = f"Patient/{person['id']}"
        for name, resource in mapped.resources.items():
            if resource["resourceType"] == "Patient" or name in mapped.keyed:
                continue
            if f"{resource['resourceType']}/{resource['id']}" in renamed:
                continue  # an Organization the archive knows by another id: it merges into that one
            if any(old != new for old, new in renamed.items()):
                resource = copy.deepcopy(resource)
                rewrite_references(resource, renamed)
            stored = tx.resources.read(resource["resourceType"], resource["id"])
            if stored is None or stored.deleted or stored.content != without_version(resource):
                return True
        return False

    @staticmethod
    def _organization_ids(tx: Transaction, mapped: Mapped) -> dict[str, str]:
        """Each of the record's Organizations (``Organization/id``) that the archive knows under
        another id, with that id (see organizations.py)."""
        renamed: dict[str, str] = {}
        for resource in mapped.resources.values():
            if resource["resourceType"] == "Organization":
                holder = organizations.holder_of(tx, resource)
                if holder is not None and holder != resource["id"]:
                    renamed[f"Organization/{resource['id']}"] = f"Organization/{holder}"
        return renamed

    def _resolve_organizations(self, tx: Transaction, mapped: Mapped) -> list[Reason]:
        """Make each of the record's Organizations the one of the archive holding any of its
        identifiers, and point the record's references at it (before the keyed merge, so that
        a stay keyed by its institution's reference merges onto the stored one).

        The holder's identifiers stay, whatever the record says.  Onto an Organization the
        ingest keyed (its own id, or another it was keyed under by another identifier) the
        record merges as onto any keyed resource; onto one the platform wrote itself (a
        package example, a REST create) it merges as into a person: the archive keeps its
        elements, the record adds the identifiers, addresses and elements it lacks.  An
        Organization whose identifiers several Organizations of the archive hold quarantines
        the record (``ingest.organization-conflict``), naming them."""
        reasons: list[Reason] = []
        renamed: dict[str, str] = {}
        for name, resource in list(mapped.resources.items()):
            if resource["resourceType"] != "Organization":
                continue
            tx.lock(IDENTITY_LOCK)  # before any organisation's identifiers (the lock order: identity.py)
            try:
                holder = organizations.holder_of(tx, resource)
            except OrganizationConflict as conflict:
                held = [f"Organization/{other} ({key})" for other, key in conflict.holders.items()]
                words = {"organization": str(resource.get("name") or resource["id"]), "holders": Listed(held)}
                reasons.append(self._reason("ingest.organization-conflict", **words))
                continue
            stored = tx.resources.read("Organization", holder) if holder is not None else None
            if holder is None or stored is None or stored.resource is None:
                continue
            is_keyed, _ = tx.keyed.as_of("Organization", holder)
            if holder == resource["id"] and not is_keyed:
                continue  # the record's own (unkeyed) Organization again: written as it says
            found = organizations.with_identifiers_of(stored.content, resource, holder)
            if not (is_keyed and name in mapped.keyed):
                found = merge(copy.deepcopy(stored.content), {k: v for k, v in found.items() if k != "id"})
                mapped.keyed.pop(name, None)  # the platform's Organization: not made a keyed one
                errors = [issue for issue in self.validator.validate(found) if issue.is_error]
                if errors:
                    reasons.append(self._reason("ingest.merge-invalid", resource=f"Organization/{holder}"))
                    reasons.extend(self._issue_reason(issue, mapped, name) for issue in errors)
                    continue
            mapped.resources[name] = found
            renamed[f"Organization/{resource['id']}"] = f"Organization/{holder}"
        if any(old != new for old, new in renamed.items()):
            for resource in mapped.resources.values():
                rewrite_references(resource, renamed)
        return reasons

    def _organization_names(
        self, tx: Transaction, mapped: Mapped, arrived: dict[str, dict[str, Any]]
    ) -> list[Conflict]:
        """The names the record gives Organizations of the archive (as it ``arrived``, before
        any merge) that the archive's (stored, not yet overwritten) disagree with: listed with
        the people's disagreements, for the 主索引 staff."""
        found = []
        for name, resource in mapped.resources.items():
            if resource["resourceType"] != "Organization" or name not in arrived:
                continue
            stored = tx.resources.read("Organization", resource["id"])
            if stored is None or stored.resource is None:
                continue
            conflict = organizations.name_conflict(tx, resource, arrived[name], stored.content)
            if conflict is not None:
                found.append(conflict)
        return found

    def _resolve_people(self, tx: Transaction, mapped: Mapped) -> list[Conflict]:
        """Merge the record's Patients into the archive (the last step before writing: a record
        quarantined for any other reason never touches the identity index)."""
        renamed: dict[str, str] = {}
        disagreements: list[Conflict] = []
        for name, resource in list(mapped.resources.items()):
            if resource["resourceType"] == "Patient":
                person, found = self._resolve_person(tx, mapped, name)
                disagreements.extend(found)
                renamed[f"Patient/{resource['id']}"] = f"Patient/{person['id']}"
                mapped.resources[name] = person
        if any(old != new for old, new in renamed.items()):
            for resource in mapped.resources.values():
                rewrite_references(resource, renamed)
        return disagreements

    def _resolve_person(self, tx: Transaction, mapped: Mapped, name: str) -> tuple[dict[str, Any], list[Conflict]]:
        """The person the record's Patient ``name`` is, merged with it (updating them when its
        spec says it ``updates``, replacing the sender's lists it ``states``): :meth:`IdentityIndex.resolve`."""
        record, updates = mapped.record, name in mapped.updates
        patient = mapped.resources[name]
        as_of, states = mapped.updates.get(name), mapped.states.get(name, ())
        return self.identity.resolve(tx, patient, record.source, mapped.sender, updates, as_of, states)

    def _land(self, tx: Transaction, outcome: Outcome) -> None:
        """Write the record's resources, and note in the same transaction what they mean for
        the identity index, the keyed resources, the ledger, the quarantine and the conflicts."""
        times = {id(outcome.mapped.resources[name]): as_of for name, as_of in outcome.mapped.keyed.items()}
        updates = {id(outcome.mapped.resources[name]): as_of for name, as_of in outcome.mapped.updates.items()}
        owner = creator(acting.get())
        for resource in outcome.resources:
            tx.resources.write(resource, owner=owner)
            kind, resource_id = resource["resourceType"], resource["id"]
            outcome.written.append((kind, resource_id))
            if id(resource) in times:
                tx.keyed.put(kind, resource_id, times[id(resource)])
            if kind == "Patient":
                self.identity.remember(tx, resource)
                if id(resource) in updates:
                    self.identity.took_update(tx, resource_id, updates[id(resource)])
        record = outcome.record
        if outcome.seen_as:
            # a partly accepted record too: the same bytes again are unchanged, and its parts
            # stay quarantined until a replay after a fix maps it afresh
            self.ledger.landed(tx, *outcome.seen_as, record.location, outcome.identity)
        # the same record (same content) quarantined by an earlier attempt has now landed and
        # leaves the quarantine; a row with the same key but other content never landed, and
        # this record replaces it: its entry stays, for the audit, resolved by this one, as do
        # the entries of the record's copies (a duplicate row, the same row in another file)
        digest = content_digest(record)
        tx.quarantine.release(record.source, outcome.identity, digest)
        by = {"file": record.file, "location": record.location}
        keyed = outcome.mapped is not None and outcome.mapped.identity.startswith("key|")
        outcome.resolved = tx.quarantine.resolve(record.source, outcome.identity, digest, by, keyed=keyed)
        where = (record.source, record.file, record.location)
        outcome.conflicts = [c for c in outcome.conflicts if tx.conflicts.add(c.line(*where))]

    def _merge_keyed(self, tx: Transaction, mapped: Mapped) -> list[Reason]:
        """Merge each keyed resource onto the archive's version; a merge that would leave it
        invalid quarantines the record with the merged resource's issues."""
        reasons: list[Reason] = []
        for name, as_of in mapped.keyed.items():
            resource = mapped.resources[name]
            found = keyed.merged(tx, resource, as_of)
            if found is None:
                continue
            other = self._other_person(tx, mapped, resource)
            if other is not None:
                reference = f"{resource['resourceType']}/{resource['id']}"
                archived, offered = other
                reasons.append(
                    self._reason("ingest.keyed-other-person", resource=reference, archived=archived, offered=offered)
                )
                continue
            merged, mapped.keyed[name] = found
            errors = [issue for issue in self.validator.validate(merged) if issue.is_error]
            if errors:
                reference = f"{resource['resourceType']}/{resource['id']}"
                reasons.append(self._reason("ingest.merge-invalid", resource=reference))
                reasons.extend(self._issue_reason(issue, mapped, name) for issue in errors)
            else:
                mapped.resources[name] = merged
        return reasons

    def _lacking_segments(self, record: SourceRecord) -> tuple[Spec, list[str]] | None:
        """The spec taking a message's type and event (``ADT^A04``) and the segments it needs
        that the message lacks (``PV1``).  Such a message is of a supported type but
        incomplete, a segment error of the sender's (HL7 0357 code 100); "no spec" (200,
        unsupported message type) told the sender its ADT^A04 was a type nobody takes."""
        for spec in self.engine.specs:
            if spec.source != record.source:
                continue
            if any("^" in wanted and wanted in record.shape for wanted in spec.match):
                return spec, sorted(spec.match - record.shape)
        return None

    def _other_person(self, tx: Transaction, mapped: Mapped, resource: dict[str, Any]) -> tuple[str, str] | None:
        """The person the archived version of a keyed resource is about and the other person
        this record says it is about, when they differ: (archived, offered) references.

        A key names a stay by hospital, visit number and admission time, not by person, so a
        number one HIS gave two patients (or a record of the wrong person) matched another's
        stay, and the merge moved that stay to this record's person, or left this record's
        person without it, while the record counted as landed.  The record's Patient is
        resolved as it would be written (the identity index, not yet changed); a record whose
        people cannot be resolved is quarantined later for that.  The element naming the person
        is the one the package's after-birth rule names for the type (``yy-ext-after-birth``:
        an Encounter's ``subject``, a Coverage's ``beneficiary``)."""
        dated = self.validator.after_birth.dated.get(resource["resourceType"])
        stored = tx.resources.read(resource["resourceType"], resource["id"]) if dated is not None else None
        if dated is None or stored is None or stored.resource is None:
            return None
        patients = {f"Patient/{r['id']}": r for r in mapped.resources.values() if r["resourceType"] == "Patient"}
        archived = _reference(stored.content.get(dated.person))
        patient = patients.get(_reference(resource.get(dated.person)) or "")
        if archived is None or patient is None:
            return None
        try:
            person, _ = self.identity.resolve(tx, patient)
        except (IdentityConflict, DocumentMismatch):
            return None
        return (archived, f"Patient/{person['id']}") if f"Patient/{person['id']}" != archived else None

    def _reason(self, message_id: str, **params: Any) -> Reason:
        return self._worded(message_id, worded(message_id, params))

    def _unreadable(self, why: Any) -> Reason:
        """``ingest.unreadable`` with the reader's reason worded in each language: the reason
        is a catalogued message (or, in an entry quarantined before, plain text)."""
        words = {lang: text("ingest.unreadable", lang, {"detail": unparseable_text(why, lang)}) for lang in LANGUAGES}
        return self._worded("ingest.unreadable", words)

    @staticmethod
    def _worded(message_id: str, words: dict[str, str]) -> Reason:
        exchanges.reason(message_id, words, None)
        return Reason(message_id, words)

    @staticmethod
    def _issue_reason(issue: Issue, mapped: Mapped, name: str) -> Reason:
        """The issue as a reason at its FHIRPath and legacy field.  One worded for a sender that
        may not read the records it quotes (``-unseen``, gateway/security/withheld.py) keeps
        the reason in full beside it, for the quarantine: the operators read that, and a
        quarantine entry saying "an event the sender may not see" told them nothing to fix."""
        field = source_of(mapped, name, issue.expression)
        told = Reason(issue.message_id, _both(issue), issue.expression, field)
        if isinstance(issue, Withheld):
            full = in_full(issue)
            told.in_full = Reason(full.message_id, _both(full), issue.expression, field)
        return told

    # -- batches --------------------------------------------------------------------------
    def _transaction(self) -> Transaction:
        if self._tx is None:
            self._batch = ExitStack()
            self._tx = self._batch.enter_context(self.store.transaction())
        return self._tx

    def commit(self) -> None:
        """Make every record processed so far durable."""
        if self._batch is not None:
            batch, landing = self._batch, self._landing
            self._batch, self._tx, self._pending, self._landing = None, None, 0, {}
            batch.close()
            self.landed.update(landing)  # not reached when the commit fails: nothing of it landed

    def abort(self) -> None:
        """Roll back the records of the current batch (they were not committed, so the next
        run maps them again)."""
        if self._batch is not None:
            batch, self._batch, self._tx, self._pending, self._landing = self._batch, None, None, 0, {}
            batch.__exit__(StoreError, StoreError("ingest aborted"), None)

    def run(self, records: Iterable[SourceRecord]) -> None:
        for record in records:
            self.process(record)

    def finish(self) -> Counts:
        """Commit the last batch: after Ctrl-C, the records processed before it are kept."""
        self._close_exchange()
        self.commit()
        for file, (valued, used, views) in self._fields.items():
            if found := unread(valued, used, views):
                self.counts.unread[file] = found
        return self.counts

    # -- the exchange record of what this run read ----------------------------------------
    def _exchange_of(self, record: SourceRecord) -> exchanges.Collector:
        """The exchange of the record's file: a new file closes the previous one's."""
        if self._exchange is not None and self._exchange_file != record.file:
            self._close_exchange()
            self.commit()  # no record of the next file waits on a lock while the ids lock is held
        if self._exchange is None:
            self._exchange, self._exchange_file = exchanges.Collector(), record.file
        return self._exchange

    def refuse_file(self, name: str, source: str, reason: Message) -> None:
        """A file that could not be read (to its end, or at all): counted among the run's file
        errors, and its exchange fails with the reason.  A file refused before its first record
        (an XML with a DOCTYPE, a CSV repeating a column) left no exchange at all, although
        ``$ingest`` records the same refusal as a failed exchange."""
        self.counts.file_errors.append(reason)
        if self._exchange is None or self._exchange_file != name:
            self._close_exchange()
            self._exchange, self._exchange_file = exchanges.Collector(), name
            self._exchange.source = source
        self._exchange.reason(reason.id, {lang: reason.text(lang) for lang in LANGUAGES}, name)
        self._close_exchange()
        self.commit()

    def empty_file(self, name: str, source: str) -> None:
        """A file that held no record is an exchange too: it came in, with nothing to judge
        (a report over the day must not read as if nothing had been sent)."""
        self._close_exchange()
        self._exchange, self._exchange_file = exchanges.Collector(), name
        self._exchange.source = source
        self._close_exchange()
        self.commit()

    def _close_exchange(self) -> None:
        """Append the exchange record in the current batch, so it commits with the last of its
        records (the batch is committed right after: the ids lock is held for no longer).  In a
        savepoint of its own: a failure to record loses the record, never the batch's data."""
        if self._exchange is None:
            return
        collector, self._exchange = self._exchange, None
        tx = self._transaction()
        try:
            with tx.savepoint():
                exchanges.append(tx, [collector.finished(self.party)])
        except StoreError:
            log.exception("ingest: the exchange record of %s could not be written", self._exchange_file)


#: the party of a run that names none: the operator at the command line
CLI = exchanges.Party("yiyang-cli", "", "", "cli", "ingest")


def _identity(outcome: Outcome) -> str:
    """What the record is: its spec and source key once mapped, else its content."""
    return outcome.identity or f"content|{content_digest(outcome.record)}"


def _both(issue: Issue) -> dict[str, str]:
    """The issue's text in each language."""
    return {lang: issue.text(lang) for lang in LANGUAGES}


def _leave_out(mapped: Mapped, outcome: Outcome, parts: Mapping[str, list[Reason]]) -> None:
    """The record's independent ``parts`` left out of what it writes, each for its reasons."""
    for name, reasons in parts.items():
        outcome.parts.extend(reasons)
        del mapped.resources[name]
        mapped.keyed.pop(name, None)


def _owner_expression(resource: dict[str, Any]) -> str | None:
    """The FHIRPath of a resource's first owner reference (:func:`~gateway.security.access.owner_references`): of its
    identifier, when it names the organisation by identifier alone."""
    for where, reference in owner_references(resource):
        return f"{where}.identifier" if "reference" not in reference and "identifier" in reference else where
    return None


def _independent(mapped: Mapped, parts: set[str | None]) -> bool:
    """Whether the failing parts can be left out: nothing else in the record refers to them."""
    dropped = {
        f"{resource['resourceType']}/{resource['id']}" for name, resource in mapped.resources.items() if name in parts
    }
    kept = [resource for name, resource in mapped.resources.items() if name not in parts]
    return not any(dropped & {node["reference"] for node in reference_nodes(resource)} for resource in kept)
