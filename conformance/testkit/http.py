"""The test kit's one door to the network: a ``requests`` session that records every request
(method, URL, status) so each test can show what it sent, and that fetches SMART Backend
Services tokens.  Kept alone so that the architecture test can allow ``requests`` here and
nowhere else below the gateway."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: seconds to wait for one answer: a bulk export kick-off or a large transaction may be slow
TIMEOUT = 120


@dataclass(frozen=True, slots=True)
class Sent:
    """One request a test made and the status it got (None when no answer came)."""

    method: str
    url: str
    status: int | None


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back: status, headers (lower-case names) and the body parsed as JSON when it
    is JSON (None otherwise), with the raw text for NDJSON and error messages."""

    status: int
    headers: dict[str, str]
    body: Any
    text: str


@dataclass(frozen=True, slots=True)
class KeyCredentials:
    """A registered client's id and private key (PEM) for private_key_jwt (RS384 or ES384)."""

    client_id: str
    private_key: str
    kid: str | None = None

    @property
    def algorithm(self) -> str:
        """ES384 for an EC key, RS384 for an RSA key (ValueError when it is neither)."""
        return "ES384" if _is_ec(self.private_key) else "RS384"


def _is_ec(pem: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("the key is neither RSA nor EC")
    return isinstance(key, ec.EllipticCurvePrivateKey)


@dataclass
class Http:
    """Requests to one FHIR base; ``log`` collects what was sent until the runner takes it."""

    base: str
    token: str | None = None
    #: the report's language, asked of the server (Accept-Language) so that the refusals a
    #: failure quotes are worded in it too
    language: str | None = None
    log: list[Sent] = field(default_factory=list)
    #: answers that were no FHIR answer (a 5xx, a body that does not parse): the server is
    #: broken, which is a test's error, not a check failing
    broken: list[str] = field(default_factory=list)
    session: requests.Session = field(default_factory=requests.Session)
    #: with key credentials the token is fetched again before it expires (a run may be long)
    login: tuple[KeyCredentials, str] | None = None
    renew_at: float = 0.0

    def sign_in(self, credentials: KeyCredentials, scope: str) -> tuple[int, Any]:
        """Fetch the kit's token with private_key_jwt and keep fetching it as it expires;
        returns the token answer's status and body (no token: the caller says why)."""
        status, token, body = self.backend_token(credentials, scope)
        if token is not None:
            self.token, self.login = token, (credentials, scope)
            lifetime = body.get("expires_in", 300) if isinstance(body, dict) else 300
            self.renew_at = time.monotonic() + max(float(lifetime) - 60, 10)
        return status, body

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base.rstrip('/')}/{path.lstrip('/')}"

    def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None | bool = True,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        """One request; ``token`` True uses the kit's token, False or None sends none, a string
        sends that one (a narrower token, another client's)."""
        if token is True and self.login is not None and time.monotonic() >= self.renew_at:
            self.sign_in(*self.login)
        sent_headers = {"Accept": "application/fhir+json", **(headers or {})}
        if self.language:
            sent_headers.setdefault("Accept-Language", self.language)
        bearer = self.token if token is True else token or None
        if bearer:
            sent_headers["Authorization"] = f"Bearer {bearer}"
        if json is not None:
            sent_headers.setdefault("Content-Type", "application/fhir+json")
        url = self.url(path)
        prepared = requests.Request(method, url, headers=sent_headers, json=json, data=data, params=params).prepare()
        try:
            response = self.session.send(prepared, timeout=TIMEOUT)
        except requests.RequestException:
            self.log.append(Sent(method, prepared.url or url, None))
            raise
        self.log.append(Sent(method, prepared.url or url, response.status_code))
        body = _json(response)
        if _unreadable(response, body):
            media = response.headers.get("Content-Type", "-")
            self.broken.append(f"{method} {prepared.url or url}: {response.status_code} {media}")
        return Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()}, body, response.text)

    def take_log(self) -> list[Sent]:
        taken, self.log = self.log, []
        return taken

    def take_broken(self) -> list[str]:
        taken, self.broken = self.broken, []
        return taken

    def backend_token(self, credentials: KeyCredentials, scope: str) -> tuple[int, str | None, Any]:
        """SMART Backend Services: the token endpoint from ``.well-known/smart-configuration``,
        a signed assertion, and the client_credentials grant.  Returns (status, token, body)."""
        discovery = self.send("GET", ".well-known/smart-configuration", token=None)
        endpoint = (discovery.body or {}).get("token_endpoint") if isinstance(discovery.body, dict) else None
        if not endpoint:
            return discovery.status, None, discovery.body
        now = int(time.time())
        claims = {
            "iss": credentials.client_id,
            "sub": credentials.client_id,
            "aud": endpoint,
            "exp": now + 240,
            "jti": uuid.uuid4().hex,
        }
        header = {"kid": credentials.kid} if credentials.kid else None
        signed = jwt.encode(claims, credentials.private_key, algorithm=credentials.algorithm, headers=header)
        form = {
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        }
        answer = self.send("POST", endpoint, token=None, data=form, headers={"Accept": "application/json"})
        body = answer.body if isinstance(answer.body, dict) else {}
        return answer.status, body.get("access_token"), answer.body


def _unreadable(response: requests.Response, body: Any) -> bool:
    """A server error, or a body that is no JSON document (NDJSON files are lines of JSON)."""
    media = response.headers.get("Content-Type", "")
    if response.status_code >= 500:
        return True
    if not response.text.strip() or "ndjson" in media:
        return False
    return body is None


def _json(response: requests.Response) -> Any:
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        return response.json()
    except ValueError:
        return None
