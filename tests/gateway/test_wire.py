"""The JSON reader's rules, whichever of its two readers applies them: orjson with a check of
what it made, or Python's decoder with its hooks (``gateway/wire.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.wire import MAX_DEPTH, WireError, _parse_strictly, parse_json


def refusal(body: bytes) -> tuple[str, str | None]:
    """The message id a body is refused with, and its detail's (the reason within it)."""
    with pytest.raises(WireError) as refused:
        parse_json(body)
    detail = refused.value.params.get("detail")
    return refused.value.message_id, getattr(detail, "message_id", None)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',
        b'{"b": {"a": "x", "a": "x"}}',
        b'{"a": "urn:oid:1", "a": "2"}',  # the value dropped held a colon
        b'{"a": "2", "a": "urn:oid:1"}',  # the value kept does
        b'{"a:b": 1, "a:b": 1}',  # so does the key
        b'{"\\u0061": 1, "a": 1}',  # one key escaped
        b'{"a": 1, "a": 2, "c": "\\u003a"}',  # a colon escaped: the text holds one fewer
        b'{"a": [{"b": {}, "b": {}}]}',
    ],
)
def test_a_repeated_key_is_refused_however_it_is_written(body: bytes) -> None:
    assert refusal(body) == ("http.duplicate-key", None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"value": 82.50}', {"value": 82.5}),
        (b'{"value": 1E2, "n": 3}', {"value": 100.0, "n": 3}),
        (b'{"n": 18446744073709551615, "m": -9223372036854775808}', {"n": 2**64 - 1, "m": -(2**63)}),
        (b'\xef\xbb\xbf{"a": "\\u003a:"}', {"a": "::"}),
        (b' {"url" : "http://x/y" ,"a":["b:c", {}]} ', {"url": "http://x/y", "a": ["b:c", {}]}),
    ],
)
def test_a_body_is_read_as_written(body: bytes, expected: Any) -> None:
    assert parse_json(body) == expected


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"value": 1.00000000000000001}', ("http.decimal-too-precise", None)),
        (b'{"value": 1.00000000000000001e-7}', ("http.decimal-too-precise", None)),  # orjson writes 1e-7
        (b'{"value": 18446744073709551616}', ("http.not-a-number", None)),
        (b'{"value": -9223372036854775809}', ("http.not-a-number", None)),
        (b'{"value": NaN}', ("http.not-a-number", None)),
        (b'{"a": "\xef\xbf\xbf"}', ("http.not-json", "json.noncharacter")),
        (b'{"a": ["\\ufffe"]}', ("http.not-json", "json.noncharacter")),
        (b'{"\\uffff": 1}', ("http.not-json", "json.noncharacter")),
        (b'{"a": "\\ud800"}', ("http.not-json", "json.lone-surrogate")),
        (b'{"a": "\xff"}', ("http.not-json", "json.not-utf8")),
        (b'{"a": 1,}', ("http.not-json", "json.syntax")),
    ],
)
def test_what_fhir_json_cannot_carry_is_refused_saying_why(body: bytes, reason: tuple[str, str | None]) -> None:
    assert refusal(body) == reason


def test_nesting_is_refused_one_level_past_the_limit() -> None:
    def nested(levels: int) -> bytes:
        return ('{"a":' * (levels - 1) + "[]" + "}" * (levels - 1)).encode()

    assert parse_json(nested(MAX_DEPTH)) is not None
    assert refusal(nested(MAX_DEPTH + 1)) == ("http.too-deep", None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(alphabet=st.sampled_from('ab:"\\中\n')),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet="ab:", max_size=3), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, st.booleans())
def test_a_document_comes_back_as_written_whitespace_and_escapes_aside(document: Any, ascii_only: bool) -> None:
    assert parse_json(json.dumps(document, ensure_ascii=ascii_only, indent=1).encode()) == document


def depth(value: Any) -> int:
    """How deep containers nest in ``value`` (a scalar: 0)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


bracketed_values = st.recursive(
    st.integers(0, 9) | st.text(alphabet=st.sampled_from('[]{}"\\a'), max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="[{a", max_size=2), inner, max_size=3),
    max_leaves=16,
)


@given(bracketed_values, st.integers(1, 5))
@example(["]]", [[]]], 2)  # read with its string's brackets, it nested 1 deep
def test_a_document_is_refused_as_too_deep_exactly_when_it_nests_past_the_limit(document: Any, limit: int) -> None:
    """Brackets and escaped quotes inside strings are no nesting: the depth is read from the
    text outside them."""
    body = json.dumps(document).encode()
    try:
        outcome: Any = parse_json(body, max_depth=limit)
    except WireError as refused:
        outcome = refused.message_id
    assert outcome == ("http.too-deep" if depth(document) > limit else document)


DEEP = b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": 1, "a": 2, "b": ' + DEEP + b"}", ("http.duplicate-key", None)),
        (b"[[0.10000000000000000000001], " + DEEP + b"]", ("http.decimal-too-precise", None)),
    ],
)
def test_a_body_too_deep_with_an_earlier_fault_is_refused_for_that_fault(body: bytes, reason: tuple) -> None:
    """orjson's pass refused the nesting itself, before the strict reader, which meets the
    repeated key or the decimal first, could say so."""
    assert refusal(body) == reason


def test_nesting_deeper_than_orjson_writes_is_read_by_the_strict_reader() -> None:
    """orjson writes no document over 254 levels: its check raised a TypeError where the
    strict reader reads the body (a caller may allow that depth)."""
    levels = 300
    assert parse_json(b"[" * levels + b"]" * levels, max_depth=levels) is not None


#: JSON number texts as a client may write them: long digits, fractions, exponents, any sign
number_texts = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
#: documents whose leaves are numbers as written, or strings that look like numbers after a colon
written_numbers = st.recursive(
    number_texts.map(lambda text: ("number", text)) | st.text(alphabet=st.sampled_from(':,[1.e-"\\')),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet="a:1.", max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)


def _written(value: Any) -> str:
    if isinstance(value, tuple):
        return value[1]
    if isinstance(value, list):
        return "[" + ", ".join(_written(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{_written(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)


def outcome(read: Any, body: bytes, max_depth: int) -> Any:
    """The document ``read`` makes of ``body``, or its refusal (message id and reason)."""
    try:
        return read(body, max_depth)
    except WireError as refused:
        detail = refused.params.get("detail")
        return refused.message_id, getattr(detail, "message_id", None)


@given(written_numbers, st.integers(1, 4))
def test_numbers_and_nesting_are_read_as_the_strict_reader_reads_them(document: Any, max_depth: int) -> None:
    """orjson's pass lets through no number, nor nesting, that the strict reader (Python's
    decoder with every hook) would refuse or read otherwise."""
    body = _written(document).encode()
    assert outcome(parse_json, body, max_depth) == outcome(_parse_strictly, body, max_depth)
