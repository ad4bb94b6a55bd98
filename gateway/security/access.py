"""Who may see whom: an elderly-care platform reads only the people it serves.

A principal with the role ``elderly-care`` sees a person's data only while it serves that
person (a 养老 stay, a 医养签约, a family-doctor contract, or a Consent permitting it — and no
Consent refusing it; see ``gateway/storage/access_sql.py``).  Everything in a person's Patient
compartment follows the person; resources that are no one's personal data (Organizations,
Practitioners, definitions) are visible to every authenticated client.  A forbidden resource is
never counted, included or hinted at: reading it answers 404 like a resource that does not
exist, wherever it is named or matched (a read, a write, a Bundle entry, a condition).
Hospitals and auditors are governed by their scopes alone (the issue leaves their reads
unrestricted by organisation; a hospital's writes are checked by :func:`may_write`), except
that only auditors and the operator read the audit trail; an operator client (the platform's
own integration) writes for every organisation.
"""

from __future__ import annotations

from typing import Any

from gateway.security.principal import Principal
from gateway.storage.access_sql import Sql, served_patients, visible_condition
from gateway.storage.resources import now_instant
from gateway.storage.store import Stored, Transaction

RESTRICTED_ROLES = frozenset({"elderly-care"})
#: the provincial platform's own integration (data migration, the demo administrator): it
#: writes for every organisation, as the command line does
OPERATOR = "operator"
#: the roles that read the audit trail and the auditors' reports (which name every client's
#: requests and the people they concerned): auditors and the platform's operator, never a
#: hospital or an elderly-care platform, whatever scopes it holds
AUDIT_READERS = frozenset({"auditor", OPERATOR})
#: the endpoints (blueprint prefixes) serving them
AUDIT_ENDPOINTS = ("audit.", "reports.")
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


class Access:
    """The visibility rules of one request's principal (None: security is off for this call,
    e.g. the command line acting as the operator)."""

    def __init__(self, principal: Principal | None, compartment: dict[str, list[str]]) -> None:
        self.principal = principal
        self.compartment = compartment
        self.restricted = principal is not None and principal.role in RESTRICTED_ROLES
        self._served: Sql | None = (
            served_patients(principal.organization, now_instant()) if self.restricted and principal else None
        )

    def condition(self, kind: str) -> Sql | None:
        """The SQL condition on ``resource r`` of ``kind`` keeping what the principal may see."""
        if self._served is None:
            return None
        return visible_condition(kind, self.compartment.get(kind, ()), self._served)

    def visible(self, tx: Transaction, stored: Stored) -> bool:
        condition = self.condition(stored.type)
        return condition is None or tx.resources.meets(stored.type, stored.id, condition)

    def only_visible(self, tx: Transaction, found: list[Stored]) -> list[Stored]:
        return [stored for stored in found if self.visible(tx, stored)]

    def hides(self, tx: Transaction, stored: Stored | None) -> bool:
        """Whether the principal must be told that ``stored`` does not exist: it is not theirs
        to see, or it is deleted and whose it was can no longer be told.  Every interaction
        that names a resource (read, update, patch, delete, a Bundle entry) asks this, so
        none answers differently for a hidden resource than for an absent one."""
        return self.restricted and stored is not None and (stored.deleted or not self.visible(tx, stored))


def may_write(tx: Transaction, principal: Principal | None, resource: dict[str, Any]) -> bool:
    """A client writes for its own organisation and the organisations under it: every
    organisation a resource names as its owner must be one of those (a resource naming none,
    such as a Patient without a managing organisation, may be written by any client with
    the scope)."""
    if principal is None or principal.role == OPERATOR:
        return True
    return all(_within(tx, owner, principal.organization) for owner in owner_organizations(resource))


def owner_organizations(resource: dict[str, Any]) -> list[str]:
    """The Organization ids a resource names as its owner (an Organization is owned by the one
    it is part of, else by itself)."""
    found: list[str] = []
    for element in OWNER_ELEMENTS.get(resource.get("resourceType", ""), ()):
        value = resource.get(element)
        for reference in value if isinstance(value, list) else [value]:
            target = reference.get("reference") if isinstance(reference, dict) else None
            if isinstance(target, str) and target.startswith("Organization/"):
                found.append(target.removeprefix("Organization/"))
    if not found and resource.get("resourceType") == "Organization" and resource.get("id"):
        found.append(resource["id"])
    return found


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
