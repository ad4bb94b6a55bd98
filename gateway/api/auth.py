"""Authentication on every request, the SMART token endpoint and discovery, rate limits and
security headers.

One ``before_request`` hook (an interceptor, so no route can forget it) lets through only the
public endpoints — ``/fhir/metadata``, ``/fhir/.well-known/smart-configuration`` and the token
endpoint — and otherwise turns the bearer token into a :class:`Principal` in ``flask.g.principal``,
spends one token of the client's rate-limit bucket and checks the scopes the matched endpoint
needs (``gateway/security/scopes.py`` holds the table).  The OAuth logic itself is in
``gateway/security/tokens.py``; this module only translates HTTP.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import unquote_plus

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.wrappers import Request

from gateway.api.bulk import kick_off_arguments, kick_off_types, requested_job
from gateway.api.methods import allowed, endpoints, refusing
from gateway.api.negotiation import if_none_exist, language, too_large
from gateway.api.serving import services
from gateway.fhir.errors import FhirError
from gateway.fhir.export_filters import PARAMETER as TYPE_FILTER
from gateway.fhir.export_filters import TypeFilter, written_searches
from gateway.fhir.parameters import listed_types, query_pairs
from gateway.messages import text
from gateway.security.access import AUDIT_ENDPOINTS, AUDIT_READERS, OPERATOR, OPERATOR_ENDPOINTS
from gateway.security.principal import Principal
from gateway.security.rate_limit import RateLimiter
from gateway.security.scopes import (
    PUBLIC,
    Grants,
    bundle_entry_needs,
    criteria_needs,
    needs,
    search_needs,
    type_filter_needs,
)
from gateway.security.tokens import ASSERTION_TYPE, INDISTINCT, TOKEN_REQUEST_BYTES, OAuthError, Unauthenticated
from gateway.services import Services

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

auth = Blueprint("auth", __name__, url_prefix="/fhir")
#: the endpoints whose query string is a condition (a conditional update, patch or delete)
CONDITIONAL = frozenset({"fhir.conditional_update", "fhir.conditional_patch", "fhir.conditional_delete"})
#: the endpoints kicking off an export, by the scope of the job they start (its parameters,
#: by GET in the query string and by POST in the body, say which types it needs:
#: :func:`_export_needs`)
EXPORT_KICK_OFF_OF = {"system": "bulk.export_system", "Patient": "bulk.export_patients", "Group": "bulk.export_group"}
EXPORT_KICK_OFFS = frozenset(EXPORT_KICK_OFF_OF.values())
EXPORT_SCOPE_OF = {endpoint: scope for scope, endpoint in EXPORT_KICK_OFF_OF.items()}
#: the endpoints reading an export job's results: its status (the manifest) and its files
EXPORT_JOB_READS = frozenset({"bulk.export_status", "bulk.export_file"})
#: what SMART discovery offers; a client asks for the subset it needs
SCOPES_SUPPORTED = ["system/*.cruds", "system/*.rs", "system/*.cud", "system/*.s", "system/AuditEvent.rs"]
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)
#: nothing but the public discovery documents may be kept by a cache or proxy
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
CACHEABLE_PATHS = frozenset({"/fhir/metadata", "/fhir/.well-known/smart-configuration"})
#: RFC 6750 §3.1: a request that sent no bearer token is told the scheme and realm, no error code
BEARER_CHALLENGE = 'Bearer realm="yiyang"'
#: RFC 6749 §3.3 scope-tokens separated by spaces: what a challenge's scope="…" may hold
SCOPE_TOKENS = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*")


def install(app: Flask) -> None:
    """Put authentication, rate limiting and the security headers on every route of ``app``."""
    app.config["RATE_LIMITER"] = RateLimiter(app.config["YIYANG"].rate_limit_per_second)
    app.config["TOKEN_RATE_LIMITER"] = RateLimiter(app.config["YIYANG"].token_rate_limit_per_second)
    app.register_blueprint(auth)
    app.before_request(authenticate)
    app.after_request(challenge)
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]


# -- every request ---------------------------------------------------------------------------
def authenticate() -> None:
    """Who is asking (401 if nobody valid), whether they may ask this often (429) and whether
    their scopes allow this interaction (403).  Runs on every request, so Flask's context
    proxies are resolved once and the scope verdict is remembered per scope set and need."""
    asked, state, app = request._get_current_object(), g._get_current_object(), current_app._get_current_object()
    endpoint = asked.endpoint
    if endpoint == "auth.token":  # first of all hooks: none has read the body yet
        asked.max_content_length = TOKEN_REQUEST_BYTES
    if endpoint in PUBLIC:
        return
    if endpoint is None and isinstance(asked.routing_exception, MethodNotAllowed) and endpoints() <= PUBLIC:
        # a method a public path does not take (OPTIONS /metadata): its 405 and Allow tell what
        # the path's public routes tell anyone; a path with a protected route still asks first
        return
    environ = asked.environ  # what werkzeug's headers read, without their key translation
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise FhirError(401, "http.unauthorized")
    found: Services = app.config["SERVICES"]
    try:
        principal = found.authority.principal(token.strip())
    except Unauthenticated as exc:
        state.challenge = f'{BEARER_CHALLENGE}, error="invalid_token"'
        raise FhirError(401, exc.message_id, **exc.params) from exc
    state.principal = principal
    wait = app.config["RATE_LIMITER"].take(principal.client_id)
    if wait:
        state.retry_after = str(max(1, math.ceil(wait)))
        raise FhirError(429, "http.rate-limited", client=principal.client_id, limit=found.config.rate_limit_per_second)
    if endpoint is None:
        return  # no such route: the 404 follows, now that the caller is known
    view_args = asked.view_args or {}
    kind = view_args.get("kind")
    if kind is not None and not kind.startswith("$"):
        # no such type: its 404, not a 403 naming a scope (system/Foo.s) no client can hold
        found.repository.check_type(kind)
    missing = _missing(principal.scopes, _wanted(asked, endpoint, view_args, principal))
    if missing:
        _refuse_scope(missing, principal.client_id)
    # writes to the trail are refused alike for everyone (405 from audit.refuse), so only reads ask the role
    if endpoint.startswith(AUDIT_ENDPOINTS) and endpoint != "audit.refuse" and principal.role not in AUDIT_READERS:
        raise FhirError(403, "http.forbidden-role", role=principal.role, client=principal.client_id)
    if endpoint in OPERATOR_ENDPOINTS and principal.role != OPERATOR:  # the 主索引 staff's alone
        raise FhirError(403, OPERATOR_ENDPOINTS[endpoint], role=principal.role, client=principal.client_id)


def _wanted(asked: Request, endpoint: str, view_args: dict[str, Any], who: Principal) -> tuple[tuple[str, str], ...]:
    """The (type, permissions) pairs this request needs.  Most requests name no more than
    their route does (a read, a search of plain criteria): theirs are worked out once per
    endpoint and type (:func:`_route_needs`); a search's includes, chains and ``_has``, an
    export's ``_type`` and a condition's chains add the types they reach; an export's status
    and files need what its kick-off needed (:func:`_job_needs`)."""
    args = asked.args
    if endpoint in EXPORT_KICK_OFFS:
        return _export_needs(endpoint, who)
    if endpoint in EXPORT_JOB_READS:
        return _job_needs(view_args["job_id"], who)
    if endpoint == "fhir.search":
        if asked.method == "GET" and not any(name[:1] == "_" or "." in name for name in args):
            return _route_needs(endpoint, view_args.get("kind"))  # plain criteria: the type alone
        pairs = list(args.items(multi=True))
        if asked.method == "POST":
            pairs += list(asked.form.items(multi=True))
        return tuple(search_needs(view_args.get("kind", "*"), pairs, services().parameters.targets))
    present = "HTTP_IF_NONE_EXIST" in asked.environ  # (rarely: a conditional create's)
    if not present and endpoint not in CONDITIONAL:
        return _route_needs(endpoint, view_args.get("kind"))
    kind = view_args.get("kind")
    condition = if_none_exist(kind if endpoint == "fhir.create" else None) if present else None
    wanted = needs(endpoint, view_args, condition is not None)
    if endpoint in CONDITIONAL:
        condition = asked.query_string.decode()
    if condition:  # a chain in a condition searches the types it reaches
        criteria = query_pairs(condition.lstrip("?"))  # as the search reads them (a 400 as its)
        wanted += criteria_needs(view_args.get("kind", "*"), criteria, services().parameters.targets)
    return tuple(wanted)


def _export_needs(endpoint: str, who: Principal) -> tuple[tuple[str, str], ...]:
    """What an export kick-off needs: the types its ``_type`` names, and those the chains and
    ``_has`` of its ``_typeFilter`` searches reach, given by GET in the query string or by
    POST in a Parameters body (:func:`kick_off_arguments`, which the kick-off reads again
    without parsing the body twice): the query string alone refused ``system/*.rs`` to a
    client holding ``system/Observation.rs`` that posted ``_type=Observation``.  Without
    ``_type``, the types the client may read (:func:`kick_off_types`, those the job will
    hold; none: every type, refused) and those its ``_typeFilter`` searches filter."""
    given = kick_off_arguments().pairs
    types = [kind for name, value in given if name == "_type" for kind in listed_types(value)]
    written = written_searches(value for name, value in given if name == TYPE_FILTER)
    authorised = None if types else kick_off_types(EXPORT_SCOPE_OF[endpoint], who)
    if authorised is not None:
        types = authorised + [search.kind for search in written if search.kind not in authorised]
    return _kick_off_needs(endpoint, types, written)


def _kick_off_needs(endpoint: str, types: list[str], written: list[TypeFilter]) -> tuple[tuple[str, str], ...]:
    """What a kick-off of ``endpoint`` with these ``_type`` values and ``_typeFilter`` searches needs."""
    searches = [(kind, query_pairs(criteria, TYPE_FILTER)) for kind, criteria in written]  # as the job reads them
    return tuple(needs(endpoint, {}, False, types) + type_filter_needs(searches, services().parameters.targets))


def _job_needs(job_id: str, who: Principal) -> tuple[tuple[str, str], ...]:
    """What the status and files of an export need: what its kick-off needed (IG v2, Privacy
    and Security Considerations: a token whose scopes cover every resource exported).  A
    token narrowed since the kick-off (a registration narrowed to Patients) fetched the
    readings exported under the wider one.  Nothing for a job that is not the client's: its
    404 follows."""
    job = requested_job(job_id, who)
    if job is None:
        return ()
    return _kick_off_needs(EXPORT_KICK_OFF_OF[job.scope.partition("/")[0]], job.types or [], job.type_filters)


@lru_cache(maxsize=4096)
def _route_needs(endpoint: str, kind: str | None) -> tuple[tuple[str, str], ...]:
    """What a request needs that names no more than its route: the same for every read of a
    type, or every search of its plain criteria (working it out again was a fifth of a
    read's authentication)."""
    if endpoint == "fhir.search":
        return ((kind or "*", "s"),)
    return tuple(needs(endpoint, {"kind": kind} if kind is not None else {}))


def _refuse_scope(missing: str, client_id: str) -> NoReturn:
    """403 naming the missing scope, in the OperationOutcome and in the bearer challenge
    (RFC 6750 §3.1 ``insufficient_scope``), so an OAuth client learns which scope to ask for.
    The scope is made of what the request named (a type in its path or a ``_has``): one that
    is no scope-token (RFC 6749 §3.3: no quote, backslash or control character) stays out of
    the header, which it would break, and is told in the OperationOutcome alone."""
    named = f', scope="{missing}"' if SCOPE_TOKENS.fullmatch(missing) else ""
    g.challenge = f'{BEARER_CHALLENGE}, error="insufficient_scope"{named}'
    raise FhirError(403, "http.forbidden-scope", scope=missing, client=client_id)


@lru_cache(maxsize=4096)
def _missing(scopes: frozenset[str], wanted: tuple[tuple[str, str], ...]) -> str | None:
    return _grants(scopes).missing(wanted)


def principal() -> Principal:
    """The authenticated party of this request (every non-public route has one)."""
    return g.principal


@lru_cache(maxsize=1024)
def _grants(scopes: frozenset[str]) -> Grants:
    return Grants(scopes)


#: what an app built without security (``create_app(secure=False)``, the benchmark's) grants:
#: no principal means no restriction, as ``Access(None)`` already has it
UNRESTRICTED = frozenset({"system/*.cruds"})


def grants(who: Principal | None = None) -> Grants:
    """The scopes of ``who`` (default: this request's principal), parsed once per scope set."""
    who = who or g.get("principal")
    return _grants(who.scopes if who is not None else UNRESTRICTED)


def scope_refusal(wanted: tuple[tuple[str, str], ...]) -> FhirError | None:
    """The 403 this request's principal would get for an interaction needing ``wanted``, or
    None: ``$validate`` tells it as the refusal of the write it foretells, rather than
    rehearsing a write the client may not make (and reading the archive for it)."""
    missing = grants().missing(wanted)
    if missing is None:
        return None
    who = g.get("principal")
    return FhirError(403, "http.forbidden-scope", scope=missing, client=who.client_id if who is not None else "")


def check_bundle_entry(method: str, kind: str, resource_id: str | None, criteria: str | None) -> None:
    """A Bundle entry is allowed only as the same interaction would be on its own (403 otherwise).
    The audit trail is not in the archive a Bundle reads: a read of it would find nothing where
    ``/AuditEvent`` answers, so it is refused for what it is, whoever asks (a write to it is
    refused as the Bundle is read, :meth:`~gateway.fhir.bundles.Bundles.process`)."""
    if kind == "AuditEvent" and method in ("GET", "HEAD"):  # a HEAD entry reads, as its GET
        raise FhirError(400, "http.audit-not-in-bundle", method=method)
    pairs = query_pairs(criteria) if criteria else None  # as the entry's search reads them (a 400 as its)
    missing = grants().missing(bundle_entry_needs(method, kind, resource_id, pairs, services().parameters.targets))
    if missing:
        _refuse_scope(missing, g.principal.client_id)


def challenge(response: Response) -> Response:
    """What a refused client needs to try again: the bearer challenge of a 401 (with
    ``invalid_token`` only when a token was sent) and of a 403 for a missing scope, and the
    Retry-After of a 429.  The token endpoint answers with challenges of its own."""
    status = response.status_code
    if status == 401 and request.endpoint != "auth.token":
        response.headers["WWW-Authenticate"] = g.get("challenge", BEARER_CHALLENGE)
    elif status == 403 and "challenge" in g:
        response.headers["WWW-Authenticate"] = g.challenge
    elif status == 429 and "retry_after" in g:
        response.headers["Retry-After"] = g.retry_after
    return response


class SecurityHeaders:
    """WSGI middleware: the security headers on every answer, and no caching of anything but
    public discovery.  At the WSGI level the headers are a plain list of tuples, so adding the
    same constant pairs costs a list extend per answer instead of werkzeug header lookups
    (about a tenth of what security costs a read).  A header a route set itself stands."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        fixed = SECURITY_HEADERS if environ.get("PATH_INFO") in CACHEABLE_PATHS else SECURITY_HEADERS + NO_STORE

        def hardened(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend(pair for pair in fixed if pair[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return self.app(environ, hardened)


# -- SMART Backend Services ------------------------------------------------------------------
@auth.get("/.well-known/smart-configuration")
def smart_configuration() -> Response:
    found = services()
    document = {
        "token_endpoint": found.config.token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": found.authority.auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": _capabilities(found.authority.auth_methods),
    }
    return Response(orjson.dumps(document), content_type="application/json")


def _capabilities(auth_methods: list[str]) -> list[str]:
    """SMART capabilities as they are: v1 scopes are accepted (translated to v2), and a client
    secret authenticates when the development secret flow is on."""
    symmetric = ["client-confidential-symmetric"] if "client_secret_basic" in auth_methods else []
    return ["client-confidential-asymmetric", *symmetric, "permission-v1", "permission-v2"]


@auth.post("/token")
def token() -> Response:
    """RFC 6749 §4.4 with RFC 7523 client authentication; answers and errors are plain OAuth
    JSON (not OperationOutcomes), as OAuth clients expect.  Before anything is verified, the
    asking address spends one token of its bucket (429 with Retry-After beyond it)."""
    wait = current_app.config["TOKEN_RATE_LIMITER"].take(request.remote_addr or "")
    if wait:
        limit = services().config.token_rate_limit_per_second
        refused = _oauth_error(OAuthError("temporarily_unavailable", "auth.rate-limited", 429, limit=limit))
        refused.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return refused
    basic = None
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            basic = basic_credentials(encoded)
        except OAuthError as exc:
            return _oauth_error(exc, basic=True)
    if request.mimetype != "application/x-www-form-urlencoded":
        return _oauth_error(OAuthError("invalid_request", "auth.form-needed"))
    form = request.form
    repeated = next((name for name in form if len(form.getlist(name)) > 1), None)
    if repeated is not None:  # RFC 6749 §3.2: which of two values would count is not ours to guess
        return _oauth_error(OAuthError("invalid_request", "auth.repeated-parameter", parameter=repeated))
    try:
        answer, client = services().authority.token(form.to_dict(), basic)
    except OAuthError as exc:
        return _oauth_error(exc, basic is not None)
    g.principal = client  # the login's AuditEvent names the client it authenticated
    return Response(orjson.dumps(answer), content_type="application/json")


def basic_credentials(encoded: str) -> tuple[str, str]:
    """The client id and secret of HTTP Basic credentials (RFC 7617: base64 of ``id:secret``),
    each form-decoded as RFC 6749 §2.3.1 encodes it, or the ``invalid_client`` refusal saying
    why they cannot be read.  Werkzeug's parser answered None alike for base64 that is none and
    for an id that is no UTF-8, and both were told "client authentication is missing"."""
    try:
        raw = base64.b64decode(encoded.strip())
    except binascii.Error:
        raise OAuthError("invalid_client", "auth.basic-malformed") from None
    client_id, colon, secret = raw.partition(b":")
    if not colon:
        raise OAuthError("invalid_client", "auth.basic-malformed")
    try:  # a byte that is no UTF-8, sent raw or percent-encoded (%FF), was read as U+FFFD
        return unquote_plus(client_id.decode(), errors="strict"), unquote_plus(secret.decode(), errors="strict")
    except UnicodeDecodeError:
        raise OAuthError("invalid_client", "auth.basic-not-utf8") from None


@auth.route("/token", methods=["GET", "PUT", "PATCH", "DELETE", "OPTIONS"], endpoint="token_method")
@refusing
def token_method() -> Response:
    """405 in OAuth JSON, the only errors the token endpoint's clients read; OPTIONS included,
    which no other route takes (it is no FHIR interaction) and which was an OperationOutcome."""
    response = _oauth_error(OAuthError("invalid_request", "auth.post-only", 405))
    response.headers["Allow"] = allowed()
    return response


def token_refusal(error: HTTPException) -> Response:
    """Werkzeug's refusal of a token request (a body over the size limit) as OAuth JSON."""
    if isinstance(error, RequestEntityTooLarge):
        message_id, params = too_large()
        return _oauth_error(OAuthError("invalid_request", message_id, 413, **params))
    return _oauth_error(OAuthError("invalid_request", "auth.form-needed", error.code or 400))


#: the OAuth error code of a token request the gateway failed, by HTTP status (RFC 6749
#: §4.1.2.1 names them; anything else refused is an ``invalid_request``)
_FAILED = {500: "server_error", 503: "temporarily_unavailable"}


def token_request_refusal(error: FhirError) -> Response:
    """The gateway's own refusal of a token request (bytes that are no UTF-8, a NUL, made
    before the route runs) or its failure (the store), as the OAuth error its clients read."""
    code = _FAILED.get(error.status, "invalid_request")
    return _oauth_error(OAuthError(code, error.message_id, error.status, **error.params))


def _oauth_error(error: OAuthError, basic: bool = False) -> Response:
    """The OAuth error answer.  A refusal that would tell which client ids exist is worded
    alike for all of them; the audit trail keeps the precise reason.  A client that tried HTTP
    Basic and failed gets 401 with the Basic challenge (RFC 6749 §5.2); an assertion is no HTTP
    authentication scheme, so its refusal stays a 400, without a challenge to answer."""
    g.audit_reason = " ".join([error.error, error.message_id, *(f"{k}={v}" for k, v in error.params.items())])
    message_id = "auth.client-unauthenticated" if error.message_id in INDISTINCT else error.message_id
    description = text(message_id, language(), {**error.params, "assertion_type": ASSERTION_TYPE})
    unauthorized = basic and error.error == "invalid_client"
    response = Response(
        orjson.dumps({"error": error.error, "error_description": description}),
        status=401 if unauthorized else error.status,
        content_type="application/json",
    )
    if unauthorized:
        response.headers["WWW-Authenticate"] = 'Basic realm="yiyang"'
    return response
