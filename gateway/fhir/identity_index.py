"""The identity index as REST writes keep it: which Patient holds each match key (身份证号 and
the other national identity numbers, 医保人员编号, 健康档案编号, HIS 患者ID).

An ingest merges legacy records into people by these keys (gateway/ingest/identity.py); a
Patient created, updated or deleted over REST claims, hands over and releases them here, under
the same number locks taken in the same order, so that a REST write and an ingest of one person
neither make two records of them nor deadlock.  The repository calls these around its writes;
what a write is and who may make it stays there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.fhir.errors import FhirError
from gateway.ingest.identity import Conflict, lock_numbers
from gateway.match_keys import is_document, match_keys
from gateway.security.access import Access
from gateway.storage.store import Stored, Transaction


def carried_keys(stored: Stored | None) -> list[str]:
    """The match keys a stored Patient carries (none for a deletion)."""
    return match_keys(stored.resource) if stored is not None and stored.resource is not None else []


def held_row(tx: Transaction, kind: str, resource_id: str, after: dict[str, Any] | None = None) -> Stored | None:
    """The current version (deleted or not), its row locked for the write about to change it.

    A Patient's identity numbers are locked first, as an ingest takes them (numbers, then the
    row): those it carries and those ``after``, its new content, brings.  A number the write
    drops is released when it commits; unlocked, an ingest of that number meanwhile found the
    person still holding it and merged a stranger's legacy record into them, or into the
    record being deleted.  Which numbers it carries is read before its row is locked; one a
    write in between added is locked after the rest (a deadlock that may cause is retried,
    see :meth:`Store.atomically`)."""
    if kind != "Patient":
        return tx.resources.read(kind, resource_id, for_update=True)
    numbers = {*carried_keys(tx.resources.read(kind, resource_id)), *match_keys(after or {})}
    lock_numbers(tx, numbers)
    held = tx.resources.read(kind, resource_id, for_update=True)
    lock_numbers(tx, set(carried_keys(held)) - numbers)
    return held


def lock_new_person(tx: Transaction, resource: dict[str, Any]) -> None:
    """The numbers a Patient about to be created brings, locked before it is written (an
    ingest of one of them waits, and then finds the new record)."""
    if resource.get("resourceType") == "Patient":
        lock_numbers(tx, match_keys(resource))


def lock_people(tx: Transaction, targets: Sequence[tuple[str, str]], people: Sequence[dict[str, Any]]) -> None:
    """The numbers the Patients among ``targets`` carry and those ``people`` (the Patients a
    transaction writes) bring, locked at once, before the transaction locks any row (see
    :meth:`Repository.hold`)."""
    current = [tx.resources.read(kind, resource_id) for kind, resource_id in targets if kind == "Patient"]
    numbers = {key for stored in current for key in carried_keys(stored)}
    lock_numbers(tx, numbers.union(*(match_keys(person) for person in people)))


def release_dropped_numbers(tx: Transaction, people: Sequence[dict[str, Any]]) -> None:
    """Before a transaction's Patients are written (``people``, their new content): the
    keys each drops are released, every identity number they carry or drop locked first,
    in one order.  Entries are applied one by one, so two records whose numbers the Bundle
    swaps (mixed up, now set right) each found the other's number still held."""
    dropped: dict[str, list[str]] = {}
    every: set[str] = set()
    for person in people:
        current = tx.resources.read("Patient", str(person.get("id", "")))
        carried = carried_keys(current)
        keys = match_keys(person)
        dropped[person["id"]] = sorted(set(carried) - set(keys))
        every.update(carried, keys)
    lock_numbers(tx, every)
    for person_id, keys in dropped.items():
        tx.identity.release(person_id, keys)


def register_person(
    tx: Transaction, patient: dict[str, Any] | None, before: Stored | None, rules: Access, *, unheld: bool = False
) -> None:
    """A Patient written over REST (``patient``, its content at its id) joins the identity
    index, so a legacy record of the same person (same 身份证号) merges into it instead of
    becoming a second Patient.  Nothing here needs its row: a create registers it before
    writing it, so on PostgreSQL the claim goes with the BEGIN (a create's with the COMMIT,
    ``unheld``) and the row with the COMMIT, and a transaction Bundle's Patient is written
    with its other entries.

    ``unheld``: a new Patient (no ``before``) claims its keys as no one's
    (:meth:`IdentityKeys.claim_unheld`), which on PostgreSQL sends the claim with the COMMIT
    and reads no answer; if one is held, the write fails (:meth:`IdentityKeys.held`) and its
    caller does it again without, to be judged as below.  When none is, the two ways write
    the same rows.

    A national identity number (身份证号, 居住证号, 永居证号) is one person's, and the archive
    keeps one record per person: a Patient that brings one another Patient of the archive
    holds is refused (409), since two records would split the person's care between two
    ids (a conditional create, ``If-None-Exist: identifier=…``, finds the person instead).
    A Patient that carried the number already (two records of one person from before) may
    still be updated; the number of a person deleted since, or whose number was corrected
    since, passes to the new record.  A holder the client may not see is not named: its
    record stays the number's, and the client's is a second one, as it was before (telling
    the two apart would tell the client who is in the archive), reported as an identity
    conflict for the 主索引 staff to merge.  Other keys (医保人员编号,
    健康档案编号, HIS 患者ID) a person already holds stay theirs, as in an ingest, and one
    held under another identity document refuses the write (:func:`_check_numbers_agree`)."""
    if patient is None or patient.get("resourceType") != "Patient":
        return
    person_id, reference = patient["id"], f"Patient/{patient['id']}"
    keys = match_keys(patient)
    if unheld and before is None and tx.identity.claim_unheld(person_id, keys):
        return
    documents = sorted(key for key in keys if is_document(key))
    carried = set(carried_keys(before))
    tx.identity.release(person_id, sorted(carried - set(keys)))  # a number corrected away
    numbers = [key for key in keys if not is_document(key)]
    held, holders, unlinked = tx.identity.claim(person_id, documents, numbers)
    for key, holder in held.items():
        if holder == person_id:
            continue
        record = tx.resources.read("Patient", holder)
        if record is None or record.deleted or key not in match_keys(record.resource or {}):
            tx.identity.hand_over(key, holder, person_id)  # deleted, or its number corrected since
        elif key in carried:
            continue
        elif not rules.hides(tx, record):
            raise FhirError(409, "http.duplicate-person", identifier_of(patient, key), person=holder)
        else:  # the client may not be told; the 主索引 staff are, to merge the two
            # kept, the first record; offered, this one
            where = identifier_of(patient, key)
            second = Conflict(holder, where, f"Patient/{holder}", reference)
            tx.conflicts.add(second.line("rest", reference, where))
    _check_numbers_agree(tx, patient, set(documents), holders, rules)
    tx.identity.link(person_id, unlinked)


def _check_numbers_agree(
    tx: Transaction, patient: dict[str, Any], documents: set[str], holders: Mapping[str, str], rules: Access
) -> None:
    """A record number (健康档案编号, 医保人员编号, HIS 患者ID) another person holds
    (``holders``: number → holder, asked with the claim of the documents, so in no round trip
    of its own) with another identity document: two people under one number, or a number
    mistyped.  An ingest quarantines such a record (``ingest.document-mismatch``); a REST
    write is refused alike (409), or, when the holder is hidden from the client, listed for
    the 主索引 staff."""
    reference = f"Patient/{patient['id']}"
    for key, holder in holders.items():
        if holder == patient["id"]:
            continue
        record = tx.resources.read("Patient", holder)
        known = record is not None and not record.deleted
        theirs = {k for k in match_keys(record.resource or {}) if is_document(k)} if known else set()
        if not theirs or theirs & documents:
            continue  # no document to tell them apart, or one person
        where = identifier_of(patient, key)
        if rules.hides(tx, record):
            mismatch = Conflict(holder, where, f"Patient/{holder}", reference)
            tx.conflicts.add(mismatch.line("rest", reference, where))
            continue
        number = key.rsplit("|", 1)[-1]
        raise FhirError(409, "http.number-of-another-person", where, number=number, person=f"Patient/{holder}")


def forget_person(tx: Transaction, deleted: Stored | None) -> None:
    """The keys of a Patient just deleted (``deleted``: its last version) are free again, for
    a REST write and an ingest alike (an ingest would otherwise merge a legacy record into the
    deleted person)."""
    if deleted is not None and deleted.type == "Patient":
        tx.identity.release(deleted.id, carried_keys(deleted))


def replaced_by(patient: dict[str, Any]) -> str | None:
    """The record a Patient merged away was replaced by (its ``replaced-by`` link), if any."""
    found = replacing_link(patient)
    return found[1] if found is not None else None


def replacing_link(patient: dict[str, Any]) -> tuple[int, str] | None:
    """Where a Patient merged away says what replaced it: the index of its ``replaced-by``
    link, and the record it names (a refusal points at the link).  Read from what a client
    sent too, before validation judged it (a Bundle's Patient another entry names), and from
    what the ``warn`` policy stored: a ``link`` that is no array of objects has no such link
    (read as one, it was a 500 for every write naming that Patient)."""
    links = patient.get("link")
    for index, link in enumerate(links if isinstance(links, list) else []):
        if isinstance(link, dict) and link.get("type") == "replaced-by":
            other = link.get("other")
            return index, str(other.get("reference", "") if isinstance(other, dict) else "")
    return None


def identifier_of(patient: dict[str, Any], key: str) -> str:
    """The FHIRPath of the identifier a match key comes from."""
    for index, identifier in enumerate(patient.get("identifier", [])):
        if key in match_keys({"identifier": [identifier]}):
            return f"Patient.identifier[{index}]"
    return "Patient.identifier"
