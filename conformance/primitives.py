"""Format checks for FHIR primitive values in their JSON form.

The regular expressions are the official ones (carried in ``profiles/base/r4-types.json``);
this module adds what a regex cannot say: JSON types, integer ranges, and that a date such as
1945-02-30 does not exist (the R4 regex accepts it, people do not).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from typing import Any

Problem = tuple[str, dict[str, Any]] | None
Checker = Callable[[Any], Problem]
#: problems of a value its type's definition still admits, reported as warnings: R4's string
#: and markdown regex accepts a text of spaces alone (HL7's validator warns of it too), though
#: nobody means one
ADVISORY = frozenset({"primitive.all-whitespace"})

INT32 = (-(2**31), 2**31 - 1)
NUMBER_TYPES = {"integer": (INT32[0], INT32[1]), "positiveInt": (1, INT32[1]), "unsignedInt": (0, INT32[1])}
# base64's official regex, (\s*([0-9a-zA-Z\+/=]){4}\s*)+, backtracks catastrophically on long
# invalid input.  It says: the alphabet and whitespace (XML Schema's \s: space, tab, CR, LF)
# only, in groups of four characters with whitespace between groups alone.  BASE64 checks the
# characters in one pass and _base64_problem the groups: every whitespace-separated run is a
# multiple of four long.  Together they are equivalent, and linear.
BASE64 = re.compile(r"[A-Za-z0-9+/=\t\n\r ]+")
DATE_PART = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# FHIR strings SHALL NOT contain characters below U+0020 other than tab, CR and LF (the R4
# regex's \S lets NUL through, so this is checked on its own, for every string-valued type).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: "strings SHALL NOT exceed 1MB (1024*1024 characters) in size" (R4 datatypes, string); the
#: reference validator refuses longer ones as errors.  base64Binary (attachments) has no such
#: limit, and narrative is bounded by the input limits.
MAX_STRING_CHARS = 1024 * 1024
#: the types whose values are a vocabulary, not personal data (names, numbers, dates), whose
#: well-formed values each checker remembers (see _remembering)
VOCABULARY_TYPES = frozenset({"code", "uri", "url", "canonical"})
REMEMBERED_VALUES = 4096
#: the longest value remembered: vocabulary is short, and a long one would be kept for the
#: process's life (4,096 values of 1 MiB each per checker, from any client's $validate)
REMEMBERED_LENGTH = 256
#: the R4 regex of string and markdown
PRINTABLE_TEXT = r"[ \r\n\t\S]+"
#: code's R4 regex is [^\s]+(\s[^\s]+)*.  Read with XML Schema's (or Java's, ASCII) \s it lets
#: U+3000 anywhere, read with Python's Unicode \s a single tab, line feed or U+3000 between two
#: words; the datatype says "no whitespace other than single spaces in the contents", which is
#: what the reference validator checks (passesCodeWhitespaceRules: any whitespace but U+0020 is
#: refused, U+3000 included).  This regex says that, in Unicode mode on purpose.
CODE = re.compile(r"[^\s]+( [^\s]+)*")


def _json_type(value: Any) -> str:
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def _calendar_problem(value: str) -> Problem:
    match = DATE_PART.match(value)
    if match:
        year, month, day = map(int, match.groups())
        # every month has 28 days: only a later day asks the calendar, whose monthrange (it
        # works out a weekday too) cost more than the rest of a date's check
        if day > 28 and 1 <= month <= 12 and day > calendar.monthrange(year, month)[1]:
            return "primitive.impossible-date", {"value": value}
    return None


def _base64_problem(value: str) -> Problem:
    """The official regex's groups of four: without this, ``aGVsbG8`` (seven characters, a
    lost padding ``=``) passed as base64Binary and decoders refuse it."""
    if any(len(run) % 4 for run in value.split()):
        return "primitive.bad-format", {"type": "base64Binary", "value": value[:80]}
    return None


def make_checker(type_code: str, regex: str | None, urns: Mapping[str, tuple[str, str]] | None = None) -> Checker:
    """Build the checker for one primitive type once; the walk calls it per value.

    ``urns`` maps a URN prefix to the type and official regex a URI with that prefix must meet
    (``urn:uuid:`` → uuid, ``urn:oid:`` → oid): R4's uri regex admits any text without spaces,
    so ``urn:uuid:not-a-uuid`` passed as a fullUrl, which the reference validator refuses
    ("UUIDs must be valid and lowercase").  A fragment (``urn:uuid:…#part``) is not checked."""
    if type_code == "boolean":

        def check_boolean(value: Any) -> Problem:
            if value is True or value is False:
                return None
            return "primitive.wrong-json-type", {"type": type_code, "json": "boolean", "actual": _json_type(value)}

        return check_boolean

    if type_code in NUMBER_TYPES or type_code == "decimal":
        low, high = NUMBER_TYPES.get(type_code, (None, None))
        integral = type_code != "decimal"

        def check_number(value: Any) -> Problem:
            # 1.0 or 1e2 is a JSON number, but not an integer's lexical form; "must be a JSON
            # number, found number" told the sender nothing, so it has its own message
            if integral and type(value) is float:
                return "primitive.not-integer", {"type": type_code, "value": repr(value)}
            if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
                return "primitive.wrong-json-type", {"type": type_code, "json": "number", "actual": _json_type(value)}
            if low is not None and not low <= value <= high:
                return "primitive.out-of-range", {"type": type_code, "value": value}
            return None

        return check_number

    # string's and markdown's regex admits space, CR, LF, tab and every non-whitespace character,
    # \S read as the definitions mean it (XML Schema's: all but those four), so every character:
    # read as Python reads \S, it refused the ideographic space of 张　三 and any other Unicode
    # space.  What such a text may not hold is a control character (CONTROL, below).
    # The other official regexes are read in ASCII mode, as XML Schema defines \s and \d (and as
    # the reference validator's Java regexes run): Python's Unicode \S refused a uri holding
    # U+00A0 that R4 and the reference accept.
    textual = regex == PRINTABLE_TEXT
    pattern = None if type_code in ("base64Binary", "xhtml") or not regex or textual else re.compile(regex, re.ASCII)
    if type_code == "base64Binary":
        pattern = BASE64
    elif type_code == "code":
        pattern = CODE
    dated = type_code in ("date", "dateTime", "instant")
    schemes = [(prefix, name, re.compile(pattern, re.ASCII)) for prefix, (name, pattern) in (urns or {}).items()]
    longest = None if type_code in ("base64Binary", "xhtml") else MAX_STRING_CHARS

    def check_string(value: Any) -> Problem:
        if type(value) is not str:
            return "primitive.wrong-json-type", {"type": type_code, "json": "string", "actual": _json_type(value)}
        if longest is not None and len(value) > longest:
            return "primitive.too-long", {"type": type_code, "length": len(value), "limit": longest}
        if not value.strip() and (not value or CONTROL.search(value) is None):  # \x1c strips too
            return ("primitive.all-whitespace" if value and textual else "primitive.whitespace"), {}
        # isprintable() is one C pass and true for nearly every value; only the rest are searched
        printable = value.isprintable()
        control = None if printable else CONTROL.search(value)
        if control is not None:
            return "primitive.control-character", {"type": type_code, "code": f"U+{ord(control.group()):04X}"}
        if pattern is not None and pattern.fullmatch(value) is None:
            return "primitive.bad-format", {"type": type_code, "value": value[:80]}
        if dated:
            return _calendar_problem(value)
        if pattern is BASE64:
            return _base64_problem(value)
        for prefix, name, scheme in schemes:
            if value.startswith(prefix) and scheme.fullmatch(value.partition("#")[0]) is None:
                return "primitive.bad-format", {"type": name, "value": value[:80]}
        return None

    return _remembering(check_string) if type_code in VOCABULARY_TYPES else check_string


def _remembering(check: Checker) -> Checker:
    """``check``, remembering the values it found well formed.  Why: a resource's codes, code
    systems and profile URLs are a small vocabulary met on every resource, and checking a uri
    (its regex, then a URN's own) cost more than the rest of its walk; met again, one is a set
    lookup.  Only short values are learnt (:data:`REMEMBERED_LENGTH`), and learning stops at
    :data:`REMEMBERED_VALUES` (a hostile stream may bring any number
    of distinct values: later ones are checked each time); nothing learnt is forgotten, so the
    threads sharing a checker never see the set shrink."""
    known: set[str] = set()

    def check_remembered(value: Any) -> Problem:
        if type(value) is str and value in known:
            return None
        problem = check(value)
        if problem is None and len(known) < REMEMBERED_VALUES and len(value) <= REMEMBERED_LENGTH:
            known.add(value)
        return problem

    return check_remembered
