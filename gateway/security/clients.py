"""What a valid client registration is: its role, its scopes, its public keys or its secret.

The registry rows live in the store (``gateway/storage/security_tables.py``); the command line
(``yiyang client``) and ``serve --demo`` register through :func:`register` so both apply the
same checks.  A JWKS must hold public keys only: a private key pasted by mistake is refused
rather than stored beside health data, and every key must be fit to verify an assertion
(:func:`verifying_key`, applied again when one is verified).  A secret is kept only as a salted
scrypt hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.messages import Worded
from gateway.security.scopes import ScopeError, parse_scopes
from gateway.storage.store import Store

#: whom a client may see is decided by its role (gateway/security/access.py), not by its scopes
ROLES = ("hospital", "elderly-care", "auditor", "operator")
#: the signing algorithm of each key type private_key_jwt accepts (SMART Backend Services)
ALGORITHM_OF = {"RSA": "RS384", "EC": "ES384"}
ASSERTION_ALGORITHMS = tuple(ALGORITHM_OF.values())
#: RFC 7518 §3.3: a key of at least 2048 bits MUST be used with RS384
MIN_RSA_BITS = 2048
#: JWK members that only a private key has
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: scrypt cost: ~50 ms per check, acceptable for the development-only secret flow
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_SECRET_LENGTH = 16


class RegistrationError(Worded, ValueError):
    """A registration the gateway refuses: a message id and its values, which the command
    line words in its operator's language (``str()`` is the English)."""


class KeyRefused(Worded, ValueError):
    """A JWK that may not verify an assertion; the message says why, after "key N"."""


def check_scopes(text: str) -> str:
    """The scopes as they will be stored: parsed (v1 translated to v2), space-separated."""
    try:
        scopes = parse_scopes(text)
    except ScopeError as exc:
        raise RegistrationError(exc.message_id, **exc.params) from exc
    if not scopes:
        raise RegistrationError("registration.no-scope")
    return " ".join(dict.fromkeys(str(scope) for scope in scopes))


def check_jwks(document: Any) -> dict[str, Any]:
    """A JWK Set of public RSA or EC (P-384) keys usable with RS384/ES384."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise RegistrationError("registration.bad-jwks")
    for index, key in enumerate(keys):
        if not isinstance(key, dict):
            raise RegistrationError("registration.key-not-object", index=index)
        if _PRIVATE_MEMBERS & key.keys():
            raise RegistrationError("registration.private-key", index=index)
        algorithm = ALGORITHM_OF.get(key.get("kty"))
        if algorithm is None:
            raise RegistrationError("registration.key-type", index=index)
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise RegistrationError("registration.no-kid", index=index)
        try:
            verifying_key(key, algorithm)
        except KeyRefused as exc:
            raise RegistrationError("registration.key-refused", index=index, reason=exc) from exc
    return {"keys": keys}


def verifying_key(jwk: dict[str, Any], algorithm: str) -> Any:
    """The public key of ``jwk`` to verify an ``algorithm`` signature with.  A key is used only
    as it says it may be (RFC 7517 §4.2 ``use``, §4.4 ``alg``) and only when strong enough
    (RFC 7518 §3.3-3.4): a key registered for encryption or for another algorithm would
    otherwise sign for its client all the same."""
    if jwk.get("use", "sig") != "sig":
        raise KeyRefused("registration.key-use", use=jwk["use"])
    if jwk.get("alg", algorithm) != algorithm:
        raise KeyRefused("registration.key-alg", alg=jwk["alg"], algorithm=algorithm)
    try:
        key = jwt.PyJWK(jwk, algorithm).key
    except jwt.PyJWTError as exc:
        raise KeyRefused("registration.key-unreadable", algorithm=algorithm, error=str(exc)) from exc
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise KeyRefused("registration.key-too-short", bits=key.key_size, minimum=MIN_RSA_BITS)
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, ec.SECP384R1):
        raise KeyRefused("registration.key-curve", curve=jwk.get("crv"))
    return key


def hash_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH:
        raise RegistrationError("registration.short-secret", minimum=MIN_SECRET_LENGTH)
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${encoded[0]}${encoded[1]}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Whether ``secret`` is the one hashed into ``stored`` (in constant time)."""
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(found, expected)


def credentials(jwks: Any | None, secret: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """(checked JWKS, secret hash): exactly one of the two is given."""
    if (jwks is None) == (secret is None):
        raise RegistrationError("registration.one-credential")
    if jwks is not None:
        return check_jwks(jwks), None
    return None, hash_secret(secret or "")


def register(
    store: Store, client_id: str, organization: str, role: str, scopes: str, jwks: Any | None, secret: str | None
) -> bool:
    """Register a client; False when the id is already registered (nothing is changed then:
    a new key is a rotation, which says so)."""
    if role not in ROLES:
        raise RegistrationError("registration.bad-role", roles=", ".join(ROLES))
    if not client_id or not organization:
        raise RegistrationError("registration.no-id")
    stored_scopes = check_scopes(scopes)
    keys, secret_hash = credentials(jwks, secret)
    with store.transaction() as tx:
        return tx.security.put_client(client_id, organization, role, stored_scopes, keys, secret_hash)
