"""Issues 11/13: a QuestionnaireResponse is checked against the Questionnaire it names, rule by rule
as the reference validator's QuestionnaireValidator reports them (rule → error, warning, hint →
information), with the FHIRPath of the item or answer."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.validator import Validator
from profiles.registry import Registry
from tests.conftest import load_example

URL = "http://fhir.example.cn/Questionnaire/qr-rules"
ANSWER = "http://fhir.example.cn/CodeSystem/qr-rules-answer"
BENEFIT = "http://fhir.yiyang.cn/CodeSystem/ltc-benefit-type"


def _coding(code: str, system: str = ANSWER) -> dict[str, Any]:
    return {"system": system, "code": code}


QUESTIONNAIRE: dict[str, Any] = {
    "resourceType": "Questionnaire",
    "id": "qr-rules",
    "url": URL,
    "version": "1.0",
    "status": "draft",
    "item": [
        {
            "linkId": "g",
            "text": "分组",
            "type": "group",
            "required": True,
            "item": [
                {"linkId": "bool", "text": "是否", "type": "boolean", "required": True},
                {"linkId": "int", "text": "次数", "type": "integer"},
                {
                    "linkId": "choice",
                    "text": "单选",
                    "type": "choice",
                    "answerOption": [{"valueCoding": _coding("a")}, {"valueCoding": _coding("b")}],
                },
                {
                    "linkId": "multi",
                    "text": "多选",
                    "type": "choice",
                    "repeats": True,
                    "answerOption": [{"valueCoding": _coding("a")}, {"valueCoding": _coding("b")}],
                },
                {
                    "linkId": "open",
                    "text": "可填写",
                    "type": "open-choice",
                    "answerOption": [{"valueCoding": _coding("a")}],
                },
                {
                    "linkId": "score",
                    "text": "分值",
                    "type": "choice",
                    "answerOption": [{"valueInteger": 1}, {"valueInteger": 2}],
                },
                {
                    "linkId": "care",
                    "text": "护理方式",
                    "type": "choice",
                    "answerValueSet": "http://fhir.yiyang.cn/ValueSet/ltc-benefit-type",
                },
                {
                    "linkId": "lost-vs",
                    "text": "无值集",
                    "type": "choice",
                    "answerValueSet": "http://fhir.example.cn/ValueSet/none",
                },
            ],
        },
        {
            "linkId": "note",
            "text": "说明",
            "type": "string",
            "item": [{"linkId": "note-detail", "text": "补充", "type": "string"}],
        },
        {"linkId": "info", "text": "提示", "type": "display"},
        {
            "linkId": "when",
            "text": "条件必答",
            "type": "string",
            "required": True,
            "enableWhen": [{"question": "bool", "operator": "=", "answerBoolean": True}],
        },
    ],
}


def _response(**changes: Any) -> dict[str, Any]:
    """A completed response that answers every item correctly."""
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": URL,
        "status": "completed",
        "item": [
            {
                "linkId": "g",
                "item": [
                    {"linkId": "bool", "text": "是否", "answer": [{"valueBoolean": False}]},
                    {"linkId": "int", "answer": [{"valueInteger": 3}]},
                    {"linkId": "choice", "answer": [{"valueCoding": _coding("a")}]},
                    {"linkId": "multi", "answer": [{"valueCoding": _coding("a")}, {"valueCoding": _coding("b")}]},
                    {"linkId": "open", "answer": [{"valueString": "自己写的"}]},
                    {"linkId": "score", "answer": [{"valueInteger": 2}]},
                    {"linkId": "care", "answer": [{"valueCoding": _coding("institutional-care", BENEFIT)}]},
                ],
            },
            {
                "linkId": "note",
                "answer": [
                    {"valueString": "无", "item": [{"linkId": "note-detail", "answer": [{"valueString": "x"}]}]}
                ],
            },
        ],
    }
    response.update(changes)
    return response


@pytest.fixture(scope="module")
def validator() -> Validator:
    registry = Registry()
    registry.add_resource(copy.deepcopy(QUESTIONNAIRE))
    return Validator(registry)


def _found(validator: Validator, resource: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every issue of the questionnaire rules, and any error at all, as (severity, id, FHIRPath)."""
    return [
        (i.severity, i.message_id, i.expression)
        for i in validator.validate(resource)
        if i.message_id.startswith("questionnaire.") or i.is_error
    ]


def _group(response: dict[str, Any]) -> list[dict[str, Any]]:
    return response["item"][0]["item"]


def _item(response: dict[str, Any], link_id: str) -> dict[str, Any]:
    return next(i for i in _group(response) if i["linkId"] == link_id)


# -- resolving the Questionnaire -----------------------------------------------------------------
def test_a_response_answering_everything_right_has_no_issue(validator: Validator) -> None:
    assert _found(validator, _response()) == []


def test_a_response_without_questionnaire_gets_the_reference_hint(validator: Validator) -> None:
    response = _response()
    del response["questionnaire"]
    assert _found(validator, response) == [("information", "questionnaire.none", "QuestionnaireResponse")]


def test_an_unresolvable_questionnaire_is_a_warning_and_nothing_else_is_checked(validator: Validator) -> None:
    response = _response(questionnaire="http://fhir.example.cn/Questionnaire/unknown")
    _item(response, "bool")["answer"] = [{"valueString": "是"}]
    assert _found(validator, response) == [
        ("warning", "questionnaire.not-found", "QuestionnaireResponse.questionnaire")
    ]


def test_another_version_of_the_questionnaire_is_not_found(validator: Validator) -> None:
    assert _found(validator, _response(questionnaire=f"{URL}|2.0")) == [
        ("warning", "questionnaire.not-found", "QuestionnaireResponse.questionnaire")
    ]
    assert _found(validator, _response(questionnaire=f"{URL}|1.0")) == []


def test_a_contained_questionnaire_is_resolved_by_its_id() -> None:
    contained = {**copy.deepcopy(QUESTIONNAIRE), "id": "q"}
    response = _response(questionnaire="#q", contained=[contained])
    _item(response, "int")["answer"] = [{"valueString": "三"}]
    assert ("error", "questionnaire.answer-type", "QuestionnaireResponse.item[0].item[1].answer[0]") in _found(
        Validator(Registry()), response
    )


# -- linkIds, order and text -----------------------------------------------------------------------
def test_a_link_id_the_questionnaire_lacks_is_an_error(validator: Validator) -> None:
    response = _response()
    _group(response).append({"linkId": "nonesuch", "answer": [{"valueString": "?"}]})
    assert _found(validator, response) == [
        ("error", "questionnaire.item-unknown", "QuestionnaireResponse.item[0].item[7]")
    ]


def test_an_item_at_the_wrong_level_is_an_error_and_still_checked(validator: Validator) -> None:
    response = _response()
    response["item"].append({"linkId": "int", "answer": [{"valueString": "三"}]})
    assert _found(validator, response) == [
        ("error", "questionnaire.item-misplaced", "QuestionnaireResponse.item[2]"),
        ("error", "questionnaire.answer-type", "QuestionnaireResponse.item[2].answer[0]"),
    ]


def test_items_out_of_the_questionnaires_order_are_an_error(validator: Validator) -> None:
    response = _response()
    group = _group(response)
    group[0], group[1] = group[1], group[0]
    assert _found(validator, response) == [
        ("error", "questionnaire.item-order", "QuestionnaireResponse.item[0].item[1]")
    ]


def test_item_text_other_than_the_questionnaires_is_an_error(validator: Validator) -> None:
    response = _response()
    _item(response, "bool")["text"] = "是否（改）"
    assert _found(validator, response) == [
        ("error", "questionnaire.item-text", "QuestionnaireResponse.item[0].item[0].text")
    ]


# -- required ------------------------------------------------------------------------------------
def test_a_required_item_missing_from_a_completed_response_is_an_error_at_its_parent(validator: Validator) -> None:
    response = _response()
    del _group(response)[0]
    assert _found(validator, response) == [("error", "questionnaire.item-missing", "QuestionnaireResponse.item[0]")]


def test_a_required_item_missing_while_in_progress_is_a_warning(validator: Validator) -> None:
    response = _response(status="in-progress")
    del _group(response)[0]
    assert _found(validator, response) == [("warning", "questionnaire.item-missing", "QuestionnaireResponse.item[0]")]


def test_a_required_group_missing_is_an_error_at_the_response(validator: Validator) -> None:
    response = _response()
    del response["item"][0]
    assert _found(validator, response) == [("error", "questionnaire.item-missing", "QuestionnaireResponse")]


def test_a_required_item_present_without_an_answer_is_missing(validator: Validator) -> None:
    response = _response()
    _item(response, "bool").pop("answer")
    assert _found(validator, response) == [("error", "questionnaire.item-missing", "QuestionnaireResponse.item[0]")]


def test_a_required_item_its_enable_when_enables_is_demanded(validator: Validator) -> None:
    response = _response()
    _item(response, "bool")["answer"] = [{"valueBoolean": True}]
    assert _found(validator, response) == [("error", "questionnaire.item-missing", "QuestionnaireResponse")]


def test_a_required_item_its_enable_when_disables_is_not_demanded(validator: Validator) -> None:
    assert _found(validator, _response()) == []  # bool is answered false


def test_an_answer_to_an_item_its_enable_when_disables_is_an_error(validator: Validator) -> None:
    response = _response()
    response["item"].append({"linkId": "when", "answer": [{"valueString": "不该回答"}]})
    assert _found(validator, response) == [("error", "questionnaire.item-not-enabled", "QuestionnaireResponse.item[2]")]


# -- repeats -------------------------------------------------------------------------------------
def test_two_answers_to_a_non_repeating_item_are_an_error_at_the_second(validator: Validator) -> None:
    response = _response()
    _item(response, "choice")["answer"].append({"valueCoding": _coding("b")})
    assert _found(validator, response) == [
        ("error", "questionnaire.answer-repeated", "QuestionnaireResponse.item[0].item[2].answer[1]")
    ]


def test_a_non_repeating_item_given_twice_is_an_error_at_the_second(validator: Validator) -> None:
    response = _response()
    _group(response).insert(2, {"linkId": "int", "answer": [{"valueInteger": 4}]})
    assert _found(validator, response) == [
        ("error", "questionnaire.item-repeated", "QuestionnaireResponse.item[0].item[2]")
    ]


# -- answer types ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("link_id", "answer", "index"),
    [("bool", {"valueString": "是"}, 0), ("int", {"valueDecimal": 1.5}, 1), ("choice", {"valueBoolean": True}, 2)],
)
def test_an_answer_of_another_type_than_the_item_is_an_error(
    validator: Validator, link_id: str, answer: dict[str, Any], index: int
) -> None:
    response = _response()
    _item(response, link_id)["answer"] = [answer]
    assert _found(validator, response) == [
        ("error", "questionnaire.answer-type", f"QuestionnaireResponse.item[0].item[{index}].answer[0]")
    ]


# -- options and value sets ------------------------------------------------------------------------
def test_a_coding_that_is_not_an_option_is_an_error(validator: Validator) -> None:
    response = _response()
    _item(response, "choice")["answer"] = [{"valueCoding": _coding("z")}]
    assert _found(validator, response) == [
        ("error", "questionnaire.answer-not-an-option", "QuestionnaireResponse.item[0].item[2].answer[0].valueCoding")
    ]


def test_an_integer_that_is_not_an_option_is_an_error(validator: Validator) -> None:
    response = _response()
    _item(response, "score")["answer"] = [{"valueInteger": 5}]
    assert _found(validator, response) == [
        ("error", "questionnaire.answer-not-an-option", "QuestionnaireResponse.item[0].item[5].answer[0].valueInteger")
    ]


def test_a_choice_answered_with_a_type_it_has_no_options_of_is_an_error(validator: Validator) -> None:
    response = _response()
    _item(response, "choice")["answer"] = [{"valueString": "a"}]
    assert _found(validator, response) == [
        ("error", "questionnaire.no-options-of-type", "QuestionnaireResponse.item[0].item[2].answer[0].valueString")
    ]


def test_open_choice_takes_free_text_but_not_a_foreign_coding(validator: Validator) -> None:
    response = _response()
    _item(response, "open")["answer"] = [{"valueCoding": _coding("z")}]
    assert _found(validator, response) == [
        ("error", "questionnaire.answer-not-an-option", "QuestionnaireResponse.item[0].item[4].answer[0].valueCoding")
    ]


def test_a_code_outside_the_answer_value_set_is_an_error(validator: Validator) -> None:
    response = _response()
    _item(response, "care")["answer"] = [{"valueCoding": _coding("home-bed", BENEFIT)}]
    found = _found(validator, response)
    assert (
        "error",
        "questionnaire.answer-not-in-valueset",
        "QuestionnaireResponse.item[0].item[6].answer[0].valueCoding",
    ) in found


def test_an_answer_value_set_that_cannot_be_found_is_a_warning(validator: Validator) -> None:
    response = _response()
    _group(response).append({"linkId": "lost-vs", "answer": [{"valueCoding": _coding("a")}]})
    assert _found(validator, response) == [
        ("warning", "questionnaire.valueset-not-found", "QuestionnaireResponse.item[0].item[7].answer[0].valueCoding")
    ]


# -- groups, questions and display items -----------------------------------------------------------
def test_an_answer_on_a_group_is_an_error(validator: Validator) -> None:
    response = _response()
    response["item"][0]["answer"] = [{"valueString": "x"}]
    # the core invariant qrs-1 (an item has answers or items, not both) fires as well, as in the reference
    assert _found(validator, response) == [
        ("error", "invariant.failed", "QuestionnaireResponse.item[0]"),
        ("error", "questionnaire.answer-on-group", "QuestionnaireResponse.item[0].answer[0]"),
    ]


def test_items_directly_on_a_question_are_an_error(validator: Validator) -> None:
    response = _response()
    note = response["item"][1]
    note["item"] = note["answer"][0].pop("item")
    assert _found(validator, response) == [
        ("error", "invariant.failed", "QuestionnaireResponse.item[1]"),
        ("error", "questionnaire.items-on-question", "QuestionnaireResponse.item[1].item[0]"),
    ]


def test_items_on_a_display_item_are_an_error(validator: Validator) -> None:
    response = _response()
    response["item"].append({"linkId": "info", "item": [{"linkId": "note-detail", "answer": [{"valueString": "x"}]}]})
    assert ("error", "questionnaire.items-on-display", "QuestionnaireResponse.item[2].item[0]") in _found(
        validator, response
    )


# -- the package's 护理需求评估 --------------------------------------------------------------------------
def test_the_nursing_needs_example_passes_its_questionnaire() -> None:
    response = load_example("yy-questionnaireresponse-nursing-needs/valid-completed.json")
    assert _found(Validator(Registry()), response) == []


def test_a_nursing_needs_answer_outside_its_value_set_is_an_error_inside_a_bundle() -> None:
    response = copy.deepcopy(load_example("yy-questionnaireresponse-nursing-needs/valid-completed.json"))
    needs = response["item"][3]["item"]
    # recommended-care (one answer, from ltc-benefit-type) answered with a service item, then again
    wrong = {"valueCoding": {"system": "http://fhir.yiyang.cn/CodeSystem/service-item", "code": "daily-living-care"}}
    needs[2]["answer"].insert(0, wrong)
    # special-nursing repeats: a second answer is fine
    needs[0]["answer"].append(
        {"valueCoding": {"system": "http://fhir.yiyang.cn/CodeSystem/nursing-needs-answer", "code": "wound-care"}}
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:6f1c0c3e-1b7a-4f55-9c59-2f1f0a1f4e01", "resource": response}],
    }
    found = [(s, m, e) for s, m, e in _found(Validator(Registry()), bundle) if m.startswith("questionnaire.")]
    at = "Bundle.entry[0].resource.item[3].item"
    assert found == [
        ("error", "questionnaire.answer-repeated", f"{at}[2].answer[1]"),
        ("error", "questionnaire.answer-not-in-valueset", f"{at}[2].answer[0].valueCoding"),
    ]


def test_a_malformed_questionnaire_gives_issues_not_a_traceback() -> None:
    registry = Registry()
    registry.add_resource(
        {
            "resourceType": "Questionnaire",
            "url": "http://fhir.example.cn/Questionnaire/broken",
            "status": "draft",
            "item": [{"linkId": ["x"], "type": "group", "required": True, "item": "not a list"}, "not an item"],
        }
    )
    response = _response(questionnaire="http://fhir.example.cn/Questionnaire/broken")
    found = _found(Validator(registry), response)
    assert ("error", "questionnaire.item-unknown", "QuestionnaireResponse.item[0]") in found
