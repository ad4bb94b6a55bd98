"""The token endpoint's decisions and the check of every bearer token (no HTTP here).

SMART Backend Services: a client sends ``grant_type=client_credentials`` with a JWT assertion it
signed with its private key (``private_key_jwt``, RS384/ES384; ``iss`` = ``sub`` = its id,
``aud`` = the token endpoint, ``exp`` at most five minutes ahead, a ``jti`` never used before),
or, in development only, its id and secret (``client_secret_basic``).  It gets an access token
valid five minutes: an HS256 JWT signed with a key kept in the store, so any worker accepts a
token any other issued.  Every request is checked against the client's status (see below), so
revoking a client stops its tokens long before they expire.  All JOSE work is pyjwt's.

A client sends the same token with every request for five minutes, and checking its signature
and claims cost more than the rest of a read; so each worker remembers the tokens it has
verified (a bounded map of token → principal and expiry), and checks the expiry on every
request.  Reading the client's status cost as much as the read itself on PostgreSQL (a round
trip), so a worker trusts an active status for ``client_status_ms`` (one second by default):
a revoked client's tokens stop working within that time, not when they expire.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from functools import cache
from typing import Any

import jwt

from gateway.config import Config
from gateway.messages import Worded
from gateway.security.clients import ASSERTION_ALGORITHMS, KeyRefused, hash_secret, verify_secret, verifying_key
from gateway.security.principal import Principal
from gateway.security.scopes import ScopeError, grant, parse_scopes, stored_scopes, within_role
from gateway.storage.security_tables import ClientRow
from gateway.storage.store import Store

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: lifetime of an access token, and the longest an assertion may be valid ahead
TOKEN_SECONDS = 300
MAX_ASSERTION_SECONDS = 300
#: clock skew tolerated between the client and the gateway
LEEWAY_SECONDS = 30
ACCESS_ALGORITHM = "HS256"
_KEY_NAME = "access-token-hs256"
#: verified tokens a worker remembers (least recently used forgotten first)
VERIFIED_TOKENS = 4096
#: the largest token request read (64 KiB): an assertion signed with a 4096-bit RSA key is under
#: 2 KB, and the endpoint is open to anyone before any credential is verified, so a body the
#: size of a FHIR upload would be decoded, parsed and hashed for nothing (a 40 MB assertion
#: held a worker 14 s before its signature failed)
TOKEN_REQUEST_BYTES = 64 * 1024
#: assertion headers naming a key elsewhere (RFC 7515 §4.1.2-4.1.6): a client's keys are the
#: JWKS it registered, so an assertion pointing at another key is refused, not ignored
KEY_HEADERS = ("jku", "jwk", "x5u", "x5c")


#: refusals a client is told apart only in the audit trail: answered alike, they would
#: otherwise tell an unauthenticated caller which client ids are registered
INDISTINCT = frozenset({"auth.unknown-client", "auth.assertion-signature", "auth.bad-secret"})


@cache
def _decoy_hash() -> str:
    """A secret hash no secret matches, checked when the client is unknown (made on first use:
    scrypt is slow on purpose)."""
    return hash_secret(secrets.token_urlsafe(32))


def _jwt_problem(error: jwt.PyJWTError) -> Worded:
    """What is wrong with an assertion, in the catalog's words: PyJWT's own message is English
    and went whole into the Chinese description.  Of a problem the catalog does not name (a
    later PyJWT's), only that the assertion breaks the rules of a JWT."""
    if isinstance(error, jwt.MissingRequiredClaimError):
        return Worded("jwt.missing-claim", claim=error.claim)
    if isinstance(error, jwt.ImmatureSignatureError):
        return Worded("jwt.not-yet-valid")
    if isinstance(error, jwt.InvalidIssuedAtError):
        return Worded("jwt.bad-issued-at")
    if isinstance(error, jwt.InvalidIssuerError):
        return Worded("jwt.bad-issuer")
    if isinstance(error, jwt.DecodeError):
        return Worded("jwt.unreadable")
    return Worded("jwt.other")


class OAuthError(Exception):
    """A refused token request: the OAuth ``error`` code, its HTTP status and a catalogued
    message for ``error_description``.  ``invalid_client`` is a 400 here: only a client that
    authenticated with the Authorization header is answered 401, with that header's scheme
    (RFC 6749 §5.2), which the HTTP layer knows."""

    def __init__(self, error: str, message_id: str, status: int = 400, **params: Any) -> None:
        super().__init__(f"{error}: {message_id} {params}")
        self.error, self.message_id, self.status, self.params = error, message_id, status, params


class Unauthenticated(Exception):
    """A bearer token that does not authenticate (absent, malformed, expired, revoked client)."""

    def __init__(self, message_id: str, **params: Any) -> None:
        super().__init__(message_id)
        self.message_id, self.params = message_id, params


class Authority:
    """Issues access tokens and turns them back into principals, for one store and config."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self._key: bytes | None = None
        #: token → (principal, expiry as a Unix time), for tokens whose signature checked out
        self._known_tokens: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._known_guard = threading.Lock()
        #: client → when (time.monotonic) its status was last read as active
        self._active_since: dict[str, float] = {}

    @property
    def auth_methods(self) -> list[str]:
        return ["private_key_jwt"] + (["client_secret_basic"] if self.config.allow_client_secret else [])

    def key(self) -> bytes:
        """The shared HS256 key, created in the store by whichever worker asks first."""
        if self._key is None:
            with self.store.transaction() as tx:
                self._key = tx.security.server_key(_KEY_NAME, secrets.token_urlsafe(48)).encode()
        return self._key

    # -- the token endpoint ------------------------------------------------------------------
    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> tuple[dict[str, Any], Principal]:
        """The token response for a form-encoded request (and its HTTP Basic credentials), and
        the principal it authenticated."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "auth.missing-parameter", parameter="grant_type")
        if grant_type != "client_credentials":
            raise OAuthError("unsupported_grant_type", "auth.unsupported-grant-type", grant_type=grant_type)
        assertion = form.get("client_assertion")
        if assertion and basic:
            raise OAuthError("invalid_request", "auth.two-methods")
        if assertion:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                raise OAuthError("invalid_client", "auth.assertion-type", expected=ASSERTION_TYPE)
            client = self._asserted_client(assertion)
        elif basic:
            client = self._secret_client(*basic)
        else:
            raise OAuthError("invalid_client", "auth.no-credentials")
        named = form.get("client_id")
        if named is not None and named != client.id:  # RFC 7521 §4.2: it MUST name the same client
            raise OAuthError("invalid_client", "auth.client-id-mismatch", named=named, client=client.id)
        try:
            requested = parse_scopes(form.get("scope", ""))
        except ScopeError as exc:
            raise OAuthError("invalid_scope", "auth.bad-scope", detail=exc) from exc
        if not requested:
            raise OAuthError("invalid_scope", "auth.missing-parameter", parameter="scope")
        granted = " ".join(str(s) for s in grant(requested, within_role(client.role, stored_scopes(client.scopes))))
        if not granted:
            raise OAuthError("invalid_scope", "auth.scope-not-registered", scope=form.get("scope", ""))
        now = int(time.time())
        claims = {
            "iss": self.config.token_url,
            "aud": self.config.base_url,
            "sub": client.id,
            "org": client.organization,
            "role": client.role,
            "scope": granted,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self.key(), algorithm=ACCESS_ALGORITHM)
        answer = {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_SECONDS, "scope": granted}
        return answer, Principal(client.id, client.organization, frozenset(granted.split()), client.role)

    def _active(self, client_id: str) -> ClientRow:
        with self.store.reading() as tx:
            client = tx.security.client(client_id)
        if client is None or client.status != "active":
            raise OAuthError("invalid_client", "auth.unknown-client", client=client_id)
        return client

    def _secret_client(self, client_id: str, secret: str) -> ClientRow:
        if not self.config.allow_client_secret:
            raise OAuthError("invalid_client", "auth.secret-disabled")
        try:
            client: ClientRow | None = self._active(client_id)
        except OAuthError:
            client = None
        # one scrypt whoever asks (an unknown client, one with keys and no secret), so the time
        # of the answer does not tell which client ids are registered either
        stored = client.secret_hash if client is not None and client.secret_hash else None
        matches = verify_secret(secret, stored or _decoy_hash())
        if client is None:
            raise OAuthError("invalid_client", "auth.unknown-client", client=client_id)
        if stored is None or not matches:
            raise OAuthError("invalid_client", "auth.bad-secret", client=client_id)
        return client

    def _asserted_client(self, assertion: str) -> ClientRow:
        """The client whose registered key signed this assertion, once every claim is right
        and its jti is recorded as used."""
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_client", "auth.assertion-invalid", detail=_jwt_problem(exc)) from exc
        algorithm = header.get("alg")
        if algorithm not in ASSERTION_ALGORITHMS:
            raise OAuthError("invalid_client", "auth.assertion-algorithm", alg=algorithm)
        if not isinstance(header.get("kid"), str) or not header["kid"] or header.get("typ") != "JWT":
            raise OAuthError("invalid_client", "auth.assertion-header")
        elsewhere = next((name for name in KEY_HEADERS if name in header), None)
        if elsewhere is not None:
            raise OAuthError("invalid_client", "auth.assertion-key-header", header=elsewhere)
        client_id = unverified.get("iss")
        if not isinstance(client_id, str) or unverified.get("sub") != client_id:
            raise OAuthError("invalid_client", "auth.assertion-issuer")
        client = self._active(client_id)
        claims = self._verified(assertion, algorithm, header.get("kid"), client)
        if not isinstance(claims["exp"], int | float) or isinstance(claims["exp"], bool):
            # a NumericDate is a JSON number (RFC 7519); pyjwt also takes "1767000000"
            raise OAuthError("invalid_client", "auth.assertion-invalid", detail=Worded("jwt.exp-not-numeric"))
        if claims["exp"] > time.time() + MAX_ASSERTION_SECONDS + LEEWAY_SECONDS:
            raise OAuthError("invalid_client", "auth.assertion-too-long", limit=MAX_ASSERTION_SECONDS)
        with self.store.transaction() as tx:
            # remembered for as long as the assertion is accepted: its exp plus the leeway
            remembered_until = float(claims["exp"]) + LEEWAY_SECONDS
            fresh = tx.security.use_assertion(client_id, str(claims["jti"]), remembered_until)
        if not fresh:
            raise OAuthError("invalid_client", "auth.assertion-replayed", jti=claims["jti"])
        return client

    def _verified(self, assertion: str, algorithm: str, kid: Any, client: ClientRow) -> dict[str, Any]:
        keys = [k for k in (client.jwks or {}).get("keys", []) if k.get("kid") == kid]
        for jwk in keys:
            try:
                key = verifying_key(jwk, algorithm)
            except KeyRefused:
                continue  # a key of another type, use or algorithm than the assertion's, or too weak
            try:
                return jwt.decode(
                    assertion,
                    key,
                    algorithms=[algorithm],
                    audience=self.config.token_url,
                    issuer=client.id,
                    leeway=LEEWAY_SECONDS,
                    options={"require": ["iss", "sub", "aud", "exp", "jti"]},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError as exc:
                raise OAuthError("invalid_client", "auth.assertion-expired") from exc
            except jwt.InvalidAudienceError as exc:
                raise OAuthError("invalid_client", "auth.assertion-audience", aud=self.config.token_url) from exc
            except jwt.PyJWTError as exc:
                raise OAuthError("invalid_client", "auth.assertion-invalid", detail=_jwt_problem(exc)) from exc
        raise OAuthError("invalid_client", "auth.assertion-signature", client=client.id)

    # -- every request -----------------------------------------------------------------------
    def principal(self, token: str) -> Principal:
        """The principal of a valid access token whose client is still active."""
        principal = self._verify(token)
        checked = self._active_since.get(principal.client_id)
        now = time.monotonic()
        if checked is not None and now - checked < self.config.client_status_ms / 1000:
            return principal
        with self.store.reading() as tx:
            status = tx.security.client_status(principal.client_id)
        if status != "active":
            self._active_since.pop(principal.client_id, None)
            raise Unauthenticated("http.client-revoked", client=principal.client_id)
        self._active_since[principal.client_id] = now
        return principal

    def _verify(self, token: str) -> Principal:
        """The principal a token's signed claims name, verified once per token and worker."""
        with self._known_guard:
            known = self._known_tokens.get(token)
            if known is not None:
                self._known_tokens.move_to_end(token)
        if known is not None:
            principal, expires = known
            if time.time() >= expires:
                raise Unauthenticated("http.token-expired")
            return principal
        try:
            claims = jwt.decode(
                token,
                self.key(),
                algorithms=[ACCESS_ALGORITHM],
                audience=self.config.base_url,
                issuer=self.config.token_url,
                options={"require": ["sub", "exp", "scope", "org", "role"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("http.token-expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("http.token-invalid") from exc
        principal = Principal(claims["sub"], claims["org"], frozenset(claims["scope"].split()), claims["role"])
        with self._known_guard:
            self._known_tokens[token] = (principal, float(claims["exp"]))
            if len(self._known_tokens) > VERIFIED_TOKENS:
                self._known_tokens.popitem(last=False)
        return principal
