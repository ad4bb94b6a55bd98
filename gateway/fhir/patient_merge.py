"""``Patient/$merge``: the 主索引 staff make two records of one person one, after FHIR R5's
Patient merge (profiles/package/OperationDefinition-Patient-merge.json), from an R4 server.

Two records of one person come about when an elderly-care client creates a Patient beside a
holder it may not see, or from legacy records written before the identity index; both are
listed as identity conflicts.  A merge rewrites every current resource referring to the source
(found through the search index's reference rows, as a delete's referrer check finds them) to
refer to the target, deactivates the source and links the two (``replaced-by`` / ``replaces``),
passes the source's identity keys to the target, resolves the conflicts naming the pair and
records a Provenance: all in one store transaction, each rewrite a new version validated as any
write.  Validation runs before the transaction, as for a PATCH: what was validated is written
only if nothing changed in between (every version and every referrer the same), else it is
prepared again.  A Provenance referring to the source stays as it is: it tells what happened
to the versions it names, which stay the source's."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from conformance.issues import Issue
from gateway import messages
from gateway.fhir.errors import FhirError
from gateway.fhir.identity_index import replaced_by
from gateway.fhir.operation_inputs import OperationInputs, defined_inputs
from gateway.fhir.parameters import unsupported_parameter
from gateway.fhir.repository import Repository, Written, until_not_overtaken
from gateway.security.audit import CLIENT_SYSTEM
from gateway.security.principal import acting
from gateway.storage.resources import now_instant
from gateway.storage.store import IndexRow, Stored, Transaction
from profiles.registry import r4_resource_types

#: the id of the operation's definition in the package (derived from R5's, its ``base``): the
#: parameters it takes
DEFINITION = "Patient-merge"
PATIENT = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")
#: what a token search value escapes (R4 search.html#escaping)
TOKEN_ESCAPE = re.compile(r"([\\,|$])")
#: how the Provenance of a merge says what it did: R4's v3-DataOperation has no MERGE, the
#: ISO 21089 record lifecycle (R4 terminology, which R5's merge uses) has
MERGE_ACTIVITY = {"system": "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "code": "merge"}
#: the archive's language: a generated narrative is read by the staff of the province
NARRATIVE_LANGUAGE = "zh-CN"
#: Provenance refers to what happened to versions: it is not rewritten (see the module's docstring)
NOT_REWRITTEN = frozenset({"Provenance"})


@dataclass
class Arguments:
    """The Parameters received: each parameter's parts, with where they sit in the body."""

    given: dict[str, list[tuple[int, Any]]]
    preview: bool = False

    def one(self, name: str) -> tuple[int, Any] | None:
        found = self.given.get(name)
        return found[0] if found else None


@dataclass
class Rewrite:
    """A resource as it is, and as the merge writes it, validated and indexed beforehand."""

    before: Stored
    after: dict[str, Any]
    issues: list[Issue]
    rows: list[IndexRow] | None


@dataclass
class Plan:
    """Everything a merge writes, prepared (and validated) before its transaction opens."""

    source: Stored
    target: Stored
    referrers: list[Rewrite]
    keys: list[str]
    #: where the request names the source: what a refusal of the referrers' rewrites points at
    located: str
    #: every version referring to the source when prepared, rewritten or not (one referring to
    #: it by a versioned reference alone is left as it is): what the transaction finds again
    read: frozenset[tuple[str, str, int]]
    #: where the request gives the target's content (``result-patient``), else names the target
    survivor_located: str = ""
    people: list[Rewrite] = field(default_factory=list)  # the source's, then the target's
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def held(self) -> list[tuple[str, str]]:
        """What the transaction locks (in one order: Repository.hold)."""
        people = [(r.before.type, r.before.id) for r in self.people]
        return [*((kind, resource_id) for kind, resource_id, _ in self.read), *people]


@dataclass
class Merged:
    """What a merge's transaction wrote: every version (the Provenance last), and how many
    identity conflicts it resolved."""

    written: list[Stored]
    target: Stored
    conflicts: int


def merge(repository: Repository, document: Any, lang: str) -> tuple[dict[str, Any], list[str]]:
    """The answer (Parameters: ``input``, ``outcome``, ``result``) and the references of what
    was written (for the audit trail; none on a preview).  Prepared anew when a write came
    between the preparation and the transaction (a 412 within, up to the patch's attempts)."""
    arguments = parse(document, merge_inputs(repository))

    def attempt(_: int | None) -> tuple[Plan, Merged | None]:
        with repository.store.reading() as tx:
            plan = prepare(repository, tx, arguments)
            if arguments.preview:  # what :func:`apply` would refuse last, judged alike
                moving = [(r.before, r.after) for r in plan.referrers]
                target = plan.people[1]
                repository.check_birth(tx, target.before, target.after, plan.survivor_located, moving)
                return plan, None
        return plan, repository.store.atomically(lambda tx: apply(repository, tx, plan))

    plan, merged = until_not_overtaken(None, attempt)
    params: dict[str, Any] = {
        "source": plan.source.reference,
        "target": plan.target.reference,
        "count": len(plan.referrers),
        "keys": len(plan.keys),
    }
    if merged is None:
        summary = messages.issue("information", "merge.preview", lang, params)
    else:
        summary = messages.issue("information", "merge.done", lang, {**params, "conflicts": merged.conflicts})
    each = [
        messages.issue(
            "information", "merge.rewrites", lang, {"reference": r.before.reference, "target": params["target"]}
        )
        for r in plan.referrers
    ]
    result = merged.target.resource if merged is not None else plan.people[1].after
    answer = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "input", "resource": document},
            {"name": "outcome", "resource": {"resourceType": "OperationOutcome", "issue": [summary, *each]}},
            {"name": "result", "resource": result},
        ],
    }
    return answer, [stored.reference for stored in merged.written] if merged is not None else []


# -- the Parameters ------------------------------------------------------------------------------
def merge_inputs(repository: Repository) -> OperationInputs:
    registry = repository.validator.registry
    return defined_inputs(registry, registry.url("OperationDefinition", DEFINITION))


def parse(document: Any, inputs: OperationInputs) -> Arguments:
    """The body's parameters, each checked for its value's type; an unknown parameter or one
    the definition takes once, repeated, is refused (an ignored one would merge other records
    than asked)."""
    if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
        raise FhirError(400, "http.not-a-resource")
    if document["resourceType"] != "Parameters":
        raise FhirError(400, "http.wrong-type", "resourceType", found=document["resourceType"], expected="Parameters")
    given: dict[str, list[tuple[int, Any]]] = {}
    parts = document.get("parameter", [])
    for index, part in enumerate(parts if isinstance(parts, list) else []):
        name = part.get("name") if isinstance(part, dict) else None
        where = f"Parameters.parameter[{index}]"
        if name not in inputs.types:
            raise unsupported_parameter(str(name), "$merge", inputs.types, where)
        if name in given and name in inputs.single:
            raise FhirError(400, "http.repeated-parameter", where, name=name)
        element, kind = inputs.elements[name], inputs.types[name]
        value = part.get(element)
        if not _typed(value, kind):
            raise FhirError(400, "merge.parameter-type", f"{where}.{element}", name=name, type=kind)
        given.setdefault(name, []).append((index, value))
    preview = given.get("preview", [(0, False)])[0][1]
    return Arguments(given, preview)


def _typed(value: Any, kind: str) -> bool:
    """Whether ``value`` is of the FHIR type ``kind`` the definition gives its parameter; a type
    the definition may name that is checked here by no rule is the gateway's fault (a new
    parameter of the package needs its check), not the client's."""
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "Reference":
        return isinstance(value, dict) and isinstance(value.get("reference"), str)
    if kind == "Identifier":
        return isinstance(value, dict) and isinstance(value.get("value"), str)
    if kind in r4_resource_types():
        return isinstance(value, dict) and value.get("resourceType") == kind
    raise LookupError(f"{DEFINITION} takes a {kind}, which $merge does not check")


# -- preparing -----------------------------------------------------------------------------------
def prepare(repository: Repository, tx: Transaction, arguments: Arguments) -> Plan:
    """Find both records, check they may be merged, and make and validate every version the
    merge writes."""
    source = _patient(repository, tx, arguments, "source")
    target = _patient(repository, tx, arguments, "target")
    if source.id == target.id:
        where = _where(arguments, "target")
        raise FhirError(422, "merge.same-patient", where, reference=source.reference)
    for role, record in (("source", source), ("target", target)):
        into = replaced_by(record.resource or {})
        if into is not None:
            raise FhirError(422, "merge.already-merged", _where(arguments, role), reference=record.reference, into=into)
    base = repository.config.base_url
    names = {source.reference, f"{base}/{source.reference}"}
    located = _where(arguments, "source")
    found = [s for s in tx.resources.referencing("Patient", source.id, _referring(repository)) if _rewritten(s, target)]
    repointed = [(stored, _repointed(stored.resource or {}, names, target.reference)) for stored in found]
    referrers = [
        _rewrite(repository, stored, after, located) for stored, after in repointed if after != stored.resource
    ]
    plan = Plan(source, target, referrers, tx.identity.keys_of(source.id), located, _versions(found))
    given = arguments.one("result-patient")
    plan.survivor_located = f"Parameters.parameter[{given[0]}].resource" if given else _where(arguments, "target")
    plan.people = [
        _rewrite(repository, source, _retired(source, target), located),
        _rewrite(repository, target, _surviving(arguments, source, target), _where(arguments, "target")),
    ]
    plan.provenance = _provenance(plan)
    failed = [issue for issue in repository.validate(plan.provenance) if issue.is_error]
    if failed:  # made here: an error is the gateway's own
        raise FhirError(500, "http.invalid-resource", issues=failed, count=len(failed))
    return plan


def _patient(repository: Repository, tx: Transaction, arguments: Arguments, role: str) -> Stored:
    """The record the ``source-…`` or ``target-…`` parameters name: by reference, or by
    identifiers that together find exactly one Patient the principal may see."""
    by_reference, by_identifier = f"{role}-patient", f"{role}-patient-identifier"
    named, identified = arguments.one(by_reference), arguments.given.get(by_identifier)
    if named is None and not identified:
        raise FhirError(
            400, "merge.parameter-needed", "Parameters.parameter", name=by_reference, alternative=by_identifier
        )
    if named is not None and identified:
        where = f"Parameters.parameter[{identified[0][0]}]"
        raise FhirError(400, "merge.parameter-either", where, name=by_reference, alternative=by_identifier)
    if named is not None:
        index, value = named
        where = f"Parameters.parameter[{index}].valueReference"
        reference = value["reference"].removeprefix(f"{repository.config.base_url}/")
        found = PATIENT.fullmatch(reference)
        if found is None:
            raise FhirError(
                400, "merge.not-a-patient-reference", where, name=by_reference, reference=value["reference"]
            )
        return repository.read_in(tx, "Patient", found[1], where)
    where = f"Parameters.parameter[{identified[0][0]}].valueIdentifier"
    tokens = [_token(identifier) for _, identifier in identified]
    criteria = "&".join(f"identifier={quote(token, safe='')}" for token in tokens)
    matches = repository.matching(tx, "Patient", criteria)
    if not matches:
        raise FhirError(404, "merge.no-identifier-match", where, identifier=", ".join(tokens))
    if len(matches) > 1:
        raise FhirError(422, "merge.several-identifier-matches", where, identifier=", ".join(tokens))
    return matches[0]


def _token(identifier: dict[str, Any]) -> str:
    """An Identifier as a token search writes it (``system|value``), with its ``,``, ``|``,
    ``$`` and backslash escaped."""
    parts = [identifier.get("system"), identifier["value"]]
    return "|".join(TOKEN_ESCAPE.sub(r"\\\1", part) for part in parts if isinstance(part, str))


def _where(arguments: Arguments, role: str) -> str:
    """Where the parameter naming the ``role``'s record sits."""
    found = arguments.one(f"{role}-patient")
    if found is not None:
        return f"Parameters.parameter[{found[0]}].valueReference"
    return f"Parameters.parameter[{arguments.given[f'{role}-patient-identifier'][0][0]}].valueIdentifier"


def _referring(repository: Repository) -> dict[str, list[str]]:
    """Type → the index rows of it that may say it points at a Patient: its reference search
    parameters' and those of the references no parameter indexes (an extension's
    ``valueReference``, a contained resource's), which else kept naming the retired record."""
    found: dict[str, list[str]] = {}
    for kind, code in repository.searcher.parameters.pointing("Patient"):
        found.setdefault(kind, []).append(code)
    return found


def _versions(found: list[Stored]) -> frozenset[tuple[str, str, int]]:
    """Which version of each resource was found: a write between two reads changes it."""
    return frozenset((stored.type, stored.id, stored.version) for stored in found)


def _rewritten(referrer: Stored, target: Stored) -> bool:
    """Whether the merge rewrites ``referrer``: not a Provenance, nor the target itself (which
    it writes as the survivor).  A record of another type may share the target's id.  The
    source is never among the referrers asked: the index leaves a Patient naming itself out
    of its own compartment, so a source whose ``link`` names its own id is written once, retired."""
    return referrer.type not in NOT_REWRITTEN and (referrer.type, referrer.id) != (target.type, target.id)


def _repointed(value: Any, names: set[str], target: str) -> Any:
    """``value`` with every reference naming one of ``names`` (the source, relative or on this
    server's base) naming ``target`` instead; a versioned one (``Patient/x/_history/2``)
    names that version of the source and stays."""
    if isinstance(value, dict):
        found = {key: _repointed(item, names, target) for key, item in value.items()}
        if isinstance(value.get("reference"), str) and value["reference"] in names:
            found["reference"] = target
        return found
    if isinstance(value, list):
        return [_repointed(item, names, target) for item in value]
    return value


def _rewrite(repository: Repository, before: Stored, after: dict[str, Any], where: str) -> Rewrite:
    """The new version, validated as any update: under the reject policy an error fails the
    whole merge, naming the resource it would have broken, located at the parameter (``where``)
    that made the merge write it."""
    issues = repository.validate(after)
    errors = [issue for issue in issues if issue.is_error]
    if errors and repository.config.validation == "reject":
        raise FhirError(
            422, "merge.referrer-invalid", where, issues=issues, reference=before.reference, count=len(errors)
        )
    return Rewrite(before, after, issues, repository.index_rows(after))


def _content(stored: Stored) -> dict[str, Any]:
    """A stored resource as a write takes it: its meta's version and time are the store's."""
    resource = dict(stored.resource or {})
    meta = {k: v for k, v in resource.pop("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    return {**resource, "meta": meta} if meta else resource


def _linked(patient: dict[str, Any], other: str, kind: str) -> dict[str, Any]:
    """``patient`` linked to ``other`` by ``kind``, once."""
    links = [link for link in patient.get("link", []) if link.get("other", {}).get("reference") != other]
    return {**patient, "link": [*links, {"other": {"reference": other}, "type": kind}]}


def _retired(source: Stored, target: Stored) -> dict[str, Any]:
    """The source after the merge: inactive, replaced by the target.  Its identifiers stay (an
    identity document keeps it a valid record of the person); the index's keys pass on."""
    return _linked({**_content(source), "active": False}, target.reference, "replaced-by")


def _surviving(arguments: Arguments, source: Stored, target: Stored) -> dict[str, Any]:
    """The target after the merge: ``result-patient`` when given (its id must be the
    target's), else the target as it is with the source's identifiers of the systems it lacks
    (R5 copies them, without what refers into the source: :func:`_portable`; one of a system it
    has would be a second 身份证号, which no record has)."""
    given = arguments.one("result-patient")
    if given is not None:
        index, patient = given
        if patient.get("id") != target.id:
            where = f"Parameters.parameter[{index}].resource.id"
            raise FhirError(400, "merge.result-id", where, body=str(patient.get("id")), target=target.id)
        survivor = {k: v for k, v in patient.items() if k != "meta"}
    else:
        survivor = _content(target)
        systems = {identifier.get("system") for identifier in survivor.get("identifier", [])}
        held = source.resource or {}
        contained = {f"#{c.get('id')}": c for c in held.get("contained", []) if isinstance(c, dict)}
        added = [_portable(i, contained) for i in held.get("identifier", []) if i.get("system") not in systems]
        if added:
            survivor["identifier"] = [*survivor.get("identifier", []), *added]
    return _linked(survivor, source.reference, "replaces")


def _portable(identifier: dict[str, Any], contained: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The source's identifier as the target can hold it: an assigner referring to a resource
    the source contains (``#a1``) would resolve to nothing in the target, so it is kept by its
    display alone (the contained organisation's name, when it had none)."""
    assigner = identifier.get("assigner")
    if not isinstance(assigner, dict) or not str(assigner.get("reference", "")).startswith("#"):
        return identifier
    kept = {key: value for key, value in assigner.items() if key != "reference"}
    name = contained.get(assigner["reference"], {}).get("name")
    if "display" not in kept and isinstance(name, str):
        kept["display"] = name
    rest = {key: value for key, value in identifier.items() if key != "assigner"}
    return {**rest, "assigner": kept} if kept else rest


def _provenance(plan: Plan) -> dict[str, Any]:
    """What the merge did, by whom: each version it writes (the target's, the source's, then
    every rewritten referrer's), activity MERGE, the acting client as agent.  Validated with
    the versions the merge is to write; it is written naming those it wrote (:func:`apply`)."""
    principal = acting.get()
    who = principal.client_id if principal is not None else "yiyang"
    written = [plan.people[1], plan.people[0], *plan.referrers]
    agent: dict[str, Any] = {"who": {"identifier": {"system": CLIENT_SYSTEM, "value": who}, "display": who}}
    if principal is not None:
        agent["onBehalfOf"] = {"reference": f"Organization/{principal.organization}"}
    recorded = now_instant()
    said = {
        "source": plan.source.reference,
        "target": plan.target.reference,
        "who": who,
        "recorded": recorded,
        "count": len(plan.referrers),
    }
    return {
        "resourceType": "Provenance",
        "id": str(uuid.uuid4()),
        "text": _narrative(messages.text("merge.provenance-narrative", NARRATIVE_LANGUAGE, said)),
        "target": [_version(r.before.reference, r.before.version + 1) for r in written],
        "recorded": recorded,
        "activity": {"coding": [MERGE_ACTIVITY], "text": f"{plan.source.reference} → {plan.target.reference}"},
        "agent": [agent],
    }


def _narrative(words: str) -> dict[str, str]:
    """A generated narrative saying ``words``: without one a reader of the Provenance (and
    the validator's dom-6) finds nothing a person can read in it."""
    return {
        "status": "generated",
        "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(words)}</p></div>',
    }


# -- writing -------------------------------------------------------------------------------------
def apply(repository: Repository, tx: Transaction, plan: Plan) -> Merged:
    """Write what ``plan`` prepared, if nothing it was prepared from changed meanwhile (else a
    412, and the caller prepares again).  The source is written while it still holds its
    identity keys, which then pass to the target before the target is written: so the target
    may carry the source's numbers, and the source's own write neither claims nor loses them.
    A target whose birth date moved later (``result-patient``) is judged last, against all
    the archive holds of the person then, the rewritten referrers too: they were validated
    against the target's stored birth date."""
    source_after, target_after = plan.people
    repository.hold(tx, plan.held, [source_after.after, target_after.after])
    now = tx.resources.referencing("Patient", plan.source.id, _referring(repository))
    if _versions([s for s in now if _rewritten(s, plan.target)]) != plan.read:
        raise FhirError(412, "merge.overtaken", plan.located, reference=plan.source.reference)
    moved = [_write(repository, tx, rewrite).stored for rewrite in plan.referrers]
    source = _write(repository, tx, source_after).stored
    for key in plan.keys:
        tx.identity.hand_over(key, plan.source.id, plan.target.id)
    target = repository.judge_birth(tx, _write(repository, tx, target_after), plan.survivor_located).stored
    conflicts = tx.conflicts.resolve_pair(plan.source.reference, plan.target.reference)
    record = {**plan.provenance, "target": [_version(s.reference, s.version) for s in (target, source, *moved)]}
    provenance = repository.create_in(tx, record, [], rows=repository.index_rows(record))
    return Merged([*moved, source, target, provenance.stored], target, conflicts)


def _version(reference: str, version: int) -> dict[str, str]:
    """A Reference to one version of a resource."""
    return {"reference": f"{reference}/_history/{version}"}


def _write(repository: Repository, tx: Transaction, rewrite: Rewrite) -> Written:
    """One new version, at the version the merge was prepared from (412 otherwise)."""
    before = rewrite.before
    return repository.update_in(tx, rewrite.after, rewrite.issues, if_match=before.version, rows=rewrite.rows)
