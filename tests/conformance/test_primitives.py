"""Primitive checks (conformance/primitives.py): the printable shortcut for string and markdown
gives the verdicts the R4 regex gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.primitives import PRINTABLE_TEXT, make_checker

WITH_SHORTCUT = make_checker("string", PRINTABLE_TEXT)
#: the same regex, written so the shortcut does not recognise it: every value goes through it
REGEX_ALWAYS = make_checker("string", f"(?:{PRINTABLE_TEXT})")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_a_string_is_judged_as_the_r4_regex_judges_it(text: str) -> None:
    assert WITH_SHORTCUT(text) == REGEX_ALWAYS(text)


def test_an_ideographic_space_still_meets_the_regex_check() -> None:
    # U+3000 is whitespace the regex refuses, and not printable: the shortcut does not apply
    assert WITH_SHORTCUT("张\u3000三") == REGEX_ALWAYS("张\u3000三")
