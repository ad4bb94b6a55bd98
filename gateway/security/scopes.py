"""SMART App Launch v2 system scopes, and which of them each interaction needs.

A backend client holds scopes such as ``system/Patient.rs`` or ``system/*.cruds``: a resource
type (or ``*``) and a subset of the permissions c(reate) r(ead) u(pdate) d(elete) s(earch),
written in that order.  SMART v1 scopes (``system/Patient.read``, ``.write``, ``.*``) are still
sent by older clients; they are translated to v2 on parsing so the rest of the gateway knows one
form.  Granular v2 scopes with a query (``system/Observation.rs?category=…``) are refused: the
gateway could not honour the filter, and a scope it silently widened would be worse than none.

The decision which permissions an interaction needs lives in one table, :data:`RULES`, keyed by
the API's endpoint names (plain strings: no Flask here).  The API's ``before_request`` hook looks
the matched endpoint up and asks :meth:`Grants.missing`; Bundles ask per entry
(:func:`bundle_entry_needs`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass

from gateway.messages import Worded
from profiles.registry import r4_resource_types

#: the SMART v2 permissions, in the order a scope must write them
PERMISSIONS = "cruds"
#: SMART v1 permission words → v2 permissions
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"system/(?P<kind>\*|[A-Z][A-Za-z]{1,63})\.(?P<permissions>[a-z]+|\*)")


class ScopeError(Worded, ValueError):
    """A scope the gateway does not understand: a message id naming it, worded by whoever
    reports it (``str()`` is the English)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """One system scope: a resource type (or ``*``) and its permissions, in ``cruds`` order."""

    kind: str
    permissions: str

    def __str__(self) -> str:
        return f"system/{self.kind}.{self.permissions}"

    def covers(self, kind: str, permission: str) -> bool:
        return (self.kind == "*" or self.kind == kind) and permission in self.permissions


def parse_scope(text: str) -> Scope:
    """``system/Patient.rs`` (v2) or ``system/Patient.read`` (v1) → a v2 Scope; anything else
    (patient/ and user/ scopes, launch scopes, granular queries, permissions out of order) is a
    ScopeError, so a registration typo is caught instead of silently granting nothing."""
    found = _SCOPE.fullmatch(text.strip())
    if found is None:
        raise ScopeError("scope.not-system", scope=text)
    kind, permissions = found["kind"], found["permissions"]
    if kind != "*" and kind not in r4_resource_types():  # system/Foo.rs would grant nothing, silently
        raise ScopeError("scope.unknown-type", scope=text, type=kind)
    if permissions in V1:
        return Scope(kind, V1[permissions])
    ordered = "".join(p for p in PERMISSIONS if p in permissions)
    if ordered != permissions or not permissions:
        raise ScopeError("scope.permission-order", scope=text)
    return Scope(kind, permissions)


def parse_scopes(text: str | Iterable[str]) -> list[Scope]:
    """A space-separated scope string (or its words) → scopes; every word must parse."""
    return [parse_scope(word) for word in _words(text)]


def stored_scopes(text: str | Iterable[str]) -> list[Scope]:
    """Scopes as a registration or a token holds them, checked when they were written: one an
    older gateway accepted and this one refuses (a type that is no R4 resource type) is left
    out, as it reached nothing, rather than failing every request of the client."""
    found = []
    for word in _words(text):
        with suppress(ScopeError):
            found.append(parse_scope(word))
    return found


def _words(text: str | Iterable[str]) -> list[str]:
    return text.split() if isinstance(text, str) else [w for item in text for w in item.split()]


#: roles that read and never write: an auditor (质控/考核) checks the archive it must not change
READ_ONLY_ROLES = frozenset({"auditor"})


def within_role(role: str, scopes: Iterable[Scope]) -> list[Scope]:
    """The scopes a client of ``role`` may use: a read-only role's keep only read and search,
    whatever it was registered for (an auditor registered with ``system/*.cruds`` created
    Encounters and ran ``$ingest``)."""
    if role not in READ_ONLY_ROLES:
        return list(scopes)
    reading = (Scope(s.kind, "".join(p for p in s.permissions if p in "rs")) for s in scopes)
    return [scope for scope in reading if scope.permissions]


def grant(requested: Iterable[Scope], registered: Iterable[Scope]) -> list[Scope]:
    """What a token may carry: the requested scopes narrowed to what the client is registered
    for (``system/*.rs`` asked by a client registered for ``system/Patient.cruds`` gets
    ``system/Patient.rs``).  Empty when nothing overlaps — the caller answers invalid_scope."""
    registered = list(registered)
    granted: list[Scope] = []
    for asked in requested:
        for allowed in registered:
            if asked.kind != "*" and allowed.kind != "*" and asked.kind != allowed.kind:
                continue
            kind = allowed.kind if asked.kind == "*" else asked.kind
            permissions = "".join(p for p in PERMISSIONS if p in asked.permissions and p in allowed.permissions)
            if permissions and Scope(kind, permissions) not in granted:
                granted.append(Scope(kind, permissions))
    return granted


class Grants:
    """The scopes one token carries, asked per (type, permission)."""

    def __init__(self, scopes: Iterable[str | Scope]) -> None:
        given = list(scopes)
        self.scopes = [s for s in given if isinstance(s, Scope)] + stored_scopes(s for s in given if isinstance(s, str))

    def allows(self, kind: str, permission: str) -> bool:
        return any(scope.covers(kind, permission) for scope in self.scopes)

    def missing(self, needs: Iterable[tuple[str, str]]) -> str | None:
        """The scope that would be needed, as a 403 names it (``system/Patient.s``), or None
        when every (type, permissions) need is granted.  ``*`` as type needs a ``*`` scope."""
        for kind, permissions in needs:
            lacking = "".join(p for p in permissions if not self.allows(kind, p))
            if lacking:
                return f"system/{kind}.{lacking}"
        return None


# -- which interaction needs what ------------------------------------------------------------
#: the URL's resource type (the ``kind`` view argument)
KIND = "{kind}"


@dataclass(frozen=True, slots=True)
class Rule:
    """What one endpoint needs: permissions on a type (``{kind}``: the URL's; ``*``: every type).

    ``conditional`` is added when the request carries search criteria (a conditional create's
    If-None-Exist): a condition reveals what matches, so it needs search too.  ``per_type``
    marks endpoints whose answer spans types the request names (``_type``): each named type
    needs ``per_type`` as well.  An empty ``permissions`` means authentication is enough."""

    kind: str
    permissions: str
    conditional: str = ""
    per_type: str = ""


#: endpoint → rule.  Endpoints missing here need ``system/*.cruds`` (fail closed), so a route
#: added without a rule is usable only by an all-powerful client until someone decides.
RULES: dict[str, Rule] = {
    # whole system
    "fhir.system_history": Rule("*", "s"),
    "fhir.transaction_or_batch": Rule("*", ""),  # each entry is checked on its own
    "fhir.ingest": Rule("*", "cu"),  # a legacy file may write any type
    # a merge finds its records by reference or identifier (a search), and rewrites whatever
    # type refers to the source: read, update and search on every type (and role operator,
    # gateway/api/auth.py)
    "fhir.merge": Rule("*", "rus"),
    # the identity-conflict work list names Patients and Organizations (and role operator)
    "fhir.conflicts": Rule("*", "r"),
    # types
    "fhir.search": Rule(KIND, "s"),
    "fhir.create": Rule(KIND, "c", conditional="s"),
    "fhir.conditional_update": Rule(KIND, "us"),
    # a patch works on content the client is not sent: its answer, its refusals and its test
    # operations would show that content, so patching needs read as well as update
    "fhir.conditional_patch": Rule(KIND, "rus"),
    "fhir.conditional_delete": Rule(KIND, "ds"),
    "fhir.type_history": Rule(KIND, "s"),
    # $validate stores nothing: any authenticated client may check a resource; create and update
    # modes then rehearse the write only for a client whose scopes allow it (gateway/api/routes.py)
    "fhir.validate_type": Rule(KIND, ""),
    # another method at $ingest or a type's $validate only answers 405 (gateway/api/routes.py)
    "fhir.operation_refused": Rule("*", ""),
    # instances
    "fhir.read": Rule(KIND, "r"),
    "fhir.vread": Rule(KIND, "r"),
    "fhir.instance_history": Rule(KIND, "r"),
    "fhir.update": Rule(KIND, "u"),
    "fhir.patch": Rule(KIND, "ru"),
    "fhir.delete": Rule(KIND, "d"),
    # the instance form looks the instance up (404 when absent): that is a read
    "fhir.validate_instance": Rule(KIND, "r"),
    # the Patient and whatever of its compartment the token may search (the rest is left out)
    "fhir.everything": Rule("Patient", "r"),
    # the Composition; each resource it gathers needs read too (checked as it is gathered)
    "fhir.document": Rule("Composition", "r"),
    # Bulk Data: a system export needs rs on each _type, on every type without _type; Patient
    # and Group exports read their people and groups, and without _type every type too,
    # because the compartment holds most of them
    "bulk.export_system": Rule("*", "", per_type="rs"),
    "bulk.export_patients": Rule("Patient", "rs", per_type="rs"),
    "bulk.export_group": Rule("Group", "rs", per_type="rs"),
    # status, cancel and files of a job: the kick-off was checked; the job id is the capability
    "bulk.export_status": Rule("*", ""),
    "bulk.export_cancel": Rule("*", ""),
    "bulk.export_file": Rule("*", ""),
    # another method at those paths only answers 405 (gateway/api/bulk.py)
    "bulk.export_refused": Rule("*", ""),
    # the audit trail (gateway/api/audit.py): read-only, its writes answer 405 to anyone
    "audit.search": Rule("AuditEvent", "s"),
    "audit.read": Rule("AuditEvent", "r"),
    "audit.refuse": Rule("AuditEvent", ""),
    # the auditors' report over recorded exchanges (gateway/api/reports.py): whoever may read
    # the audit trail may read the report
    "reports.page": Rule("AuditEvent", "rs"),
    "reports.exchange": Rule("AuditEvent", "rs"),
    # the indicators: aggregates over what the principal may see, read as MeasureReports
    "measures.evaluate_type": Rule("MeasureReport", "r"),
    "measures.evaluate_instance": Rule("MeasureReport", "r"),
}
#: endpoints open to anyone: the CapabilityStatement, SMART discovery, the token endpoint
PUBLIC = frozenset(
    {"fhir.metadata", "fhir.metadata_refused", "auth.smart_configuration", "auth.token", "auth.token_method"}
)
#: what an endpoint without a rule needs
UNKNOWN = Rule("*", PERMISSIONS)


def needs(
    endpoint: str, view_args: Mapping[str, str], conditional: bool = False, types: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """The (type, permissions) pairs a request to ``endpoint`` needs.  ``types`` are the
    ``_type`` values of an export: each needs the rule's ``per_type``; an export without them
    spans every type (``*``)."""
    rule = RULES.get(endpoint, UNKNOWN)
    kind = view_args.get("kind", "*") if rule.kind == KIND else rule.kind
    permissions = rule.permissions + (rule.conditional if conditional else "")
    found = [(kind, "".join(p for p in PERMISSIONS if p in permissions))] if permissions else []
    if rule.per_type:
        named = [t for t in types if t]
        found += [(t, rule.per_type) for t in named] if named else [("*", rule.per_type)]
    return found


#: the types a reference search parameter may point at: (type, code) → targets (none if unknown)
Targets = Callable[[str, str], Iterable[str]]


def search_needs(
    kind: str, pairs: Iterable[tuple[str, str]], targets: Targets = lambda kind, code: ()
) -> list[tuple[str, str]]:
    """Search on ``kind`` and on every type an ``_include``/``_revinclude`` would add or a chain
    would search: a ``_revinclude=Observation:subject`` adds Observations, an
    ``_include=Encounter:subject:Patient`` adds Patients, ``patient.identifier`` searches
    Patients (each type its parameter may point at, or the one a ``:Type`` modifier names).
    An ``_include`` that names no target type may add any type, so it needs ``*`` (name the
    target to include with narrower scopes); ``_has:CarePlan:subject:…`` searches CarePlans."""
    found = [(kind, "s")]
    for name, value in pairs:
        parts = value.split(":")
        if name.startswith("_has:"):
            found.append((name.split(":")[1] or "*", "s"))
        elif name.startswith("_revinclude") and parts[0] not in ("", "*"):
            found.append((parts[0], "s"))
        elif name.startswith("_revinclude") or name.startswith("_include"):
            target = parts[2] if len(parts) > 2 and name.startswith("_include") else "*"
            found.append((target or "*", "s"))
        elif "." in name and not name.startswith("_"):
            code, _, modifier = name.split(".", 1)[0].partition(":")
            found += [(target, "s") for target in ((modifier,) if modifier else targets(kind, code))]
    return found


#: a search's criteria as name/value pairs, decoded as the search decodes them (the API's
#: hook reads them with ``gateway.fhir.parameters.query_pairs``, which this layer may not import)
Pairs = Sequence[tuple[str, str]]


def type_filter_needs(
    searches: Iterable[tuple[str, Pairs]], targets: Targets = lambda kind, code: ()
) -> list[tuple[str, str]]:
    """What an export's ``_typeFilter`` searches, (type, criteria) pairs as the job reads them
    (``gateway.fhir.export_filters.written_searches``), reach beyond their own types (which
    ``_type`` names, so the export's rule covers them): each is a search, and its chains and
    ``_has`` need what they would sent as one.  ``Patient?_has:Observation:subject:code=…``
    keeps the residents with such a reading, and so tells a client holding
    ``system/Patient.rs`` alone who has one."""
    return [need for kind, criteria in searches for need in criteria_needs(kind, criteria, targets)]


def bundle_entry_needs(
    method: str, kind: str, resource_id: str | None, criteria: Pairs | None, targets: Targets = lambda kind, code: ()
) -> list[tuple[str, str]]:
    """What one Bundle entry needs, as the same interaction sent alone would (a search entry
    as :func:`search_needs` has it, its includes and chains too; a conditional write the
    search of its criteria besides).  ``criteria``: None when the entry has none."""
    searched = search_needs(kind, criteria or (), targets)
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        permission = {"POST": "c", "PUT": "u", "PATCH": "ru", "DELETE": "d"}[method]
        conditional = criteria is not None
        return [(kind, permission + ("s" if conditional else "")), *(searched[1:] if conditional else [])]
    if resource_id:  # a read, a vread or an instance's history, paged or not
        return [(kind, "r")]
    return searched


def criteria_needs(kind: str, criteria: Pairs, targets: Targets = lambda kind, code: ()) -> list[tuple[str, str]]:
    """What the criteria of a conditional interaction search besides ``kind`` itself: the
    types their chains and includes reach (the interaction's own rule covers ``kind``)."""
    return search_needs(kind, criteria, targets)[1:]
