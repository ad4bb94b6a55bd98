"""Operations: ``$validate``, ``Patient/$everything``, ``Composition/$document`` and ``$ingest``
(legacy files over HTTP)."""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from conformance.issues import Issue, operation_outcome
from conformance.profile_compiler import CORE_PREFIX
from gateway.fhir.archive_references import Lookup
from gateway.fhir.errors import FhirError
from gateway.fhir.literal_references import BATCH, LITERAL, current_targets, literal_references
from gateway.fhir.paging import page_links
from gateway.fhir.parameters import unsupported_value
from gateway.fhir.repository import Repository, check_body_id, named_id
from gateway.ingest.pipeline import Counts, Ingest, Outcome
from gateway.messages import issue
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.security.access import Access
from gateway.storage.resources import Referrers
from gateway.storage.store import Stored, Transaction
from mappings.engine import MappingEngine
from mappings.readers import READERS, REFUSED, SNIFFED, Limits, ReaderError, read
from mappings.readers.xlsx_export import SKIPPED_SHEETS
from mappings.records import Message
from mappings.specs import SOURCES
from profiles.registry import Registry, r4_base_types


def validate(
    repository: Repository,
    resource: Any,
    profiles: Sequence[str],
    lang: str,
    kind: str | None = None,
    resource_id: str | None = None,
    mode: str | None = None,
    scope_refusal: Callable[[str], FhirError | None] = lambda permission: None,
    stored: bool = False,
) -> dict[str, Any]:
    """``$validate``: the OperationOutcome of every issue; the store is not changed.  On an
    instance (``resource_id``) the body may not name another id, and as an update (``mode``
    update or none) must name this one, as the PUT it foretells must.  In create and update
    modes a body without errors is then written in rehearsal (:meth:`Repository.rehearse`),
    and what the write would be refused for is an error of the outcome (an instance the
    client may not see is a 404, as a read answers).  ``scope_refusal``: the 403 a write
    needing a permission (``c``, ``u``) on the type would get for the client's scopes, or
    None; one that would get it is not rehearsed, and told so.  ``stored``: the resource is
    the instance as stored (a GET), judged as it stands: no write is foretold unless ``mode``
    names one.  The archive's records its references name are read as :func:`_resolver`
    says."""
    if not isinstance(resource, dict) or "resourceType" not in resource:
        raise FhirError(400, "http.not-a-resource")
    if kind and resource["resourceType"] != kind:
        raise FhirError(400, "http.wrong-type", "resourceType", found=resource["resourceType"], expected=kind)
    if resource_id and mode in (None, "update"):
        check_body_id(resource, resource_id, f"{kind}.id")
    elif resource_id and named_id(resource, f"{kind}.id") not in (None, resource_id):
        raise FhirError(400, "http.id-mismatch", f"{kind}.id", body=resource["id"], url=resource_id)
    registry = repository.validator.registry
    for url in profiles:  # "if the server cannot validate against the nominated profile, it SHALL return an error"
        if not _known_profile(registry, url):
            raise FhirError(400, "http.unknown-profile", "profile", url=url)
    # a type's core definition is the base model every resource is held to already: named, it
    # was looked for among the profiles and warned of as unknown
    held = [url for url in profiles if registry.get(url) is not None]
    resolve = _resolver(repository, resource_id, mode, scope_refusal)
    issues = repository.validate(resource, held, elsewhere=resolve)
    # ... but the core definition of a type it is not (nor derives from, as a Patient does
    # from DomainResource) is one the resource cannot meet: passed over, a Patient
    # "validated" against Observation came back without an error
    actual = resource["resourceType"]
    for url in profiles:
        core = _core_type(url)
        if core is not None and core not in _ancestry(actual):
            issues.append(
                Issue("error", "profile.wrong-type", actual, {"url": url, "expected": core, "actual": actual})
            )
    answer = operation_outcome(issues, lang)
    judged_as_stored = stored and mode is None
    if judged_as_stored:
        refused = None
    elif _validation_refuses(repository, resource, issues, bool(profiles), resolve):
        refused = None
    else:
        refused = _rehearsed(repository, resource, resource_id, mode, scope_refusal)
    if refused is not None:
        if refused.status == 404:
            raise refused
        answer["issue"] = [*(found.to_fhir(lang) for found in issues), *refused.outcome(lang)["issue"]]
    return answer


def _resolver(
    repository: Repository,
    resource_id: str | None,
    mode: str | None,
    scope_refusal: Callable[[str], FhirError | None],
) -> Lookup:
    """The archive's records the verdict reads.  A client that may make the write
    ``$validate`` foretells (a create on a type, an update on an instance or in update mode)
    is judged as that write would be: the rules keeping the archive free of contradictions
    read the Patient a reading names and tell a client without ``Patient.r`` that the reading
    is dated before the birth, without the birth date (``rule.before-birth-unseen``); read
    only as far as its scopes read, the Patient was one the archive lacked, and a reading the
    write refuses passed.  Another client is told nothing of a record it may not read (on a
    type ``$validate`` needs no scope): the write it may not make would be refused 403
    whatever it held (docs/security.md)."""
    updates = mode == "update" or (resource_id is not None and mode != "create")
    whole = repository.references.including({})
    return whole if scope_refusal("u" if updates else "c") is None else whole.readable()


def _validation_refuses(
    repository: Repository, resource: dict[str, Any], issues: list[Issue], asked: bool, resolve: Lookup | None
) -> bool:
    """Whether the write ``$validate`` foretells would be refused for its validation, and so
    is not rehearsed (its checks are made for a resource that gets past validation): only
    under ``reject`` (``warn`` stores a resource with errors, and its write could still be
    refused, 409), and only for errors of the write's own validation.  A profile the client
    ``asked`` for is no part of the write's, so with one the resource is judged again
    without it: its errors alone skipped the rehearsal of a write that would be made."""
    if repository.config.validation != "reject" or not any(found.is_error for found in issues):
        return False
    if not asked:
        return True
    return any(found.is_error for found in repository.validate(resource, elsewhere=resolve, noted=False))


def _rehearsed(
    repository: Repository,
    resource: dict[str, Any],
    resource_id: str | None,
    mode: str | None,
    scope_refusal: Callable[[str], FhirError | None],
) -> FhirError | None:
    """The refusal of the write ``mode`` foretells, once validation lets it be made
    (:func:`_validation_refuses`): a create in create mode, an update of the instance (or of
    the body's id) in update mode or, on an instance, none."""
    if mode == "create":
        return scope_refusal("c") or repository.rehearse(resource)
    updated = resource_id or (named_id(resource, f"{resource['resourceType']}.id") if mode == "update" else None)
    if updated is not None and mode in (None, "update"):
        return scope_refusal("u") or repository.rehearse(resource, updated)
    return None


def _ancestry(kind: str) -> set[str]:
    """The base model's type and every type it derives from (Patient, DomainResource,
    Resource)."""
    types = r4_base_types()
    found: set[str] = set()
    while kind in types and kind not in found:
        found.add(kind)
        kind = types[kind].get("base", "")
    return found


def _core_type(url: str) -> str | None:
    """The type of the R4 base model a core URL (``…/StructureDefinition/Patient|4.0.1``)
    defines; None for any other URL."""
    bare = url.partition("|")[0]
    core = bare.removeprefix(CORE_PREFIX)
    return core if core != bare and core in r4_base_types() else None


def _known_profile(registry: Registry, url: str) -> bool:
    """A profile the registry holds, or a type of the R4 base model by its core URL — at the
    version the canonical names when it names one (``url|version``): the registry answers a
    versioned URL it does not hold with the version it does, and the resource was judged
    against a profile the client had not nominated."""
    bare, _, version = url.partition("|")
    if _core_type(url) is not None:
        return version in ("", R4_VERSION)
    found = registry.get(url)
    if found is None:
        return False
    # the core constraint profiles (bp, vitalsigns …) are R4's own, shipped without a version
    held = found.get("version") or (R4_VERSION if bare.startswith(CORE_PREFIX) else None)
    return version in ("", held)


#: the version of the base model's definitions (their canonical ``…/Patient|4.0.1``)
R4_VERSION = "4.0.1"


def validate_delete(repository: Repository, kind: str, resource_id: str, lang: str) -> dict[str, Any]:
    """``$validate`` in delete mode: whether deleting the instance would be accepted.  A
    refusal the client could act on (403, 405) is the outcome's error; an instance it may not
    see is a 404, as a read answers."""
    try:
        repository.check_deletable(kind, resource_id)
    except FhirError as refusal:
        if refusal.status == 404:
            raise
        return refusal.outcome(lang)
    return {"resourceType": "OperationOutcome", "issue": [issue("information", "http.ok", lang)]}


@dataclass(frozen=True)
class Page:
    """One page of a ``$everything``: ``count`` members from ``offset`` or, when ``after`` (a
    member's type and id, from ``_after``) is given, the ``count`` members past it, ``offset``
    then saying where the page stands for its other links; ``pairs`` are the request's
    parameters, repeated by the paging links."""

    count: int
    offset: int
    pairs: list[tuple[str, str]]
    after: tuple[str, str] | None = None


def page_cursor(text: str | None) -> tuple[str, str] | None:
    """``_after`` as the type and id of the member a page starts past (400 when it is no
    ``Type/id``, which is how the ``next`` links write it)."""
    if text is None:
        return None
    if not LITERAL.fullmatch(text):
        raise FhirError(400, "http.not-a-page-cursor", "_after", name="_after", value=text, example="Observation/bp-1")
    kind, _, resource_id = text.partition("/")
    return kind, resource_id


def everything(
    repository: Repository,
    compartment: dict[str, list[str]],
    patient_id: str,
    since: str | None,
    types: set[str],
    base_url: str,
    page: Page | None = None,
    pairs: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """``Patient/$everything``: the Patient and every resource of its compartment, as a
    searchset Bundle (``_since`` and ``_type`` narrow it), then the resources those refer to
    that support them (the organisation of an Encounter, the practitioner of a contract …),
    marked ``include``, as the operation's definition asks, and so are the records its records
    place among the person's (:func:`_placed`: a Provenance of her reading alone, which her
    Patient export holds).  Each only if the principal may see
    it: a member may name someone else too (an Observation performed by the resident about a
    stranger, another Patient linking to the resident).  With a ``page``, one page of the
    members (the Patient first, then by type and id) and what they refer to, with links;
    without one, the whole answer with its ``self`` link repeating the request's ``pairs`` (R4
    search.html: a searchset says in ``self`` which parameters it was answered by)."""
    asked = {kind: params for kind, params in compartment.items() if not types or kind in types}
    access = repository.access()  # one for the request: whether the Patient is served is asked once
    with repository.store.reading() as tx:
        patient = repository.read_in(tx, "Patient", patient_id, access=access)
        include_patient = (not types or "Patient" in types) and (since is None or patient.last_updated > since)
        # a record naming the person by number alone (their 身份证号) is theirs as one by id
        members = _visible(tx, access, Referrers("Patient", patient_id, asked, since, identified=IDENTIFIED_PEOPLE))
        matches, total, more = _matches(tx, members, [patient] if include_patient else [], page)
        # paged, each page brings what its own members refer to (the Patient's with the Patient)
        referring = matches if page else [patient, *matches]
        shown = {stored.reference for stored in matches} | {patient.reference}
        placed = _placed(tx, access, members, types, matches, shown)
        shown |= {stored.reference for stored in placed}
        supporting = placed + _supporting(tx, access, members, types, [*referring, *placed], shown)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total}
    address = f"{base_url}/{patient.reference}/$everything"
    if page is not None:
        # the next page starts past this one's last member, not at an offset a deletion shifts
        last = next((stored.reference for stored in reversed(matches) if stored is not patient), None)
        bundle["link"] = page_links(
            address, page.pairs, page.count, page.offset, more=more, total=total, cursor=("_after", last)
        )
    else:
        query = urlencode(list(pairs))
        bundle["link"] = [{"relation": "self", "url": f"{address}?{query}" if query else address}]
    entries = [
        {"fullUrl": f"{base_url}/{stored.reference}", "resource": stored.resource, "search": {"mode": mode}}
        for found, mode in ((matches, "match"), (supporting, "include"))
        for stored in found
    ]
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return bundle


def _visible(tx: Transaction, access: Access, members: Referrers) -> Referrers:
    """The members the principal may see.  One naming no one but the Patient follows the
    Patient, whom it may see (or there would be no answer); only one naming someone else too
    (an Observation about the resident performed by a stranger, another Patient linking to
    the resident), or naming another record where a type of ``PersonalData.through`` is
    judged by the records it names, may be hidden from a restricted principal.  Those few are
    judged by their content, the rest are never read: a page reads its own members alone."""
    if not access.restricted:
        return members
    doubtful = tx.resources.referrers(replace(members, naming_others=True, through=access.personal.through))
    if not doubtful:  # whom the principal serves need not even be read
        return members
    seen = {stored.reference for stored in access.among_served(tx, doubtful)}
    hidden = frozenset((stored.type, stored.id) for stored in doubtful if stored.reference not in seen)
    return replace(members, hidden=hidden)


def _matches(
    tx: Transaction, members: Referrers, lead: list[Stored], page: Page | None
) -> tuple[list[Stored], int, bool]:
    """The matches of the answer or of its ``page`` — ``lead`` (the Patient, when it is one)
    first, then the members by type and id —, how many there are in all and whether more
    follow the page.  A page reads its own members alone: an elder's years of follow-ups were
    read whole for every page, so paging through them cost their number squared.  The total
    is counted by key, unless the page holds the last members and so tells it.  A page past a
    member (``after``) reads one member more to tell whether another page follows: its offset
    is where it would stand had nothing been deleted, too far on to judge by the total."""
    if page is None:
        every = lead + tx.resources.referrers(members)
        return every, len(every), False
    if page.after is not None:
        found = tx.resources.referrers(members, page.count + 1, after=page.after) if page.count else []
        return found[: page.count], len(lead) + tx.resources.count_referrers(members), len(found) > page.count
    skip = max(page.offset - len(lead), 0)
    take = max(page.offset + page.count - len(lead) - skip, 0)
    found = tx.resources.referrers(members, take, skip) if take else []
    if take and len(found) < take and (found or skip == 0):
        counted = skip + len(found)
    else:
        counted = tx.resources.count_referrers(members)
    total = len(lead) + counted
    return (
        lead[page.offset : page.offset + page.count] + found,
        total,
        0 < page.count and page.offset + page.count < total,
    )


def _placed(
    tx: Transaction, access: Access, members: Referrers, types: set[str], matches: list[Stored], shown: set[str]
) -> list[Stored]:
    """The records ``matches`` (the person's records) place among hers through the parameters
    of ``PersonalData.placing`` (data, ``naming_records.json``): the Provenances of her
    records naming no Patient, as a REST client writes one, which her Patient export holds
    (the Bulk Data IG has it hold the Provenances of the records it holds) and which were
    missing here, as they are in no one's compartment.  Each once, current, changed after
    ``_since``, of a type asked for, visible to the principal (judged by every record it
    names) and neither ``shown`` nor a member another page lists (one naming her is one).
    Found from the index rows naming the matches, as ``_revinclude`` finds them: a page brings
    those of its own members, so a Provenance of records on two pages comes with both."""
    keys: dict[tuple[str, str], None] = {}
    for kind, params in access.personal.placing.items():
        if types and kind not in types:
            continue
        records = [(stored.type, stored.id) for stored in matches if stored.type not in ("Patient", kind)]
        for start in range(0, len(records), BATCH):
            keys.update(dict.fromkeys(tx.resources.referring_to(kind, params, records[start : start + BATCH])))
    wanted = [key for key in keys if f"{key[0]}/{key[1]}" not in shown]
    if not wanted:
        return []
    found = {
        key: stored
        for key, stored in tx.resources.read_many(wanted).items()
        if not stored.deleted and (members.since is None or stored.last_updated > members.since)
    }
    elsewhere = tx.resources.referrers_among(members, list(found)) if found else set()
    return list(access.among_served(tx, [stored for key, stored in found.items() if key not in elsewhere]))


def _supporting(
    tx: Transaction, access: Access, members: Referrers, types: set[str], referring: list[Stored], shown: set[str]
) -> list[Stored]:
    """What ``referring`` refers to, each once, in order: current, changed after ``_since``,
    of a type asked for and visible to the principal; never a member — one ``shown`` (the
    Patient, the page's matches) or one another page lists."""
    wanted = dict.fromkeys(
        reference
        for stored in referring
        for reference in literal_references(stored.resource)
        if reference not in shown and (not types or reference.partition("/")[0] in types)
    )
    keys = [(kind, resource_id) for kind, _, resource_id in (reference.partition("/") for reference in wanted)]
    elsewhere = tx.resources.referrers_among(members, keys)
    return list(current_targets(tx, access, [key for key in keys if key not in elsewhere], members.since))


def document(
    repository: Repository, composition_id: str, base_url: str, may_include: Callable[[Stored], bool], now: str
) -> dict[str, Any]:
    """``Composition/$document``: the Composition and every resource it references (subject,
    authors, custodian, encounter, section entries …), and what those reference in turn (an
    Observation's performer, an organisation's parent), as one document Bundle — the 健康档案
    or 出院小结 a platform pulls as one thing, whose every reference resolves inside it.  A
    document is whole or not given: a reference that cannot be included (absent, or not for
    this principal) refuses it, naming the reference.  Its identifier names this document: the
    versions it holds, so a document made again after any of them changed is another one."""
    composition = repository.read("Composition", composition_id)
    entries = [composition]
    seen = {composition.reference}
    waiting = deque(literal_references(composition.resource))
    while waiting:
        reference = waiting.popleft()
        if reference in seen:
            continue
        seen.add(reference)
        kind, _, resource_id = reference.partition("/")
        try:
            found = repository.read(kind, resource_id)
        except FhirError:
            found = None
        if found is None or not may_include(found):
            raise FhirError(422, "http.document-incomplete", reference=reference, composition=composition.reference)
        entries.append(found)
        waiting.extend(literal_references(found.resource))
    versions = " ".join(f"{stored.reference}/_history/{stored.version}" for stored in entries)
    return {
        "resourceType": "Bundle",
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{base_url} {versions}')}",
        },
        "type": "document",
        "timestamp": now,
        "entry": [{"fullUrl": f"{base_url}/{stored.reference}", "resource": stored.resource} for stored in entries],
    }


#: the longest file name, in bytes, that common file systems hold (NAME_MAX of ext4, XFS, tmpfs)
NAME_BYTES = 255


def ingest(
    pipeline: Ingest,
    source: str,
    body: bytes,
    suffix: str,
    filename: str,
    lang: str,
    limits: Limits,
    stopping: threading.Event,
    charset: str | None = None,
) -> dict[str, Any]:
    """``$ingest``: a legacy export posted as the body runs through the adapters into the store.
    ``charset``: the one the request's Content-Type declares, which an HL7 v2 message declaring
    none in MSH-18 is read in (:func:`~mappings.readers.read`).

    The answer is a Parameters resource: the reconciling counts, then one ``record`` part per
    record (where it sits; mapped, partial, unchanged or quarantined; the resources it wrote;
    the reasons it or its independent parts were quarantined, each with its FHIRPath and
    legacy field).  What landed is ``pipeline.landed`` (``Type/id``, once each), which the
    request's AuditEvent names as an MLLP message's does: read by the caller whatever this
    raises, since the batches committed before a store failure stay written.

    Once ``stopping`` is set (the server is stopping) no further record is read: the records
    processed are committed and the answer is a 503 ``http.ingest-stopped`` with their counts,
    so the request ends, and is recorded, before the worker is killed (posted again, the
    file's records that landed are found unchanged).  A load that grew the archive much
    refreshes the planner's statistics, as ``yiyang ingest`` does (``Store.analyze_after``)."""
    if source not in SOURCES:
        raise unsupported_value("source", source, SOURCES)
    name = _upload_name(filename, suffix)
    if not body.strip():  # an upload of nothing is the client's error, whatever its type
        raise FhirError(400, "http.ingest-unreadable", source=source, reason=Message("reader.empty", {"file": name}))
    if suffix in REFUSED:  # a format refused on purpose (.xls): said why, and what to send instead
        raise FhirError(415, "http.ingest-refused-format", reason=Message(REFUSED[suffix], {"file": name}))
    if suffix not in READERS:
        raise FhirError(415, "http.ingest-unsupported-media-type", type=suffix, suffixes=", ".join(READERS))
    records: list[dict[str, Any]] = []
    refused: Message | None = None  # one file: read() fails it once at most
    cut = False  # the server stopping ended the run before the file's end
    with tempfile.TemporaryDirectory(prefix="yiyang-ingest-") as folder:
        path = Path(folder) / name
        path.write_bytes(body)
        try:
            for record in read(path, source, limits, charset):
                if stopping.is_set():
                    cut = True
                    break
                outcome = pipeline.process(record)
                records.append(_record_part(outcome, lang))
        except ReaderError as exc:
            refused = exc.message
        finally:
            counts = pipeline.finish()
    pipeline.store.analyze_after(counts.resources.total())  # as ``yiyang ingest`` does
    if cut:
        raise FhirError(
            503, "http.ingest-stopped", read=counts.read, mapped=counts.mapped, quarantined=counts.quarantined
        )
    if refused is not None and not records:  # nothing was read: the request failed, not its records
        raise FhirError(400, "http.ingest-unreadable", source=source, reason=refused)
    return _ingest_answer(counts, refused, records, lang)


def _upload_name(filename: str, suffix: str) -> str:
    """The name the posted body is read under: the client's file name, without any folder, with
    the suffix of its media type when the name has none a reader takes."""
    name = Path(filename).name
    name = name if name not in ("", ".", "..") else f"upload{suffix}"
    named = READERS.keys() - {SNIFFED}  # the suffixes that say a file's format
    if suffix in named and Path(name).suffix.lower() not in named:
        # the media type says what the body is and the reader goes by the name's suffix: a CSV
        # sent as text/csv named 个人基本信息表 or 导出.txt was refused as a file of no format.
        # A name with a suffix a reader takes keeps it (an .ndjson sent as application/json);
        # .txt names no format, so the media type's suffix is appended to it too
        name += suffix
    if len(os.fsencode(name)) > NAME_BYTES:
        # the body is read from a file of this name (the records' provenance names it), which
        # no file system takes: it was a 500 when the write failed, not the client's error
        raise FhirError(400, "http.ingest-filename-too-long", "filename", size=len(os.fsencode(name)), limit=NAME_BYTES)
    return name


def _ingest_answer(
    counts: Counts, refused: Message | None, records: list[list[dict[str, Any]]], lang: str
) -> dict[str, Any]:
    """The Parameters an ``$ingest`` answers: the reconciling counts, what the file could not
    give (a reader's refusal after some records, columns no rule read, lines skipped), then
    the records."""
    parameters: list[dict[str, Any]] = [
        {"name": "read", "valueInteger": counts.read},
        {"name": "mapped", "valueInteger": counts.mapped},
        {"name": "quarantined", "valueInteger": counts.quarantined},
        {"name": "unchanged", "valueInteger": counts.unchanged},
        {"name": "partial", "valueInteger": counts.partial},
        {"name": "resolved", "valueInteger": counts.resolved},
        {"name": "reconciled", "valueBoolean": counts.reconciled},
    ]
    if refused is not None:
        parameters.append({"name": "fileError", "valueString": refused.text(lang)})
    parameters += [
        {
            "name": "unreadColumn",
            "part": [{"name": "file", "valueString": file}, {"name": "column", "valueString": column}],
        }
        for file, columns in counts.unread.items()
        for column in columns
    ]
    parameters += [
        {
            "name": "skippedSheet" if line.id in SKIPPED_SHEETS else "skippedLine",
            "part": [
                {"name": "file", "valueString": file},
                {"name": "sheet" if line.id in SKIPPED_SHEETS else "line", "valueString": line.text(lang)},
            ],
        }
        for file, lines in counts.skipped.items()
        for line in lines
    ]
    parameters += [{"name": "record", "part": part} for part in records]
    return {"resourceType": "Parameters", "parameter": parameters}


def _record_part(outcome: Outcome, lang: str) -> list[dict[str, Any]]:
    record = outcome.record
    part: list[dict[str, Any]] = [
        {"name": "file", "valueString": record.file},
        {"name": "location", "valueString": record.location},
        {"name": "status", "valueCode": outcome.status},
    ]
    part += [{"name": "resource", "valueReference": {"reference": f"{k}/{i}"}} for k, i in outcome.written]
    told = [("error", reason) for reason in outcome.reasons or outcome.parts]
    told += [("warning", reason) for reason in outcome.omitted]
    if told:
        issues = []
        for severity, reason in told:
            found = issue(severity, reason.message_id, lang, None, reason.expression)
            found["details"]["text"] = reason.text[lang]
            if reason.field:
                found["location"] = [reason.field]
            issues.append(found)
        part.append({"name": "outcome", "resource": {"resourceType": "OperationOutcome", "issue": issues}})
    return part


def build_pipeline(repository: Repository, engine: MappingEngine) -> Ingest:
    return Ingest(repository.store, repository.validator, engine)
