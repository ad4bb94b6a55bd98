"""Create, read, update, patch and delete, conditional or not, every write validated first.

Each public method is one interaction in its own store transaction; the ``*_in`` methods do
the same inside a caller's transaction, so a transaction Bundle is the same interactions
committed together.  Validation runs before the transaction opens: the store's write lock is
never held while a profile is walked.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import orjson

from conformance import after_birth
from conformance.fhirpath_scope import Resolver
from conformance.issues import Issue, IssueList
from conformance.stored_references import References, check_stored_references
from conformance.validator import Validator
from gateway import exchanges, messages
from gateway.config import Config
from gateway.fhir.archive_references import ArchiveReferences, Lookup, localise_references
from gateway.fhir.errors import FhirError, not_found
from gateway.fhir.identity_index import (
    forget_person,
    held_row,
    lock_new_person,
    lock_people,
    register_person,
    replaced_by,
    replacing_link,
)
from gateway.fhir.json_patch import patched_resource
from gateway.fhir.search import SUBSETTED, Searcher
from gateway.ingest.identity import IDENTITY_LOCK
from gateway.ingest.organizations import identifiers as organization_identifiers
from gateway.ingest.organizations import lock_identifiers as lock_organization_identifiers
from gateway.ingest.stored_events import judge_stored_events
from gateway.search.values import natural_number
from gateway.security.access import (
    GRANTING_TYPES,
    OPERATOR,
    RESTRICTED_ROLES,
    Access,
    PersonalData,
    creator,
    foreign_owners,
    may_change,
    named_owners,
)
from gateway.security.principal import acting
from gateway.security.scopes import Grants
from gateway.security.withheld import withheld_issues
from gateway.storage.ingest_tables import IdentityKeys
from gateway.storage.store import (
    ANY_VERSION,
    Expected,
    IndexRow,
    Store,
    Stored,
    StoreError,
    Transaction,
    VersionConflict,
    admits,
)
from profiles.registry import Registry, r4_resource_types

ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
#: where a Patient names another record of the person (``replaces``, ``replaced-by`` …)
LINKED = re.compile(r"\.link\[\d+\]\.other\.reference$")


@dataclass
class Shared:
    """What the writes of one transaction share about the Patients they name."""

    #: the Patients the transaction creates, at ids the server chose, by id (see
    #: :meth:`Access.unserved_people`)
    registering: Mapping[str, dict[str, Any]] | None = None
    #: the Patients its writes named, each read once and held shared until it ends
    #: (:meth:`Repository._hold_people`): three visits of one person read them once
    held: dict[tuple[str, str], Stored | None] = field(default_factory=dict)
    #: the Patients each resource it writes names (:meth:`Repository._named_people`), by the
    #: resource's identity, with the resource: a transaction's hold finds them, and each
    #: entry's write then holds them without walking its resource again
    named: dict[int, tuple[dict[str, Any], dict[str, tuple[str, str]]]] = field(default_factory=dict)
    #: the Patients it creates claim their keys as no one's (:func:`register_person`): the
    #: claim goes with the COMMIT, and one held already fails the write, which is then made
    #: again with the careful claim
    unheld: bool = False


@dataclass
class Written:
    """The outcome of a write: the version now current, the HTTP status, and the warnings
    validation raised (errors never get this far unless the gateway accepts with warnings)."""

    stored: Stored
    status: int
    issues: list[Issue] = field(default_factory=list)
    #: a Patient's ``birthDate`` moved later (or set) by this write: what the archive holds of
    #: them is judged against it once the request's writes are done (:meth:`Repository.judge_birth`)
    birth_moved: bool = False
    #: the Patients the write names, as its transaction read them, held shared until it ends
    #: (:meth:`Repository._hold_people`), by reference; None for one absent or deleted
    people: dict[str, Stored | None] = field(default_factory=dict)

    def outcome(self, lang: str) -> dict[str, Any]:
        """What a client that prefers an OperationOutcome (``Prefer: return=OperationOutcome``)
        gets, for a single write and a Bundle entry alike: the validation issues, or that all
        went well."""
        issues = [issue.to_fhir(lang) for issue in self.issues] or [messages.issue("information", "http.ok", lang)]
        return {"resourceType": "OperationOutcome", "issue": issues}


#: resources R4 gives no RESTful endpoint: Parameters only carries an operation's in- and output
NO_ENDPOINT = frozenset({"Parameters"})


class Repository:
    def __init__(
        self, store: Store, validator: Validator, registry: Registry, config: Config, searcher: Searcher
    ) -> None:
        self.store = store
        self.validator = validator
        self.config = config
        self.searcher = searcher
        self.resource_types = r4_resource_types() - NO_ENDPOINT
        self.default_profiles = default_profiles(registry)
        self.personal = PersonalData(registry, store.indexer)
        #: what a written resource points at in the archive, for its target profiles
        self.references = ArchiveReferences(store, config.base_url, self.personal, self.resource_types)

    # -- checks ----------------------------------------------------------------------------
    def access(self) -> Access:
        """What the principal this request acts for may see (everything, for the command line)."""
        return Access(acting.get(), self.personal)

    def check_type(self, kind: str, where: str | None = None) -> None:
        """404 for a type without an endpoint; ``where`` locates it (a Bundle entry's URL)."""
        if kind not in self.resource_types:
            raise FhirError(404, "http.unknown-type", where, type=kind)

    @staticmethod
    def check_id(resource_id: str, where: str = "id") -> None:
        """400 for an id a write would create that is no FHIR id (1-64 letters, digits, ``-``
        and ``.``); ``where`` locates it.  Checked whatever the validation policy: stored under
        such an id (with ``warn``), a resource was one no conforming client could address."""
        if not ID.fullmatch(resource_id):
            raise FhirError(400, "http.bad-id", where, id=resource_id)

    def validate(
        self,
        resource: dict[str, Any],
        profiles: Sequence[str] = (),
        path: str = "",
        elsewhere: Lookup | None = None,
        references: References | None = None,
        *,
        noted: bool = True,
    ) -> list[Issue]:
        """Every issue: base model, the resource's claimed profiles, the provincial profile
        for its type (when the package has exactly one), any profile asked for, and the form a
        stored resource's references must have (``conformance.stored_references``); references
        to the archive resolve there (a target must meet the profile its reference demands),
        or through ``elsewhere`` when the caller knows better (a transaction's own entries).
        The validator is handed only the records the client's scopes read (:meth:`Lookup.readable`):
        its verdict on a record it may not read would tell it that record's conformance.  The
        rules keeping the archive free of contradictions read what they need, and word what
        they tell as :mod:`gateway.security.withheld` does.
        ``references``: the resource's at ``path``, when the caller has found them already.
        ``noted``: the verdict joins the exchange's record (not a second look at the same
        resource, as ``$validate`` takes to tell a requested profile's errors from the write's)."""
        wanted = list(profiles)
        default = self.default_profiles.get(resource.get("resourceType", ""))
        if default and default not in wanted:
            wanted.append(default)
        # one lookup per reference for the validator and the rules after it alike
        resolve = elsewhere or self.references.including({})
        issues = IssueList(self.validator.validate(resource, wanted, path, elsewhere=resolve.readable()))
        if not any(issue.severity == "fatal" for issue in issues):  # not refused unread (too deep, too big)
            check_stored_references(resource, path, self.references.resource_types, issues, references)
            self._check_after_birth(resource, path, resolve, issues)
        # rules quoting a record the client may not read
        issues = IssueList(withheld_issues(issues, resource.get("resourceType", "")))
        if noted:
            exchanges.judged(resource, wanted, issues)  # the verdict joins the exchange's record
        return issues

    def _check_after_birth(self, resource: dict[str, Any], path: str, resolve: Resolver, issues: IssueList) -> None:
        """What happened to a person is not dated before their birth: the Patient is read from
        the archive, or from the transaction writing it, and only when the caller may see it (a
        hidden one resolves to nothing, so no verdict hints at a birth date it may not read)."""
        reference = self.validator.after_birth.person_reference(resource)
        if reference is not None:
            born = after_birth.birth_date(resolve(reference))
            self.validator.after_birth.check(resource, path or resource["resourceType"], born, issues)

    def checked(self, resource: dict[str, Any], path: str = "", references: References | None = None) -> list[Issue]:
        """Validate a resource about to be written: errors refuse it (422) unless the gateway is
        configured to accept with warnings; what remains is returned to the client.
        ``references``: the resource's at ``path``, found once for every rule (and then for
        its index rows, :meth:`index_rows`) when the caller passes them."""
        resolve = self.references.including({})  # one lookup per reference for both
        references = references if references is not None else References(resource, path)
        check_meta(resource, path)
        check_no_merge_link(resource, path)
        self.check_reachable(resource, path, resolve, references)
        issues = self.validate(resource, path=path, elsewhere=resolve, references=references)
        errors = [issue for issue in issues if issue.is_error]
        if errors and self.config.validation == "reject":
            raise FhirError(422, "http.invalid-resource", issues=issues, count=len(errors))
        return issues

    def check_reachable(
        self,
        resource: dict[str, Any],
        path: str = "",
        resolve: Resolver | None = None,
        references: References | None = None,
    ) -> None:
        """A restricted client (an elderly-care platform) names in what it writes only records
        of people it may see, or that the same transaction writes (``resolve`` knows them): a
        reference to a hidden stay of another organisation was stored, and, referenced, that
        stay could no longer be deleted by its own hospital (409).  A hidden and an absent
        record are refused alike (403), whatever the validation policy, so the answer tells
        nothing of what the archive holds.  People themselves are judged by their own rule
        (:meth:`Access.unserved_people`, 403 too); an organisation or a practitioner is
        everyone's to see, and one the archive lacks stays a reference to resolve later.

        No one names a Patient merged away (Patient/$merge) as the record of a person: what is
        written of them now belongs with the survivor (422 naming it).  Only a ``link`` (the
        survivor's ``replaces``) and a versioned reference (what that version was) may.

        The references are judged as found, and located only when one is refused, to say
        where (:class:`~conformance.stored_references.References`); whether one is in a
        ``link`` is read from its location, so only when it names a Patient merged away.
        ``references``: the resource's at ``path``, when the caller has found them already."""
        rules = self.access()
        resolve = resolve or self.references
        references = references if references is not None else References(resource, path)
        for node in references:
            refusal = self._unreachable(node, references, rules, resolve)
            if refusal is not None:
                raise refusal

    def _unreachable(
        self, node: dict[str, Any], references: References, rules: Access, resolve: Resolver
    ) -> FhirError | None:
        """The refusal :meth:`check_reachable` gives the Reference ``node`` (one of
        ``references``), or None."""
        reference = node["reference"]
        kind = self.references.named_type(reference)
        if kind == "Patient":
            return _merged_away(node, references, resolve)
        if kind is None or not rules.restricted or not self.personal.is_personal(kind):
            return None
        if resolve(reference) is not None:
            return None
        organization = rules.principal.organization if rules.principal else ""
        return FhirError(
            403, "http.forbidden-reference", references.where(node), reference=reference, organization=organization
        )

    def _hold_people(self, tx: Transaction, resource: dict[str, Any], shared: Shared) -> dict[str, Stored | None]:
        """The Patients ``resource`` names, read again inside the write's transaction and held
        shared until it ends (PostgreSQL; on SQLite one write transaction runs at a time and
        reads what the last committed).  Checked before the transaction alone, a write racing
        the commit of a merge passed and then named the record merged away, and a visit racing
        a move of the birth date later was judged against the old one.  Held, a merge or a
        move waits for the write's commit and then finds it among the referrers (a merge
        prepares again: ``merge.overtaken``), or the write waits for theirs and reads what
        they committed.  Read in :func:`lock_order`, as a merge locks them.

        A Patient the same transaction creates (``shared.registering``) is passed over: its own write
        holds its row and refuses one merged away, or it is new, and a Bundle's entries were
        judged against it; read here, the nine Encounters and Coverages of a transaction
        creating their Patient cost nine locking reads on PostgreSQL.  A Patient's own are
        passed over too: it names other Patients in its ``link`` (which a merge writes, and the
        merged-away refusal passes over), and no after-birth rule dates a Patient by another;
        held, a PUT of one Patient and a merge would lock two Patients each in its own order."""
        found = References(resource, "")
        keys = self._named_people(found, shared)
        held = shared.held  # each read once a transaction: it holds them until it ends
        for key in sorted(set(keys.values()) - held.keys(), key=lock_order):
            held[key] = _held_shared(tx, key)
        people = {reference: held[key] for reference, key in keys.items()}
        if any(p is not None and replaced_by(p.resource or {}) is not None for p in people.values()):
            # :func:`_check_people` has refused a restricted principal every Patient it may not
            # see, so this refusal tells nothing of a hidden record

            def held_now(reference: str) -> dict[str, Any] | None:
                return _content(people[reference])

            for node in found:
                if node["reference"] not in people:
                    continue
                refusal = _merged_away(node, found, held_now)
                if refusal is not None:
                    raise refusal
        return people

    def _named_people(self, references: References, shared: Shared) -> dict[str, tuple[str, str]]:
        """The archive's Patients a resource names (:meth:`_hold_people`), by reference, from
        its ``references``; found once a transaction (``shared.named``): a transaction's hold
        and then each entry's write asked, the ten creates of a benchmark Bundle walking their
        resources 18 times."""
        resource = references.resource
        if resource.get("resourceType") == "Patient":
            return {}
        found = shared.named.get(id(resource))
        if found is not None and found[0] is resource:
            return found[1]
        keys: dict[str, tuple[str, str]] = {}
        for node in references.every:
            key = self.references.current_key(node["reference"])
            if key is not None and key[0] == "Patient" and key[1] not in (shared.registering or ()):
                keys[node["reference"]] = key
        shared.named[id(resource)] = (resource, keys)
        return keys

    # -- reads -----------------------------------------------------------------------------
    def read(self, kind: str, resource_id: str) -> Stored:
        """The current version, if the principal may see it (404 otherwise, as if absent)."""
        self.check_type(kind)
        with self.store.reading(snapshot=False) as tx:
            return self.read_in(tx, kind, resource_id)

    def read_in(
        self,
        tx: Transaction,
        kind: str,
        resource_id: str,
        where: str | None = None,
        *,
        for_update: bool = False,
        access: Access | None = None,
    ) -> Stored:
        """The current version inside ``tx``: 404 when absent or hidden, 410 when deleted.
        ``access``: the request's rules when the caller goes on judging with them (what it
        learnt of the people they asked about is then asked again of no one)."""
        found = tx.resources.read(kind, resource_id, for_update=for_update)
        if (access or self.access()).hides(tx, found):
            found = None
        return _present(found, kind, resource_id, where)

    def vread(self, kind: str, resource_id: str, version: str) -> Stored:
        """One version; for a restricted principal only while the resource is visible to it
        (404 as if absent otherwise) and if the version itself concerns people it serves."""
        self.check_type(kind)
        number = natural_number(version)
        if number is None or str(number) != version:  # a version id is text: "01" names none
            raise FhirError(404, "http.version-not-found", reference=f"{kind}/{resource_id}", version=version)
        with self.store.reading(snapshot=self.access().restricted) as tx:
            return self.vread_in(tx, kind, resource_id, number)

    def vread_in(self, tx: Transaction, kind: str, resource_id: str, version: int, where: str | None = None) -> Stored:
        """A version that exists, is no deletion and may be shown to the principal."""
        rules = self.access()
        if rules.restricted:
            current = tx.resources.read(kind, resource_id)
            if current is None or rules.hides(tx, current):
                raise not_found(kind, resource_id, where)
        found = tx.resources.vread(kind, resource_id, version)
        if found is None or not rules.version_visible(tx, found):
            raise FhirError(
                404, "http.version-not-found", where, reference=f"{kind}/{resource_id}", version=str(version)
            )
        if found.deleted:
            raise FhirError(410, "http.gone", where, reference=found.reference, when=found.last_updated)
        return found

    # -- writes ----------------------------------------------------------------------------
    def create(self, resource: dict[str, Any], if_none_exist: str | None = None) -> Written:
        """POST: a new id, unless ``If-None-Exist`` finds the resource already there (200).
        A match is looked for first: then the body is ignored, as FHIR has it, not validated
        (the write transaction looks again, under its lock, before it creates)."""
        self._body_type(resource)
        if if_none_exist is not None:  # present but blank selects nothing: no silent plain create
            self.need_criteria(if_none_exist)
            with self.store.reading() as tx:
                found = self.only_match(tx, resource["resourceType"], if_none_exist)
            if found is not None:
                return Written(found, 200)
        resource = {**resource, "id": new_id()}
        issues, rows = self._prepared(resource)

        def write(unheld: bool) -> Written:
            return self.store.atomically(
                lambda tx: self.judge_birth(
                    tx, self.create_in(tx, resource, issues, if_none_exist, rows, Shared(unheld=unheld))
                )
            )

        # a new person's keys are claimed as no one's, in the COMMIT's round trip; one held
        # already fails that write, and the careful claim judges it (register_person)
        try:
            return write(True)
        except StoreError as error:
            if not IdentityKeys.held(error):
                raise
        return write(False)

    def _prepared(self, resource: dict[str, Any]) -> tuple[list[Issue], list[IndexRow] | None]:
        """A write's validation (:meth:`checked`) and its index rows (:meth:`index_rows`), both
        before its transaction, reading one walk's References: the checks and the indexer each
        walked the whole resource for them (three walks a create, one now).  Its references on
        this server's own base are made the relative ones they stand for first, from that walk
        too (``archive_references.localise``): a REST create's or update's body is handed over
        as sent, where a walk of its own localised it (about 10 µs of a Patient's CPU); a body
        localised already (a Bundle's entry, a patch) has none left to rewrite."""
        references = References(resource, "")
        localise_references(references, self.config.base_url)
        return self.checked(resource, references=references), self.index_rows(resource, references)

    def index_rows(self, resource: dict[str, Any], references: References | None = None) -> list[IndexRow] | None:
        """The resource's search index rows, made before its write transaction opens: they
        depend on its content alone, and making them inside would hold every other writer
        (on SQLite, every other worker) up for as long.  ``references``: the resource's, as
        its checks found them (:meth:`checked`), which the indexer then need not seek again."""
        indexer = self.store.indexer
        return indexer(resource, references) if indexer is not None else None

    def create_in(
        self,
        tx: Transaction,
        resource: dict[str, Any],
        issues: list[Issue],
        if_none_exist: str | None = None,
        rows: list[IndexRow] | None = None,
        shared: Shared | None = None,
    ) -> Written:
        """``shared``: what the writes of the same transaction share (:class:`Shared`), a
        new Patient's keys claimed as no one's among them."""
        if if_none_exist:
            kind = resource["resourceType"]
            tx.lock(condition_lock(kind))
            found = self.only_match(tx, kind, if_none_exist)
            if found is not None:
                return Written(found, 200)
        _check_owner(tx, resource)
        _check_organization_identifiers(tx, resource)
        rules = self.access()
        shared = shared or Shared()
        _check_people(rules, tx, resource, shared.registering)
        people = self._hold_people(tx, resource, shared)
        lock_new_person(tx, resource)
        register_person(tx, resource, None, rules, unheld=shared.unheld)  # its row is not needed: the claim goes first
        stored, _ = tx.resources.write(resource, method="POST", current=None, rows=rows, owner=creator(acting.get()))
        return Written(stored, 201, issues, people=people)

    def rehearse(self, resource: dict[str, Any], resource_id: str | None = None) -> FhirError | None:
        """What the write of ``resource`` (validated already) would be refused for — a create,
        or an update of ``resource_id`` —, or None when it would be accepted: ``$validate``'s
        create and update modes (R4 Resource-validate: what the server would check for that
        interaction, uniqueness included).  The write itself is made, with the checks that read
        the archive (a person or an organisation held already, a number of another person's, a
        person or a reference the client may not write about, a birth date moved past what
        names the person), in a write transaction that is always rolled back: two lists of
        checks would drift apart.  Nothing outlives that transaction (rows, identity claims,
        conflicts for the 主索引 staff); what the request audits and notes is its own."""
        written = {**copy.deepcopy(resource), "id": resource_id or new_id()}
        references = References(written, "")
        localise_references(references, self.config.base_url)

        def write(tx: Transaction) -> None:
            if resource_id is None:
                made = self.create_in(tx, written, [])
            else:
                made = self.update_in(tx, written, [])
            self.judge_birth(tx, made)
            raise _Rehearsed

        try:
            if resource_id is not None:
                self.check_id(resource_id, f"{written['resourceType']}.id")
            check_meta(written)
            check_no_merge_link(written)
            self.check_reachable(written, references=references)
            self.store.atomically(write)
        except FhirError as refused:
            return refused
        except _Rehearsed:
            pass
        return None

    def update(
        self, kind: str, resource_id: str, resource: dict[str, Any], if_match: Expected | None = None
    ) -> Written:
        """PUT: update, or create with the client's id (update-as-create)."""
        self._check_update(kind, resource_id, resource)
        issues, rows = self._prepared(resource)
        return self.store.atomically(
            lambda tx: self.judge_birth(tx, self.update_in(tx, resource, issues, if_match, rows))
        )

    def update_in(
        self,
        tx: Transaction,
        resource: dict[str, Any],
        issues: list[Issue],
        if_match: Expected | None = None,
        rows: list[IndexRow] | None = None,
        minted: bool = False,
        shared: Shared | None = None,
        free_id: bool = False,
        method: str = "PUT",
    ) -> Written:
        """``method``: the interaction recorded with the version, which its history entry's
        ``request.method`` says (PATCH for a patched resource, not the PUT that writes it);
        ``minted``: the server chose the id (a conditional update that matched nothing);
        ``free_id``: a conditional update that matched nothing names its id, which must then
        belong to no resource (409, as R5 settles it: R4's "performs a create" cannot mean
        replacing a resource the criteria did not select); ``shared`` as for
        :meth:`create_in`."""
        _check_owner(tx, resource)
        _check_organization_identifiers(tx, resource)
        kind, resource_id = resource["resourceType"], resource["id"]
        rules = self.access()
        shared = shared or Shared()
        _check_people(rules, tx, resource, shared.registering)
        # rows are locked in :func:`lock_order`, as a merge locks them: one writer holding its
        # ServiceRequest while it waited for a Patient the merge held, and the merge waiting for
        # that ServiceRequest, deadlocked.  The Patients it names come before its own row when
        # a Patient's row of the same id would
        people_first = lock_order((kind, resource_id)) > lock_order(("Patient", resource_id))
        people = self._hold_people(tx, resource, shared) if people_first else None
        try:
            before = held_row(tx, kind, resource_id, resource)
            if before is None:  # no row to hold: two PUTs creating one id take turns on its name
                tx.lock(_creating(kind, resource_id))
                before = held_row(tx, kind, resource_id, resource)  # (made meanwhile: its numbers too)
            if rules.hides(tx, before) or (rules.restricted and before is None and not minted):
                # a restricted principal cannot create at an id of its choosing either: a 201
                # for a free id and a 404 for a hidden one would tell the two apart (and some
                # ids derive from business keys, such as an insurance number)
                raise not_found(kind, resource_id)
            if if_match is not None and before is not None and before.deleted and not admits(if_match, before.version):
                # as a PATCH finds it: no version of it is left to match (not a 412 naming
                # the deletion's version as the current one).  The deletion's own version, the
                # ETag its DELETE answered, brings it back to life unless another write did
                # so first (R4 http.html#delete)
                raise FhirError(410, "http.gone", reference=before.reference, when=before.last_updated)
            if free_id and before is not None and not before.deleted:
                raise FhirError(409, "http.conditional-id-taken", reference=f"{kind}/{resource_id}")
            if before is not None and before.resource is not None:
                _check_change(tx, before)  # nor may it take over another's resource
                _check_not_replaced(before)
            elif kind == "Organization":  # nor another's organisation, by making its record
                self._check_unclaimed(tx, resource_id)
            _check_team(rules, tx, resource, before.resource if before is not None else None)
            if people is None:
                people = self._hold_people(tx, resource, shared)
            stored, changed = tx.resources.write(
                resource,
                method=method,
                if_match=if_match,
                rows=rows,
                owner=creator(acting.get()),
                current=before,  # held, or none, its name locked: none is made meanwhile
            )
        except VersionConflict as conflict:
            raise _conflict(conflict) from conflict
        register_person(tx, stored.resource, before, rules)
        created = before is None or before.deleted
        moved = not created and kind == "Patient" and _birth_moved(before, resource)
        return Written(stored, 201 if created else 200, issues, moved, people if changed else {})

    def judge_birth(
        self, tx: Transaction, written: Written, path: str = "", rewritten: Collection[tuple[str, str]] = ()
    ) -> Written:
        """The after-birth rule across stored records, both ways, once a request's writes are
        done: a dated resource against its person as the transaction finds them
        (:meth:`_judge_dated`), and a Patient whose birth date moved against what names them.

        A Patient whose ``birthDate`` moved later is judged against what the archive holds
        of them (what names them as its person, by the after-birth rule's data): an Encounter
        or an Observation now dated before the birth would be a contradiction the archive
        keeps, which a write of it now is refused for.  A 422 at ``birthDate`` counting and
        naming them, or, when the gateway accepts with warnings, a warning among the write's
        issues.  Only what the client may see refuses its write: one it may not see is not
        told of (that would tell it what others hold of the person), and is listed among the
        identity conflicts for the 主索引 staff instead, as a holder it may not see is.  Asked
        once the request's writes are done, so a transaction that corrects the events with
        the birth date is judged as it leaves them."""
        if written.people:
            self._judge_dated(tx, written, path, rewritten)
        patient = written.stored.resource
        if not written.birth_moved or patient is None:
            return written
        severity = "error" if self.config.validation == "reject" else "warning"
        rule, where = self.validator.after_birth, path or "Patient"
        verdict = judge_stored_events(tx, rule, self.access(), patient, where, severity)
        if verdict.issues and severity == "error":
            raise FhirError(422, "http.invalid-resource", issues=verdict.issues, count=len(verdict.issues))
        if verdict.hidden is not None:
            # each version that moved the birth is a conflict of its own (one per file and place)
            version = f"{written.stored.reference}/_history/{written.stored.version}"
            tx.conflicts.add(verdict.hidden.line("rest", version, f"{where}.birthDate"))
        written.issues = [*written.issues, *verdict.issues]
        exchanges.found_after(verdict.issues)
        return written

    def check_birth(
        self,
        tx: Transaction,
        before: Stored,
        patient: dict[str, Any],
        path: str,
        naming: Sequence[tuple[Stored, dict[str, Any]]],
    ) -> None:
        """Refuse (422) what :meth:`judge_birth` would refuse of ``patient`` written over
        ``before``, were ``naming`` (stored resources, each with the content about to replace
        it) written too; writes nothing (a ``Patient/$merge`` preview, whose referrers are
        not moved yet)."""
        if not _birth_moved(before, patient):
            return
        severity = "error" if self.config.validation == "reject" else "warning"
        rule, where = self.validator.after_birth, path or "Patient"
        verdict = judge_stored_events(tx, rule, self.access(), patient, where, severity, naming=naming)
        if verdict.issues and severity == "error":
            raise FhirError(422, "http.invalid-resource", issues=verdict.issues, count=len(verdict.issues))

    def _judge_dated(
        self, tx: Transaction, written: Written, path: str, rewritten: Collection[tuple[str, str]]
    ) -> None:
        """A dated resource was validated against its person's birth date before its
        transaction began; a write moving that birth date meanwhile judged the events it then
        found, not this one.  So it is judged again against the person as its transaction
        read and holds them (:meth:`_hold_people`), and the rule's verdicts it did not give
        before are given now: a 422 for a new error under ``reject``, new issues among the
        write's under ``warn``.  A person the same transaction creates was judged with the
        Bundle, and is not held; one it updates (``rewritten``, by type and id) is read again:
        held as it was before, it would be judged by the birth date the transaction replaced;
        one the client may not see is not judged."""
        resource = written.stored.resource or {}
        reference = self.validator.after_birth.person_reference(resource)
        person = written.people.get(reference) if reference is not None else None
        if person is not None and (person.type, person.id) in rewritten:
            person = tx.resources.read(person.type, person.id)
        if person is None or person.resource is None or self.access().hides(tx, person):
            return
        found = IssueList()
        born = after_birth.birth_date(person.resource)
        self.validator.after_birth.check(resource, path or resource["resourceType"], born, found)
        new = [issue for issue in withheld_issues(found, resource["resourceType"]) if issue not in written.issues]
        errors = [issue for issue in new if issue.is_error]
        if errors and self.config.validation == "reject":
            raise FhirError(422, "http.invalid-resource", issues=new, count=len(errors))
        written.issues = [*written.issues, *new]
        exchanges.found_after(new)

    def conditional_update(
        self, kind: str, criteria: str, resource: dict[str, Any], if_match: Expected | None = None
    ) -> Written:
        """PUT Type?criteria: update the one match, or create when there is none."""
        self.check_type(kind)
        self.need_criteria(criteria)
        if self._body_type(resource) != kind:
            raise FhirError(400, "http.wrong-type", "resourceType", found=resource["resourceType"], expected=kind)

        @exchanges.noted_once  # run again: judged again, noted once
        def matched(tx: Transaction) -> Written:
            tx.lock(condition_lock(kind))
            found = self.only_match(tx, kind, criteria)
            if found is None and if_match is not None:
                # If-Match asks for a version of the match: none matched, so none can have it
                # (a 404 naming the id minted for a create never made told the client nothing)
                raise FhirError(404, "http.conditional-no-match", condition=criteria)
            body_id = named_id(resource, f"{kind}.id")
            if body_id:
                self.check_id(body_id, f"{kind}.id")
            minted = found is None and not body_id
            target = found.id if found else body_id or new_id()
            if body_id not in (None, target):
                raise FhirError(400, "http.id-mismatch", f"{kind}.id", body=body_id, url=target)
            written = {**resource, "id": target}
            issues = self.checked(written)
            free_id = found is None and not minted
            return self.judge_birth(tx, self.update_in(tx, written, issues, if_match, minted=minted, free_id=free_id))

        return self.store.atomically(matched)

    def patch(self, kind: str, resource_id: str, operations: Any, if_match: Expected | None = None) -> Written:
        """PATCH with a JSON Patch document; the patched resource is validated like any write,
        before the write transaction (other writers are not held up meanwhile).  Without
        ``If-Match`` the patch applies to whichever version is current: if another write came
        between the read and the write, it is read, patched and validated again, instead of
        failing with a 412 the client never asked for."""

        def attempt(named: Expected | None) -> Written:
            current = self.read(kind, resource_id)
            patched = patched_resource(current, operations)  # localised by _prepared
            issues, rows = self._prepared(patched)
            # the version read, unless the client named one: If-Match: * patched whatever
            # was current at the write, over a write that came after the read
            expected = named if named is not None else current.version
            write = partial(
                self.update_in, resource=patched, issues=issues, if_match=expected, rows=rows, method="PATCH"
            )
            return self.store.atomically(lambda tx: self.judge_birth(tx, write(tx)))

        return until_not_overtaken(if_match, attempt)

    def conditional_patch(self, kind: str, criteria: str, operations: Any, if_match: Expected | None = None) -> Written:
        """PATCH Type?criteria (R4 http.html#patch): the one match is patched as by its id;
        404 when nothing matches (a patch creates nothing), 412 when several do.  The version
        matched is the one patched: a write in between (which may have moved the criteria to
        another record) makes it look again, as a PATCH without If-Match re-reads."""
        self.check_type(kind)
        self.need_criteria(criteria)

        def attempt(named: Expected | None) -> Written:
            with self.store.reading() as tx:
                found = self.only_match(tx, kind, criteria)
            if found is None:
                raise FhirError(404, "http.conditional-no-match", condition=criteria)
            return self.patch(kind, found.id, operations, named if named is not None else found.version)

        return until_not_overtaken(if_match, attempt)

    def delete(self, kind: str, resource_id: str, if_match: Expected | None = None) -> Stored | None:
        """DELETE kind/id.  An id that is no FHIR id is a 400, as a PUT to it is: answered
        "nothing to delete", it told the client its request was sound and had found nothing."""
        self.check_type(kind)
        self.check_id(resource_id)

        def deleting(tx: Transaction) -> Stored | None:
            gone = self.delete_in(tx, kind, resource_id, if_match)
            self.check_unreferenced(tx, [gone] if gone else [])
            return gone

        return self.store.atomically(deleting)

    def check_unreferenced(self, tx: Transaction, gone: Iterable[Stored], where: str | None = None) -> None:
        """409 when a resource still in the archive points at one just deleted: the archive
        keeps no dangling reference (R4 http.html#delete lets a server refuse so).  Asked once
        everything the request deletes is gone, so resources deleted together (a Patient and
        its Encounters in one transaction, the matches of one conditional delete) may point at
        each other.  A Provenance pointing at it does not count (see Resources.referrer)."""
        for stored in gone:
            referrer = tx.resources.referrer(stored.type, stored.id, self.searcher.parameters.pointing(stored.type))
            if referrer is None:
                continue
            # named to a client that may not read it, it told its id and what it says it is about
            refused = FhirError(409, "http.delete-referenced", where, reference=stored.reference, referrer=referrer)
            raise refused.withheld(self._readable(tx, referrer))

    def _readable(self, tx: Transaction, reference: str) -> bool:
        """Whether the principal may read the resource ``reference`` (``Type/id``) names: its
        scopes read the type (a client holding Patient scopes alone was told which Observation
        named the Patient it tried to delete), and the organisation rule shows the resource."""
        principal = acting.get()
        kind, _, resource_id = reference.partition("/")
        if principal is not None and not Grants(principal.scopes).allows(kind, "r"):
            return False
        return not self.access().hides(tx, tx.resources.read(kind, resource_id))

    def delete_in(
        self, tx: Transaction, kind: str, resource_id: str, if_match: Expected | None = None
    ) -> Stored | None:
        """Delete kind/id; None when there was nothing (the principal may see) to delete.  A
        hidden resource answers exactly as an absent one, with ``If-Match`` too (404)."""
        _check_writable(kind, "DELETE")
        current = held_row(tx, kind, resource_id)
        if self.access().hides(tx, current):
            if if_match is not None:
                raise _conflict(VersionConflict(f"{kind}/{resource_id}", if_match, None))
            return None
        if current is not None and current.resource is not None:
            _check_change(tx, current)
            _check_not_merged_source(current)
        try:
            gone = tx.resources.delete(kind, resource_id, if_match=if_match)
        except VersionConflict as conflict:
            raise _conflict(conflict) from conflict
        if gone is not None:
            forget_person(tx, current)
        return gone

    def _check_unclaimed(self, tx: Transaction, organization: str) -> None:
        """A client (other than the operator) makes the Organization of an organisation that
        is not its own only while no one else has a claim on it: no client acts for it, no
        record names it.  Whoever writes an Organization places it under whom it likes
        (``partOf``), and a client writes for the organisations under its own: a hospital
        making ``Organization/<another's id>`` under itself was then allowed to change and
        delete every record that organisation's clients had made or that named it."""
        principal = acting.get()
        if principal is None or principal.role == OPERATOR or organization == principal.organization:
            return
        pointing = self.searcher.parameters.pointing("Organization")
        if tx.security.acts_for(organization) or tx.resources.referrer("Organization", organization, pointing):
            raise FhirError(403, "http.organization-claimed", "Organization.id", organization=organization)

    def check_deletable(self, kind: str, resource_id: str) -> None:
        """Raise what deleting kind/id would answer — 404 when absent or hidden, 405 for the
        audit trail, 403 for another organisation's record — and delete nothing
        (``$validate`` in delete mode)."""
        self.check_type(kind)
        with self.store.reading() as tx:
            current = tx.resources.read(kind, resource_id)
            if current is None or current.deleted or self.access().hides(tx, current):
                raise not_found(kind, resource_id)
            _check_writable(kind, "DELETE")
            _check_change(tx, current)
            _check_not_merged_source(current)
            self.check_unreferenced(tx, [current])

    def conditional_delete(self, kind: str, criteria: str, if_match: Expected | None = None) -> list[Stored]:
        """DELETE Type?criteria: delete every match (this server supports multiple deletes)."""
        self.check_type(kind)
        self.need_criteria(criteria)

        def deleting(tx: Transaction) -> list[Stored]:
            gone = self.delete_matching_in(tx, kind, criteria, if_match)
            self.check_unreferenced(tx, gone)
            return gone

        return self.store.atomically(deleting)

    def delete_matching_in(
        self, tx: Transaction, kind: str, criteria: str, if_match: Expected | None = None, where: str | None = None
    ) -> list[Stored]:
        """Every match the principal may see, each only if it may write for its owner (one
        refusal refuses them all).  A deleted resource leaves the index, so each round asks
        for the first matches again until none is left.  With ``If-Match`` the criteria name
        one resource at that version (R4 http.html#concurrency): none is a 404, several a 412,
        like a conditional patch's, and another version a 412."""
        _check_writable(kind, "DELETE")
        if if_match is not None:
            found = self.only_match(tx, kind, criteria, where)
            if found is None:
                raise FhirError(404, "http.conditional-no-match", where, condition=criteria)
            gone = self.delete_in(tx, kind, found.id, if_match)
            return [gone] if gone is not None else []
        rules, deleted = self.access(), []
        while found := self.searcher.matching(tx, kind, criteria, rules, count=DELETE_ROUND, where=where):
            before = len(deleted)
            for match in found:
                current = held_row(tx, match.type, match.id)
                if current is None or current.deleted:
                    continue  # deleted meanwhile
                _check_change(tx, current)
                _check_not_merged_source(current)
                gone = tx.resources.delete(current.type, current.id)
                if gone is not None:
                    forget_person(tx, current)
                    deleted.append(gone)
            if len(deleted) == before:  # nothing left that a delete removes from the matches
                break
        return deleted

    # -- helpers ---------------------------------------------------------------------------
    def _body_type(self, resource: Any) -> str:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise FhirError(400, "http.not-a-resource")
        self.check_type(resource["resourceType"])
        return resource["resourceType"]

    def _check_update(self, kind: str, resource_id: str, resource: Any) -> None:
        self.check_type(kind)
        self.check_id(resource_id)
        if self._body_type(resource) != kind:
            raise FhirError(400, "http.wrong-type", "resourceType", found=resource["resourceType"], expected=kind)
        check_body_id(resource, resource_id, f"{kind}.id")

    def hold(
        self,
        tx: Transaction,
        targets: Sequence[tuple[str, str]],
        people: Sequence[dict[str, Any]] = (),
        shared: Shared | None = None,
        writing: Sequence[References] = (),
    ) -> None:
        """Lock the resources a transaction will change, in one order (:func:`lock_order`): taken as
        its entries came, two transactions changing the same two resources in opposite orders
        each held one and waited for the other, and PostgreSQL broke the deadlock by failing
        one (a 503).  A resource not there yet is held by its name, as a PUT creating it is.
        One target is held too: a Bundle's reference to it must not outlive it (a delete
        elsewhere waits until this transaction commits).

        The identity numbers of the Patients among them, and of ``people`` (the Patients the
        transaction writes), are locked before any row, in the order of identity.py: an
        ingest holding a person's numbers waits for the Patient's row, and a transaction
        that held the row first and then waited for the numbers deadlocked with it.

        With ``shared``, the Patients the resources it will write (``writing``, their
        :class:`References`) name are held
        shared in the same order (into ``shared.held``, see :meth:`_hold_people`), as a merge
        takes its rows: held after the rows, a transaction updating a ServiceRequest waited for
        the Patient a merge held, which waited for that ServiceRequest."""
        lock_people(tx, targets, people)
        shared = shared or Shared()
        named = {key for found in writing for key in self._named_people(found, shared).values()} - set(targets)
        for kind, resource_id in sorted({*targets, *named}, key=lock_order):
            if (kind, resource_id) in named:
                shared.held[(kind, resource_id)] = _held_shared(tx, (kind, resource_id))
            elif tx.resources.read(kind, resource_id, for_update=True) is None:
                tx.lock(_creating(kind, resource_id))

    def matching(self, tx: Transaction, kind: str, criteria: str, where: str | None = None) -> list[Stored]:
        """The resources (of those the principal may see) a condition selects (criteria that
        select nothing in particular refused at ``where``).  A Patient merged away is none of
        them: it keeps its identifiers, but the person is its survivor's now (Patient/$merge),
        which the same identifiers find."""
        found = self.searcher.matching(tx, kind, criteria, self.access(), where=where)
        if kind == "Patient":
            found = [match for match in found if replaced_by(match.resource or {}) is None]
        return found

    def only_match(self, tx: Transaction, kind: str, criteria: str, where: str | None = None) -> Stored | None:
        """The one resource (of those the principal may see) a condition selects; None when
        there is none, 412 when there are several (located at ``where``, a Bundle entry's)."""
        found = self.matching(tx, kind, criteria, where)
        if len(found) > 1:
            raise FhirError(412, "http.multiple-matches", where, condition=criteria)
        return found[0] if found else None

    @staticmethod
    def need_criteria(criteria: str, where: str | None = None) -> None:
        """Criteria present but blank (``""``, ``?``, ``&``) select nothing: a 400, never a
        silent plain create, update or delete."""
        if not criteria.strip(" \t?&"):
            raise FhirError(400, "http.conditional-needs-criteria", where)


#: reads of a patch without If-Match that another write overtook, before its 412 stands
PATCH_ATTEMPTS = 10
#: matches a conditional delete fetches at a time
DELETE_ROUND = 100
#: types the API never writes into the resource table (the audit trail is its own, append-only)
READ_ONLY = frozenset({"AuditEvent"})


#: what an attempt that may be overtaken answers (a patch's Written, a merge's plan and writes)
T = TypeVar("T")


class _Rehearsed(Exception):
    """Ends a rehearsed write (:meth:`Repository.rehearse`): its transaction rolls back."""


def until_not_overtaken(if_match: Expected | None, attempt: Callable[[Expected | None], T]) -> T:
    """A patch's ``attempt`` (read, patch, write; a merge's too), run again while another
    write overtakes it between its read and its write (a 412), up to :data:`PATCH_ATTEMPTS`
    times.  Only when the client named no version: ``attempt`` is given the one it named (None
    for none, or for ``If-Match: *``), and a 412 against a version the client named is its
    answer.  Each run validates what it writes anew: the exchange notes what the run that
    stood judged (:func:`~gateway.exchanges.noted_once`), not every run's."""
    named = if_match if if_match is not None and if_match != ANY_VERSION else None
    run = exchanges.noted_once(attempt)
    number = 1
    while True:
        try:
            return run(named)
        except FhirError as refusal:
            if named is not None or refusal.status != 412 or number == PATCH_ATTEMPTS:
                raise
            number += 1


def lock_order(key: tuple[str, str]) -> tuple[str, str]:
    """Where the row of a resource (type, id) comes in the one order every writer locks rows
    in: by type, then id.  A merge and a transaction hold what they change so
    (:meth:`Repository.hold`), and a write holds the Patients it names before or after its
    own row as they come in it (:meth:`Repository.update_in`).  Taken in opposite orders, two
    writers each held a row the other waited for, and PostgreSQL failed one of them (a 503)."""
    return key


def _creating(kind: str, resource_id: str) -> str:
    """The lock of an id no resource holds yet, which a PUT is about to create."""
    return f"create|{kind}/{resource_id}"


def condition_lock(kind: str) -> str:
    """The lock a conditional create or update of ``kind`` holds from its search to its write.
    One per type, not per criteria: ``identifier=X`` and ``identifier=X&gender=male`` (or the
    same criteria spelt with ``%7C``) select the same person, and two writers holding
    different locks each found nothing and each created one.  A Patient's is the lock ingests
    hold while merging people, so a conditional create and an ingest cannot both create the
    same person either (at the price of waiting for an ingest batch to commit)."""
    return IDENTITY_LOCK if kind == "Patient" else f"condition|{kind}"


def check_meta(resource: dict[str, Any], path: str = "") -> None:
    """A resource's ``meta`` as the archive can write it, refused (422) whatever the validation
    policy.  An object, into which the store writes ``versionId`` and ``lastUpdated``: kept to
    the write (under ``warn``, or written provisionally to resolve a transaction's conditional
    references), a string there failed it, a 500.  Its ``tag`` an array, to which a read cut by
    ``_summary`` or ``_elements`` adds SUBSETTED: stored as a number, every such read of the
    resource was a 500.  And no SUBSETTED tag: a copy cut down by
    ``_summary`` or ``_elements``, which R4 marks so that it never overwrites the whole resource
    (search.html#summary); written back as read, it replaced the record with the part shown
    and kept the tag for good."""
    where = f"{path or resource['resourceType']}.meta"
    meta = resource.get("meta", {})
    if not isinstance(meta, dict):
        raise FhirError(422, "http.meta-not-object", where)
    tags = meta.get("tag", [])
    if not isinstance(tags, list):  # a cut read adds SUBSETTED to it: [*5, …] failed, a 500
        raise FhirError(422, "http.meta-tag-not-array", f"{where}.tag")
    for index, tag in enumerate(tags):
        if isinstance(tag, dict) and tag.get("system") == SUBSETTED["system"] and tag.get("code") == SUBSETTED["code"]:
            raise FhirError(422, "http.subsetted", f"{where}.tag[{index}]")


def check_no_merge_link(resource: dict[str, Any], path: str = "") -> None:
    """A Patient's ``replaced-by`` link says Patient/$merge merged it away, which the merge
    (an operator's) alone writes, through :meth:`Repository.update_in`.  Sent in a create,
    an update, a patch or a Bundle entry, it froze the record for good — no later write of it,
    no delete, no record naming it accepted (:func:`_check_not_replaced`) — without any merge;
    refused (422) whatever the validation policy, as ``meta`` is (:func:`check_meta`).  The
    links are read as sent, not yet validated."""
    found = replacing_link(resource) if resource.get("resourceType") == "Patient" else None
    if found is not None:
        raise FhirError(422, "http.replaced-by-merge-only", f"{path or 'Patient'}.link[{found[0]}].type")


def _check_writable(kind: str, method: str) -> None:
    if kind in READ_ONLY:
        raise FhirError(405, "http.method-not-allowed", method=method, path=kind)


def _birth_moved(before: Stored | None, patient: Mapping[str, Any]) -> bool:
    """Whether a Patient's write moves the birth date of the version it replaces later."""
    held = before.resource if before is not None else None
    return held is not None and after_birth.born_later(held.get("birthDate"), patient.get("birthDate"))


def _check_owner(tx: Transaction, resource: dict[str, Any]) -> None:
    """The acting client writes only for its own organisation and those under it; no one
    writes an AuditEvent (the trail records itself, see gateway/security/audit.py)."""
    _check_writable(resource.get("resourceType", ""), "write")
    principal = acting.get()
    if principal is not None and principal.role in RESTRICTED_ROLES and resource.get("resourceType") in GRANTING_TYPES:
        raise FhirError(403, "http.consent-restricted", organization=principal.organization)
    foreign = foreign_owners(tx, principal, resource)
    if principal is not None and foreign:
        raise FhirError(
            403, "http.forbidden-organization", organization=principal.organization, owner=", ".join(foreign)
        )


def _check_organization_identifiers(tx: Transaction, resource: dict[str, Any]) -> None:
    """An organisation's business identifiers (统一社会信用代码, 定点医药机构编号, 执业许可证号 …)
    are its alone: an Organization bringing one another Organization of the archive holds is
    refused (409).  A copy of a hospital's code under another organisation made that code name
    two, and the hospital's own writes naming itself by it were refused as written for the
    copy's organisation (see :func:`~gateway.security.access.foreign_owners`)."""
    if resource.get("resourceType") != "Organization":
        return
    lock_organization_identifiers(tx, resource)
    for index, system, value in organization_identifiers(resource):  # an ingest resolves by the same
        held = [o for o in tx.resources.holding_identifier("Organization", system, value) if o != resource.get("id")]
        if held:
            where = f"Organization.identifier[{index}]"
            raise FhirError(409, "http.duplicate-organization", where, organization=f"Organization/{held[0]}")


def _merged_away(node: dict[str, Any], references: References, resolve: Resolver) -> FhirError | None:
    """The refusal of the Reference ``node`` (one of ``references``) naming a Patient merged
    away, unless it names a version or is in a Patient's ``link`` (:data:`LINKED`, read from
    its location only once the Patient it names proves merged away); None when it names none."""
    reference = node["reference"]
    if "/_history/" in reference:
        return None
    into = replaced_by(resolve(reference) or {})
    if into is None:
        return None
    located = references.where(node)
    if LINKED.search(located):
        return None
    return FhirError(422, "merge.replaced-patient", located, reference=reference, into=into).withheld()


def _check_not_replaced(before: Stored) -> None:
    """A Patient merged away is written by its merge alone: brought back (active, its link gone)
    it would be a second record of a person whose identity keys its survivor holds."""
    into = replaced_by(before.resource or {}) if before.type == "Patient" else None
    if into is not None:
        raise FhirError(422, "merge.replaced-patient", "Patient", reference=before.reference, into=into).withheld()


def _check_not_merged_source(stored: Stored) -> None:
    """A Patient merged away stays, whatever else may point at it: the survivor's ``replaces``
    link and the merge's Provenance name it, and a Provenance is no referrer a delete minds
    (:meth:`Repository.check_unreferenced`), nor is a survivor whose link was since dropped,
    or deleted in the same transaction.  Deleted, it left the merge's record pointing at
    nothing (409 at its ``replaced-by`` link)."""
    found = replacing_link(stored.resource or {}) if stored.type == "Patient" else None
    if found is not None:
        index, into = found
        raise FhirError(409, "merge.source-delete", f"Patient.link[{index}]", reference=stored.reference, into=into)


def _check_people(
    rules: Access, tx: Transaction, resource: dict[str, Any], registering: Mapping[str, dict[str, Any]] | None
) -> None:
    """A restricted client writes only about people it serves or manages (403 alike for an
    absent or a hidden person)."""
    unserved = rules.unserved_people(tx, resource, registering)
    if unserved:
        organization = rules.principal.organization if rules.principal else ""
        raise FhirError(403, "http.forbidden-person", organization=organization, people=", ".join(unserved))


def check_authorised(tx: Transaction, rules: Access, resource: dict[str, Any], before: Stored) -> None:
    """The checks an update of ``before`` to ``resource`` by the acting principal (whom
    ``rules`` judge) meets that read what it names: the organisations it writes for, the
    people and the care team it names; no validation.  For a body the gateway rewrites for
    the client that wrote it (gateway/fhir/localise_archive.py), which must pass what that
    client's write would: as :meth:`Repository.update_in`, the stored version must be one it
    may see and change (a Patient it no longer serves, mended, would be managed by it)."""
    if rules.hides(tx, before):
        raise not_found(before.type, before.id)
    _check_change(tx, before)
    _check_owner(tx, resource)
    _check_people(rules, tx, resource, None)
    _check_team(rules, tx, resource, before.resource)


def _check_team(rules: Access, tx: Transaction, resource: dict[str, Any], before: dict[str, Any] | None) -> None:
    """A restricted client's CareTeam puts no one in its care whom it neither serves nor
    manages (403)."""
    if rules.unserved_through_team(tx, resource, before):
        organization = rules.principal.organization if rules.principal else ""
        raise FhirError(403, "http.forbidden-care-team", organization=organization, team=f"CareTeam/{resource['id']}")


def _check_change(tx: Transaction, stored: Stored) -> None:
    """The acting client may change (update, patch, delete) this stored resource: the owner it
    names is within its organisation, and so is the organisation that created it, when the
    resource names none (a Condition, an Observation performed by a Practitioner)."""
    resource = stored.resource or {}
    _check_owner(tx, resource)
    principal = acting.get()
    if principal is None or principal.role == OPERATOR or named_owners(tx, resource):
        return  # a named owner was :func:`_check_owner`'s to judge
    made_by = tx.resources.owner(stored.type, stored.id)
    if not may_change(tx, principal, made_by):
        raise FhirError(403, "http.forbidden-organization", organization=principal.organization, owner=made_by)


def named_id(resource: dict[str, Any], where: str) -> str | None:
    """The id a write's body names, if any.  One that is no string (a list, a number) is a
    bad id, shown as the JSON it was sent as: compared as it was, it came back as a mismatch
    worded in Python (``'['x']'``), or became the id of a conditional update's create."""
    found = resource.get("id")
    if found is None or isinstance(found, str):
        return found
    raise FhirError(400, "http.bad-id", where, id=orjson.dumps(found).decode())


def check_body_id(resource: dict[str, Any], resource_id: str, where: str) -> None:
    """An update's body names the id its URL does: missing, it is said to be missing (not an
    id "None" that differs)."""
    body_id = named_id(resource, where)
    if body_id is None:
        raise FhirError(400, "http.id-missing", where, url=resource_id)
    if body_id != resource_id:
        raise FhirError(400, "http.id-mismatch", where, body=body_id, url=resource_id)


def new_id() -> str:
    return str(uuid.uuid4())


def _present(found: Stored | None, kind: str, resource_id: str, where: str | None = None) -> Stored:
    if found is None:
        raise not_found(kind, resource_id, where)
    if found.deleted:
        raise FhirError(410, "http.gone", where, reference=found.reference, when=found.last_updated)
    return found


def _conflict(conflict: VersionConflict) -> FhirError:
    if conflict.current is None:
        return FhirError(404, "http.not-found", reference=conflict.reference)
    expected = "*" if conflict.expected == ANY_VERSION else named_versions(conflict.expected)
    return FhirError(
        412, "http.version-conflict", reference=conflict.reference, current=conflict.current, expected=expected
    )


def default_profiles(registry: Registry) -> dict[str, str]:
    """The provincial profile each write of a type is held to when it claims none: the one
    profile the package has for that type (Observation has several, so only claims count).
    A draft, experimental profile (the 长护险 claims, the needs assessment, referrals) is
    not imposed on every write of its type: it applies when an instance claims it."""
    by_type: dict[str, list[str]] = {}
    for definition in registry.all("StructureDefinition"):
        if definition.get("kind") == "resource" and definition.get("derivation") == "constraint":
            by_type.setdefault(definition["type"], []).append(definition["url"])
    by_type = {
        kind: [url for url in urls if not (registry.get(url) or {}).get("experimental")]
        for kind, urls in by_type.items()
    }
    return {kind: urls[0] for kind, urls in by_type.items() if len(urls) == 1}


def _content(stored: Stored | None) -> dict[str, Any] | None:
    return stored.resource if stored is not None else None


def _held_shared(tx: Transaction, key: tuple[str, str]) -> Stored | None:
    """A Patient a write names, read and held shared until the transaction ends (PostgreSQL);
    None when absent or deleted."""
    found = tx.resources.read(*key, for_share=True)
    return found if found is not None and not found.deleted else None


def named_versions(expected: Expected) -> str:
    """The versions an If-Match named, as a refusal quotes them: ``3``, or ``2, 3`` for a list."""
    return str(expected) if isinstance(expected, int) else ", ".join(map(str, sorted(expected)))
