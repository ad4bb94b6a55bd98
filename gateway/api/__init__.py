"""The HTTP face of the gateway: the Flask application and its FHIR routes.

The only package that imports Flask.  Whatever goes wrong, the client gets an
OperationOutcome with the right status — never an HTML page, never a traceback; an
unexpected failure is logged with an incident number the client is given.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask.sessions import NullSession, SessionInterface, SessionMixin
from werkzeug.exceptions import (
    ClientDisconnected,
    HTTPException,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
)
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Request

from gateway.api import audit, auth, exchanges, measures
from gateway.api.bulk import bulk
from gateway.api.methods import method_refused
from gateway.api.negotiation import (
    FhirRequest,
    MalformedChunks,
    outcome_response,
    refuse_unanswerable_format,
    refuse_unreadable_text,
    too_large,
)
from gateway.api.reports import reports
from gateway.api.routes import fhir
from gateway.fhir.errors import FhirError, store_failure
from gateway.fhir.repository import ID
from gateway.security.principal import acting
from gateway.services import Services
from gateway.storage import patience
from gateway.storage.store import StoreError

log = logging.getLogger("yiyang.api")
#: seconds a client answered 503 ``http.store-busy`` should wait before sending the request
#: again: the store already waited for what held it (a lock, a connection), so at once would
#: mostly meet the same crowd
STORE_RETRY_AFTER = "5"


class _NoSessions(SessionInterface):
    """The gateway keeps no sessions (each request carries its bearer token), yet Flask looked
    for a session cookie's signing key and made an empty null session for every request: one
    null session, shared, serves them all (its writes are refused as ever)."""

    _none = NullSession()

    def open_session(self, app: Flask, request: Request) -> SessionMixin:
        return self._none


class FhirIdConverter(BaseConverter):
    """A path part that is a FHIR id (R4 datatypes.html#id): never an operation (``$…``) nor
    an interaction of the type (``_history``, ``_search``)."""

    regex = ID.pattern


class Gateway(Flask):
    """Flask with the gateway's request class (see :class:`FhirRequest`), less what every
    request repeated for nothing.  For every hook and view Flask asks whether it is a coroutine
    function (seven ``inspect`` calls a read); the gateway has none.  And it made each request a
    session of its own (:class:`_NoSessions`)."""

    request_class = FhirRequest
    session_interface = _NoSessions()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func


def build_app(services: Services, *, secure: bool = True) -> Flask:
    """The app over ``services``.  ``secure=False`` leaves out authentication, rate limits,
    security headers and the audit trail: it exists only so that ``bench/server.py`` can
    measure what they cost, and is deliberately no configuration setting — no deployment
    can switch security off."""
    app = Gateway("yiyang", static_folder=None)  # no files served: every route is the API's
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # OPTIONS is no FHIR interaction: a 405 like any other
    # "//Patient" is no route: werkzeug would answer it with a redirect and an HTML body
    app.url_map.merge_slashes = False
    # a rule's defaults name what its path fixes (the Patient's read: routes.py), never a URL
    # to redirect the general rule's requests to: werkzeug looked for one at every match
    app.url_map.redirect_defaults = False
    app.url_map.converters["fhir_id"] = FhirIdConverter
    app.config.update(
        SERVICES=services,
        YIYANG=services.config,
        MAX_CONTENT_LENGTH=services.config.max_bytes,
        JSON_AS_ASCII=False,
    )
    waits = patience.Patience(services.stopping, services.config.graceful_timeout / 2)
    app.before_request(partial(_be_patient, waits))  # first: authentication may write too
    app.teardown_request(_stop_being_patient)
    if secure:
        auth.install(app)  # first: its before_request authenticates every route registered below
        audit.install(app)  # records every request (and masks logs); serves /fhir/AuditEvent
    exchanges.install(app)  # records every request as an exchange, its content judged
    app.before_request(refuse_unreadable_text)
    app.before_request(refuse_unanswerable_format)
    app.before_request(_act_for_the_principal)
    app.teardown_request(_stop_acting)
    app.register_blueprint(fhir)
    app.register_blueprint(bulk)
    app.register_blueprint(reports)
    measures.install(app)
    app.register_error_handler(FhirError, _fhir_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StoreError, _store_error)
    app.register_error_handler(Exception, _internal_error)
    proxies = services.config.trusted_proxies
    if proxies:
        # outermost, so every hook and layer reads the client's address as ``remote_addr``;
        # only the address: links are written from YIYANG_PUBLIC_BASE, never from headers
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=0, x_host=0, x_port=0, x_prefix=0)  # type: ignore[method-assign]
    return app


def _be_patient(waits: patience.Patience) -> None:
    """A request waiting for another process's lock on the store gives up half the worker's
    grace after it is told to stop (``gateway/storage/patience.py``): answered 503, rather than
    killed with its worker, unanswered and unaudited; a lock let go sooner lets it finish.
    The app's ``waits`` is bound to the hook and ``g`` resolved once: looked up through
    Flask's ``current_app`` and ``g`` proxies, the hook and its teardown cost 12.3 µs a
    request, 4.8 µs so (best of seven turns on a loaded machine)."""
    g._get_current_object().patience = patience.be_patient(waits)


def _stop_being_patient(_: BaseException | None) -> None:
    token = g._get_current_object().pop("patience", None)
    if token is not None:
        patience.reset(token)


def _act_for_the_principal() -> None:
    """Lets the layers below (no Flask) know whom they act for: the principal the
    authentication hook put in ``g`` (None on an app without security)."""
    state = g._get_current_object()  # one context-proxy lookup: this runs every request
    state.acting = acting.set(state.get("principal"))


def _stop_acting(_: BaseException | None) -> None:
    """The principal of a request must not outlive it: the thread serves the next request,
    or (the development server, the tests) runs the command line's code next."""
    token = g._get_current_object().pop("acting", None)  # one proxy lookup: this runs every request
    if token is not None:
        acting.reset(token)


def _fhir_error(error: FhirError) -> Response:
    """A refused or failed request as its OperationOutcome, or as an OAuth error at the token
    endpoint, whose clients read nothing else (a form byte that is no UTF-8, a NUL in the URL:
    refused before any route runs; a store that fails while the client is looked up)."""
    if request.endpoint == "auth.token":
        return auth.token_request_refusal(error)
    return outcome_response(error)


def _http_error(error: HTTPException) -> object:
    """Werkzeug's own refusals (no route, wrong method, body too large) as OperationOutcomes,
    or as OAuth errors at the token endpoint, whose clients read nothing else."""
    if request.endpoint == "auth.token":
        return auth.token_refusal(error)
    if isinstance(error, NotFound):
        found = FhirError(404, "http.unknown-route", method=request.method, path=request.path)
    elif isinstance(error, MethodNotAllowed):
        found = method_refused()
    elif isinstance(error, RequestEntityTooLarge):
        message_id, params = too_large()
        found = FhirError(413, message_id, **params)
    elif isinstance(error, MalformedChunks):  # sent whole, framed wrongly: not cut short
        found = FhirError(400, "http.body-bad-chunk")
    elif isinstance(error, ClientDisconnected) and isinstance(error.__context__, (TimeoutError, BlockingIOError)):
        # werkzeug words the worker socket's read timeout (the kernel's: EAGAIN, a
        # BlockingIOError, gateway/cli/workers.py) as a disconnect: the client is still
        # there, its body stalled for YIYANG_WORKER_TIMEOUT seconds (RFC 9110 §15.5.9)
        found = FhirError(408, "http.body-timeout", seconds=current_app.config["YIYANG"].worker_timeout)
    elif isinstance(error, ClientDisconnected) and request.content_length is None:  # chunked
        found = FhirError(400, "http.body-cut-short-stream")
    elif isinstance(error, ClientDisconnected):  # gunicorn ends the stream where the client did
        found = FhirError(400, "http.body-cut-short", length=request.content_length)
    else:  # werkzeug's description is English: the status says what went wrong
        status = error.code or 500
        found = FhirError(status, "http.request-refused", method=request.method, path=request.path, http_status=status)
    return outcome_response(found)


def _store_error(error: StoreError) -> object:
    """A store busy past its wait (SQLite's lock, no pooled PostgreSQL connection free, a
    deadlock retried in vain): 503, and when to send the request again (RFC 9110 §10.2.3)."""
    response = _fhir_error(store_failure(error, f"{request.method} {request.path}"))
    response.headers["Retry-After"] = STORE_RETRY_AFTER
    return response


def _internal_error(error: Exception) -> object:
    incident = uuid.uuid4().hex[:12]
    log.exception("incident %s: %s %s", incident, request.method, request.path)
    return _fhir_error(FhirError(500, "http.internal", incident=incident))
