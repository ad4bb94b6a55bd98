"""The FHIR REST endpoints under ``/fhir``: each turns an HTTP request into one interaction of
``gateway.fhir`` and its answer into a response; none holds FHIR logic of its own."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from werkzeug.datastructures import MultiDict

from gateway import exchanges
from gateway.api.auth import check_bundle_entry, grants, scope_refusal
from gateway.api.methods import method_refused, refusing
from gateway.api.negotiation import (
    PATCH_MEDIA_TYPE,
    FhirRequest,
    answer_format,
    body,
    body_as_sent,
    encode,
    encoded,
    given_once,
    if_match,
    if_none_exist,
    language,
    not_modified,
    operation_args,
    outcome_response,
    prefer_handling,
    prefer_return,
    respond,
    search_form,
    version_headers,
    wants_raw_content,
)
from gateway.api.serving import services
from gateway.fhir import identity_conflicts, operations, patient_merge
from gateway.fhir.capability import CAPABILITY_HONOURED, check_mode
from gateway.fhir.errors import FhirError
from gateway.fhir.history import HISTORY_HONOURED, history_bundle, history_request
from gateway.fhir.parameters import (
    honoured_only,
    instant,
    listed_types,
    refuse_unsupported_parameters,
    whole_number,
)
from gateway.fhir.repository import READ_ONLY, Written
from gateway.fhir.search import READ_HONOURED, check_read_summary, outcome_entry, read_controls, searchset, shaped_read
from gateway.fhir.validate_arguments import ValidateQuery, validate_arguments
from gateway.messages import issue
from gateway.search.query import IGNORED_CONTROLS
from gateway.security.access import Access
from gateway.storage.store import Stored, retried
from gateway.wire import FORMATS

fhir = Blueprint("fhir", __name__, url_prefix="/fhir")
#: media types of legacy exports posted to $ingest, and the file suffix their reader takes
INGEST_SUFFIXES = {
    "text/csv": ".csv",
    "text/tab-separated-values": ".tsv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    # a legacy binary workbook: refused by the readers, saying to save it as .xlsx or CSV
    "application/vnd.ms-excel": ".xls",
    "application/xml": ".xml",
    "text/xml": ".xml",
    "application/json": ".json",
    "application/x-ndjson": ".ndjson",
    "application/fhir+ndjson": ".ndjson",
    "x-application/hl7-v2+er7": ".hl7",
    "application/hl7-v2": ".hl7",
}


def access() -> Access:
    """What this request's principal may see (the repository's rules: one place builds them)."""
    return services().repository.access()


def base_url() -> str:
    return services().config.base_url


def _request() -> FhirRequest:
    """This request, resolved once for a route that reads it often (a look through Flask's
    proxy costs about a microsecond)."""
    return request._get_current_object()  # type: ignore[return-value]  # the app's request_class


def _pairs(asked: FhirRequest) -> list[tuple[str, str]]:
    """Search parameters from the query string and, for POST _search, the form body."""
    pairs = list(asked.args.items(multi=True))
    if asked.method == "POST":
        pairs += search_form()
    return [(k, v) for k, v in pairs if k != "_format"]


def refuse_unknown_read_parameters(interaction: str, honoured: tuple[str, ...]) -> None:
    """A read's, a vread's or the CapabilityStatement's parameters it does not know: ignored
    unless the client prefers ``handling=strict``, which makes each a 400.  Nothing a read
    could ignore widens its answer, and browsers and caching clients add parameters of their
    own (``?_=1733450000``, a cache-buster) that a refusal would break.  A search, a history
    and an operation's query refuse one unless the client prefers ``handling=lenient``, since
    a filter ignored there answers more than was asked; what is sent to be written
    (``$ingest``, a Parameters body) is refused whatever the preference."""
    if request.args and prefer_handling(default="lenient") == "strict":  # most reads carry none
        refuse_unsupported_parameters(request.args, interaction, honoured)


# -- capability ------------------------------------------------------------------------------
@fhir.get("/metadata")
def metadata() -> Response:
    """The CapabilityStatement, encoded once per format (a client polls it; serialising it
    cost about a millisecond a request)."""
    refuse_unknown_read_parameters("capabilities", CAPABILITY_HONOURED)
    answered = services().capabilities.statement
    check_mode(request.args.items(multi=True))
    summary, elements = read_controls(request.args.items(multi=True))
    if summary is not None or elements:
        return respond(shaped_read(answered, summary, elements))
    cache, answer = current_app.config.setdefault("CAPABILITY", {}), answer_format()
    if answer not in cache:
        cache[answer] = encode(answered, answer)
    return encoded(cache[answer])


# -- whole system ----------------------------------------------------------------------------
# one endpoint, public as the CapabilityStatement is (gateway/security/scopes.py): a 405 tells
# nothing, and the audit trail records it by its method
@fhir.route("/metadata", methods=["POST", "PUT", "PATCH", "DELETE"], endpoint="metadata_refused")
@fhir.route("/_history", methods=["POST", "PUT", "PATCH", "DELETE"], endpoint="metadata_refused")
@fhir.route("/.well-known/smart-configuration", methods=["POST", "PUT", "PATCH", "DELETE"], endpoint="metadata_refused")
@refusing
def read_only() -> Response:
    """Without it a DELETE /metadata would reach the conditional delete of a type "metadata",
    a PUT /_history the conditional update of a type "_history", and a PUT of the SMART
    discovery document the update of a ".well-known" (a 404 for an unknown type, after asking
    for a token, where the path is known, public, and takes GET alone)."""
    return outcome_response(method_refused())


# an operation offered by POST alone: a GET of $ingest would otherwise be the search of a type
# "$ingest", a DELETE of Patient/$validate the delete of a Patient with that id.  So for a type's
# history, read alone, and its search by POST alone (R4 http.html#search): a DELETE of
# Basic/_history was the delete of a Basic of that id, a PUT of Basic/_search its update (a 400
# for an id that is none) and a GET of Patient/_search the read of a Patient "_search" (404)
@fhir.route("/<kind>/_history", methods=["PUT", "PATCH", "DELETE"], endpoint="operation_refused")
@fhir.route("/<kind>/_search", methods=["GET", "PUT", "PATCH", "DELETE"], endpoint="operation_refused")
@fhir.route("/$ingest", methods=["GET", "PUT", "PATCH", "DELETE"], endpoint="operation_refused")
@fhir.route("/<kind>/$validate", methods=["GET", "PUT", "PATCH", "DELETE"], endpoint="operation_refused")
@fhir.route("/Patient/$merge", methods=["GET", "PUT", "PATCH", "DELETE"], endpoint="operation_refused")
@fhir.route("/$identity-conflicts", methods=["PUT", "PATCH", "DELETE"], endpoint="operation_refused")
@refusing
def operation_refused(**_path: str) -> Response:
    return outcome_response(method_refused())


@fhir.post("")
@fhir.post("/")
def transaction_or_batch() -> Response:
    bundle = body_as_sent()  # each entry's references localised as it is read
    # what each entry asked, and then got, for the request's AuditEvent (gateway/api/audit.py):
    # a refused transaction is recorded with what it asked too
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    asked = [_requested(entry) for entry in entries] if isinstance(entries, list) else []
    g.bundle_entries = [(method, url, "", None) for method, url in asked]
    answer = _processed(bundle)
    g.bundle_entries = [
        (method, url, str(got.get("response", {}).get("status", "")), got.get("response", {}).get("location"))
        # a Bundle of no entries is answered with none, and FHIR JSON has no empty array
        for (method, url), got in zip(asked, answer.get("entry", []), strict=False)
    ]
    return respond(answer)


def _processed(bundle: Any) -> dict[str, Any]:
    """The Bundle processed.  A transaction is run again from the body as sent when the
    database gave it up (:func:`retried`): its locks are taken in one order, but a resource
    that comes to match one of its conditions while it runs is locked after the rest.
    Processing changes the parsed Bundle (ids assigned, references rewritten), so each new
    attempt parses the body afresh.  A batch is never run again whole: its entries committed
    one by one, and each is retried on its own."""
    process = services().bundles.process
    if not isinstance(bundle, dict) or bundle.get("type") != "transaction":
        return process(bundle, check_bundle_entry, language(), prefer_return(), prefer_handling(default=""))

    @exchanges.noted_once  # validated again: noted as the attempt that stands judged it
    def attempt(number: int) -> dict[str, Any]:
        parsed = bundle if number == 1 else body_as_sent()
        return process(parsed, check_bundle_entry, language(), prefer_return(), prefer_handling(default=""))

    return retried(attempt)


def _requested(entry: Any) -> tuple[str, str]:
    request = entry.get("request") if isinstance(entry, dict) else None
    if not isinstance(request, dict):
        return "", ""
    return str(request.get("method", "")), str(request.get("url", ""))


@fhir.get("/_history")
def system_history() -> Response:
    return _history(None, None)


#: the parameters $ingest takes (the controls every answer takes are allowed too)
INGEST_HONOURED = ("source", "filename")


@fhir.post("/$ingest")
def ingest() -> Response:
    found = services()
    rules = access()
    if rules.restricted and rules.principal is not None:
        # a legacy file merges people by 身份证号 across the whole archive, which a client that
        # sees only the people it serves must not reach into
        raise FhirError(403, "http.ingest-restricted", organization=rules.principal.organization)
    refuse_unsupported_parameters(request.args, "$ingest", INGEST_HONOURED)
    if not request.args.get("source"):
        raise FhirError(400, "http.parameter-required", "source", name="source", where="$ingest")
    media = request.mimetype or ""
    filename = request.args.get("filename", "")
    suffix = INGEST_SUFFIXES.get(media) or (("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else media)
    pipeline = operations.build_pipeline(found.repository, found.engine)
    try:
        answer = operations.ingest(
            pipeline,
            request.args.get("source", ""),
            request.get_data(),
            suffix,
            filename,
            language(),
            found.reader_limits,
            found.stopping,
            request.mimetype_params.get("charset"),
        )
    finally:
        # for the audit trail: every resource the file's committed batches wrote, also when
        # the store failed a later batch (a 503): those stay written, and must be found
        g.touched = tuple(pipeline.landed)
    return respond(answer)


@fhir.post("/Patient/$merge")
def merge() -> Response:
    """Two records of one person made one (gateway/fhir/patient_merge.py); only the 主索引
    staff's clients (role operator) get here (gateway/api/auth.py)."""
    answer, written = patient_merge.merge(services().repository, body(), language())
    g.touched = tuple(written)  # for the audit trail: every record the merge changed
    return respond(answer)


@fhir.route("/$identity-conflicts", methods=["GET", "POST"])
def conflicts() -> Response:
    """The 主索引 staff's work list (gateway/fhir/identity_conflicts.py); only their clients
    (role operator) get here (gateway/api/auth.py).  It changes nothing, so GET serves it as
    well as POST (a Parameters body of primitive parts, as any operation takes)."""
    pairs = list(operation_args().items(multi=True))
    address = f"{base_url()}/{identity_conflicts.NAME}"
    lenient = prefer_handling() == "lenient"
    return respond(identity_conflicts.identity_conflicts(services().repository, pairs, address, lenient))


# -- types -------------------------------------------------------------------------------------
@fhir.get("/<kind>")
@fhir.post("/<kind>/_search")
def search(kind: str) -> Response:
    # the request and the services resolved once: a search looked through Flask's proxies
    # for them nine times
    found, asked = services(), _request()
    found.repository.check_type(kind)
    pairs = _pairs(asked)
    query = found.searcher.parse(kind, pairs, prefer_handling())
    with found.store.reading() as tx:
        result = found.searcher.search(tx, query, found.repository.access())
    # the paging links ask for the format this page was asked in
    asked_format = [("_format", value) for value in asked.args.getlist("_format")]
    as_stored = asked.answer_format == "json"
    # the reader's language words only the warnings of parameters skipped or noted: most
    # searches have none, and parsing Accept-Language for them cost 12 µs of a search
    warned = result.query.ignored or result.query.notes
    lang = language() if warned else found.config.language
    return _pulled(searchset(result, found.config.base_url, kind, pairs + asked_format, lang, as_stored=as_stored))


@fhir.post("/<kind>")
def create(kind: str) -> Response:
    resource = body_as_sent()  # localised by the repository, from the walk its checks share
    repository = services().repository
    repository.check_type(kind)
    if isinstance(resource, dict) and resource.get("resourceType") not in (None, kind):
        raise FhirError(400, "http.wrong-type", "resourceType", found=resource.get("resourceType"), expected=kind)
    # a conditional create that found its match answers as a create does, its Location too
    # (as a Bundle's entry answers): under Prefer: return=minimal it was the only way to tell
    # which resource matched
    return _written(repository.create(resource, if_none_exist(kind)), located=True)


@fhir.put("/<kind>")
def conditional_update(kind: str) -> Response:
    return _written(services().repository.conditional_update(kind, request.query_string.decode(), body(), if_match()))


@fhir.patch("/<kind>")
def conditional_patch(kind: str) -> Response:
    document = _patch_body()
    return _written(services().repository.conditional_patch(kind, request.query_string.decode(), document, if_match()))


@fhir.delete("/<kind>")
def conditional_delete(kind: str) -> Response:
    deleted = services().repository.conditional_delete(kind, request.query_string.decode(), if_match())
    g.touched = tuple(stored.reference for stored in deleted)
    return _deleted(deleted[0] if len(deleted) == 1 else None, len(deleted))


@fhir.get("/<kind>/_history")
def type_history(kind: str) -> Response:
    services().repository.check_type(kind)
    return _history(kind, None)


@fhir.post("/<kind>/$validate")
def validate_type(kind: str) -> Response:
    services().repository.check_type(kind)
    return _validate(kind)


# -- instances ---------------------------------------------------------------------------------


# a Patient's read has a rule of its own: werkzeug tries the path's static parts first, and
# "Patient" leads to the Patient-only routes ($merge, $everything), none of which a read
# matches; it then went back to match "<kind>" (7.8 against 5.9 µs an Encounter's read).
# The rule takes FHIR ids alone, so that what is no id ($validate, _history, _search) is
# still matched by the routes of every type
@fhir.get("/Patient/<fhir_id:resource_id>", defaults={"kind": "Patient"})
@fhir.get("/<kind>/<resource_id>")
def read(kind: str, resource_id: str) -> Response:
    if resource_id.startswith("$"):  # no id has a "$": an operation this level does not offer
        raise FhirError(404, "http.unknown-operation", operation=f"{kind}/{resource_id}")
    refuse_unknown_read_parameters("read", READ_HONOURED)
    return _answer_read(kind, services().repository.read(kind, resource_id))


def _answer_read(kind: str, stored: Stored) -> Response:
    """A read's or a vread's answer, as ``_summary`` and ``_elements`` shape it."""
    asked = _request()
    args = asked.args
    summary, elements = read_controls(args.items(multi=True)) if args else (None, "")
    if not_modified(asked, stored):
        check_read_summary(summary)
        return respond(None, 304, version_headers(stored))
    if summary is None and not elements and asked.answer_format == "json" and kind != "Binary":
        # as stored: the document's own JSON text, neither parsed nor encoded again
        return encoded((stored.json(), FORMATS["json"]), headers=version_headers(stored))
    resource = shaped_read(stored.resource or {}, summary, elements)
    if kind == "Binary" and wants_raw_content():
        return _binary_content(stored)
    return respond(resource, headers=version_headers(stored))


def _binary_content(stored: Stored) -> Response:
    """A Binary as the bytes it holds, in its own media type (R4 binary.html), for a client
    that accepts no FHIR format; the security headers still forbid running anything in it."""
    resource = stored.resource or {}
    try:  # base64Binary may carry whitespace (line breaks every 76 characters)
        data = base64.b64decode("".join(str(resource.get("data", "")).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FhirError(406, "http.not-acceptable", format=str(resource.get("contentType"))) from exc
    headers = version_headers(stored)
    # content_type as stored: mimetype= would add a charset to one that already names it
    return Response(data, content_type=resource.get("contentType") or "application/octet-stream", headers=headers)


@fhir.put("/<kind>/<resource_id>")
def update(kind: str, resource_id: str) -> Response:
    # localised by the repository, from the walk its checks share
    return _written(services().repository.update(kind, resource_id, body_as_sent(), if_match()))


@fhir.patch("/<kind>/<resource_id>")
def patch(kind: str, resource_id: str) -> Response:
    return _written(services().repository.patch(kind, resource_id, _patch_body(), if_match()))


def _patch_body() -> Any:
    if request.mimetype != PATCH_MEDIA_TYPE:
        raise FhirError(415, "http.patch-media-type")
    return body()


@fhir.delete("/<kind>/<resource_id>")
def delete(kind: str, resource_id: str) -> Response:
    deleted = services().repository.delete(kind, resource_id, if_match())
    return _deleted(deleted, 1 if deleted else 0)


@fhir.get("/<kind>/<resource_id>/_history")
def instance_history(kind: str, resource_id: str) -> Response:
    services().repository.check_type(kind)
    return _history(kind, resource_id)


@fhir.get("/<kind>/<resource_id>/_history/<version>")
def vread(kind: str, resource_id: str, version: str) -> Response:
    refuse_unknown_read_parameters("vread", READ_HONOURED)
    return _answer_read(kind, services().repository.vread(kind, resource_id, version))


@fhir.route("/<kind>/<resource_id>/$validate", methods=["GET", "POST"])
def validate_instance(kind: str, resource_id: str) -> Response:
    """POST: whether the body could become this instance: it must have existed (and be the
    principal's to see; one deleted may be written again, as a PUT re-creates it), and the
    body names its id.  GET (R4 lets an operation that changes nothing be a GET when its
    parameters are primitive): the stored instance, against ``profile`` or its own, or with
    ``mode=delete`` whether it may be deleted."""
    return _validate(kind, resource_id)


#: the parameters $everything honours; the controls every answer takes are allowed too
EVERYTHING_HONOURED = ("_since", "_type", "_count", "_offset", "_after")


@fhir.route("/Patient/<resource_id>/$everything", methods=["GET", "POST"])
def everything(resource_id: str) -> Response:
    """``_since``, ``_type`` and ``_count`` (pages of that many members, with ``_offset`` and
    the next page's ``_after`` in their links) are honoured; ``start`` and ``end`` are not supported and, like any other
    parameter, refused rather than ignored (under ``Prefer: handling=lenient`` ignored, left
    out of the links and named in an outcome entry, as a search skips one)."""
    found = services()
    kept, ignored = honoured_only(
        operation_args().items(multi=True), "$everything", EVERYTHING_HONOURED, prefer_handling() == "lenient"
    )
    args = MultiDict(kept)
    given_once(args, ("_since", "_count", "_offset", "_after"))
    types = {t for value in args.getlist("_type") for t in listed_types(value)}
    compartment = found.registry.patient_compartment
    if unknown := sorted(types - found.repository.resource_types):
        raise FhirError(400, "http.unknown-type", "_type", type=unknown[0])
    if unarchived := sorted(types & READ_ONLY):  # the audit trail: asked for, it answered an empty page
        raise FhirError(400, "http.everything-type-not-archived", "_type", type=unarchived[0])
    since = instant(args, "_since")
    allowed = grants()
    if not allowed.allows("*", "s"):
        # types the token may not search are left out, not refused (the Patient's read scope
        # was checked by the auth hook); "-none-" keeps an emptied set from meaning "all"
        wanted = types or set(found.repository.resource_types)  # the members and what they refer to
        types = {t for t in wanted if t == "Patient" or allowed.allows(t, "s")} or {"-none-"}
    page = None
    if "_count" in args or "_offset" in args or "_after" in args:
        count = min(whole_number(args, "_count", found.config.page_size), found.config.max_page_size)
        offset, after = whole_number(args, "_offset", 0), operations.page_cursor(args.get("_after"))
        page = operations.Page(count, offset, list(args.items(multi=True)), after)
    pairs = list(args.items(multi=True))
    bundle = operations.everything(found.repository, compartment, resource_id, since, types, base_url(), page, pairs)
    if ignored:
        bundle["entry"] = [*bundle.get("entry", []), outcome_entry([error.warning(language()) for error in ignored])]
    return _pulled(bundle)


#: ``Composition/$document``'s own parameters (R4) but the id its URL carries
_DOCUMENT_PARAMETERS = ("persist", "graph")


@fhir.route("/Composition/<resource_id>/$document", methods=["GET", "POST"])
def document(resource_id: str) -> Response:
    """The Composition as a document Bundle; each included resource must be one the principal
    may see and its token may read (else the document is refused, not silently cut short).
    The document is not stored: ``persist=false``, R4's default, is taken, ``persist=true``
    and ``graph`` are refused, whatever the handling: a document stored, or one holding what
    a GraphDefinition says, is what they ask, and the default document is neither (any
    parameter unknown is ignored under ``Prefer: handling=lenient``)."""
    from gateway.reporting import generated_now

    args, lenient = operation_args(), prefer_handling() == "lenient"
    for name, value in args.items(multi=True):
        if (
            name in IGNORED_CONTROLS
            or (name, value) == ("persist", "false")
            or (lenient and name not in _DOCUMENT_PARAMETERS)
        ):
            continue
        raise FhirError(400, "http.takes-no-parameters", name, name=name, where="$document")
    found, allowed = services(), grants()

    def may_include(stored: Stored) -> bool:
        return allowed.allows(stored.type, "r")  # what it may not see, the repository never reads

    return respond(operations.document(found.repository, resource_id, base_url(), may_include, generated_now()))


# -- shared answers ------------------------------------------------------------------------------
def _written(written: Written, *, located: bool = False) -> Response:
    """``located``: the answer names the resource in ``Location`` even when it was not created
    (a conditional create's match)."""
    stored = written.stored
    g.touched = (stored.reference,)  # for the audit trail: a conditional write's URL names criteria
    headers = version_headers(stored, base_url() if written.status == 201 or located else None)
    wanted = prefer_return()
    if wanted == "minimal":
        return respond(None, written.status, headers)
    if wanted == "OperationOutcome":
        return respond(written.outcome(language()), written.status, headers)
    return respond(stored.resource, written.status, headers)


def _pulled(bundle: dict[str, Any]) -> Response:
    """A Bundle of resources pulled (a search page, a history, $everything), its resources
    noted in the exchange record once the answer is made (it may still be refused, a 406)."""
    response = respond(bundle)
    exchanges.returned(bundle)
    return response


def _deleted(stored: Stored | None, count: int) -> Response:
    """The outcome of a delete and, when it deleted one resource, the ETag of the deletion
    version (R4 http.html#delete: a deleted resource may be brought back to life, and the
    ETag lets the client make that update conditional on nothing having changed since)."""
    lang = language()
    if count == 0:
        message = issue("information", "http.nothing-to-delete", lang)
    elif stored is None:  # several matches of a conditional delete
        message = issue("information", "http.deleted-count", lang, {"count": count})
    else:
        message = issue("information", "http.deleted", lang, {"reference": stored.reference})
    headers = {"ETag": f'W/"{stored.version}"'} if stored is not None else None
    return respond({"resourceType": "OperationOutcome", "issue": [message]}, 200, headers)


def _validate(kind: str, resource_id: str | None = None) -> Response:
    """``$validate`` with ``mode`` create, update or profile (the resource is validated, the
    same way for each) or delete (on an instance: whether it may be deleted; no body needed)."""
    query = ValidateQuery.parse(request.args.items(multi=True), prefer_handling() == "lenient")
    # the instance as stored is validated: no body (HEAD is answered as the GET it heads)
    stored = request.method in ("GET", "HEAD")
    document = body() if not stored and (not query.only_delete or request.content_length) else None
    asked = validate_arguments(query, document)
    repository = services().repository
    if asked.mode == "delete":
        if resource_id is None:
            raise FhirError(400, "http.validate-delete-needs-instance", "mode", kind=kind)
        return respond(_warned(operations.validate_delete(repository, kind, resource_id, language()), query.ignored))
    resource = asked.resource
    if resource_id is not None and stored:
        resource = repository.read(kind, resource_id).resource
    elif resource_id is not None:
        try:
            repository.read(kind, resource_id)
        except FhirError as absent:
            if absent.status != 410:  # a deleted one is written again by a PUT (201)
                raise
    answer = operations.validate(
        repository,
        resource,
        asked.profiles,
        language(),
        kind,
        resource_id,
        asked.mode,
        lambda permission: scope_refusal(((kind, permission),)),
        stored=stored,
    )
    return respond(_warned(answer, query.ignored))


def _warned(outcome: dict[str, Any], ignored: Sequence[FhirError]) -> dict[str, Any]:
    """An operation's OperationOutcome with a warning for each parameter it ignored under
    ``Prefer: handling=lenient``, as a search's outcome entry names those it skipped."""
    if ignored:
        outcome["issue"] = [*outcome.get("issue", []), *(error.warning(language()) for error in ignored)]
    return outcome


def _history(kind: str | None, resource_id: str | None) -> Response:
    """A history page; its parameters (``_since``, ``_count``, ``_offset`` …) given twice are refused, as for
    ``$everything``: the first was taken and the other dropped, so a later ``_since`` the
    client meant could widen, or an earlier one narrow, what it synchronises."""
    given_once(request.args, HISTORY_HONOURED)
    found = services()
    config, lenient = found.config, prefer_handling() == "lenient"
    asked = history_request(kind, resource_id, request.args, config.page_size, config.max_page_size, lenient=lenient)
    with found.store.reading() as tx:
        return _pulled(history_bundle(tx, access(), base_url(), asked))
