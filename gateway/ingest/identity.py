"""One person, one Patient: the identity index that merges Patients arriving from every source.

A Patient is matched on its normalised 身份证号 first, else on its 医保人员编号 or 健康档案编号.
A match merges identifiers (never duplicating one) and fills elements the archive did not
have yet; the first value of an element stays.  A later source that says something else of
the same person (another name spelling, another marital status) does not change the archive
silently: every such disagreement is returned as a ``Conflict`` for the run's conflict report,
for the 主索引 staff to settle.  People are Patient resources in the store and their match
keys a table beside them, both written in the record's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from gateway.storage.store import Transaction
from mappings.engine import ID_NAMESPACE
from profiles.canonical import HEALTH_RECORD_SYSTEM, ID_CARD_SYSTEMS

PSN_NO_SUFFIX = "/sid/nhsa-psn-no"
#: the other national identity documents (港澳台居民居住证, 外国人永久居留身份证): as strong as
#: the 身份证, each number naming one person; matched by system suffix, like the 医保人员编号,
#: so they hold under any canonical base
STRONG_SUFFIXES = {"/sid/hmt-residence-permit": "hmt", "/sid/foreign-permanent-residence": "fpr"}
#: elements merged item by item, so a new item is an addition, never a disagreement
LISTS = ("identifier", "telecom", "address", "extension")


@dataclass(frozen=True, slots=True)
class Conflict:
    """One element the archive kept although an arriving record said otherwise."""

    person_id: str
    element: str
    kept: Any
    offered: Any


class IdentityConflict(Exception):
    """The record's identifiers point at two different people already in the archive."""

    def __init__(self, person_ids: list[str]) -> None:
        super().__init__(", ".join(person_ids))
        self.person_ids = person_ids


def match_keys(patient: dict[str, Any]) -> list[str]:
    """Keys in order of trust: the national identity documents (身份证号, 居住证号, 永居证号),
    then 医保人员编号 and 健康档案编号."""
    strong, weak = [], []
    for identifier in patient.get("identifier", []):
        system, value = identifier.get("system"), identifier.get("value")
        if not system or not value:
            continue
        document = next((kind for suffix, kind in STRONG_SUFFIXES.items() if system.endswith(suffix)), None)
        if system in ID_CARD_SYSTEMS:
            strong.append(f"idcard|{value.upper()}")
        elif document is not None:
            strong.append(f"{document}|{value.upper()}")
        elif system.endswith(PSN_NO_SUFFIX) or system == HEALTH_RECORD_SYSTEM:
            weak.append(f"{system}|{value}")
    return strong + weak


def conflicts(person_id: str, archive: dict[str, Any], incoming: dict[str, Any]) -> list[Conflict]:
    """The elements both have with different values (the archive's value is the one kept)."""
    return _element_conflicts(person_id, archive, incoming) + _extension_conflicts(person_id, archive, incoming)


def _extension_conflicts(person_id: str, archive: dict[str, Any], incoming: dict[str, Any]) -> list[Conflict]:
    """Extensions merge by URL (one 民族 per person), so one with the URL of a kept one but
    another value is a disagreement, never an addition."""
    kept = {extension.get("url"): extension for extension in archive.get("extension", [])}
    found = []
    for extension in incoming.get("extension", []):
        url = extension.get("url")
        mine = kept.get(url)
        if mine is not None and _extension_value(mine) != _extension_value(extension):
            found.append(Conflict(person_id, f"extension('{url}')", mine, extension))
    return found


def _extension_value(extension: dict[str, Any]) -> dict[str, Any]:
    return {key: _essence(value) for key, value in extension.items() if key.startswith("value")}


def _element_conflicts(person_id: str, archive: dict[str, Any], incoming: dict[str, Any]) -> list[Conflict]:
    return [
        Conflict(person_id, key, archive[key], value)
        for key, value in incoming.items()
        if key in archive
        and key not in LISTS
        and key not in ("resourceType", "id", "meta")
        # a primitive's extensions (_gender) disagree only when the primitive does
        and not key.startswith("_")
        and _essence(archive[key]) != _essence(value)
    ]


def _essence(value: Any) -> Any:
    """What a value says, not how a source spelled it: a CodeableConcept is its codes (one
    source adds a display or text, another does not), a Coding its system and code."""
    if isinstance(value, dict) and "coding" in value:
        return {(c.get("system"), c.get("code")) for c in value["coding"]}
    if isinstance(value, dict) and "code" in value:  # a Coding
        return (value.get("system"), value.get("code"))
    if isinstance(value, list):
        return [_essence(item) for item in value]
    return value


def merge(archive: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    seen = {(i.get("system"), i.get("value")) for i in archive.get("identifier", [])}
    for identifier in incoming.get("identifier", []):
        if (identifier.get("system"), identifier.get("value")) not in seen:
            archive.setdefault("identifier", []).append(identifier)
            seen.add((identifier.get("system"), identifier.get("value")))
    for key in LISTS[1:]:
        present = archive.setdefault(key, [])
        for item in incoming.get(key, []):
            if item not in present and not (
                key == "extension" and any(e.get("url") == item.get("url") for e in present)
            ):
                present.append(item)
        if not present:
            del archive[key]
    for key, value in incoming.items():
        archive.setdefault(key, value)
    return archive


class IdentityIndex:
    """Resolves arriving Patients to the people of the archive, inside the caller's transaction."""

    def resolve(self, tx: Transaction, patient: dict[str, Any]) -> tuple[dict[str, Any], list[Conflict]]:
        """The person the Patient is (merged with it, not yet written) and what the archive kept
        against it."""
        tx.lock("identity")  # two ingests must not both create the same new person
        keys = match_keys(patient)
        found: list[str] = []
        for key in keys:
            person_id = tx.identity.person_of(key)
            if person_id and person_id not in found:
                found.append(person_id)
        if len(found) > 1:
            raise IdentityConflict(found)
        if not found:
            return {**patient, "id": self._free_id(tx, patient["id"])}, []
        person_id = found[0]
        stored = tx.resources.read("Patient", person_id)
        archive = stored.content if stored else {}
        # Matched on a record number but carrying another 身份证号 (or 居住证号, 永居证号): two
        # people, not one.
        archived = match_keys(archive)
        for kind in ("idcard", *STRONG_SUFFIXES.values()):
            theirs = {k for k in archived if k.startswith(f"{kind}|")}
            ours = {k for k in keys if k.startswith(f"{kind}|")}
            if theirs and ours and not theirs & ours:
                raise IdentityConflict([person_id, patient["id"]])
        disagreements = conflicts(person_id, archive, patient)
        merged = merge({**archive, "id": person_id}, {k: v for k, v in patient.items() if k != "id"})
        return merged, disagreements

    @staticmethod
    def remember(tx: Transaction, person: dict[str, Any]) -> None:
        """Link the person's match keys once their Patient is written."""
        tx.identity.link(person["id"], match_keys(person))

    @staticmethod
    def _free_id(tx: Transaction, proposed: str) -> str:
        """The record's Patient id, unless another person holds it: ids come from file name and
        row, so row 2 of a 个人基本信息表.csv from another clinic proposes the same id for
        someone else.  The next id is derived from the taken one, so runs stay repeatable."""
        while tx.resources.read("Patient", proposed) is not None:
            proposed = str(uuid.uuid5(ID_NAMESPACE, f"person|{proposed}"))
        return proposed
