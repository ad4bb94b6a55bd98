"""统一社会信用代码 (GB 32100-2015): the check character, on its own and on an Organization."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from conformance import credit_code
from conformance.validator import Validator
from tests.conftest import found, load_example

USCC = "http://fhir.yiyang.cn/sid/uscc"
bodies = st.text(alphabet=credit_code.ALPHABET, min_size=17, max_size=17)


def test_a_published_code_is_accepted() -> None:
    """The worked example GB 32100's readers quote: 91350100M000100Y4, check character 3."""
    assert credit_code.checksum_problem("91350100M000100Y43") is None


def test_a_wrong_check_character_names_the_right_one() -> None:
    assert credit_code.checksum_problem("91350100M000100Y4X") == "3"


def test_a_malformed_code_is_left_to_the_format_invariant() -> None:
    assert credit_code.checksum_problem("91350100M000100Y4") is None


@given(bodies)
def test_the_computed_check_character_always_satisfies_the_checksum(body: str) -> None:
    assert credit_code.checksum_problem(body + credit_code.check_char(body)) is None


@given(bodies, st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=30))
def test_any_one_character_changed_is_caught(body: str, position: int, shift: int) -> None:
    """Each weight is prime to 31, so no change of a single character keeps the sum."""
    code = body + credit_code.check_char(body)
    changed = credit_code.ALPHABET[(credit_code.ALPHABET.index(code[position]) + shift) % 31]
    assert credit_code.checksum_problem(code[:position] + changed + code[position + 1 :]) is not None


@given(st.text(max_size=30))
def test_arbitrary_text_never_raises(text: str) -> None:
    assert credit_code.checksum_problem(text) in (None, *credit_code.ALPHABET)


def test_an_organization_with_a_mistyped_code_is_an_error_at_its_value(validator: Validator) -> None:
    organization = load_example("yy-organization/valid-hospital.json")
    index = next(i for i, identifier in enumerate(organization["identifier"]) if identifier["system"] == USCC)
    organization["identifier"][index]["value"] = "12410100416000123X"
    issues = validator.validate(organization)
    assert found(issues, "rule.uscc-checksum", f"Organization.identifier[{index}].value")
