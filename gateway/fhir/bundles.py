"""Transaction and batch Bundles.

A transaction is all or nothing: ids are assigned to its creates, ``urn:uuid`` full URLs and
conditional references (``Patient?identifier=…``) are rewritten to the resources they name,
every resource is validated (all issues of all entries are reported together, each located at
``Bundle.entry[i].resource…``), and the entries are applied in FHIR's order — DELETE, POST,
PUT, PATCH, GET — in one store transaction, the conditions resolved after the deletes.  A
batch applies each entry on its own and answers each with its own status: an entry that cannot
be read fails alone.  Written entries are answered as the client prefers (``Prefer: return=``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any
from urllib.parse import unquote

from conformance.issues import Issue
from conformance.stored_references import References
from conformance.structure import BaseModel
from gateway import exchanges
from gateway.fhir.archive_references import condition_criteria, local_reference, localise, localise_references
from gateway.fhir.bundle_links import links_of, relink, restful_identity
from gateway.fhir.capability import Capabilities, capabilities_entry
from gateway.fhir.errors import FhirError, store_failure
from gateway.fhir.history import history_bundle, history_request
from gateway.fhir.identity_index import carried_keys, identifier_of, release_dropped_numbers
from gateway.fhir.json_patch import patched_resource
from gateway.fhir.parameters import if_match_versions, instant, query_pairs, refuse_unsupported_parameters
from gateway.fhir.repository import (
    DELETE_ROUND,
    READ_ONLY,
    Repository,
    Shared,
    Written,
    check_body_id,
    check_meta,
    check_no_merge_link,
    condition_lock,
    named_id,
    new_id,
)
from gateway.fhir.search import READ_HONOURED, Searcher, read_controls, searchset, shaped_read
from gateway.ingest.organizations import lock_identifiers as lock_organization_identifiers
from gateway.interactions import BY_METHOD
from gateway.match_keys import is_document, match_keys
from gateway.messages import Worded
from gateway.search.query import LIMITS
from gateway.search.values import natural_number
from gateway.storage.ingest_tables import IdentityKeys
from gateway.storage.store import Expected, IndexRow, Stored, StoreError, Transaction
from gateway.wire import WireError, parse_json

#: the path of the capabilities interaction (R4 http.html#capabilities), in an entry's URL too
CAPABILITIES = "metadata"
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 3, "GET": 4, "HEAD": 4}
#: R4's HTTPVerb codes (Bundle.entry.request.method), which a refusal lists as the registry holds them
HTTP_VERB_VALUESET = "http://hl7.org/fhir/ValueSet/http-verb"
_CONDITIONAL_REFERENCE = re.compile(r"[A-Z][A-Za-z]+\?.+")
STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}
#: ids asked about in one ``_id`` value: each of at most 64 characters and a comma, within
#: what one search value may hold
ID_BATCH = LIMITS["characters"] // 65
#: (method, type, id, criteria) → None, or a FhirError (403) when the caller may not do that
Authorize = Callable[[str, str, str | None, str | None], None]


class _Provisional(Exception):
    """Ends the provisional write that lets conditional references see the Bundle's resources."""


@dataclass(frozen=True)
class Reply:
    """How the entries are answered: the language of their outcomes, and what a written
    entry carries (``Prefer: return=``) — its resource (representation, the default), the
    OperationOutcome of its validation, or neither (minimal), as a single write would."""

    lang: str = "zh-CN"
    prefer: str = "representation"
    #: ``Prefer: handling`` as the client sent it (strict, lenient), or "" for each entry's
    #: default, as its own request would have: a search entry refuses a parameter it does
    #: not know and a read entry ignores one (docs/api.md, Conventions)
    handling: str = ""


@dataclass
class Entry:
    """One Bundle entry, parsed: what to do, to which resource, and where it sits."""

    index: int
    method: str
    kind: str
    resource_id: str | None
    criteria: str | None
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: Expected | None
    issues: list[Issue] = field(default_factory=list)
    #: search index rows made before the write transaction (None: made while writing)
    rows: list[IndexRow] | None = None
    #: the version a GET entry reads (``Type/id/_history/vid``)
    version: int | None = None
    #: a GET of the history of a type or an instance (``Type/_history``, ``Type/id/_history``)
    history: bool = False
    #: a conditional update that matched nothing and names its id: the id must be free
    free_id: bool = False
    #: a conditional update that matched nothing and named no id: the server chose it
    minted: bool = False
    #: a GET entry's conditional read (``request.ifNoneMatch``, ``request.ifModifiedSince``)
    if_none_match: str | None = None
    if_modified_since: str | None = None
    #: what a DELETE entry deleted, checked for references once the Bundle's deletes are done
    gone: list[Stored] = field(default_factory=list)
    #: what a PUT or PATCH entry wrote, its Patient's moved birth date judged once the Bundle's
    #: writes are done
    written: Written | None = None
    #: the links to the transaction's entries, as this entry reads them (:func:`links_of`)
    links: Mapping[str, str] = field(default_factory=dict)

    @property
    def capabilities(self) -> bool:
        """A ``GET metadata`` (or HEAD): the server's CapabilityStatement, no resource type's."""
        return self.kind == CAPABILITIES

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @cached_property
    def references(self) -> References:
        """The references of the entry's resource, found in one walk that every rule reading
        them shares (authorising, planning, locking, resolving, validating, holding the people
        named): each of the five walks they made cost about 80 µs a 10-entry transaction."""
        return References(self.resource, f"{self.path}.resource")

    @cached_property
    def refers_conditionally(self) -> bool:
        """Whether the resource as the client sent it holds a conditional reference
        (``Patient?identifier=…``): authorising, planning and locking each ask."""
        return any(_CONDITIONAL_REFERENCE.fullmatch(node["reference"]) for node in self.references.every)

    @property
    def conditional_references(self) -> list[dict[str, Any]]:
        """The objects of the resource whose ``reference`` is a search; none once the resource
        is dropped (a conditional create that found its match reads it instead)."""
        if self.resource is None or not self.refers_conditionally:
            return []
        return [node for node in self.references.every if _CONDITIONAL_REFERENCE.fullmatch(node["reference"])]

    def identified(self, resource_id: str) -> None:
        """The entry's resource now has ``resource_id`` (a copy: the client's object keeps
        what it sent), its references still those found."""
        self.resource_id = resource_id
        if self.resource is not None:
            copy = {**self.resource, "id": resource_id}
            self.references = self.references.of_copy(copy)
            self.resource = copy


class Bundles:
    def __init__(
        self,
        repository: Repository,
        searcher: Searcher,
        base_url: str,
        stopping: threading.Event,
        capabilities: Capabilities,
    ) -> None:
        """``stopping``: set when the server is told to stop (``Services.stopping``);
        ``capabilities``: the statement a ``GET metadata`` entry reads."""
        self.repository = repository
        self.capabilities = capabilities
        self.stopping = stopping
        self.searcher = searcher
        self.base_url = base_url
        self.http_verbs = ", ".join(
            code for _, code in repository.validator.registry.base_valuesets[HTTP_VERB_VALUESET] or ()
        )

    def process(
        self,
        bundle: Any,
        authorize: Authorize | None = None,
        lang: str = "zh-CN",
        prefer: str = "representation",
        handling: str = "",
    ) -> dict[str, Any]:
        """Apply a transaction or batch.  ``authorize`` is asked for each entry as its own
        interaction would be (the caller's scopes): a transaction fails whole on the first
        refused or unreadable entry, a batch answers that entry with the refusal, worded in
        ``lang``, and goes on.  ``prefer``: what written entries carry, ``handling``: what becomes
        of a parameter a read or search entry does not know (:class:`Reply`)."""
        kind, raw_entries = _readable(bundle)
        _check_entry_count(raw_entries, self.repository.config.bundle_entries)
        reply = Reply(lang, prefer, handling)
        authorize = _asked_once(authorize)
        if kind == "batch":
            answers = [self._batch_entry(i, raw, authorize, reply) for i, raw in enumerate(raw_entries)]
            return _response("batch-response", answers)
        try:
            entries = [self._entry(i, raw) for i, raw in enumerate(raw_entries)]
            _check_full_urls(entries, self.repository.resource_types)
            for entry in entries:
                _authorize(authorize, entry)
            return _response("transaction-response", self._transaction(entries, reply))
        except FhirError as error:
            raise _transaction_refusal(error) from None

    # -- parsing ---------------------------------------------------------------------------
    def _entry(self, index: int, raw: Any) -> Entry:
        where = f"Bundle.entry[{index}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
            raise FhirError(400, "http.bad-bundle", where, detail=Worded("bundle.entry-needs-request"))
        request = raw["request"]
        for name in ("method", "url"):  # str() of a list or a number made a URL no one wrote
            if not isinstance(request.get(name, ""), str):
                detail = Worded("bundle.not-a-string", name=f"request.{name}")
                raise FhirError(400, "http.bad-bundle", f"{where}.request.{name}", detail=detail)
        method = request.get("method", "")
        url = request.get("url", "").removeprefix(self.base_url + "/").lstrip("/")
        if "\x00" in unquote(url.partition("?")[0]):  # an id with a NUL (criteria: Searcher.parse)
            raise FhirError(400, "http.nul-character", f"{where}.request.url", where=where)
        if not method or not url:
            raise FhirError(400, "http.bad-bundle", f"{where}.request", detail=Worded("bundle.method-and-url"))
        if method not in ORDER:
            # R4's HTTPVerb codes are case-sensitive, as every code is: "get" was upper-cased
            # and served, where another server refuses the Bundle the client thinks portable
            detail = Worded("bundle.unknown-method", method=method, methods=self.http_verbs)
            raise FhirError(400, "http.bad-bundle", f"{where}.request.method", detail=detail)
        path, _, criteria = url.partition("?")
        kind, resource_id, history, version = _target(path)
        # a HEAD reads as its GET; version 0 names a version too (none is): read as no version,
        # a DELETE of Basic/x/_history/0 deleted Basic/x
        if kind is None or ((history or version is not None) and method not in ("GET", "HEAD")):
            detail = Worded("bundle.bad-target", method=method, url=url)
            raise FhirError(400, "http.bad-bundle", f"{where}.request.url", detail=detail)
        if kind == CAPABILITIES and not (resource_id or history):  # the capabilities interaction
            if method not in ("GET", "HEAD"):  # as /metadata refuses it
                raise FhirError(405, "http.method-not-allowed", f"{where}.request.method", method=method, path=kind)
            return Entry(index, method, kind, None, criteria or None, None, None, None, None)
        self.repository.check_type(kind, f"{where}.request.url")
        if kind in READ_ONLY and method not in ("GET", "HEAD"):  # refused for what it is, before validation
            raise FhirError(405, "http.method-not-allowed", f"{where}.request.method", method=method, path=kind)
        resource = raw.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise FhirError(
                400, "http.bad-bundle", f"{where}.resource", detail=Worded("bundle.needs-resource", method=method)
            )
        if method in ("POST", "PUT") and resource.get("resourceType") != kind:
            found = resource.get("resourceType")
            raise FhirError(400, "http.wrong-type", f"{where}.resource.resourceType", found=found, expected=kind)
        if method in ("PUT", "PATCH", "DELETE") and not (resource_id or criteria):
            raise FhirError(
                400,
                "http.bad-bundle",
                f"{where}.request.url",
                detail=Worded("bundle.needs-id-or-criteria", method=method),
            )
        if method == "POST" and resource_id:  # the id would be ignored, the resource made elsewhere
            detail = Worded("bundle.post-with-id", url=url, kind=kind)
            raise FhirError(400, "http.bad-bundle", f"{where}.request.url", detail=detail)
        if method in ("PUT", "DELETE") and resource_id:  # an update-as-create there would make it,
            self.repository.check_id(resource_id, f"{where}.request.url")  # and a delete is refused alike
        if method in ("PUT", "PATCH", "DELETE") and resource_id:
            # the id names the resource written, as the same request on its own reads it: the
            # query is no condition.  Taken as one, DELETE Basic/a?identifier=… deleted every
            # match, and PUT Basic/a?identifier=… updated the match instead of Basic/a
            criteria = ""
        full_url, if_none_exist, if_match = raw.get("fullUrl"), request.get("ifNoneExist"), request.get("ifMatch")
        if_none_match, if_modified_since = request.get("ifNoneMatch"), request.get("ifModifiedSince")
        for name, value in (
            ("fullUrl", full_url),
            ("request.ifNoneExist", if_none_exist),
            ("request.ifMatch", if_match),
            ("request.ifNoneMatch", if_none_match),
            ("request.ifModifiedSince", if_modified_since),
        ):
            if value is not None and not isinstance(value, str):
                raise FhirError(
                    400, "http.bad-bundle", f"{where}.{name}", detail=Worded("bundle.not-a-string", name=name)
                )
        if if_none_exist is not None:  # a search URL of the type created: its query part
            if_none_exist = condition_criteria(if_none_exist, kind, self.base_url, f"{where}.request.ifNoneExist")
            self.repository.need_criteria(if_none_exist, f"{where}.request.ifNoneExist")  # as the header's
        entry = Entry(
            index,
            method,
            kind,
            resource_id or None,
            criteria or None,
            resource,
            full_url,
            if_none_exist,
            if_match_versions(if_match) if if_match else None,
            version=version,
            history=history,
            if_none_match=if_none_match,
            if_modified_since=instant(request, "ifModifiedSince", f"{where}.request.ifModifiedSince"),
        )
        # references on our own base stand for the relative ones, as a request body's do
        # (``localise``), found in the walk every rule reading them shares
        localise_references(entry.references, self.base_url)
        return entry

    # -- transaction -----------------------------------------------------------------------
    def _transaction(self, entries: list[Entry], reply: Reply) -> list[dict[str, Any]]:
        """Validation is most of a transaction's work.  When nothing in the Bundle depends on
        what the store holds (no conditional create, update, patch or reference), its
        resources are final once ids are assigned, and they are validated before the write
        transaction begins: other writers (on SQLite, every other worker) are not held up
        meanwhile.  Otherwise the conditions are resolved, and the result validated, inside
        it — after the deletes, which R4 applies first, so a condition sees what the
        transaction removes (a conditional create matching a resource it deletes creates)."""
        renamed = self._assign_ids(entries)
        conditional = any(_is_conditional(entry) for entry in entries)
        if not conditional:
            _rewrite(entries, renamed, self.repository.validator.model)
            self._validate_all(entries)
            for entry in entries:
                if entry.method in ("POST", "PUT") and entry.resource is not None:
                    entry.rows = self.repository.index_rows(entry.resource, entry.references)
            # the new people's keys claimed as no one's, in the COMMIT's round trip, as a
            # single create claims them: a careful claim waited for its answer (PostgreSQL),
            # a fifth of a benchmark Bundle's time.  One held already fails that write, and
            # the Bundle, changed by nothing the write did, is written again with the careful
            # claim, which judges it (register_person).  A conditional Bundle is resolved in
            # the write, so it is written once, carefully.
            try:
                return self._write(entries, renamed, reply, conditional=False, unheld=True)
            except StoreError as error:
                if not IdentityKeys.held(error):
                    raise
        return self._write(entries, renamed, reply, conditional=conditional, unheld=False)

    def _write(
        self, entries: list[Entry], renamed: dict[str, str], reply: Reply, *, conditional: bool, unheld: bool
    ) -> list[dict[str, Any]]:
        """The write transaction of :meth:`_transaction`; ``unheld``: its new Patients' keys
        claimed as no one's (:attr:`Shared.unheld`), which only a Bundle without conditions
        asks."""
        answers: dict[int, dict[str, Any]] = {}
        with self.repository.store.transaction() as tx:
            if conditional:
                _lock_conditions(tx, entries)
            # the identifiers of the organisations written next, as every writer (identity.py)
            lock_organization_identifiers(tx, *_writing(entries, "Organization"))
            held = {*_changed(entries), *self._foreseen(tx, entries)}
            # the Patients a Bundle without conditions names are known now (a condition may yet
            # name others, or mint a Patient): held with the rest, in one order
            shared = None if conditional else Shared(_registering(entries), unheld=unheld)
            writing = [e.references for e in _writing_entries(entries)] if shared else []
            self.repository.hold(tx, sorted(held), _writing(entries, "Patient"), shared, writing)
            self._check_deletes_distinct(tx, entries)
            for entry in entries:
                if entry.method == "DELETE":
                    answers[entry.index] = self._apply(tx, entry, reply)
            if conditional:
                self._resolve_conditions(tx, entries, renamed)
                _rewrite(entries, renamed, self.repository.validator.model)
                # held already (foreseen), unless another writer made a resource match meanwhile
                self.repository.hold(tx, sorted(set(_changed(entries)) - held))
            registering = _registering(entries)
            if conditional:
                self._resolve_conditional_references(tx, entries, registering)
                self._validate_all(entries)
                # once validated: a provisional write of a malformed resource failed (a 500)
                self._check_conditions_spare_creates(tx, entries, registering)
            _check_distinct(entries)
            _check_distinct_people(tx, entries)
            people = [e.resource for e in entries if e.method == "PUT" and e.kind == "Patient" and e.resource]
            release_dropped_numbers(tx, people)
            shared = shared or Shared(registering)
            for entry in sorted(entries, key=lambda e: (ORDER[e.method], e.index)):
                if entry.index not in answers:
                    answers[entry.index] = self._apply(tx, entry, reply, shared)
            for entry in entries:  # whatever the Bundle deleted, nothing it leaves points at it
                self.repository.check_unreferenced(tx, entry.gone, entry.path)
            rewritten = {key for key in _changed(entries) if key[0] == "Patient"}
            for entry in entries:  # a birth date moved later, against the events the Bundle leaves
                self._judge_birth(tx, entry, answers[entry.index], reply, rewritten)
        return [answers[entry.index] for entry in entries]

    def _assign_ids(self, entries: list[Entry]) -> dict[str, str]:
        """New ids for creates; each entry's fullUrl → the reference it now has."""
        renamed: dict[str, str] = {}
        for entry in entries:
            if entry.method == "POST" and entry.resource is not None:
                entry.identified(new_id())
            if entry.resource_id and entry.method in ("POST", "PUT"):
                self._rename(renamed, entry)
        return renamed

    def _rename(self, renamed: dict[str, str], entry: Entry) -> None:
        """References to the entry's fullUrl now name its resource.  One on this server's own
        base was also written relative (the request body's references were: ``localise``)."""
        if not entry.full_url:
            return
        renamed[entry.full_url] = f"{entry.kind}/{entry.resource_id}"
        local = local_reference(entry.full_url, self.base_url)
        if local is not None:
            renamed[local] = f"{entry.kind}/{entry.resource_id}"

    def _resolve_conditions(self, tx: Transaction, entries: list[Entry], renamed: dict[str, str]) -> None:
        """Conditional creates that find their resource, conditional updates and conditional
        patches take the matching resource's id; references to their fullUrl follow.  Two
        entries with one condition (the same type and criteria, however spelt) would each find
        nothing and each create, or change one resource twice: R4 fails a transaction whose
        resolved identities overlap, so it is refused, naming both."""
        twice = _repeated(entries, _condition_key)
        if twice is not None:
            first, entry = twice
            condition = f"{entry.kind}?{_condition(entry)}"
            detail = Worded("bundle.same-condition", first=first.path, second=entry.path, condition=condition)
            raise FhirError(400, "http.bad-bundle", f"{entry.path}.request", detail=detail)
        for entry in entries:
            condition = _condition(entry)
            if condition is None:
                continue
            if entry.method == "PATCH":
                entry.resource_id = self._only_match_id(tx, entry, f"{entry.path}.request.url")
                continue
            asked = "ifNoneExist" if entry.method == "POST" else "url"
            where = f"{entry.path}.request.{asked}"
            found = self.repository.only_match(tx, entry.kind, condition, where)
            if entry.method == "PUT" and found is None and entry.if_match is not None:  # as a PUT alone
                raise FhirError(404, "http.conditional-no-match", where, condition=condition)
            if entry.method == "POST" and found is not None:
                entry.method, entry.resource, entry.resource_id = "GET", None, found.id
            elif entry.method == "PUT" and entry.resource is not None:
                body_id = named_id(entry.resource, f"{entry.path}.resource.id")
                if body_id:
                    self.repository.check_id(body_id, f"{entry.path}.resource.id")
                if found is not None and body_id and body_id != found.id:
                    where = f"{entry.path}.resource.id"
                    raise FhirError(400, "http.id-mismatch", where, body=body_id, url=found.id)
                entry.identified(found.id if found else body_id or new_id())
                entry.free_id = found is None and bool(body_id)
                entry.minted = found is None and not body_id
            self._rename(renamed, entry)

    def _foreseen(self, tx: Transaction, entries: list[Entry]) -> list[tuple[str, str]]:
        """The resources the transaction's conditions select before its deletes run, so they
        are held in the one order with the rest: a conditional update's or patch's match, a
        conditional delete's (up to a round of them), a conditional reference's target.
        Locked later, out of order, they let a transaction changing the same resources by id
        deadlock with this one (PostgreSQL, a 503); a reference's target left unheld could be
        deleted by another transaction before this one commits its reference to it.  Resolved
        after the deletes, a condition can only lose matches to them."""
        wanted: dict[tuple[str, str, int], None] = {}
        for entry in entries:
            condition = _condition(entry)
            if entry.method in ("PUT", "PATCH") and condition:
                wanted[(entry.kind, condition, 2)] = None
            elif entry.method == "DELETE" and entry.criteria:
                wanted[(entry.kind, entry.criteria, DELETE_ROUND)] = None
            for node in entry.conditional_references:
                kind, _, criteria = node["reference"].partition("?")
                wanted[(kind, criteria, 2)] = None
        found: list[tuple[str, str]] = []
        for kind, criteria, count in wanted:
            try:
                matches = self.searcher.matching(tx, kind, criteria, self.repository.access(), count=count)
            except FhirError:
                continue  # refused, with its location, where the condition is resolved
            found += [(kind, match.id) for match in matches]
        return found

    def _check_deletes_distinct(self, tx: Transaction, entries: list[Entry]) -> None:
        """A conditional delete may not remove what another entry changes either, once its
        criteria select: only the other entries' ids are asked about, so a delete that
        matches thousands is not listed whole."""
        changing = {(e.kind, e.resource_id): e for e in entries if e.method != "GET" and e.resource_id}
        for entry in entries:
            if entry.method != "DELETE" or not entry.criteria:
                continue
            ids = [resource_id for kind, resource_id in changing if kind == entry.kind]
            url = f"{entry.path}.request.url"  # where its criteria are written, to be mended
            for start in range(0, len(ids), ID_BATCH):
                criteria = f"{entry.criteria.lstrip('?')}&_id={','.join(ids[start : start + ID_BATCH])}"
                access = self.repository.access()
                for match in self.searcher.matching(tx, entry.kind, criteria, access, count=1, where=url):
                    other = changing[(entry.kind, match.id)]
                    reference = f"{entry.kind}/{match.id}"
                    detail = Worded("bundle.same-resource", first=other.path, second=entry.path, reference=reference)
                    raise FhirError(400, "http.bad-bundle", f"{entry.path}.request", detail=detail)

    def _resolve_conditional_references(
        self, tx: Transaction, entries: list[Entry], registering: Mapping[str, dict[str, Any]]
    ) -> None:
        """``{"reference": "Patient?identifier=…"}`` → the one Patient it selects, among the
        archive and the Bundle's own resources: those are written provisionally (and rolled
        back) so the search sees them, then the references are rewritten for real.  The
        provisional writes pass every rule the real ones do: a platform's Bundle that recorded
        a stay with someone it does not serve would otherwise have made that person served
        while its references were resolved, and the answer (0, 1 or 2 matches) told it what
        that person's records hold."""
        pending = [(entry, node) for entry in entries for node in entry.conditional_references]
        if not pending:
            return
        resolved: dict[str, str] = {}
        try:
            with tx.savepoint():  # the transaction's deletes are applied already
                for entry in entries:
                    if entry.method in ("POST", "PUT") and entry.resource is not None:
                        check_meta(entry.resource, f"{entry.path}.resource")  # not yet validated
                        check_no_merge_link(entry.resource, f"{entry.path}.resource")
                        self._apply(tx, entry, Reply(), Shared(registering))
                for entry, node in pending:
                    reference = node["reference"]
                    if reference not in resolved:
                        resolved[reference] = self._reference_target(tx, reference, entry.references.where(node))
                raise _Provisional
        except _Provisional:
            pass
        for _, node in pending:
            node["reference"] = resolved[node["reference"]]

    def _check_conditions_spare_creates(
        self, tx: Transaction, entries: list[Entry], registering: Mapping[str, dict[str, Any]]
    ) -> None:
        """R4 applies a transaction's creates before its updates: a conditional update whose
        criteria select a resource one of its creates makes would change that new resource,
        an overlap for which R4 fails the transaction (so would a conditional create selecting
        another create's resource).  Resolved before the creates, as the conditions are, it
        found nothing and made a second resource.  So when such a condition has a create of
        its type beside it, the creates are written provisionally (and rolled back), and it is
        asked again: a create among its matches refuses the Bundle (400, naming both)."""
        creates = {(e.kind, e.resource_id): e for e in entries if e.method == "POST" and e.resource is not None}
        asking = [
            entry
            for entry in entries
            if entry.method in ("PUT", "POST")
            and _condition(entry)
            and any(kind == entry.kind and other is not entry for (kind, _), other in creates.items())
        ]
        if not asking:
            return
        try:
            with tx.savepoint():
                for entry in creates.values():
                    self._apply(tx, entry, Reply(), Shared(registering))
                for entry in asking:
                    condition = _condition(entry) or ""
                    for match in self.searcher.matching(tx, entry.kind, condition, self.repository.access()):
                        first = creates.get((entry.kind, match.id))
                        if first is not None and first is not entry:
                            reference = f"{entry.kind}/{match.id}"
                            detail = Worded(
                                "bundle.same-resource", first=first.path, second=entry.path, reference=reference
                            )
                            raise FhirError(400, "http.bad-bundle", f"{entry.path}.request", detail=detail)
                raise _Provisional
        except _Provisional:
            pass

    def _reference_target(self, tx: Transaction, reference: str, where: str) -> str:
        """The one resource a conditional reference selects, refused at the reference (``where``)."""
        kind, _, criteria = reference.partition("?")
        found = self.searcher.matching(tx, kind, criteria, self.repository.access(), where=where)
        if len(found) != 1:
            raise FhirError(
                412 if found else 400,
                "http.bad-reference",
                where,
                reference=reference,
                detail=Worded("reference.match-count", count=len(found)),
            )
        return found[0].reference

    def _validate_all(self, entries: list[Entry]) -> None:
        issues: list[Issue] = []
        writing = [entry for entry in _writing_entries(entries) if entry.resource_id]
        written = {f"{entry.kind}/{entry.resource_id}": entry.resource for entry in writing}
        named = (node["reference"] for entry in writing for node in entry.references.every)
        elsewhere = self.repository.references.including(written, named)
        for entry in entries:
            if entry.resource is None or entry.method not in ("POST", "PUT"):
                continue
            if entry.method == "PUT":
                check_body_id(entry.resource, entry.resource_id or "", f"{entry.path}.resource.id")
            where = f"{entry.path}.resource"
            check_meta(entry.resource, where)
            check_no_merge_link(entry.resource, where)
            self.repository.check_reachable(entry.resource, where, elsewhere, entry.references)
            entry.issues = self.repository.validate(
                entry.resource, path=where, elsewhere=elsewhere, references=entry.references
            )
            issues.extend(entry.issues)
        errors = [issue for issue in issues if issue.is_error]
        if errors and self.repository.config.validation == "reject":
            raise FhirError(422, "http.invalid-resource", issues=issues, count=len(errors))

    def _apply(self, tx: Transaction, entry: Entry, reply: Reply, shared: Shared | None = None) -> dict[str, Any]:
        """The entry applied; a refusal is located in the Bundle (:func:`_located`): of a
        transaction's several entries, the answer names the one refused."""
        try:
            return self._applied(tx, entry, reply, shared or Shared())
        except FhirError as error:
            raise _located(error, entry) from None

    def _applied(self, tx: Transaction, entry: Entry, reply: Reply, shared: Shared) -> dict[str, Any]:
        if entry.method == "DELETE":
            if entry.criteria:
                entry.gone = self.repository.delete_matching_in(
                    tx, entry.kind, entry.criteria, entry.if_match, entry.path
                )
            elif entry.resource_id:
                gone = self.repository.delete_in(tx, entry.kind, entry.resource_id, entry.if_match)
                entry.gone = [gone] if gone else []
            if len(entry.gone) == 1:  # the deletion version's ETag, as a DELETE on its own answers
                return {"response": {"status": "204 No Content", "etag": f'W/"{entry.gone[0].version}"'}}
            return {"response": {"status": "204 No Content"}}
        if entry.method == "POST":
            entry.written = self.repository.create_in(
                tx, entry.resource or {}, entry.issues, rows=entry.rows, shared=shared
            )
            return self._written(entry.written, reply)
        if entry.method == "PUT":
            written = self.repository.update_in(
                tx,
                entry.resource or {},
                entry.issues,
                entry.if_match,
                entry.rows,
                minted=entry.minted,
                shared=shared,
                free_id=entry.free_id,
            )
            entry.written = written
            return self._written(written, reply)
        if entry.method == "PATCH":
            return self._patch(tx, entry, reply, shared)
        return self._get(tx, entry, reply)

    def _patch(self, tx: Transaction, entry: Entry, reply: Reply, shared: Shared) -> dict[str, Any]:
        """A patch by id, or by the id its condition resolved to (:meth:`_resolve_conditions`)."""
        # held until the transaction ends: a write between this read and the patch's would be lost
        where = f"{entry.path}.request.url"
        current = self.repository.read_in(tx, entry.kind, entry.resource_id or "", where, for_update=True)
        patched = patched_resource(current, _patch_operations(entry.resource), f"{entry.path}.resource")
        localise(patched, self.base_url)  # as a request body is: patched_resource leaves it
        relink(patched, entry.links, self.repository.validator.model)  # a patch may name another entry
        issues = self.repository.checked(patched, f"{entry.path}.resource")
        written = self.repository.update_in(tx, patched, issues, entry.if_match, shared=shared, method="PATCH")
        entry.written = written
        return self._written(written, reply)

    def _judge_birth(
        self, tx: Transaction, entry: Entry, answer: dict[str, Any], reply: Reply, rewritten: set[tuple[str, str]]
    ) -> None:
        """:meth:`Repository.judge_birth` for a transaction's entry: refused at the entry, or
        its warning added to the outcome its answer carries."""
        if entry.written is None or not (entry.written.birth_moved or entry.written.people):
            return
        try:
            written = self.repository.judge_birth(tx, entry.written, f"{entry.path}.resource", rewritten)
        except FhirError as error:
            raise _located(error, entry) from None
        if "outcome" in answer.get("response", {}):
            answer["response"]["outcome"] = written.outcome(reply.lang)

    def _only_match_id(self, tx: Transaction, entry: Entry, where: str) -> str:
        """The id a conditional PATCH entry's criteria select: 404 for none, 412 for several."""
        found = self.repository.only_match(tx, entry.kind, entry.criteria or "", where)
        if found is None:
            raise FhirError(404, "http.conditional-no-match", where, condition=entry.criteria)
        return found.id

    def _get(self, tx: Transaction, entry: Entry, reply: Reply) -> dict[str, Any]:
        """A GET or HEAD entry's answer.  A HEAD is answered as its GET without the body (RFC
        9110 §9.3.2): its status, ETag, Last-Modified and location, but no resource; it
        carried the searchset or the resource read, as much as the GET it was meant to spare."""
        answer = self._read(tx, entry, reply)
        if entry.method == "HEAD":
            answer.pop("resource", None)
        return answer

    def _read(self, tx: Transaction, entry: Entry, reply: Reply) -> dict[str, Any]:
        if entry.capabilities:
            pairs, where = query_pairs(entry.criteria or ""), f"{entry.path}.request.url"
            statement = capabilities_entry(self.capabilities.statement, pairs, reply.handling == "strict", where)
            return {"resource": statement, "response": {"status": "200 OK"}}
        if entry.history:
            config, params = self.repository.config, dict(query_pairs(entry.criteria or ""))
            where = f"{entry.path}.request.url"
            asked = history_request(
                entry.kind,
                entry.resource_id,
                params,
                config.page_size,
                config.max_page_size,
                where,
                lenient=reply.handling == "lenient",
            )
            bundle = history_bundle(tx, self.repository.access(), self.base_url, asked)
            return {"resource": bundle, "response": {"status": "200 OK"}}
        if entry.resource_id:
            where = f"{entry.path}.request.url"
            if entry.version is not None:
                found = self.repository.vread_in(tx, entry.kind, entry.resource_id, entry.version, where)
            else:
                found = self.repository.read_in(tx, entry.kind, entry.resource_id, where)
            if entry.if_none_exist:  # a conditional create that found its match answers as a create does
                return self._written(Written(found, 200), reply)
            response = {"status": "200 OK", "etag": f'W/"{found.version}"', "lastModified": found.last_updated}
            if _held_already(entry, found):  # a vread's too, as a vread on its own answers 304
                return {"response": {**response, "status": "304 Not Modified"}}
            pairs = query_pairs(entry.criteria or "")
            if reply.handling == "strict":
                refuse_unsupported_parameters((name for name, _ in pairs), "read", READ_HONOURED, where)
            summary, elements = read_controls(pairs, where)
            resource = shaped_read(found.resource or {}, summary, elements, where)
            return {"resource": resource, "response": response}
        pairs = query_pairs(entry.criteria or "")
        query = self.searcher.parse(entry.kind, pairs, reply.handling or "strict")
        result = self.searcher.search(tx, query, self.repository.access())
        answer = searchset(result, self.base_url, entry.kind, pairs, reply.lang)
        return {"resource": answer, "response": {"status": "200 OK"}}

    def _written(self, written: Written, reply: Reply) -> dict[str, Any]:
        stored = written.stored
        answer: dict[str, Any] = {
            "fullUrl": f"{self.base_url}/{stored.reference}",  # absolute, as R4 requires of a fullUrl
            "response": {
                "status": STATUS_TEXT[written.status],
                "location": f"{stored.reference}/_history/{stored.version}",
                "etag": f'W/"{stored.version}"',
                "lastModified": stored.last_updated,
            },
        }
        if reply.prefer == "representation":
            answer["resource"] = stored.resource
        elif reply.prefer == "OperationOutcome":
            answer["response"]["outcome"] = written.outcome(reply.lang)
        return answer

    # -- batch -----------------------------------------------------------------------------
    def _batch_entry(self, index: int, raw: Any, authorize: Authorize | None, reply: Reply) -> dict[str, Any]:
        """One entry on its own, through the same interactions as a single request; whatever
        refuses it, its reading included, is its answer alone.  So is a store that fails it
        (busy past its wait, a deadlock retried in vain): the entries before it are committed,
        and a 503 for the whole Bundle had its client send them again (R4 http.html#brules)."""
        collector = exchanges.current()
        since = collector.mark() if collector is not None else exchanges.NOTHING
        entry = None
        try:
            if self.stopping.is_set():  # the server is told to stop: see _stopped
                raise _stopped(index)
            entry = self._entry(index, raw)
            _authorize(authorize, entry)
            return self._batch_write(entry, reply)
        except FhirError as error:
            refusal = _located(error, entry) if entry is not None else error
        except StoreError as error:
            assert entry is not None  # reading an entry asks no store: its interaction failed
            target = "/".join(filter(None, (entry.kind, entry.resource_id)))  # a path alone, as a request's
            refusal = _located(store_failure(error, f"{entry.path} ({entry.method} {target})"), entry)
        finally:
            if collector is not None and entry is not None:  # judged as a request of its own
                collector.located(since, partial(_in_entry, entry=entry))
        if collector is not None:
            interaction = BY_METHOD[entry.method].code if entry is not None else None
            collector.entry_refused(since, interaction or "", refusal.status, refusal)
        return {"response": {"status": str(refusal.status), "outcome": refusal.outcome(reply.lang)}}

    def _batch_written(self, entry: Entry, written: Written, reply: Reply) -> dict[str, Any]:
        """A batch entry's write answered, the issues its outcome carries located in the Bundle
        as a transaction's are (``Bundle.entry[1].resource.text``): written as a single
        request, its warnings named the resource alone (``Basic``), which of the batch's
        several resources the client could not tell."""
        written.issues = _issues_in_entry(written.issues, entry)
        return self._written(written, reply)

    def _batch_write(self, entry: Entry, reply: Reply) -> dict[str, Any]:
        if entry.method in ("GET", "HEAD"):
            # read as the same GET on its own reads: in a write transaction, a batch's read
            # waited for SQLite's one write lock (PostgreSQL's write barrier), and answered 503
            # while another writer held it past the wait
            with self.repository.store.reading() as tx:
                return self._apply(tx, entry, reply)
        if entry.method == "POST":
            return self._batch_written(entry, self.repository.create(entry.resource or {}, entry.if_none_exist), reply)
        if entry.method == "PUT" and entry.criteria:
            written = self.repository.conditional_update(
                entry.kind, entry.criteria, entry.resource or {}, entry.if_match
            )
            return self._batch_written(entry, written, reply)
        if entry.method == "PUT":
            written = self.repository.update(entry.kind, entry.resource_id or "", entry.resource or {}, entry.if_match)
            return self._batch_written(entry, written, reply)
        if entry.method == "PATCH" and entry.criteria and not entry.resource_id:
            written = self.repository.conditional_patch(
                entry.kind, entry.criteria, _patch_operations(entry.resource), entry.if_match
            )
            return self._batch_written(entry, written, reply)
        if entry.method == "PATCH":
            written = self.repository.patch(
                entry.kind, entry.resource_id or "", _patch_operations(entry.resource), entry.if_match
            )
            return self._batch_written(entry, written, reply)

        def applied(tx: Transaction) -> dict[str, Any]:
            answer = self._apply(tx, entry, reply)
            self.repository.check_unreferenced(tx, entry.gone, entry.path)
            return answer

        return self.repository.store.atomically(applied)


def _stopped(index: int) -> FhirError:
    """The refusal of a batch entry not applied because the server is stopping: 503, to be
    sent again.  The entries before it stand committed; answering the rest at once ends the
    request, and so records it (AuditEvent, exchange), before gunicorn's master kills the
    worker ``graceful_timeout`` seconds after the signal (a transaction needs none of this: it
    rolls back whole)."""
    return FhirError(503, "http.batch-stopped", f"Bundle.entry[{index}]")


def _transaction_refusal(error: FhirError) -> FhirError:
    """What refusing one entry answers for the whole transaction: its own status, but for a
    405.  A 405 is about the request's URL, and its Allow names the methods that URL takes
    (RFC 9110 §15.5.6): the transaction's URL is the base, which takes the very POST the
    client sent, so a 405 there contradicted itself.  An entry whose method its type does not
    take (a write to the read-only audit trail) makes the Bundle a bad request (400), located
    at that entry's ``request.method``; a batch keeps the 405 in the entry's own response."""
    if error.status == 405:
        error.status = 400
    return error


def _located(error: FhirError, entry: Entry) -> FhirError:
    """``error`` located in the Bundle: one located in the entry's resource
    (``Patient.identifier[0]``) at ``Bundle.entry[1].resource.identifier[0]``, one located
    nowhere (a 412 of its ``ifMatch``) at the entry, so the answer names the entry refused.
    The issues behind it (a 422's, the validator's) are located alike, as a transaction's are:
    only the first issue was, and the validator's named the resource alone."""
    found = error.expression or ""
    if found == entry.kind or found.startswith(f"{entry.kind}."):
        error.expression = _in_entry(found, entry)
    elif not found:
        error.expression = entry.path
    error.issues = _issues_in_entry(error.issues, entry)
    return error


def _issues_in_entry(issues: Iterable[Issue], entry: Entry) -> list[Issue]:
    """``issues`` of the entry's resource, each located from the Bundle's root (:func:`_in_entry`)."""
    return [dataclasses.replace(issue, expression=_in_entry(issue.expression, entry)) for issue in issues]


def _in_entry(expression: str, entry: Entry) -> str:
    """A FHIRPath in the entry's resource (``Patient.active``) from the Bundle's root."""
    if expression == entry.kind or expression.startswith(f"{entry.kind}."):
        return f"{entry.path}.resource{expression[len(entry.kind) :]}"
    return expression


def _target(path: str) -> tuple[str | None, str | None, bool, int | None]:
    """(type, id, history, version) of an entry's URL path: ``Type``, ``Type/id``,
    ``Type/_history``, ``Type/id/_history`` or ``Type/id/_history/n``; the type None when the
    path is none of these."""
    parts = path.split("/")
    if len(parts) == 1 and parts[0] and parts[0] != "_history":  # the system's history is not an entry's
        return parts[0], None, False, None
    if len(parts) == 2 and parts[1]:
        return (parts[0], None, True, None) if parts[1] == "_history" else (parts[0], parts[1], False, None)
    if len(parts) == 3 and parts[2] == "_history" and parts[1]:
        return parts[0], parts[1], True, None
    if len(parts) == 4 and parts[2] == "_history" and parts[1] and (version := natural_number(parts[3])) is not None:
        return parts[0], parts[1], False, version
    return None, None, False, None


def _readable(bundle: Any) -> tuple[str, list[Any]]:
    """The type and the entries of a Bundle that can be processed at all: what fails here
    fails the whole request, a batch's included (each of whose entries is read on its own)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError(400, "http.bad-bundle", "Bundle", detail=Worded("bundle.not-a-bundle"))
    kind = bundle.get("type")
    if kind is None:  # told it was "not None" (Python's word), then "(none)" in Chinese too
        raise FhirError(400, "http.bad-bundle", "Bundle.type", detail=Worded("bundle.no-type"))
    if kind not in ("transaction", "batch"):
        raise FhirError(400, "http.bad-bundle", "Bundle.type", detail=Worded("bundle.bad-type", kind=kind))
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FhirError(400, "http.bad-bundle", "Bundle.entry", detail=Worded("bundle.entry-not-array"))
    return kind, entries


def _check_entry_count(entries: list[Any], limit: int) -> None:
    """413 for more entries than ``YIYANG_BUNDLE_ENTRIES``, before any is read or applied.
    The validator refuses such a Bundle (``input.too-many-entries``), but a transaction or
    batch is not validated whole: each entry is, and a batch of 5,001 reads took seconds of
    a worker, a lever to tie workers up that the limit exists to remove.  413, as the body cap
    answers: the request is well formed, only more than the server takes at once."""
    if len(entries) > limit:
        raise FhirError(413, "http.too-many-entries", "Bundle.entry", count=len(entries), limit=limit)


def _repeated(entries: Iterable[Entry], key: Callable[[Entry], Hashable | None]) -> tuple[Entry, Entry] | None:
    """The first entry whose key an earlier entry had, with that earlier one (None: no key)."""
    seen: dict[Hashable, Entry] = {}
    for entry in entries:
        found = key(entry)
        if found is not None and seen.setdefault(found, entry) is not entry:
            return seen[found], entry
    return None


def _check_full_urls(entries: list[Entry], resource_types: frozenset[str]) -> None:
    """bdl-7: a fullUrl is unique within a Bundle.  In a transaction it is what references
    to an entry name, and two entries under one would bind them to whichever came last.
    (bdl-7 lets two versions of one resource share it: in a transaction they would change
    that resource twice, refused either way.)  And a RESTful fullUrl names its entry's own
    resource (Bundle.entry.fullUrl "SHALL NOT disagree with the id in the resource", as
    ``$validate`` judges it: bundle.fullurl-id-mismatch): a PUT of Basic/b under the fullUrl
    of Basic/a had references to the stored Basic/a rewritten to Basic/b.  Nor does it name a
    version (bdl-8): references to ``…/_history/1`` were rewritten to the current resource."""
    twice = _repeated(entries, lambda e: e.full_url)
    if twice is not None:
        first, entry = twice
        detail = Worded("bundle.same-full-url", first=first.path, second=entry.path, full_url=entry.full_url)
        raise FhirError(400, "http.bad-bundle", f"{entry.path}.fullUrl", detail=detail)
    for entry in entries:
        if entry.full_url is not None and "/_history/" in entry.full_url:  # bdl-8, R4's own words
            detail = Worded("bundle.versioned-full-url", full_url=entry.full_url)
            raise FhirError(400, "http.bad-bundle", f"{entry.path}.fullUrl", detail=detail)
        named = restful_identity(entry.full_url)
        if named is None or named[0] not in resource_types or entry.method not in ("POST", "PUT"):
            continue
        body_id = entry.resource.get("id") if entry.resource is not None else None
        own_id = entry.resource_id if entry.method == "PUT" and entry.resource_id else body_id
        if named[0] != entry.kind or (isinstance(own_id, str) and named[1] != own_id):
            written = f"{entry.kind}/{own_id}" if isinstance(own_id, str) else entry.kind
            detail = Worded("bundle.full-url-disagrees", full_url=entry.full_url, written=written)
            raise FhirError(400, "http.bad-bundle", f"{entry.path}.fullUrl", detail=detail)


def _check_distinct(entries: list[Entry]) -> None:
    """No two entries of a transaction may change the same resource (conditions resolved):
    the outcome would depend on the order of processing, so FHIR has the transaction fail."""
    twice = _repeated(entries, lambda e: (e.kind, e.resource_id) if e.method != "GET" and e.resource_id else None)
    if twice is not None:
        first, entry = twice
        reference = f"{entry.kind}/{entry.resource_id}"
        detail = Worded("bundle.same-resource", first=first.path, second=entry.path, reference=reference)
        raise FhirError(400, "http.bad-bundle", f"{entry.path}.request", detail=detail)


def _check_distinct_people(tx: Transaction, entries: list[Entry]) -> None:
    """No two Patients a transaction writes may bring one national identity number: they would
    be two records of one person.  The second was refused with a 409 naming the first as the
    number's holder, a record the transaction, rolled back, never made.  A number a Patient
    carries already does not count (two records of one person from before stay writable, as
    each on its own is, and a merge of them writes both)."""
    people = [e for e in entries if e.method in ("POST", "PUT") and e.kind == "Patient" and e.resource is not None]
    if len(people) < 2:  # nothing to compare: no read of the archive (a round trip on PostgreSQL)
        return
    holders: dict[str, Entry] = {}
    for entry in people:
        # a POST's id is new: nothing is stored under it
        stored = (
            tx.resources.read("Patient", entry.resource_id) if entry.resource_id and entry.method == "PUT" else None
        )
        carried = set(carried_keys(stored))
        for key in (key for key in match_keys(entry.resource) if is_document(key) and key not in carried):
            first = holders.setdefault(key, entry)
            if first is not entry:
                where = f"{entry.path}.resource{identifier_of(entry.resource, key).removeprefix('Patient')}"
                raise FhirError(409, "http.bundle-same-person", where, first=first.path, second=entry.path)


def _changed(entries: list[Entry]) -> list[tuple[str, str]]:
    """The resources the entries update, patch or delete by id (or by a resolved condition)."""
    return sorted(
        {(e.kind, e.resource_id) for e in entries if e.method in ("PUT", "PATCH", "DELETE") and e.resource_id}
    )


def _writing_entries(entries: list[Entry], kind: str | None = None) -> list[Entry]:
    """The entries (of ``kind``, or all) that create or update the resource they give."""
    return [e for e in entries if kind in (None, e.kind) and e.method in ("POST", "PUT") and e.resource]


def _writing(entries: list[Entry], kind: str | None = None) -> list[dict[str, Any]]:
    """The resources (of ``kind``, or all) the entries create or update, as the Bundle gives them."""
    return [e.resource for e in _writing_entries(entries, kind) if e.resource]


def _registering(entries: list[Entry]) -> dict[str, dict[str, Any]]:
    """The Patients a transaction creates, at ids the server chose, so a resident registered
    after its stay in the Bundle counts.  Not a PUT naming an id: its body would claim, for
    the write rules, a record the client may not even see (PUT Patient/<someone's id> managed
    by the client's own organisation, and a stay with them, took them over)."""
    return {
        entry.resource_id: entry.resource
        for entry in entries
        if entry.kind == "Patient"
        and (entry.method == "POST" or (entry.method == "PUT" and entry.minted))
        and entry.resource
        and entry.resource_id
    }


def _lock_conditions(tx: Transaction, entries: list[Entry]) -> None:
    """The locks of the types conditional creates and updates search, held from their search
    to their write, taken in one order (two Bundles taking them in opposite orders would each
    wait for the other)."""
    conditioned = {e.kind for e in entries if e.method in ("POST", "PUT") and _condition(e)}
    for name in sorted({condition_lock(kind) for kind in conditioned}):
        tx.lock(name)


def _condition(entry: Entry) -> str | None:
    """The criteria a conditional create (ifNoneExist), update or patch selects by."""
    if entry.method == "POST":
        return entry.if_none_exist or None
    if entry.method == "PUT" or (entry.method == "PATCH" and not entry.resource_id):
        return entry.criteria or None
    return None


def _held_already(entry: Entry, found: Stored) -> bool:
    """Whether a GET entry's client holds this version already (a conditional read, as the
    same GET on its own with If-None-Match or If-Modified-Since): its ``ifNoneMatch`` names
    the version's ETag (or ``*``), or, without one, its ``ifModifiedSince`` is no earlier
    than the last update."""
    if entry.if_none_match is not None:
        tags = {tag.strip().removeprefix("W/").strip('"') for tag in entry.if_none_match.split(",")}
        return "*" in tags or str(found.version) in tags
    return entry.if_modified_since is not None and found.last_updated <= entry.if_modified_since


def _response(kind: str, answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The response Bundle; one answering an empty Bundle has no ``entry`` (FHIR JSON has no
    empty arrays)."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if answers:
        bundle["entry"] = answers
    return bundle


def _condition_key(entry: Entry) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """An entry's condition as its type and decoded criteria, in any order: ``a=1&b=2`` and
    ``b=2&a=1`` (or ``%7C`` for ``|``) select alike."""
    condition = _condition(entry)
    if condition is None:
        return None
    return entry.kind, tuple(sorted(query_pairs(condition.lstrip("?"))))


def _is_conditional(entry: Entry) -> bool:
    """Whether the entry's outcome or content depends on a search of the store."""
    return bool(_condition(entry)) or entry.refers_conditionally


def _rewrite(entries: list[Entry], renamed: dict[str, str], model: BaseModel) -> None:
    """Links to the Bundle's full URLs → the resources they now name (:mod:`bundle_links`).
    Only a resource is walked: a PATCH entry may carry its JSON Patch as the list of
    operations (:func:`_patch_operations`), whose links are rewritten in the patched
    resource, and anything else it carries is refused there as no JSON Patch (400)."""
    for entry in entries:
        entry.links = links_of(entry.full_url, renamed)
        if isinstance(entry.resource, dict):
            relink(entry.resource, entry.links, model)


def _asked_once(authorize: Authorize | None) -> Authorize | None:
    """``authorize``, asked each distinct question once: its answer depends on the question
    and the caller alone, and a Bundle's entries repeat their questions (a benchmark
    transaction's ten creates ask three, each about 5 µs of scopes parsed and matched).
    A refusal is not remembered: it raises, and a batch asks again for the next entry."""
    if authorize is None:
        return None
    allowed: set[tuple[str, str, str | None, str | None]] = set()

    def ask(method: str, kind: str, resource_id: str | None, criteria: str | None) -> None:
        question = (method, kind, resource_id, criteria)
        if question not in allowed:
            authorize(*question)
            allowed.add(question)

    return ask


def _authorize(authorize: Authorize | None, entry: Entry) -> None:
    """Ask ``authorize`` about one entry; a POST's If-None-Exist counts as its criteria, and a
    conditional reference (``Patient?identifier=…``) is a search of the type it names."""
    if authorize is None or entry.capabilities:  # public, as /metadata is
        return
    authorize(entry.method, entry.kind, entry.resource_id, entry.criteria or entry.if_none_exist)
    for node in entry.conditional_references:
        kind, _, criteria = node["reference"].partition("?")
        authorize("GET", kind, None, criteria)


def _patch_operations(resource: Any) -> Any:
    """A Bundle carries a JSON Patch as a Binary (base64 data) or, leniently, as the list."""
    if isinstance(resource, list):
        return resource
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        try:
            data = base64.b64decode(str(resource.get("data", "")), validate=True)
        except binascii.Error as exc:
            reason = Worded("bundle.patch-not-base64")
            raise FhirError(400, "http.bad-patch", detail=Worded("bundle.patch-not-json", reason=reason)) from exc
        try:
            return parse_json(data)
        except WireError as exc:  # worded as a request body's JSON is (binascii's, orjson's words are English)
            reason = exc.params["detail"] if "detail" in exc.params else Worded(exc.message_id, **exc.params)
            raise FhirError(400, "http.bad-patch", detail=Worded("bundle.patch-not-json", reason=reason)) from exc
    raise FhirError(400, "http.bad-patch", detail=Worded("bundle.patch-needs-binary"))
