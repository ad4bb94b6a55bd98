"""External code systems that R4's required bindings name whole, checked without a list.

* ``mimetypes`` (``Attachment.contentType``, ``Binary.contentType``) is every code of
  ``urn:ietf:bcp:13``, which cannot be enumerated but has a grammar: a registered top-level type
  (IANA's list: RFC 6838 §4.2, ``font`` from RFC 8081, ``haptics`` from RFC 9695) and a
  subtype, both restricted names (RFC 6838 §4.2), optionally followed by ``; name=value``
  parameters (RFC 2045 §5.1), e.g. ``text/plain; charset=UTF-8``;
* ``currencies`` (``Money.currency``) is ISO 4217 (``urn:iso:std:iso:4217``), whose codes come
  from pycountry, which tracks the ISO lists release by release;
* ``ucum-units`` (the evidence resources' ``unitOfMeasure``) is every UCUM expression
  (``http://unitsofmeasure.org``), decided by UCUM's grammar (``ucum.is_code``).

A Quantity (or Age, Count, Distance, Duration) whose ``system`` is UCUM claims its ``code`` is
a UCUM expression whatever binds it: :func:`check_quantity_code` holds it to the grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

import pycountry

from conformance import ucum
from conformance.issues import IssueList

TOP_LEVEL_TYPES = frozenset(
    {"application", "audio", "example", "font", "haptics", "image", "message", "model", "multipart", "text", "video"}
)
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(
    rf"(?P<type>{_RESTRICTED_NAME})/{_RESTRICTED_NAME}"
    rf"(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\]|\\.)*\"))*"
)


def is_media_type(code: str) -> bool:
    match = _MEDIA_TYPE.fullmatch(code)
    return match is not None and match["type"].lower() in TOP_LEVEL_TYPES


@cache
def _currencies() -> frozenset[str]:
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


def is_currency(code: str) -> bool:
    return code in _currencies()


#: value set URL → (the code system it is all of, the test a code must pass)
EXTERNAL_VALUE_SETS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "http://hl7.org/fhir/ValueSet/mimetypes": ("urn:ietf:bcp:13", is_media_type),
    "http://hl7.org/fhir/ValueSet/currencies": ("urn:iso:std:iso:4217", is_currency),
    "http://hl7.org/fhir/ValueSet/ucum-units": (ucum.UCUM, ucum.is_code),
}


def check_quantity_code(quantity: dict[str, Any], path: str, issues: IssueList) -> None:
    """``mmHgX`` with system UCUM is no unit: a reader converting or comparing it would fail."""
    code = quantity.get("code")
    if quantity.get("system") == ucum.UCUM and isinstance(code, str) and not ucum.is_code(code):
        issues.error("code.invalid-ucum", f"{path}.code", code=code[:80])
