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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.ingest.keyed import older
from gateway.match_keys import is_document, match_keys
from gateway.storage.store import Transaction
from mappings.engine import ID_NAMESPACE
from profiles.canonical import DEFAULT_BASE
from profiles.registry import Registry

#: elements merged item by item, so a new item is an addition, never a disagreement
LISTS = ("identifier", "telecom", "address", "extension", "contact")
#: the lists a record may state in full for its sender (its spec's ``states``)
STATED = ("telecom", "address")
#: the extension marking each source system that sent a contact, phone or address, matched under any base
CONTACT_SOURCE = "/StructureDefinition/yy-ext-contact-source"
#: the namespace of the names of one source kind's senders (``{base}/sid/sending-system/hl7v2``,
#: values ``MSH-3^MSH-4``): a contact's mark says which system sent it, and of what kind
SENDING_SYSTEM = "/sid/sending-system/"

#: held by an ingest while it merges people: two must not both create the same new person
IDENTITY_LOCK = "identity"

# The order every writer of people takes its locks in, so that none holds what another waits
# for (on PostgreSQL, which fails one of two such writers; SQLite's writers take turns):
#
# 1. the named locks of conditions, by name (bundles._lock_conditions): IDENTITY_LOCK, an
#    ingest's and a conditional create's or update's of a Patient, among them;
# 2. the identifiers of the organisations written, in name order
#    (organizations.lock_identifiers); an ingest, which holds IDENTITY_LOCK for its whole
#    batch once a record has merged a person, takes it before its first organisation's;
# 3. the identity numbers, each by its number_lock, in number order (lock_numbers);
# 4. the rows written: in type and id order (a transaction Bundle, Repository.hold), or as a
#    record's resources are written (an ingest, Ingest._land).
#
# An ingest's locks of records — a ledger record's, a quarantine entry's — come in its file's
# order, never a fixed one: they are tried, never waited for while the batch holds anything
# (ledger.RecordHeld: the batch is committed first).
#
# An ingest batch keeps what its earlier records took while a later record takes its own, so
# across records its order restarts; a number or row found changed after the rest were locked
# is locked late too, as are the identifiers of an Organization a Bundle PATCHes.  The
# deadlocks those leave are rare, and a REST write is run again when PostgreSQL fails it
# (Store.atomically).


@dataclass(frozen=True, slots=True)
class Conflict:
    """One element the archive kept although an arriving record said otherwise: of a person,
    or of an organisation (its name, for an identifier two records share)."""

    person_id: str
    element: str
    kept: Any
    offered: Any
    #: whose element it is: a Patient (a person), or an Organization (then ``person_id`` is its id)
    kind: str = "Patient"
    #: an Organization's identifier (``system|value``) that both names belong to
    identifier: str | None = None

    def line(self, source: str, file: str, location: str) -> dict[str, Any]:
        """The identity-conflict line the 主索引 staff read (``tx.conflicts.add``), naming what
        offered the disagreement and where: a person's under ``person``, an organisation's under
        ``organization`` with the ``identifier`` its names disagree for."""
        subject = {"person": f"Patient/{self.person_id}"}
        if self.kind == "Organization":
            subject = {"organization": f"Organization/{self.person_id}", "identifier": self.identifier}
        return {
            **subject,
            "element": self.element,
            "kept": self.kept,
            "offered": self.offered,
            "source": source,
            "file": file,
            "location": location,
        }


class IdentityConflict(Exception):
    """The record's identifiers point at two different people already in the archive."""

    def __init__(self, person_ids: list[str]) -> None:
        super().__init__(", ".join(person_ids))
        self.person_ids = person_ids


class DocumentMismatch(Exception):
    """The record's number (健康档案编号, 医保人员编号) is a person's in the archive, but its
    identity document (身份证号 …) is another: two people under one number, or a number
    mistyped.  Says which number, whose it is and both documents."""

    def __init__(self, number: str, person_id: str, archived: str, offered: str) -> None:
        super().__init__(f"{number}: Patient/{person_id} holds {archived}, the record {offered}")
        self.number, self.person_id, self.archived, self.offered = number, person_id, archived, offered


def _merged_away(tx: Transaction, person_id: str, patient: dict[str, Any]) -> list[Conflict]:
    """A number the record says was merged into this person (``use: old``, an ADT^A40's MRG-1)
    that is another person's in the archive: the sender holds the two for one, the archive
    for two (each with its own 身份证号).  Not merged here — which of them is right is the
    主索引 staff's to decide — but listed for them."""
    found = []
    for identifier in patient.get("identifier", []):
        if identifier.get("use") != "old":
            continue
        for key in match_keys({"identifier": [{k: v for k, v in identifier.items() if k != "use"}]}):
            other = tx.identity.person_of(key)
            if other and other != person_id:
                found.append(Conflict(person_id, "identifier (use old)", f"Patient/{other}", _key_value(key)))
    return found


def _key_value(key: str) -> str:
    """The identifier's value of a match key (``idcard|4101…``, ``SYSTEM|VALUE``)."""
    return key.rsplit("|", 1)[-1]


def number_lock(key: str) -> str:
    """The lock of one identity number: every writer that may make or merge its person holds
    it (an ingest after :data:`IDENTITY_LOCK`), so two of them never both find it free."""
    return f"person|{key}"


def lock_numbers(tx: Transaction, keys: Iterable[str]) -> None:
    """The identity numbers among ``keys`` locked, each by its own lock, before a Patient
    carrying (or dropping) them is written or merged: by a REST write, and by an ingest after
    :data:`IDENTITY_LOCK` (on PostgreSQL an ingest creating a new person had queued its
    number unseen while a create of the same person wrote a second record).  One lock per
    number, not the ingests' one lock: under that, every Patient write waited for every other
    (bench.server, PostgreSQL: 551 creates a second against 672 with a lock per number).  In
    number order, so two writers cannot deadlock on them.  (SQLite's writers take turns.)"""
    for key in sorted({key for key in keys if is_document(key)}):
        tx.lock(number_lock(key))


def conflicts(
    person_id: str, archive: dict[str, Any], incoming: dict[str, Any], repeating: frozenset[str] = frozenset()
) -> list[Conflict]:
    """The elements both have with different values (the archive's value is the one kept);
    ``repeating`` are the extension URLs a person may carry several of."""
    return (
        _element_conflicts(person_id, archive, incoming)
        + _extension_conflicts(person_id, archive, incoming, repeating)
        + _primitive_extension_conflicts(person_id, archive, incoming)
    )


def repeated_in(patient: dict[str, Any]) -> set[str]:
    """The extension URLs a Patient carries more than once: repeating, whatever its profile."""
    urls = Counter(extension.get("url") for extension in patient.get("extension", []))
    return {url for url, count in urls.items() if isinstance(url, str) and count > 1}


def extension_slices(definition: dict[str, Any]) -> dict[str, bool]:
    """The extension definitions a Patient profile slices ``Patient.extension`` by, each with
    whether its slice may occur more than once (医疗费用支付方式 is 0..*, 民族 0..1): named by
    the slice's type profile or, for a core extension whose definition the package does not
    hold (patient-birthPlace, 0..1), by the slice's fixed ``url``."""
    elements = definition.get("snapshot", definition.get("differential", {})).get("element", [])
    slices = {
        element["id"]: element
        for element in elements
        if element.get("path") == "Patient.extension" and element.get("sliceName") and "id" in element
    }
    found = {
        url: element.get("max") not in ("0", "1")
        for element in slices.values()
        for kind in element.get("type", [])
        for url in kind.get("profile", [])
    }
    for element in elements:
        owner = slices.get(str(element.get("id", "")).removesuffix(".url"))
        if owner is not None and element.get("path") == "Patient.extension.url" and "fixedUri" in element:
            found[element["fixedUri"]] = owner.get("max") not in ("0", "1")
    return found


def _extension_conflicts(
    person_id: str, archive: dict[str, Any], incoming: dict[str, Any], repeating: frozenset[str], owner: str = ""
) -> list[Conflict]:
    """A single-valued extension (one 民族 per person) with the URL of a kept one but another
    value is a disagreement, never an addition; a repeating one (医疗费用支付方式) merges item
    by item instead.  ``owner`` prefixes the element named (``gender.`` for a primitive's)."""
    kept = {extension.get("url"): extension for extension in archive.get("extension", [])}
    found = []
    for extension in incoming.get("extension", []):
        url = extension.get("url")
        mine = kept.get(url)
        if url not in repeating and mine is not None and _extension_value(mine) != _extension_value(extension):
            found.append(Conflict(person_id, f"{owner}extension('{url}')", mine, extension))
    return found


def _primitive_extension_conflicts(person_id: str, archive: dict[str, Any], incoming: dict[str, Any]) -> list[Conflict]:
    """The extensions of a primitive both agree on (``_gender`` beside ``gender``): another value
    is a disagreement of its own.  GB/T 2261.1 0 未知的性别 and 9 未说明的性别 are both FHIR
    ``unknown``, yet one says the sex cannot be told and the other that it was not stated; where
    the primitives differ, that disagreement is listed already."""
    return [
        conflict
        for key, value in incoming.items()
        if key.startswith("_")
        and isinstance(value, dict)
        and isinstance(archive.get(key), dict)
        and _said(key[1:], archive.get(key[1:])) == _said(key[1:], incoming.get(key[1:]))
        for conflict in _extension_conflicts(person_id, archive[key], value, frozenset(), f"{key[1:]}.")
    ]


def _extension_value(extension: dict[str, Any]) -> dict[str, Any]:
    return {key: _essence(value) for key, value in extension.items() if key.startswith("value")}


def _element_conflicts(person_id: str, archive: dict[str, Any], incoming: dict[str, Any]) -> list[Conflict]:
    return [
        Conflict(person_id, key, archive[key], value)
        for key, value in incoming.items()
        if key in archive
        and key not in LISTS
        and key not in ("resourceType", "id", "meta")
        # a primitive's extensions (_gender) are compared apart: _primitive_extension_conflicts
        and not key.startswith("_")
        and _said(key, archive[key]) != _said(key, value)
    ]


def _said(key: str, value: Any) -> Any:
    """What an element says: a name is the text it renders to (张秀英 with or without its
    family and given parts spelt out), any other element its :func:`_essence`."""
    if key == "name" and isinstance(value, list):
        return [_rendered(name) for name in value]
    return _essence(value)


def _rendered(name: Any) -> Any:
    """A HumanName as read: its text, else family name then given names (the Chinese order)."""
    if not isinstance(name, dict):
        return name
    given = name.get("given", [])
    return name.get("text") or (name.get("family") or "") + "".join(g for g in given if isinstance(g, str))


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


def merge(
    archive: dict[str, Any],
    incoming: dict[str, Any],
    repeating: frozenset[str] = frozenset(),
    source: dict[str, Any] | None = None,
    states: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The archive's Patient with what ``incoming`` adds: list items it lacks, and elements it
    has not got; the extension URLs in ``repeating`` gain the values they lack, the others
    keep their first value.  ``source``, the yy-ext-contact-source extension of the system
    ``incoming`` came from (:meth:`IdentityIndex.mark`), makes its contacts that system's current
    ones: they replace those it sent before (a new emergency contact, not one beside the old), one
    it sends again stays where it stands, and the contacts of other systems (another hospital's
    HIS), or of none (written over REST), stay.  The lists of :data:`STATED` named in ``states``
    are as the system now holds them, the same way (:func:`_stated`)."""
    if source is not None and incoming.get("contact"):
        incoming = with_source(incoming, source)
        archive["contact"] = _without_withdrawn(archive.get("contact", []), incoming["contact"], source)
    for key in STATED if source is not None else ():
        if key in states or any(map(_sources, archive.get(key, []))):
            archive[key] = _stated(archive.get(key, []), incoming.get(key, []), source, key in states, key)
            incoming = {k: v for k, v in incoming.items() if k != key}
    seen = {(i.get("system"), i.get("value")) for i in archive.get("identifier", [])}
    for identifier in incoming.get("identifier", []):
        if (identifier.get("system"), identifier.get("value")) not in seen:
            archive.setdefault("identifier", []).append(identifier)
            seen.add((identifier.get("system"), identifier.get("value")))
    for key in LISTS[1:]:
        present = archive.setdefault(key, [])
        for item in incoming.get(key, []):
            if item in present or (key == "extension" and _has_extension(present, item, repeating)):
                continue
            if key == "contact" and (same := _same_contact(present, item)) is not None:
                _fill_relationships(same, item)
                same["extension"] = _sources_added(same.get("extension", []), _sources(item))
                if not same["extension"]:
                    del same["extension"]
                continue
            same = _same_address(present, item) if key == "address" else None
            same = _same_telecom(present, item) if key == "telecom" else same
            if same is not None:
                _fill_address(same, item)
            else:
                present.append(item)
        if not present:
            del archive[key]
    for key, value in incoming.items():
        archive.setdefault(key, value)
    return archive


def updated(person: dict[str, Any], incoming: dict[str, Any], repeating: frozenset[str]) -> dict[str, Any]:
    """The merged ``person`` with what ``incoming`` states replacing what the archive held: its
    single-valued elements (name, gender, birthDate, maritalStatus …), each with its primitive's
    extensions (``_gender``: a GB/T 2261.1 code the archive kept beside another gender would
    contradict the new one), and its single-valued extensions (民族).  An ADT^A08 is the
    sender's statement of the person as it now holds them: merged as any record, its corrected
    name or marital status was kept out as a disagreement.  What it does not give stays (an
    empty HL7 field changes nothing), and lists are merged item by item as :func:`merge` does:
    identifiers are never dropped, and the phones and addresses the spec says the record
    ``states`` replace those its sender gave before (:func:`_stated`).  An element saying what the archive's says
    (a name as text where the archive holds it in parts too, a code with another display) stays
    as archived, with its primitive's extensions unless the update gives its own."""
    for key, value in incoming.items():
        if key in LISTS or key.startswith("_") or key in ("resourceType", "id", "meta"):
            continue
        if _said(key, person.get(key)) != _said(key, value):
            person[key] = value
            person.pop(f"_{key}", None)
        if f"_{key}" in incoming:
            person[f"_{key}"] = incoming[f"_{key}"]
    stated = {e.get("url"): e for e in incoming.get("extension", []) if e.get("url") not in repeating}
    if stated:
        person["extension"] = [stated.get(e.get("url"), e) for e in person.get("extension", [])]
    return person


def _stated(
    present: list[dict[str, Any]], incoming: list[dict[str, Any]], source: dict[str, Any], states: bool, key: str
) -> list[dict[str, Any]]:
    """The phones or addresses (``key``) of the archive with ``incoming``'s, which ``source``
    sent.  Each item one sends is marked as theirs, as contacts are, when its system ``states``
    the list (its spec says so: an ADT's PID is the HIS's current demographics) or the item is
    marked already (a phone an HIS gave and a 个人基本信息表 repeats is theirs both).  A system
    stating the list withdraws what it marked before and no longer sends: a changed number
    replaces the old one, which stayed current beside it; an item another source marked too
    loses only this system's mark, and one no mark names (a REST write's, or given before the
    marks) stays, as nobody can tell whose it is."""
    same = _same_address if key == "address" else _same_telecom
    kept = present
    if states:
        kept = []
        for item in present:
            claimed = [mark for mark in _sources(item) if _claims(source, mark)]
            if not claimed or any(same([item], sent) is not None for sent in incoming):
                kept.append(item)
            elif len(_sources(item)) > len(claimed):
                kept.append(_without_marks(item, claimed))
    for item in incoming:
        found = same(kept, item)
        if found is None:
            kept.append(with_marks(item, [source]) if states else item)
            continue
        _fill_address(found, item)
        if states or _sources(found):
            # a mark of its kind alone that ``source`` speaks for gives way to its own
            taken = [mark for mark in _sources(found) if _claims(source, mark) and mark != source]
            found.update(with_marks(_without_marks(found, taken), [source]))
    return kept


def with_marks(item: dict[str, Any], marks: list[dict[str, Any]]) -> dict[str, Any]:
    """The contact, phone or address with ``marks`` among its extensions."""
    return {**item, "extension": _sources_added(item.get("extension", []), marks)}


def with_source(patient: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The Patient with each of its contacts marked as sent by ``source``."""
    return {**patient, "contact": [with_marks(contact, [source]) for contact in patient["contact"]]}


def _sources(contact: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in contact.get("extension", []) if str(e.get("url", "")).endswith(CONTACT_SOURCE)]


def _sources_added(extensions: list[dict[str, Any]], sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*extensions, *(mark for mark in sources if mark not in extensions)]


def _unmarked(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact as said, without the marks of the sources that said it."""
    marks = _sources(contact)
    others = [e for e in contact.get("extension", []) if e not in marks]
    bare = {key: value for key, value in contact.items() if key != "extension"}
    return {**bare, "extension": others} if others else bare


def _without_withdrawn(
    contacts: list[dict[str, Any]], incoming: list[dict[str, Any]], source: dict[str, Any]
) -> list[dict[str, Any]]:
    """The contacts but those ``source`` sent before and sends no more (:func:`_claims`); one
    another source sent too stays, no longer marked as ``source``'s.  One it sends again (the
    contact an incoming one merges into, :func:`_same_contact`) stays in its place as it is:
    dropped and appended anew, it moved behind the others' contacts, so every message repeating
    it wrote a new version of the person, and two sources resending theirs swapped the order
    back and forth.  It only loses a mark of ``source``'s kind alone, which ``source``'s own
    replaces (:func:`merge` adds it)."""
    resent = {id(found) for item in incoming if (found := _same_contact(contacts, item)) is not None}
    kept = []
    for contact in contacts:
        marks = _sources(contact)
        claimed = [mark for mark in marks if _claims(source, mark)]
        if not claimed:
            kept.append(contact)
        elif id(contact) in resent:
            taken = [mark for mark in claimed if mark != source]
            kept.append(_without_marks(contact, taken) if taken else contact)
        elif len(marks) > len(claimed):
            kept.append(_without_marks(contact, claimed))
    return kept


def _claims(source: dict[str, Any], mark: dict[str, Any]) -> bool:
    """Whether ``source`` speaks for the contacts ``mark`` marks: its own mark, or, when it is a
    named sender (``valueIdentifier``), a mark of its kind alone (``valueCode: hl7v2``), as every
    mark was before senders were named and an export's still is.  Keyed by kind, such contacts
    were the ones the last sender of the kind sent, whichever it was; the first named sender of
    the kind to send the person's contacts takes them over — those it sends again stay, as its
    own; the others go, and if they were another hospital's, its next message brings them back.
    Left beside them, a hospital's changed emergency contact would have kept its old one."""
    if mark == source:
        return True
    named = source.get("valueIdentifier")
    return isinstance(named, dict) and "valueCode" in mark and _kind(named) == mark["valueCode"]


def _kind(sender: dict[str, Any]) -> str | None:
    """The source kind a sender's name belongs to: the last step of its system's namespace."""
    system = str(sender.get("system", ""))
    return system.rpartition(SENDING_SYSTEM)[2] if SENDING_SYSTEM in system else None


def _without_marks(contact: dict[str, Any], marks: list[dict[str, Any]]) -> dict[str, Any]:
    """The contact without ``marks`` (and without its extension list when nothing is left)."""
    rest = [extension for extension in contact.get("extension", []) if extension not in marks]
    bare = {key: value for key, value in contact.items() if key != "extension"}
    return {**bare, "extension": rest} if rest else bare


def _same_contact(present: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, Any] | None:
    """The contact of ``present`` that ``item`` is: one saying the same, the sources' marks and
    the relationships other sources added aside (:func:`_says`), or, for a contact naming no one
    (an HIS's emergency number, PID-13 EMR) whose every number reaches one the archive knows by
    name (the 养老 profile's 紧急联系人 at that number), that person, not a second contact."""
    said, senders = _unmarked(item), _sources(item)
    equal = next((c for c in present if _says(_unmarked(c), said, gained=not _sent_only_by(c, senders))), None)
    if equal is not None:
        return equal
    numbers = {point.get("value") for point in item.get("telecom", [])}
    if "name" in item or not numbers:
        return None
    return next((c for c in present if numbers <= {p.get("value") for p in c.get("telecom", [])}), None)


def _says(contact: dict[str, Any], said: dict[str, Any], gained: bool) -> bool:
    """Whether an archived contact says what ``said`` says: the same, but that, when another
    source may have given it some (``gained``), it may hold relationships more (the HIS's C,
    emergency contact, beside the 老人档案's 儿子: compared whole, the 老人档案 sending 李明
    again no longer found him and appended a second 李明).  A contact only the sender of
    ``said`` gave holds its relationships alone: one it no longer sends is withdrawn."""
    own, theirs = contact.get("relationship", []), said.get("relationship", [])
    if not all(relationship in own for relationship in theirs):
        return False
    if not gained and any(relationship not in theirs for relationship in own):
        return False
    return {k: v for k, v in contact.items() if k != "relationship"} == {
        k: v for k, v in said.items() if k != "relationship"
    }


def _sent_only_by(contact: dict[str, Any], senders: list[dict[str, Any]]) -> bool:
    """Whether every mark on the contact is one of ``senders``' (their own, or a kind-only
    one a named sender takes over, :func:`_claims`): then all it says came from them."""
    marks = _sources(contact)
    return bool(marks) and all(any(_claims(sender, mark) for sender in senders) for mark in marks)


def _fill_relationships(contact: dict[str, Any], item: dict[str, Any]) -> None:
    """The relationships ``item`` adds to the same contact (emergency contact, C, beside 儿子)."""
    kept = contact.get("relationship", [])
    added = [relationship for relationship in item.get("relationship", []) if relationship not in kept]
    if added:
        contact["relationship"] = [*kept, *added]


def _same_address(present: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, Any] | None:
    """The address of ``present`` that ``item`` is: one source writes the home with its
    township code, another with its city and postcode, a CDA document in parts, and it is one
    home (see :func:`_same_place`)."""
    return next((address for address in present if _same_place(address, item)), None)


def _same_telecom(present: list[dict[str, Any]], item: dict[str, Any]) -> dict[str, Any] | None:
    """The contact point of ``present`` that ``item`` is: the same system and number, their uses
    not differing, as an address's (a 联系电话 column says no use, and the HIS calls the same
    number mobile: it was two telecoms of one number).  A number used at home and at work stays
    two."""
    return next((point for point in present if _same_point(point, item)), None)


def _same_point(one: dict[str, Any], other: dict[str, Any]) -> bool:
    if (one.get("system"), one.get("value")) != (other.get("system"), other.get("value")):
        return False
    return not (one.get("use") and other.get("use") and one["use"] != other["use"])


def _same_place(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two addresses are one place: their uses do not differ (an address that says
    none, as a 个人基本信息表's 现住址, agrees with any), and either's text is the other's, or is
    the other's parts joined as the table writes them (:func:`_written_as`)."""
    if one.get("use") and other.get("use") and one["use"] != other["use"]:
        return False
    return _written_as(_address_text(one), other) or _written_as(_address_text(other), one)


def _written_as(text: str, address: dict[str, Any]) -> bool:
    """Whether ``text`` is ``address``: its own text, or its parts in the order a 现住址 line
    writes them (province, city, district, then the lines: township, street, house), each
    either next in the text or already said by it — a 现住址 of 经八路街道幸福社区3号楼 does not
    repeat the street 经八路 its township is named after.  Nothing else may be left over."""
    if not text:
        return False
    if _address_text(address) == text:
        return True
    lines = address.get("line") if isinstance(address.get("line"), list) else []
    parts = [_joined(part) for part in [address.get(k) for k in ("state", "city", "district")] + lines]
    parts = [part for part in parts if part]
    if not parts:
        return False
    at = 0
    for part in parts:
        if text.startswith(part, at):
            at += len(part)
        elif part not in text[:at]:
            return False
    return at == len(text)


def _address_text(address: dict[str, Any]) -> str:
    return _joined(address.get("text"))


def _joined(value: Any) -> str:
    """A text without its spaces, as exports space an address at random."""
    return "".join(str(value or "").split())


def _fill_address(address: dict[str, Any], item: dict[str, Any]) -> None:
    """The parts ``item`` adds to the same address: those it lacks, and extensions of URLs it
    has none of (the archive's own parts stay as first recorded)."""
    for key, value in item.items():
        if key == "extension":
            urls = {extension.get("url") for extension in address.get("extension", [])}
            extra = [extension for extension in value if extension.get("url") not in urls]
            if extra:
                address["extension"] = [*address.get("extension", []), *extra]
        else:
            address.setdefault(key, value)


def _has_extension(present: list[dict[str, Any]], item: dict[str, Any], repeating: frozenset[str]) -> bool:
    """Whether the merged list already says what ``item`` says: the same value of a repeating
    extension, any value of a single-valued one."""
    url = item.get("url")
    same = [extension for extension in present if extension.get("url") == url]
    if url in repeating:
        return any(_extension_value(extension) == _extension_value(item) for extension in same)
    return bool(same)


class IdentityIndex:
    """Resolves arriving Patients to the people of the archive, inside the caller's transaction;
    the registry's Patient profiles say which extensions a person may carry several of."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry
        self._slices: dict[str, dict[str, bool]] = {}
        self._base = registry.canonical_base if registry else DEFAULT_BASE

    def mark(self, source: str | None, sender: str | None = None) -> dict[str, Any] | None:
        """The yy-ext-contact-source extension of the contacts a record brings: the system that
        sent it, named within its source kind (``valueIdentifier``: system
        ``{base}/sid/sending-system/hl7v2``, value ``HIS^H41010500012``, an HL7 message's MSH-3
        and MSH-4), or, for a record that names no sender (an export file), its kind alone
        (``valueCode: elderly-care``); none for a write that is no ingest's (REST)."""
        if not source:
            return None
        url = f"{self._base}{CONTACT_SOURCE}"
        if sender is None:
            return {"url": url, "valueCode": source}
        return {"url": url, "valueIdentifier": {"system": f"{self._base}{SENDING_SYSTEM}{source}", "value": sender}}

    def repeating(self, *patients: dict[str, Any]) -> frozenset[str]:
        """The extension URLs that may repeat on these Patients: what their profiles allow more
        than once and, for an extension no profile of theirs describes, one a Patient already
        repeats (a profile that says once wins over a record that repeats it anyway)."""
        described: dict[str, bool] = {}
        repeated: set[str] = set()
        for patient in patients:
            repeated |= repeated_in(patient)
            for profile in patient.get("meta", {}).get("profile", []) if self.registry else ():
                if profile not in self._slices:
                    self._slices[profile] = extension_slices(self.registry.get(profile) or {})
                described |= self._slices[profile]
        return frozenset({url for url, repeats in described.items() if repeats} | (repeated - described.keys()))

    def resolve(
        self,
        tx: Transaction,
        patient: dict[str, Any],
        source: str | None = None,
        sender: str | None = None,
        updates: bool = False,
        as_of: str | None = None,
        states: tuple[str, ...] = (),
    ) -> tuple[dict[str, Any], list[Conflict]]:
        """The person the Patient is (merged with it, not yet written) and what the archive kept
        against it; ``source``, the kind of system the Patient came from, and ``sender``, which
        system of that kind sent it, key its contacts (:meth:`mark`, :func:`merge`).  A Patient
        that ``updates`` (an ADT^A08's) replaces the elements it gives (:func:`updated`): the
        archive keeps nothing against it; unless it speaks for a time (``as_of``) before the
        update the person last took (:meth:`updated_at`), as an A08 replayed from the quarantine
        after a newer one landed: that one merges as any record.  Its lists named in ``states``
        are the sender's current ones (:func:`merge`), unless it is such an older update."""
        mark = self.mark(source, sender)
        if mark is not None and patient.get("contact"):
            patient = with_source(patient, mark)
        if mark is not None:
            patient |= {key: [with_marks(item, [mark]) for item in patient[key]] for key in states if key in patient}
        tx.lock(IDENTITY_LOCK)  # two ingests must not both create the same new person
        keys = match_keys(patient)
        lock_numbers(tx, keys)  # nor an ingest and a REST write of the same person
        found: dict[str, str] = {}  # person id → the first key that named them
        for key in keys:
            person_id = tx.identity.person_of(key)
            if person_id and person_id not in found:
                found[person_id] = key
        if len(found) > 1:
            raise IdentityConflict(list(found))
        if not found:
            person = {**patient, "id": self._free_id(tx, patient["id"])}
            return person, _merged_away(tx, person["id"], patient)
        [(person_id, matched)] = found.items()
        stored = tx.resources.read("Patient", person_id)
        archive = stored.content if stored else {}
        # Matched on a record number but carrying another 身份证号, 居住证号 or 永居证号, of the
        # same kind or not (a 居住证 is held by those without a 身份证): two people, not one, as
        # the REST check (_check_numbers_agree) says too.
        theirs = sorted(k for k in match_keys(archive) if is_document(k))
        ours = sorted(k for k in keys if is_document(k))
        if theirs and ours and not set(theirs) & set(ours):
            raise DocumentMismatch(_key_value(matched), person_id, _key_value(theirs[0]), _key_value(ours[0]))
        if older(as_of, self.updated_at(tx, person_id)):
            updates, states = False, ()
        repeating = self.repeating(archive, patient)
        disagreements = [] if updates else conflicts(person_id, archive, patient, repeating)
        incoming = {k: v for k, v in patient.items() if k != "id"}
        merged = merge({**archive, "id": person_id}, incoming, repeating, mark, states)
        if updates:
            merged = updated(merged, incoming, repeating)
        return merged, disagreements + _merged_away(tx, person_id, patient)

    @staticmethod
    def updated_at(tx: Transaction, person_id: str) -> str | None:
        """The time the last update the person took speaks for (an A08's event time), kept
        beside them as a keyed resource's is (gateway/ingest/keyed.py)."""
        return tx.keyed.as_of("Patient", person_id)[1]

    @classmethod
    def took_update(cls, tx: Transaction, person_id: str, as_of: str | None) -> None:
        """Note that the person took an update speaking for ``as_of``, unless they hold a newer."""
        if as_of is not None and not older(as_of, cls.updated_at(tx, person_id)):
            tx.keyed.put("Patient", person_id, as_of)

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
