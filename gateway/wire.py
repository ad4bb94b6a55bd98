"""FHIR on the wire: JSON and XML in, JSON and XML out, with the parser hardened.

JSON is read strictly: a key repeated in one object is refused (it would silently keep the
last value — a repeated ``resourceType`` once turned a Patient into an Observation), NaN and
Infinity are refused (FHIR JSON has no such numbers), and nesting is bounded so a hostile body
cannot exhaust the stack.  XML goes through lxml with DTDs, entities and network access
refused, then through :mod:`gateway.fhir_xml`, which applies the R4 XML rules with the R4 base
model (primitive ``value`` attributes, ``_element`` extensions, xhtml narrative).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
from lxml import etree

from gateway.decimals import keeps_value
from gateway.fhir_xml import XmlError, fhir_xml, syntax_problem
from gateway.messages import Worded

MAX_DEPTH = 64
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
XML_TYPES = ("application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir")
FORMATS = {"json": JSON_TYPES[0], "xml": XML_TYPES[0]}


class WireError(Exception):
    """A body that is not FHIR: the message id and parameters say why, and ``expression``
    where, when an element is at fault (its FHIRPath)."""

    def __init__(self, message_id: str, expression: str | None = None, **params: Any) -> None:
        super().__init__(message_id)
        self.message_id = message_id
        self.expression = expression
        self.params = params


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise WireError("http.duplicate-key", key=key)
        found[key] = value
    return found


def _refuse_constant(name: str) -> Any:
    raise WireError("http.not-a-number", value=name)


def _integer(text: str) -> int:
    """A JSON integer, within the 64 bits the stores' JSON encoder writes."""
    value = int(text)
    if not -(2**63) <= value < 2**64:
        raise WireError("http.not-a-number", value=text[:40])
    return value


def _finite(text: str) -> float:
    """A JSON number as a float, unless it overflows to infinity (1e400), which FHIR has not,
    or has more significant digits than a float keeps (``gateway/decimals.py``)."""
    value = float(text)
    if not math.isfinite(value):
        raise WireError("http.not-a-number", value=text)
    if not keeps_value(text, value):
        raise WireError("http.decimal-too-precise", value=text[:40])
    return value


#: what the JSON decoder says (English, as Python words it), by how its message begins, as
#: the catalog's ids: the reader is told in their own language, the position kept
_DECODER_REASONS = (
    ("Expecting value", "json.expecting-value"),
    ("Expecting property name", "json.expecting-name"),
    ("Expecting ':'", "json.expecting-colon"),
    ("Expecting ','", "json.expecting-comma"),
    ("Unterminated string", "json.unterminated-string"),
    ("Invalid control character", "json.control-character"),
    ("Invalid \\", "json.bad-escape"),
    ("Extra data", "json.extra-data"),
    ("Illegal trailing comma", "json.trailing-comma"),
)


def _syntax_error(error: json.JSONDecodeError) -> Worded:
    """Where the JSON breaks and why, worded by the catalog; of a reason it does not know (a
    later Python's), only that the syntax is wrong there."""
    reason = next(
        (Worded(message_id) for start, message_id in _DECODER_REASONS if error.msg.startswith(start)),
        Worded("json.other"),
    )
    return Worded("json.syntax", reason=reason, line=error.lineno, column=error.colno)


def parse_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON body as its document, read by FHIR's rules (the module's docstring).

    orjson reads most bodies, in C, and writes the document back out to be checked, in C too,
    for what orjson lets through (:func:`_as_read_strictly`).  Python's decoder, whose hooks
    apply every rule as it reads (twice the time of a Patient's body), reads the rest: a body
    orjson refuses (the strict reader says why, in the catalog's words, at which line and
    column), one with a decimal (whose written digits :func:`_finite` needs, orjson keeps
    none), or one that may have lost a repeated key (orjson keeps the last, silently)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _parse_strictly(body, max_depth)
    if isinstance(document, (dict, list)) and _as_read_strictly(body, document, max_depth):
        return document
    return _parse_strictly(body, max_depth)


#: a number's fraction or exponent, as orjson writes a float (``1.5``, ``1e-7``), which no
#: integer has: looked for outside the strings
_FRACTION = re.compile(rb"[0-9][.eE]")


def _as_read_strictly(body: bytes, document: dict[str, Any] | list[Any], limit: int) -> bool:
    """Whether ``document``, read from ``body`` by orjson, is what the strict reader reads.

    orjson refuses what a hook refuses but for a repeated key, a noncharacter and nesting
    deeper than ``limit``, and it reads a number with a fraction or an exponent (and an
    integer too large for 64 bits) as a float.  The strict reader refuses what is too deep or
    holds a float, or first names a fault it meets before (a repeated key, a decimal too
    precise).  The document written back (by orjson, which escapes no colon and writes any
    other text as UTF-8) tells the rest, in C: outside its strings (:func:`_structure`), its
    floats, and how deep its brackets nest when the body has more than ``limit`` of them (a
    walk of the document in Python took 236 µs of a benchmark transaction's body, the
    brackets 18); and its keys: each colon of a JSON text outside its strings follows a key,
    and its strings hold at least the colons of the document's (a dropped value may hold
    more), unless one is escaped (``\\u003a``).  The text and the document written back then
    have as many colons only when no key was lost."""
    if b"\\u003" in body:
        return False
    try:
        written = orjson.dumps(document)
    except TypeError:  # nested deeper than orjson writes (254 levels)
        return False
    if b"\xef\xbf\xbe" in written or b"\xef\xbf\xbf" in written:  # U+FFFE, U+FFFF
        return False
    structure = _structure(written)
    if _FRACTION.search(structure) is not None:
        return False
    if body.count(b"{") + body.count(b"[") > limit and _nests_deeper(structure, limit):
        return False
    return written.count(b":") == body.count(b":")


def _structure(written: bytes) -> bytes:
    """A document orjson wrote, outside its strings: every other piece between its quotes,
    once the escaped backslashes and quotes are taken out (as JSON escapes pair from the
    left).  Why: a walk of the document in Python, checking each value's type, took thrice
    the time of orjson's read."""
    if b"\\" in written:
        written = written.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(written.split(b'"')[::2])


#: a document's brackets, all made one kind, the rest of its structure deleted
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"{}[]")


def _nests_deeper(structure: bytes, limit: int) -> bool:
    """Whether the brackets of ``structure`` (:func:`_structure`) nest more than ``limit`` deep:
    each pass takes out the innermost pairs, one level, in C (counted bracket by bracket in
    Python, a benchmark transaction's took 48 µs, these passes 18)."""
    brackets = structure.translate(_BRACKETS, _NOT_BRACKETS)
    for _ in range(limit):
        brackets = brackets.replace(b"[]", b"")
        if not brackets:
            return False
    return True


def _parse_strictly(body: bytes, max_depth: int) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WireError("http.not-json", detail=Worded("json.not-utf8", byte=exc.start)) from exc
    try:
        document = json.loads(
            text,
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
            parse_float=_finite,
            parse_int=_integer,
        )
    except json.JSONDecodeError as exc:
        raise WireError("http.not-json", detail=_syntax_error(exc)) from exc
    except RecursionError as exc:
        raise WireError("http.too-deep", limit=max_depth) from exc
    except ValueError as exc:  # a number too long to convert (Python's int digit limit)
        raise WireError("http.not-json", detail=Worded("json.number-too-long")) from exc
    _check_tree(document, max_depth)
    return document


def _check_tree(node: Any, limit: int) -> None:
    """Refuse nesting deeper than ``limit`` and text no FHIR format can carry: a lone surrogate
    (``\\ud800``, which no UTF-8 store takes) or U+FFFE/U+FFFF (which XML cannot hold).  One
    iterative pass: no recursion, and ASCII strings (most of them) cost one check."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            raise WireError("http.too-deep", limit=limit)
        if isinstance(current, dict):
            items: Any = (*current.keys(), *current.values())
        elif isinstance(current, list):
            items = current
        else:
            continue
        for child in items:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif isinstance(child, str) and not child.isascii():
                _check_text(child)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WireError("http.not-json", detail=Worded("json.lone-surrogate", position=exc.start)) from exc
    if "\ufffe" in text or "\uffff" in text:
        raise WireError("http.not-json", detail=Worded("json.noncharacter"))


def _hardened_parser(huge: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=huge
    )


#: the byte order marks and first bytes (``<?`` / ``<``) by which an XML parser tells UTF-16 and
#: UTF-32 from the ASCII-compatible encodings (XML 1.0 appendix F)
_WIDE = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)


def _declares_dtd(body: bytes) -> bool | None:
    """Whether the document holds a DOCTYPE, read before it is parsed; None when its encoding
    cannot be told without parsing (neither ASCII-compatible nor UTF-16/32: EBCDIC)."""
    for mark, codec in _WIDE:
        if body.startswith(mark):
            return "<!DOCTYPE" in body.decode(codec, errors="replace")
    if body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"<":
        return None
    return b"<!DOCTYPE" in body


def _too_deep(error: etree.XMLSyntaxError) -> bool:
    """Whether libxml2 stopped the document for its own depth limit (2,048 levels, 256 without
    ``huge_tree``): a body nested beyond :data:`MAX_DEPTH`, refused as such, as JSON is, not
    as XML written wrong with the parser's advice to "use XML_PARSE_HUGE option"."""
    return error.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT and "depth" in str(error)


def parse_xml(body: bytes) -> dict[str, Any]:
    """A FHIR XML resource as the JSON dict every other layer works with.

    No DOCTYPE is allowed, so no entity can be declared, let alone expanded.  One found before
    parsing lets the parser take text nodes over libxml2's 10 MB default (``huge_tree``, the
    base64 of a scanned document in a Binary), which JSON takes up to the body limit; its
    guard against entity expansion is not needed then.  A document whose encoding hides it
    from that look keeps the default limits, and its DOCTYPE is refused after parsing.  The
    refusal is catalogued (``xml.doctype``): an English reason sat inside the Chinese sentence."""
    dtd = _declares_dtd(body)
    if dtd:
        raise WireError("http.not-xml", detail=Worded("xml.doctype"))
    try:
        root = etree.fromstring(body, parser=_hardened_parser(huge=dtd is False))
    except etree.XMLSyntaxError as exc:
        if _too_deep(exc):
            raise WireError("http.too-deep", limit=MAX_DEPTH) from exc
        raise WireError("http.not-xml", detail=syntax_problem(exc)) from exc
    if root.getroottree().docinfo.doctype:
        raise WireError("http.not-xml", detail=Worded("xml.doctype"))
    reader = fhir_xml()
    kind = etree.QName(root).localname
    if kind not in reader.resources:
        raise WireError("http.unknown-type", type=kind)
    try:
        document = reader.loads(root)
    except XmlError as exc:
        raise WireError("http.not-xml", exc.where or None, detail=exc) from exc
    except RecursionError as exc:  # libxml2 allows deeper nesting with huge_tree
        raise WireError("http.too-deep", limit=MAX_DEPTH) from exc
    _check_tree(document, MAX_DEPTH)
    return document


def to_xml(resource: dict[str, Any]) -> bytes:
    """An answer as FHIR XML, or a WireError ``http.answer-not-xml`` locating what XML cannot
    carry: about the answer, not the request, whose body a GET does not even have."""
    try:
        return fhir_xml().dumps(resource)
    except XmlError as exc:  # content the R4 model has no XML for: stored before it was refused,
        raise WireError("http.answer-not-xml", exc.where or None, detail=exc) from exc  # or under warn
    except (ValueError, TypeError, AttributeError) as exc:  # a number where an id is a string …
        raise WireError("http.answer-not-xml", detail=Worded("xml.value-of-wrong-kind")) from exc


def to_json(resource: Any) -> bytes:
    return orjson.dumps(resource)
