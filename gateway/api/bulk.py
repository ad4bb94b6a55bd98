"""The Bulk Data ``$export`` endpoints (IG v2): kick-off, status, cancel and the NDJSON files.

Each turns an HTTP request into a call on :class:`gateway.fhir.bulk_export.BulkExports`; the
job itself runs on a thread of this worker and any worker answers its status.
"""

from __future__ import annotations

from email.utils import format_datetime
from pathlib import Path

import orjson
from flask import Blueprint, Response, g, request

from gateway.api.delivery import Delivery, file_chunks
from gateway.api.methods import method_refused, refusing, without_head
from gateway.api.negotiation import body, language, outcome_response, prefer_handling, preferences, respond
from gateway.api.serving import services
from gateway.fhir.bulk_export import COMPLETED, IN_PROGRESS, BulkExports, Job, manifest
from gateway.fhir.bulk_export.ignored import MESSAGES_FILE
from gateway.fhir.errors import FhirError
from gateway.fhir.export_parameters import KickOffArguments, body_arguments
from gateway.messages import issue
from gateway.search.query import IGNORED_CONTROLS
from gateway.security.principal import Principal
from gateway.security.scopes import Grants

bulk = Blueprint("bulk", __name__, url_prefix="/fhir")
NDJSON = "application/fhir+ndjson"
#: seconds a client should wait between status requests
RETRY_AFTER = "2"
#: seconds a client refused for too many jobs at once should wait before kicking off again
KICK_OFF_RETRY_AFTER = "30"


def _exports() -> BulkExports:
    found = services()
    return BulkExports(
        found.store,
        found.repository.personal,
        found.repository.resource_types,
        Path(found.config.export_dir),
        found.config.export_stale_seconds,
        searcher=found.searcher,
        expiry_seconds=found.config.export_expiry_seconds,
        max_jobs=found.config.export_max_jobs,
        max_jobs_per_client=found.config.export_max_jobs_per_client,
        busy_timeout_s=found.config.sqlite_busy_timeout_seconds,
    )


def _expires(exports: BulkExports, job: Job) -> dict[str, str]:
    """The ``Expires`` header of a finished job's manifest (IG v2): when the server removes the
    job and its files, so the client knows how long it has to fetch them."""
    expires = exports.expires(job)
    return {"Expires": format_datetime(expires, usegmt=True)} if expires is not None else {}


def _information(message_id: str, **params: str) -> dict[str, object]:
    return {"resourceType": "OperationOutcome", "issue": [issue("information", message_id, language(), params)]}


# -- kick-off ----------------------------------------------------------------------------------
# a kick-off starts a job: its HEAD would start one too (gateway/api/methods.py); by GET its
# parameters are the query string's, by POST those of a Parameters body (IG v2)
_KICK_OFF = ["GET", "POST"]


@bulk.route("/$export", methods=_KICK_OFF)
@without_head
def export_system() -> Response:
    return _kick_off("system")


@bulk.route("/Patient/$export", methods=_KICK_OFF)
@without_head
def export_patients() -> Response:
    return _kick_off("Patient")


@bulk.route("/Group/<group_id>/$export", methods=_KICK_OFF)
@without_head
def export_group(group_id: str) -> Response:
    return _kick_off(f"Group/{group_id}")


#: the methods the FHIR routes would otherwise take for a type or an instance at these paths
_NOT_TAKEN = ["POST", "PUT", "PATCH", "DELETE"]
_NOT_KICKING_OFF = [method for method in _NOT_TAKEN if method not in _KICK_OFF]


@bulk.route("/$export", methods=_NOT_KICKING_OFF, endpoint="export_refused")
@bulk.route("/Patient/$export", methods=_NOT_KICKING_OFF, endpoint="export_refused")
@bulk.route("/Group/<group_id>/$export", methods=_NOT_KICKING_OFF, endpoint="export_refused")
@bulk.route("/$export-status/<job_id>", methods=["POST", "PUT", "PATCH"], endpoint="export_refused")
@bulk.route("/$export-file/<job_id>/<name>", methods=_NOT_TAKEN, endpoint="export_refused")
@refusing
def export_refused(**_path: str) -> Response:
    """405 naming the methods the path takes.  Without it a DELETE of ``Patient/$export``
    reached the delete of a Patient with that id (200 "nothing to delete", as if a job had
    been cancelled), and a PUT of a status URL an update."""
    return outcome_response(method_refused())


def requested_job(job_id: str, principal: Principal) -> Job | None:
    """The job a status or file request names, if it is ``principal``'s and has not expired
    (None: the endpoint answers its 404): the authentication hook asks what its kick-off
    needed, before the request acts for the principal."""
    try:
        return _exports().find(job_id, principal)
    except FhirError:
        return None


def kick_off_arguments() -> KickOffArguments:
    """The kick-off's parameters (:func:`_arguments`), read once a request: the authorisation
    hook asks first which types ``_type`` names (a Parameters body's as a query string's),
    and the body is parsed for both at once."""
    found: KickOffArguments | None = g.get("kick_off_arguments")
    if found is None:
        found = g.kick_off_arguments = _arguments(prefer_handling() == "lenient")
    return found


def _arguments(lenient: bool) -> KickOffArguments:
    """The kick-off's parameters: a GET's query string, or a POST's Parameters body, which
    then carries them all (a parameter in the URL besides, where one of the two would have
    to be dropped, is refused; the controls every answer takes are not parameters of it).
    ``patient`` is a Reference, which a Parameters body alone types (IG v2)."""
    query = list(request.args.items(multi=True))
    if request.method != "POST":
        # a HEAD is refused 405 (methods.without_head) once the scopes hook has read its _type
        if request.method == "GET" and any(name == "patient" for name, _ in query):
            raise FhirError(400, "http.export-patient-needs-post", "patient")
        return KickOffArguments.of_query(query)
    if mixed := [name for name, _ in query if name not in IGNORED_CONTROLS]:
        raise FhirError(400, "http.export-query-and-body", mixed[0], name=mixed[0])
    return body_arguments(body(), lenient)


def kick_off_types(scope: str, who: Principal | None) -> list[str] | None:
    """The types a kick-off of ``scope`` without ``_type`` exports: those it may hold that
    ``who`` may read and search, as IG v2 has it ("the resources within the client's
    authorisation"; a token for Patients and Observations was refused 403 asking for
    ``system/*.rs``).  None: ``_type`` names them, or ``who`` (None: no security) may read
    and search every type, and the export holds what it always held (a Patient or Group
    export, what its records refer to outside the compartment too).  Empty: no type at all,
    which the scopes hook refuses."""
    if who is None or any(name == "_type" for name, _ in kick_off_arguments().pairs):
        return None
    allowed = Grants(who.scopes)
    if allowed.missing([("*", "rs")]) is None:
        return None
    return [kind for kind in _exports().exportable(scope) if allowed.missing([(kind, "rs")]) is None]


def _kick_off(scope: str) -> Response:
    """202 with the status URL in Content-Location; the export is only ever asynchronous.
    Beyond the jobs the gateway or the client may run at once: 429 with Retry-After (IG v2)."""
    if "respond-async" not in preferences():
        raise FhirError(400, "http.export-prefer-async")
    base = services().config.base_url
    query = request.query_string.decode()
    url = f"{base}{request.path.removeprefix('/fhir')}" + (f"?{query}" if query else "")
    lenient = prefer_handling() == "lenient"
    asked = kick_off_arguments()
    exports = _exports()
    try:
        authorised = kick_off_types(scope, g.get("principal"))
        job = exports.kick_off(url, scope, asked.pairs, lenient=lenient, where=asked.where, authorised=authorised)
    except FhirError as refused:
        if refused.status != 429:
            raise
        answer = outcome_response(refused)
        answer.headers["Retry-After"] = KICK_OFF_RETRY_AFTER
        return answer
    exports.start(job.id)
    location = f"{base}/$export-status/{job.id}"
    return respond(_information("http.export-accepted", location=location), 202, {"Content-Location": location})


# -- status and cancel ---------------------------------------------------------------------------
@bulk.get("/$export-status/<job_id>")
def export_status(job_id: str) -> Response:
    """202 while running (X-Progress), 200 with the manifest and when it expires, or the
    failure's 500."""
    exports = _exports()
    job = exports.status(job_id)
    if job.status == IN_PROGRESS:
        headers = {"X-Progress": f"{job.progress} resources written", "Retry-After": RETRY_AFTER}
        return respond(_information("http.export-in-progress"), 202, headers)
    if job.status != COMPLETED:
        raise job.failure()
    body = orjson.dumps(manifest(job, services().config.base_url))
    return Response(body, status=200, content_type="application/json", headers=_expires(exports, job))


@bulk.delete("/$export-status/<job_id>")
def export_cancel(job_id: str) -> Response:
    _exports().cancel(job_id)
    return respond(_information("http.export-deleted", id=job_id), 202)


# -- files ---------------------------------------------------------------------------------------
@bulk.get("/$export-file/<job_id>/<name>")
def export_file(job_id: str, name: str) -> Response:
    """One NDJSON file, streamed from disk; for an elderly-care client, only the lines it may
    still see.  No ``Expires`` here (the manifest says it): beside ``no-store`` it would only
    invite a cache to reason about keeping health data.

    The body is a :class:`Delivery`, so that the audit trail records, besides the request,
    whether the file reached the client whole (``gateway/api/audit.py``).  The messages file
    (the parameters a lenient kick-off ignored) is worded as the download asks.  That costs
    ``send_file``'s zero-copy sendfile: the bytes pass through Python (docs/api.md, Files)."""
    exports, rules = _exports(), services().repository.access()
    if name == MESSAGES_FILE:  # worded in the language of this download
        body, headers = Delivery(exports.messages(job_id, language())), {}
    elif rules.restricted:
        body = Delivery(exports.visible_lines(job_id, name, rules))
        headers = {}
    else:
        path = exports.file(job_id, name)
        size = path.stat().st_size
        body, headers = Delivery(file_chunks(str(path)), size), {"Content-Length": str(size)}
    if request.method == "GET":  # a HEAD sends no body: nothing is delivered
        g.delivery = body
    return Response(body, mimetype=NDJSON, headers=headers)
