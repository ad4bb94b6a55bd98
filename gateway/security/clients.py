"""What a valid client registration is: its role, its scopes, its public keys or its secret.

The registry rows live in the store (``gateway/storage/security_tables.py``); the command line
(``yiyang client``) and ``serve --demo`` register through :func:`register` so both apply the
same checks.  A JWKS must hold public keys only: a private key pasted by mistake is refused
rather than stored beside health data.  A secret is kept only as a salted scrypt hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

import jwt

from gateway.security.scopes import parse_scopes
from gateway.storage.store import Store

#: whom a client may see is decided by its role (gateway/security/access.py), not by its scopes
ROLES = ("hospital", "elderly-care", "auditor", "operator")
#: the signing algorithms private_key_jwt accepts (SMART Backend Services: RS384 and ES384)
ASSERTION_ALGORITHMS = ("RS384", "ES384")
#: JWK members that only a private key has
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: scrypt cost: ~50 ms per check, acceptable for the development-only secret flow
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_SECRET_LENGTH = 16


class RegistrationError(ValueError):
    """A registration the gateway refuses; the message says why (the CLI words it)."""


def check_scopes(text: str) -> str:
    """The scopes as they will be stored: parsed (v1 translated to v2), space-separated."""
    try:
        scopes = parse_scopes(text)
    except ValueError as exc:
        raise RegistrationError(str(exc)) from exc
    if not scopes:
        raise RegistrationError("at least one scope is needed, e.g. system/Patient.rs")
    return " ".join(dict.fromkeys(str(scope) for scope in scopes))


def check_jwks(document: Any) -> dict[str, Any]:
    """A JWK Set of public RSA or EC (P-384) keys usable with RS384/ES384."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise RegistrationError('a JWKS is a JSON object {"keys": [...]} with at least one key')
    for index, key in enumerate(keys):
        if not isinstance(key, dict):
            raise RegistrationError(f"key {index} is not a JSON object")
        if _PRIVATE_MEMBERS & key.keys():
            raise RegistrationError(f"key {index} is a private key; register the public key only")
        if key.get("kty") not in ("RSA", "EC") or (key.get("kty") == "EC" and key.get("crv") != "P-384"):
            raise RegistrationError(f"key {index} must be an RSA key or an EC key on P-384 (for RS384/ES384)")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise RegistrationError(f"key {index} has no kid: an assertion names the key it is signed with")
        if key.get("alg") not in (None, *ASSERTION_ALGORITHMS):
            raise RegistrationError(f"key {index} names alg {key.get('alg')}; only RS384 and ES384 are accepted")
        try:
            jwt.PyJWK(key, "RS384" if key["kty"] == "RSA" else "ES384")
        except jwt.PyJWTError as exc:
            raise RegistrationError(f"key {index} cannot be read: {exc}") from exc
    return {"keys": keys}


def hash_secret(secret: str) -> str:
    if len(secret) < MIN_SECRET_LENGTH:
        raise RegistrationError(f"a client secret needs at least {MIN_SECRET_LENGTH} characters")
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
        raise RegistrationError("give exactly one of a JWKS (private_key_jwt) or a secret (development only)")
    if jwks is not None:
        return check_jwks(jwks), None
    return None, hash_secret(secret or "")


def register(
    store: Store, client_id: str, organization: str, role: str, scopes: str, jwks: Any | None, secret: str | None
) -> bool:
    """Register a client; False when the id is already registered (nothing is changed then:
    a new key is a rotation, which says so)."""
    if role not in ROLES:
        raise RegistrationError(f"role must be one of {', '.join(ROLES)}")
    if not client_id or not organization:
        raise RegistrationError("a client needs an id and an organisation")
    stored_scopes = check_scopes(scopes)
    keys, secret_hash = credentials(jwks, secret)
    with store.transaction() as tx:
        return tx.security.put_client(client_id, organization, role, stored_scopes, keys, secret_hash)
