"""Primitive checks (conformance/primitives.py): string and markdown take every character but
the control characters, as their R4 regex means it (``\\S`` is XML Schema's)."""

from __future__ import annotations

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
