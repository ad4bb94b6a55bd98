"""Definition regexes (conformance/regexes.py): running a pattern on ``re`` instead of RE2 is a
speed-up only, never another verdict."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.regexes import compile_linear, compile_regex, fullmatch

#: all trivially linear (no group, no alternation, one quantifier), so compile_linear runs them on re
PATTERNS = [r"\d{6}", r"\w+", r"[\d\s]+", r"\D*", r"\S{1,4}", r"\W?"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PATTERNS), st.text(alphabet="0１٣aé_ \u3000\u00a0-", max_size=8))
def test_a_trivially_linear_pattern_answers_as_re2_does(pattern: str, text: str) -> None:
    """\\d{6} on ``re`` took １２３４５６ (full-width digits) where RE2 refuses them."""
    assert fullmatch(compile_linear(pattern), text) == fullmatch(compile_regex(pattern), text)
