"""Primitive checks (conformance/primitives.py): string and markdown take every character but
the control characters, as their R4 regex means it (``\\S`` is XML Schema's)."""

from __future__ import annotations

import re
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.primitives import CONTROL, PRINTABLE_TEXT, make_checker

STRING = make_checker("string", PRINTABLE_TEXT)


@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_a_string_is_refused_only_for_a_control_character_or_no_content(text: str) -> None:
    refused = CONTROL.search(text) is not None or not text.strip()
    assert (STRING(text) is not None) == refused


def test_an_ideographic_space_is_text_as_any_other_character() -> None:
    """张　三 (U+3000), common in Chinese names and addresses, was refused as "not a string"."""
    assert STRING("张\u3000三") is None


BASE64_BINARY = make_checker("base64Binary", r"(\s*([0-9a-zA-Z\+/=]){4}\s*)+")
#: the official R4 regex, with XML Schema's \s, run on small values only (it backtracks)
OFFICIAL_BASE64 = re.compile(r"([ \t\r\n]*([0-9a-zA-Z+/=]){4}[ \t\r\n]*)+")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="aZ09+/= \n!\u3000", min_size=1, max_size=24))
def test_base64_binary_is_refused_exactly_where_the_official_regex_refuses_it(text: str) -> None:
    """The linear check must say what R4's regex says: groups of four, whitespace between them."""
    assert (BASE64_BINARY(text) is None) == (OFFICIAL_BASE64.fullmatch(text) is not None)


CODE = make_checker("code", r"[^\s]+(\s[^\s]+)*")
URI = make_checker("uri", r"\S*")


def _java_code_whitespace_rules(text: str) -> bool:
    """The reference validator's passesCodeWhitespaceRules: no leading or trailing whitespace and
    none in the contents other than single spaces (Character.isWhitespace: U+3000 is one)."""
    if text.strip("".join(map(chr, range(0x21)))) != text or "  " in text:
        return False
    return all(c == " " or not c.isspace() for c in text)


def test_an_ideographic_space_inside_a_code_is_refused() -> None:
    """U+3000, common in Chinese data, sat between two words of a code unreported."""
    assert CODE("a\u3000b") == ("primitive.bad-format", {"type": "code", "value": "a\u3000b"})


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab \t\n\u3000\u2003", min_size=1, max_size=12))
def test_a_code_is_refused_exactly_where_the_reference_validator_refuses_it(text: str) -> None:
    assert (CODE(text) is None) == _java_code_whitespace_rules(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="a:/ \t\u3000\u00a0", min_size=1, max_size=12))
def test_a_uri_reads_whitespace_as_xml_schema_and_java_do(text: str) -> None:
    """R4's uri regex \\S* means XML Schema's \\S (ASCII whitespace only), as the reference
    validator's Java regex reads it; Python's Unicode \\S also refused U+3000 and U+00A0."""
    refused = any(c in " \t" for c in text) or not text.strip()
    assert (URI(text) is not None) == refused


OID_URN = {"urn:oid:": ("oid", r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")}
SHARED_URI = make_checker("uri", r"\S*", OID_URN)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="urn:oid.0123 \x01", max_size=16) | st.integers(), min_size=1, max_size=6))
def test_a_remembered_uri_is_judged_as_a_fresh_checker_judges_it(values: list[object]) -> None:
    """A uri's checker remembers the well-formed values it met: met again, each is judged alike."""
    for value in values:
        SHARED_URI(value)
    assert [SHARED_URI(v) for v in values] == [make_checker("uri", r"\S*", OID_URN)(v) for v in values]


def test_a_long_well_formed_uri_is_not_kept_by_its_checker() -> None:
    """Only short vocabulary is remembered: long values, which any client may send, would be
    held for the process's life."""
    check = make_checker("uri", r"\S*")
    tracemalloc.start()
    for number in range(16):
        assert check(f"http://x.example/{number}/" + "a" * 1_000_000) is None
    retained, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert retained < 1 << 20
