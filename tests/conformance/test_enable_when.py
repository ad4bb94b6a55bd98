"""Issue 11: enableWhen decided as the reference validator's EnableWhenEvaluator decides it, from
the R4 rules (operators, enableBehavior, where the question's answers are looked for), with a
third verdict — undecided — where a comparison has no answer."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from conformance.enable_when import enabled


def item_when(*conditions: dict[str, Any], behavior: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"linkId": "target", "type": "string", "enableWhen": list(conditions)}
    if behavior:
        found["enableBehavior"] = behavior
    return found


def response(*answers: dict[str, Any], link_id: str = "q") -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "item": [{"linkId": link_id, "answer": list(answers)}]}


def test_an_item_without_enable_when_is_enabled() -> None:
    assert enabled({"linkId": "target"}, [response()]) is True


def test_exists_true_holds_when_the_question_is_answered() -> None:
    when = item_when({"question": "q", "operator": "exists", "answerBoolean": True})
    assert enabled(when, [response({"valueString": "有"})]) is True


def test_exists_false_holds_when_the_question_is_not_answered() -> None:
    when = item_when({"question": "q", "operator": "exists", "answerBoolean": False})
    assert enabled(when, [response(link_id="other")]) is True


def test_equal_codings_compare_system_and_code() -> None:
    when = item_when({"question": "q", "operator": "=", "answerCoding": {"system": "urn:s", "code": "a"}})
    assert enabled(when, [response({"valueCoding": {"system": "urn:other", "code": "a"}})]) is False


def test_not_equal_without_any_answer_does_not_hold_as_in_the_reference() -> None:
    when = item_when({"question": "q", "operator": "!=", "answerString": "x"})
    assert enabled(when, [response(link_id="other")]) is False


def test_a_quantity_in_another_unit_is_undecided() -> None:
    when = item_when({"question": "q", "operator": ">", "answerQuantity": {"value": 38, "code": "Cel"}})
    assert enabled(when, [response({"valueQuantity": {"value": 100, "code": "[degF]"}})]) is None


def test_dates_of_different_precision_are_undecided() -> None:
    when = item_when({"question": "q", "operator": ">=", "answerDate": "2024-05"})
    assert enabled(when, [response({"valueDate": "2024"})]) is None


def test_all_needs_every_condition() -> None:
    when = item_when(
        {"question": "q", "operator": "exists", "answerBoolean": True},
        {"question": "q", "operator": "=", "answerInteger": 2},
    )
    assert enabled(when, [response({"valueInteger": 3})]) is False


def test_any_needs_one_condition() -> None:
    when = item_when(
        {"question": "q", "operator": "exists", "answerBoolean": True},
        {"question": "q", "operator": "=", "answerInteger": 2},
        behavior="any",
    )
    assert enabled(when, [response({"valueInteger": 3})]) is True


def test_an_undecided_condition_leaves_all_undecided_unless_another_fails() -> None:
    when = item_when(
        {"question": "q", "operator": ">", "answerDate": "2024"},
        {"question": "q", "operator": "exists", "answerBoolean": True},
    )
    assert enabled(when, [response({"valueDate": "2024-05-01"})]) is None


def test_the_answer_in_the_same_repetition_of_a_group_decides() -> None:
    first = {"linkId": "g", "item": [{"linkId": "q", "answer": [{"valueBoolean": True}]}]}
    second = {"linkId": "g", "item": [{"linkId": "q", "answer": [{"valueBoolean": False}]}]}
    root = {"resourceType": "QuestionnaireResponse", "item": [first, second]}
    when = item_when({"question": "q", "operator": "=", "answerBoolean": True})
    assert (enabled(when, [root, first]), enabled(when, [root, second])) == (True, False)


def test_a_question_outside_the_group_is_found_further_out() -> None:
    group = {"linkId": "g", "item": []}
    root = {"resourceType": "QuestionnaireResponse", "item": [{"linkId": "q", "answer": [{"valueInteger": 5}]}, group]}
    when = item_when({"question": "q", "operator": "<", "answerInteger": 6})
    assert enabled(when, [root, group]) is True


OPERATORS = {">": int.__gt__, "<": int.__lt__, ">=": int.__ge__, "<=": int.__le__, "=": int.__eq__, "!=": int.__ne__}


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.sampled_from(sorted(OPERATORS)))
def test_an_integer_condition_is_the_comparison_of_the_answer_with_the_value(
    answer: int, value: int, operator: str
) -> None:
    when = item_when({"question": "q", "operator": operator, "answerInteger": value})
    assert enabled(when, [response({"valueInteger": answer})]) is OPERATORS[operator](answer, value)
