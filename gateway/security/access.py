"""Who may see whom: an elderly-care platform reads only the people it serves.

A principal with the role ``elderly-care`` sees a person's data only while it serves that
person (a 养老 stay, a 医养签约, a family-doctor contract, or a Consent permitting it — and no
Consent refusing it; see ``gateway/storage/access_sql.py``), and writes only about people it
serves or manages (:meth:`Access.unserved_people`).  Everything in a person's Patient
compartment follows the person, any resource concerns everyone it names and is shown only if
all of them are served (:class:`PersonalData`), and each version is judged on its own content;
resources that are no one's personal data (Organizations, Practitioners, definitions) are
visible to every authenticated client.  A forbidden resource is never counted, included or
hinted at: reading it answers 404 like a resource that does not exist, wherever it is named or
matched (a read, a write, a Bundle entry, a condition, a chain).
Hospitals and auditors are governed by their scopes alone (the issue leaves their reads
unrestricted by organisation; a hospital's writes are checked by :func:`foreign_owners` and
:func:`may_change`), except that only auditors and the operator read the audit trail; an
operator client (the platform's own integration) writes for every organisation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from gateway.masking import mask_id_cards
from gateway.match_keys import match_keys
from gateway.search.indexer import SearchIndexer
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.search.query import Criterion
from gateway.security.naming_records import naming_records
from gateway.security.principal import Principal
from gateway.storage.access_sql import (
    Served,
    Sql,
    names_records,
    newly_served,
    person_served,
    served_among,
    served_patients,
    serves,
    targets_shown,
    visible_condition,
)
from gateway.storage.resources import now_instant
from gateway.storage.store import Stored, Transaction
from mappings.engine import reference_nodes
from profiles.registry import Registry

#: the record of a type and id as the archive holds it now (a deleted one too), None when it
#: was never stored
Reader = Callable[[str, str], Stored | None]
RESTRICTED_ROLES = frozenset({"elderly-care"})
#: people asked about one by one (:meth:`Access.serves_person`) before whom the principal
#: serves is read in full instead.  On 3,000 people served a person's statement takes about
#: 0.06 ms on SQLite and 0.19 ms on PostgreSQL (prepared once), the list 46–48 and 89–95 ms,
#: growing with the people served: an ``_include`` page naming fifty residents is cheaper
#: asked person by person, an export naming thousands from the list
FEW_PEOPLE = 64
#: what says who may see whom without naming an owner (a Consent's provision.actor): a
#: restricted client may not write it at all, or it could put another organisation in the
#: care of people it serves, or withdraw a refusal the health side recorded
GRANTING_TYPES = frozenset({"Consent"})
#: a reference naming a Patient, relative or within a URL, whatever follows the id (the indexer
#: files ``Patient/li/x/y`` under li too)
_PERSON = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?=/|$)")
#: the provincial platform's own integration (data migration, the demo administrator): it
#: writes for every organisation, as the command line does
OPERATOR = "operator"
#: the roles that read the audit trail and the auditors' reports (which name every client's
#: requests and the people they concerned): auditors and the platform's operator, never a
#: hospital or an elderly-care platform, whatever scopes it holds
AUDIT_READERS = frozenset({"auditor", OPERATOR})
#: the endpoints (blueprint prefixes) serving them
AUDIT_ENDPOINTS = ("audit.", "reports.")
#: the endpoints only the operator reaches, whatever scopes another role holds, and the message
#: refusing another role: a merge of two records (Patient/$merge) is the 主索引 staff's decision,
#: and rewrites every organisation's data; their work list ($identity-conflicts) names people
#: of every organisation, with the numbers and names the sources disagreed on
OPERATOR_ENDPOINTS = {"fhir.merge": "http.merge-role", "fhir.conflicts": "http.identity-conflicts-role"}
#: the elements naming the organisation a resource belongs to, for the write rule
OWNER_ELEMENTS = {
    "Encounter": ("serviceProvider",),
    "CarePlan": ("author", "contributor"),
    "CareTeam": ("managingOrganization",),
    "Observation": ("performer",),
    "Coverage": ("payor",),
    "Organization": ("partOf",),
    "Patient": ("managingOrganization",),
}


class PersonalData:
    """Which search parameters tie a resource to people, worked out once from the definitions.

    A type in the Patient compartment belongs to the people its compartment parameters name
    (an Observation to its subject).  Any type may also name people elsewhere: an
    Observation's focus, a Group's members, a Device its patient, a Contract its signers.  A
    resource concerns everyone it names, so a restricted principal sees it only if it serves
    every one of them (and, in the compartment, it names at least one): a Group listing a
    resident and a stranger would otherwise tell the stranger's id.

    Binary and Bundle carry other content opaquely (bytes, whole resources) that no index
    attributes to a person, so a restricted principal sees neither; documents reach it
    through ``Composition/$document``, which is filtered like any read."""

    OPAQUE = frozenset({"Binary", "Bundle"})

    def __init__(self, registry: Registry, index_rows: Callable[[dict[str, Any]], list[Any]] | None = None) -> None:
        self.compartment: dict[str, list[str]] = registry.patient_compartment
        self.references: dict[str, list[str]] = {
            kind: naming
            for kind, definition in registry.base_types.items()
            if definition.get("kind") == "resource" and kind != "Patient"
            if (naming := _naming_patients(registry, kind))
        }
        #: the store's indexer: a version's people are read as the SQL rule reads the current
        #: one's, from its index rows
        self.index_rows = index_rows or SearchIndexer(registry).rows
        #: the types whose reference parameters given here name records, not only people, and
        #: which are shown only where every personal record they name is (:meth:`concerns_only`;
        #: data, ``naming_records.json``): a Provenance about a resident's reading and a
        #: stranger's, a resident's reading derived from the stranger's, would tell the
        #: stranger's reading's id.  Withholding the hidden ones instead would show an altered
        #: record (``target`` is the activity's whole object, 1..*): an auditor sees it as
        #: written or not at all.  A record so named is judged by the people it names, not by
        #: the records it names in turn (one level: the ids shown are its own, and no chain is
        #: walked)
        rule = naming_records(registry)
        self.through: Mapping[str, tuple[str, ...]] = rule.through
        #: of those, the types and parameters through which the records a resource names place
        #: it among their people's records when it names none of them, as a Patient it named
        #: would (data, ``naming_records.json``'s ``placing``): a Provenance of a resident's
        #: reading alone (its ``target``, as a REST client writes one) was in no one's
        #: compartment, hidden from her home and from the Provenances a Patient or Group export
        #: holds (IG v2).  Placed by a record the archive holds, it is then judged as
        #: :attr:`through` judges any (shown where every record it names is)
        self.placing: Mapping[str, tuple[str, ...]] = rule.placing
        #: the personal types but Patient (:meth:`is_personal`): the records, not the people
        self.record_types = sorted({*self.compartment, *self.references, *self.OPAQUE} - {"Patient"})

    def is_personal(self, kind: str) -> bool:
        """Whether a resource of ``kind`` may concern people (and so be hidden from a restricted
        principal): a Patient, a type of the Patient compartment or one naming people, and the
        opaque ones.  An Organization, a Practitioner or a Location is everyone's to see."""
        return kind == "Patient" or kind in self.compartment or kind in self.references or kind in self.OPAQUE

    def concerns_only(
        self,
        resource: dict[str, Any],
        serves: Callable[[str], bool],
        holder: Callable[[str], str | None],
        read: Reader | None = None,
        through: bool = True,
    ) -> bool:
        """Whether a resource (any version of it) concerns only people ``serves`` accepts: the
        rule :func:`visible_condition` applies in SQL, applied to content.  Names outside the
        search parameters (a note's author) are not counted, as the index does not hold them.
        A person named by number alone is whoever ``holder`` (the identity index, asked now)
        says holds it; a number no one holds names someone not served.  A type of
        :attr:`through` also needs every personal record it names to concern only them, as
        ``read`` finds it now: one deleted hides it (whose it was, the index no longer tells),
        one never stored does not (its id tells nothing about anyone: a reading whose visit
        never landed, or was quarantined, stays its person's); without ``read`` any record
        so named hides it.  In the Patient compartment, naming no one there, a type of
        :attr:`placing` is placed among the records of the people a record of the archive it
        names so concerns (a Provenance of a resident's reading alone).  ``through`` False
        judges a record named so by the people it names alone (one level, as the SQL rule
        does), and places nothing by the records it names."""
        kind = resource.get("resourceType", "")
        if kind in self.OPAQUE:
            return False
        if kind == "Patient":
            return serves(resource.get("id", ""))
        naming = self.references.get(kind, ())
        rows = self.index_rows(resource)
        held: list[Any] = []
        if through and kind in self.through:
            shown = self._targets_shown(rows, self.through[kind], serves, holder, read)
            if shown is None:
                return False
            held = shown
        named = {row[2] for row in rows if row[0] in naming and row[1] == "Patient"}
        # in the compartment, someone is named through its parameters (by id or by number):
        # everyone named must be served, so whoever that is, is; or, naming no one, a record
        # of the archive it names through :attr:`placing` places it, judged just above
        placing = self.placing.get(kind, ())
        if (
            kind in self.compartment
            and not any(_places(row, self.compartment[kind]) for row in rows)
            and not any(row[0] in placing for row in held)
        ):
            return False
        if not all(serves(person) for person in named):
            return False
        keys = {row[2] for row in rows if row[0] == IDENTIFIED_PEOPLE}
        return all((person := holder(key)) is not None and serves(person) for key in keys)

    def _targets_shown(
        self,
        rows: list[Any],
        names: Sequence[str],
        serves: Callable[[str], bool],
        holder: Callable[[str], str | None],
        read: Reader | None,
    ) -> list[Any] | None:
        """The rows of a resource's index ``rows`` that name, through ``names``, a personal
        record other than a Patient (whom :meth:`concerns_only` judges as a person named)
        the archive holds, if every one of them concerns only people ``serves`` accepts
        (None otherwise): the rule ``access_sql.targets_shown`` applies in SQL.  The rows
        are what :attr:`placing` places the resource by."""
        held: list[Any] = []
        for row in rows:
            if row[0] not in names or row[1] in (None, "Patient") or not self.is_personal(row[1]):
                continue
            if read is None:
                return None
            target = read(row[1], row[2])
            if target is None:
                continue
            if target.resource is None or target.deleted:
                return None
            if not self.concerns_only(target.resource, serves, holder, through=False):
                return None
            held.append(row)
        return held

    def in_compartment_of(
        self, resource: dict[str, Any], people: Callable[[str], bool], holder: Callable[[str], str | None]
    ) -> bool:
        """Whether a resource (any version of it) is in the Patient compartment of someone
        ``people`` accepts — a Patient only in its own — whoever else it names: what a Patient or
        Group export takes for each of its people (:meth:`concerns_only` asks more).  A person
        a compartment parameter names by number alone is whoever ``holder`` says holds it."""
        kind = resource.get("resourceType", "")
        if kind == "Patient":
            return people(resource.get("id", ""))
        own = self.compartment.get(kind, ())
        return any(
            _places(row, own)
            and (person := row[2] if row[0] != IDENTIFIED_PEOPLE else holder(row[2])) is not None
            and people(person)
            for row in self.index_rows(resource)
        )


def current_content(tx: Transaction) -> Reader:
    """The :data:`Reader` of what the archive holds now."""
    return tx.resources.read


def _places(row: tuple[Any, ...], compartment: Sequence[str]) -> bool:
    """Whether an index row places its resource in a person's Patient compartment: a
    compartment parameter's reference to a Patient, or its person named by number alone (an
    :data:`IDENTIFIED_PEOPLE` row, whose system is the parameter's code)."""
    return (row[0] in compartment and row[1] == "Patient") or (row[0] == IDENTIFIED_PEOPLE and row[1] in compartment)


def _naming_patients(registry: Registry, kind: str) -> list[str]:
    """The reference search parameters of ``kind`` that may point at a Patient."""
    return sorted(
        code
        for code, spec in registry.search_parameters(kind).items()
        if spec["type"] == "reference" and (not spec["target"] or "Patient" in spec["target"])
    )


class Access:
    """The visibility rules of one request's principal (None: security is off for this call,
    e.g. the command line acting as the operator)."""

    def __init__(self, principal: Principal | None, personal: PersonalData) -> None:
        self.principal = principal
        self.personal = personal
        self.restricted = principal is not None and principal.role in RESTRICTED_ROLES
        self._served: Sql | None = None
        #: the same rule asked of one person, for statements about one resource
        self._serves: Served | None = None
        if self.restricted and principal:  # the clock only for a rule that reads it (21 a Bundle)
            now = now_instant()
            self._served, self._serves = (
                served_patients(principal.organization, now),
                serves(principal.organization, now),
            )
        #: whom the principal serves, read on first use (:meth:`served_people`)
        self._people: frozenset[str] | None = None
        #: the people asked about one by one so far, and whether it serves each
        self._asked: dict[str, bool] = {}
        #: the match keys asked about so far, and who holds each (:meth:`holder`)
        self._holders: dict[str, str | None] = {}

    def condition(self, kind: str, few: bool = False, through: bool = True, one: bool = False) -> Sql | None:
        """The SQL condition on ``resource r`` of ``kind`` keeping what the principal may see.
        ``few``: for a statement with few candidates, each checked on its own (the people it
        names, through their own records) instead of against everyone served, listed first.
        ``through`` False judges a record by the people it names alone, not by the records of
        :attr:`PersonalData.through` it names: for a statement that shows no record's id (a
        measure's count of people).  ``one``: for a statement about one resource by its key
        (:meth:`visible`).  Both are prepared once for any values on PostgreSQL: planned for
        each call's, a Provenance's read took 15–65 ms to plan and 0.5 to run (its targets
        judged by the people they name), a search's few candidates 5–15 ms and 1–2."""
        if self._served is None or self._serves is None:
            return None
        if few or one:
            return self._condition(kind, self._serves, one=True, through=through)
        return self._condition(kind, served_among(self._served), through=through)

    def _condition(self, kind: str, served: Served, one: bool = False, through: bool = True) -> Sql | None:
        """:meth:`condition` over ``served``; ``through`` False leaves out the records a type
        of :attr:`PersonalData.through` names, and so places nothing by them
        (:attr:`PersonalData.placing`)."""
        if kind in self.personal.OPAQUE:
            return "1 = 0", []
        personal = self.personal
        compartment, naming = personal.compartment.get(kind, ()), personal.references.get(kind, ())
        placing = personal.placing.get(kind) if through else None
        placed = names_records(kind, placing, personal.record_types) if placing else None
        found = visible_condition(kind, compartment, served, naming, one, IDENTIFIED_PEOPLE, placed)
        names = personal.through.get(kind) if through else None
        if found is None or names is None:
            return found
        targets = targets_shown(
            kind, names, served, personal.compartment, personal.references, sorted(personal.OPAQUE), IDENTIFIED_PEOPLE
        )
        return f"{found[0]} AND {targets[0]}", [*found[1], *targets[1]]

    def within_served(self, kinds: Iterable[str]) -> tuple[Sql, list[tuple[str, Sql]]] | None:
        """For a query that reaches several types at once (a chain to many targets): the
        served people's SQL, to be selected once as ``served_people(id)``, and each personal
        type's condition on ``resource r`` written over that table (None when nothing is
        restricted).  A chained record is judged as a read judges it, by the records of
        :attr:`PersonalData.through` it names too: a ``_has`` through a resident's Provenance
        naming a stranger's reading otherwise answered whether that reading exists."""
        if self._served is None or self._serves is None:
            return None
        over_table = served_among(("SELECT id FROM served_people", []))
        conditions = [(kind, found) for kind in kinds if (found := self._condition(kind, over_table)) is not None]
        return self._served, conditions

    def shown_targets(self, tx: Transaction, chain: Criterion) -> tuple[tuple[str, str], ...] | None:
        """The (type, id) of the records a chain to few targets (``Resources.few_targets``)
        reaches that the principal may see, each type's judged by the condition a read asks
        (:meth:`condition`, ``few``: each target asked about alone, by the records of
        :attr:`PersonalData.through` it names too), in a statement of its own; None when none
        of its types is restricted.  Nested in the chain, that condition overflowed SQLite's
        parser, and judging the targets inside the chain over the people they name cost
        SQLite a scan of the whole index per chain (0.5–2 s on 20,000 people): a home's
        ``Encounter?patient.identifier=…`` asks one Patient alone."""
        if not self.restricted:
            return None
        restrictions = {kind: self.condition(kind, few=True) for kind in chain.targets}
        if all(restriction is None for restriction in restrictions.values()):
            return None
        return tuple(tx.resources.chain_targets(chain, restrictions))

    def visible(self, tx: Transaction, stored: Stored) -> bool:
        """Whether the principal may see ``stored``.  A Patient is visible exactly when it is
        served, so it is asked as :meth:`serves_person` asks, and remembered with its answer:
        ``$everything`` reads its Patient and then judges the members naming that person."""
        if stored.type == "Patient" and self.restricted:
            return self.serves_person(tx, stored.id)
        condition = self.condition(stored.type, one=True)
        return condition is None or tx.resources.meets(stored.type, stored.id, condition)

    def only_visible(self, tx: Transaction, found: list[Stored]) -> list[Stored]:
        return [stored for stored in found if self.visible(tx, stored)]

    def among_served(self, tx: Transaction, found: Iterable[Stored]) -> Iterator[Stored]:
        """:meth:`only_visible` for the many resources of one answer (a compartment, an export):
        each is judged by its content against the people it names (:meth:`serves_person`:
        the few asked alone, many against whom the principal serves, read once), rather than
        by a statement each — the rule :meth:`visible` applies in SQL."""
        if not self.restricted:
            yield from found
            return
        serves = self._serving(tx)
        for stored in found:
            if stored.resource is not None and self.personal.concerns_only(
                stored.resource, serves, self.holder(tx), current_content(tx)
            ):
                yield stored

    def serves_person(self, tx: Transaction, person: str) -> bool:
        """Whether the principal serves ``person`` now: asked of that person alone
        (``access_sql.person_served``) and remembered for the request, until
        :data:`FEW_PEOPLE` have been asked, then from whom it serves, read once.  One
        person's ``$everything`` names a handful of people; listing everyone served for them
        cost about 160 ms on SQLite with 20,000 people."""
        if self._people is None and len(self._asked) >= FEW_PEOPLE:
            self.served_people(tx)
        if self._people is not None:
            return person in self._people
        known = self._asked.get(person)
        if known is None and self._serves is not None:
            known = self._asked[person] = tx.sql.one(*person_served(self._serves, person)) is not None
        return bool(known)

    def _serving(self, tx: Transaction) -> Callable[[str], bool]:
        return lambda person: self.serves_person(tx, person)

    def holder(self, tx: Transaction) -> Callable[[str], str | None]:
        """Who the identity index says holds a match key now (None: no one), asked once per key
        for the request: whom a resource naming a person by number alone concerns."""

        def held(key: str) -> str | None:
            if key not in self._holders:
                self._holders[key] = tx.identity.person_of(key) if key else None
            return self._holders[key]

        return held

    def hides(self, tx: Transaction, stored: Stored | None) -> bool:
        """Whether the principal must be told that ``stored`` does not exist: it is not theirs
        to see, or it is deleted and whose it was can no longer be told.  Every interaction
        that names a resource (read, update, patch, delete, a Bundle entry) asks this, so
        none answers differently for a hidden resource than for an absent one."""
        return self.restricted and stored is not None and (stored.deleted or not self.visible(tx, stored))

    def served_people(self, tx: Transaction) -> frozenset[str]:
        """The ids of everyone the principal serves now, read once per Access (one request):
        for judging resources by content (versions, export lines), where asking SQL per
        resource or per person would ask the same many times."""
        if self._people is None:
            rows = tx.sql.all(*self._served) if self._served is not None else []
            self._people = frozenset(row[0] for row in rows)
        return self._people

    def newly_served_people(self, tx: Transaction, since: str) -> frozenset[str]:
        """Whom the principal serves now and may not have served at ``since``
        (``access_sql.newly_served``): their older records were hidden from it then."""
        principal = self.principal
        if not self.restricted or principal is None:
            return frozenset()
        rows = tx.sql.all(*newly_served(principal.organization, since, now_instant()))
        people = {row[0] for row in rows} | _people_of_deleted_consents(tx, since)
        return frozenset(people) & self.served_people(tx)

    def version_visible(self, tx: Transaction, stored: Stored) -> bool:
        """Whether one version of a resource the principal may see now may be shown too: for a
        restricted principal it must concern people it serves by its own content (it names no
        one else, and in the Patient compartment at least one of them).  An Observation moved
        from 李建国 to 张秀英 keeps its first version, which is 李建国's."""
        if not self.restricted or stored.resource is None or stored.type == "Patient":
            return True
        return self.personal.concerns_only(stored.resource, self._serving(tx), self.holder(tx), current_content(tx))

    def deletion_visible(self, tx: Transaction, before: Stored | None) -> bool:
        """Whether a deletion may be shown in a history, judged by ``before``, the version it
        deleted (None: none was read): for a restricted principal that version must concern
        only people it serves now, as :meth:`version_visible` judges one.  A deleted resource
        has no index rows, so the current rules hide it; its deletion was then never listed,
        and a platform synchronising from the history kept its resident's deleted reading.
        Judged so, a stranger's deletion stays unlisted, and so does one of a version no
        longer the resident's (moved to someone else first), whose move was not listed either."""
        if not self.restricted:
            return True
        if before is None or before.resource is None:
            return False
        return self.personal.concerns_only(before.resource, self._serving(tx), self.holder(tx), current_content(tx))

    def unserved_people(
        self, tx: Transaction, resource: dict[str, Any], registering: Mapping[str, dict[str, Any]] | None = None
    ) -> list[str]:
        """The people a restricted principal's write names but may not, as the refusal names
        them (``Patient/li``; one named by number alone by that number, masked, or ``#p`` for a
        contained Patient): everyone it names
        must be someone it serves already, or a person whose record its organisation manages
        (``Patient.managingOrganization``, e.g. a resident it registered itself).  Otherwise
        a platform could make itself a service relationship — a stay, a 签约, a Consent naming
        it — with anyone in the archive, and so read them.  A person it does not serve yet is
        put in its care by the health side (a hospital's or the operator's record of the stay
        or of the person's Consent).  Absent and hidden people are refused alike.  ``registering``:
        the Patients (by id) the same transaction writes, judged by what it writes, so a
        resident registered with its stay counts whatever the order of the Bundle."""
        if not self.restricted or self.principal is None:
            return []
        named = _people_named(resource)
        if resource.get("resourceType") == "Patient":
            named.discard(resource.get("id", ""))
        # named by 身份证号 or record number (a logical reference, a contained Patient): the
        # person the identity index holds under it, or no one the client may name
        by_number = [
            (label, next(filter(None, map(tx.identity.person_of, match_keys(person))), None))
            for label, person in _people_by_identity(resource)
        ]
        organization = self.principal.organization
        registering = registering or {}

        def allowed(person: str) -> bool:
            if person in registering:
                return _managed_by(tx, registering[person], organization)
            found = tx.resources.read("Patient", person)
            if found is None or found.resource is None or found.deleted:
                return False
            return _managed_by(tx, found.resource, organization) or self.visible(tx, found)

        # one named by number is refused by that number, held or not: its holder's id would
        # tell the client who in the archive carries it
        refused = [label for label, holder in by_number if holder is None or not allowed(holder)]
        return [*refused, *sorted(f"Patient/{person}" for person in named if not allowed(person))]

    def unserved_through_team(self, tx: Transaction, team: dict[str, Any], before: dict[str, Any] | None) -> bool:
        """Whether a restricted principal's write of a CareTeam would make it serve someone it
        neither serves nor manages.  A family-doctor contract (an active CarePlan naming the
        team) serves whoever manages its team, so naming a manager the team did not have
        reaches the people of every contract using it, whom the write itself does not name:
        a household's team about one resident, written by the operator with no manager, used
        by the contract of another.  A manager the team had already reaches no one new."""
        if not self.restricted or team.get("resourceType") != "CareTeam" or not isinstance(team.get("id"), str):
            return False
        if not set(named_owners(tx, team)) - set(named_owners(tx, before or {})):
            return False
        plans = tx.resources.referencing("CareTeam", team["id"], {"CarePlan": ["care-team"]})
        return any(plan.resource is not None and self.unserved_people(tx, plan.resource) for plan in plans)


def foreign_owners(tx: Transaction, principal: Principal | None, resource: dict[str, Any]) -> list[str]:
    """The organisations a resource names as its owner that the client may not write for.

    A client writes for its own organisation and the organisations under it: every owner a
    resource names, by reference or by identifier alone, must be one of those (a resource
    naming none, such as a Patient without a managing organisation, may be written by any
    client with the scope).  An identifier held by no Organization of the archive names
    none of its organisations."""
    if principal is None or principal.role == OPERATOR:
        return []
    owners = named_owners(tx, resource)
    return [owner for owner in owners if not _within(tx, owner, principal.organization)]


def named_owners(tx: Transaction, resource: dict[str, Any]) -> list[str]:
    """Every Organization a resource names as its owner, by reference or by identifier."""
    return list(dict.fromkeys([*owner_organizations(resource), *_identified_owners(tx, resource)]))


def _identified_owners(tx: Transaction, resource: dict[str, Any]) -> list[str]:
    """The Organizations of the archive that the resource's owner references name by
    identifier (a logical reference, as the HL7 v2 adapter writes a hospital's 定点医药机构
    编号 from MSH-4): a hospital naming another hospital's code that way wrote for it."""
    found: list[str] = []
    for reference in _owner_references(resource):
        identifier = reference.get("identifier")
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            system = identifier.get("system")
            found += tx.resources.holding_identifier(
                "Organization", system if isinstance(system, str) else None, identifier["value"]
            )
    return found


def creator(principal: Principal | None) -> str | None:
    """The organisation recorded as a new resource's creator: the acting client's (none for
    the command line and the platform's operator, whose writes belong to no one)."""
    return principal.organization if principal is not None and principal.role != OPERATOR else None


def may_change(tx: Transaction, principal: Principal, made_by: str | None) -> bool:
    """Whether a client may change a stored resource that names no owner organisation, made by
    the organisation ``made_by``: only if that is its own or under it.  A resource created by
    the command line or the operator, or before creators were recorded, belongs to no one."""
    return made_by is None or _within(tx, made_by, principal.organization)


def owner_organizations(resource: dict[str, Any]) -> list[str]:
    """The Organization ids a resource names as its owner (an Organization is owned by the one
    it is part of, else by itself)."""
    found: list[str] = []
    for reference in _owner_references(resource):
        target = reference.get("reference")
        if isinstance(target, str) and target.startswith("Organization/"):
            found.append(target.removeprefix("Organization/"))
    if not found and resource.get("resourceType") == "Organization" and resource.get("id"):
        found.append(resource["id"])
    return found


def _owner_references(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The References of the elements that name a resource's owner (:data:`OWNER_ELEMENTS`)."""
    return (reference for _, reference in owner_references(resource))


def owner_references(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each owner Reference with its FHIRPath (``Coverage.payor[0]``), for a refusal to name."""
    kind = resource.get("resourceType", "")
    for element in OWNER_ELEMENTS.get(kind, ()):
        value = resource.get(element)
        located = (
            [(f"{kind}.{element}[{i}]", v) for i, v in enumerate(value)]
            if isinstance(value, list)
            else [(f"{kind}.{element}", value)]
        )
        for where, reference in located:
            if isinstance(reference, dict):
                yield where, reference


def _people_by_identity(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The people a resource names other than by reference to their record, each as a label
    for the refusal and a Patient-like dict of its identifiers: a Reference carrying only an
    ``identifier`` that is a person's (its ``type`` Patient, or a 身份证号, 健康档案编号 or
    医保人员编号 the identity index knows people by), and a contained Patient."""
    for contained in resource.get("contained") or []:
        if isinstance(contained, dict) and contained.get("resourceType") == "Patient":
            yield f"#{contained.get('id', '')}", contained
    stack: list[Any] = [value for key, value in resource.items() if key != "contained"]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        identifier = node.get("identifier")
        if "reference" not in node and isinstance(identifier, dict):
            person = {"identifier": [identifier]}
            if node.get("type") == "Patient" or match_keys(person):
                yield mask_id_cards(f"{identifier.get('system', '')}|{identifier.get('value', '')}"), person
        stack.extend(node.values())


def _people_of_deleted_consents(tx: Transaction, since: str) -> set[str]:
    """The people named by the Consents deleted after ``since``, by their last content: deleting
    a refusal withdraws it as surely as ending it, but a deleted resource has no index rows
    for ``access_sql.newly_served`` to find.  A permit deleted names someone no longer served,
    whom the caller's intersection with the people served drops."""
    people: set[str] = set()
    for gone in tx.resources.deleted_since(["Consent"], since):
        before = tx.resources.vread("Consent", gone.id, gone.version - 1)
        if before is not None and before.resource is not None:
            people |= _people_named(before.resource)
    return people


def _people_named(resource: dict[str, Any]) -> set[str]:
    """The ids of the Patients a resource's write names, anywhere in it and however written:
    ``Patient/1``, ``Patient/1/_history/2``, ``Patient/1/x/y``, or any URL holding such a path
    (another spelling of this server's base must not carry a write past
    :meth:`Access.unserved_people`)."""
    return {found[1] for node in reference_nodes(resource) if (found := _PERSON.search(node["reference"]))}


def _managed_by(tx: Transaction, patient: dict[str, Any], organization: str) -> bool:
    """Whether the person's record is managed by ``organization`` or one under it."""
    return any(_within(tx, owner, organization) for owner in owner_organizations(patient))


def _within(tx: Transaction, organization: str, own: str, depth: int = 8) -> bool:
    """Whether ``organization`` is ``own`` or under it (Organization.partOf, a few levels)."""
    current = organization
    for _ in range(depth):
        if current == own:
            return True
        stored = tx.resources.read("Organization", current)
        parent = (stored.resource or {}).get("partOf", {}).get("reference", "") if stored else ""
        if not parent.startswith("Organization/"):
            return False
        current = parent.removeprefix("Organization/")
    return False
