"""One organisation, one Organization: the master index of the archive's organisations.

An organisation's business identifiers (统一社会信用代码, 定点医药机构编号, 执业许可证号 …: every
identifier with a system and a value) are its alone.  The REST API refuses a second holder
(``http.duplicate-organization``, gateway/fhir/repository.py); an ingest maps an institution
under the id of its key instead (see keyed.py), which is not the id the archive may already
know it by — a package example, an Organization registered over REST, one keyed on another of
its identifiers.  So before anything of a record is merged, each Organization it maps becomes
the one Organization of the archive holding any of its identifiers (its id, and the record's
references to it, follow); several holders are the archive's own duplicate, which the 主索引
staff must settle, and the record waits in the quarantine meanwhile.
"""

from __future__ import annotations

from typing import Any

from gateway.ingest.identity import Conflict
from gateway.storage.store import Transaction


class OrganizationConflict(Exception):
    """The identifiers of an Organization a record maps are held by several Organizations of
    the archive."""

    def __init__(self, organization: dict[str, Any], holders: dict[str, str]) -> None:
        super().__init__(", ".join(f"Organization/{holder} ({key})" for holder, key in holders.items()))
        self.organization, self.holders = organization, holders


def identifiers(resource: dict[str, Any]) -> list[tuple[int, str, str]]:
    """The identifiers (position, system, value) that name one organisation: those with both
    a system and a value (a value of no system may be anyone's)."""
    found = []
    for index, identifier in enumerate(resource.get("identifier") or []):
        if not isinstance(identifier, dict):
            continue
        system, value = identifier.get("system"), identifier.get("value")
        if isinstance(system, str) and isinstance(value, str):
            found.append((index, system, value))
    return found


#: the prefix of the lock on one organisation identifier (see :func:`lock_identifiers`)
IDENTIFIER_LOCK = "organization-identifier"


def lock_identifiers(tx: Transaction, *organizations: dict[str, Any]) -> None:
    """Hold the organisations' identifiers until the transaction ends, in name order, before
    asking who holds them: two writers (REST or ingest) each bringing a new organisation with
    one 统一社会信用代码 both found it free and made two organisations of it on PostgreSQL,
    where writers run side by side.  They are the first locks a writer takes (see the lock
    order in identity.py)."""
    names = {f"{IDENTIFIER_LOCK}|{system}|{value}" for o in organizations for _, system, value in identifiers(o)}
    for name in sorted(names):
        tx.lock(name)


def holders(tx: Transaction, resource: dict[str, Any]) -> dict[str, str]:
    """The Organizations of the archive (its own id included) holding any of the resource's
    identifiers, each with the first of them it holds (``system|value``); the identifiers are
    locked first (:func:`lock_identifiers`)."""
    lock_identifiers(tx, resource)
    found: dict[str, str] = {}
    for _, system, value in identifiers(resource):
        for holder in tx.resources.holding_identifier("Organization", system, value):
            found.setdefault(holder, f"{system}|{value}")
    return found


def holder_of(tx: Transaction, organization: dict[str, Any]) -> str | None:
    """The id of the one Organization of the archive the mapped ``organization`` is (its own
    id, or another's), None when the archive holds none of its identifiers."""
    found = holders(tx, organization)
    if len(found) > 1:
        raise OrganizationConflict(organization, found)
    return next(iter(found), None)


def with_identifiers_of(archived: dict[str, Any], organization: dict[str, Any], holder: str) -> dict[str, Any]:
    """The mapped ``organization`` as the archive's Organization ``holder``: under its id, and
    carrying every identifier the archived version had first, then those only the record
    has.  A keyed merge replaces the identifier list with the record's, and an identifier
    dropped so (a 执业许可证号 a record without it left out) would no longer name the
    organisation: the next record carrying it made a second one."""
    known = archived.get("identifier") or []
    seen = {(i.get("system"), i.get("value")) for i in known if isinstance(i, dict)}
    added = [
        i
        for i in organization.get("identifier") or []
        if not isinstance(i, dict) or (i.get("system"), i.get("value")) not in seen
    ]
    merged = {**organization, "id": holder}
    if known or added:
        merged["identifier"] = [*known, *added]
    return merged


def name_conflict(
    tx: Transaction, final: dict[str, Any], offered: dict[str, Any], archived: dict[str, Any]
) -> Conflict | None:
    """The disagreement, when a record names an Organization of the archive otherwise than the
    archive does: ``kept`` is the name the Organization has after the record (``final``), and
    ``offered`` the other one: the record's, when the archive kept its own (an Organization the
    platform wrote, or a keyed one whose stored version speaks for a later time), or the name
    it replaced, when the later statement won.  None when they agree, or either has no name."""
    names = [resource.get("name") for resource in (offered, archived)]
    if not all(isinstance(name, str) for name in names) or names[0] == names[1]:
        return None
    kept = final.get("name")
    other = names[1] if kept == names[0] else names[0]
    identifier = holders(tx, offered).get(final["id"])
    return Conflict(final["id"], "name", kept, other, kind="Organization", identifier=identifier)
