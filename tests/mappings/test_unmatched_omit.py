"""A leaf's ``unmatched: omit`` and the ``first_of`` template: an optional qualifier whose code
the ConceptMap knows but gives no target (an HL7 address type or phone use FHIR has no code
for) leaves its element out and is noted with the map's reason, instead of refusing the whole
record; a code the map does not list stays a problem.  ``first_of`` takes the first alternative
that gives a value (a phone's use from its equipment type, else from its own use code)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mappings.conceptmaps import ConceptMaps
from mappings.engine import Mapped, MappingEngine
from mappings.records import SourceRecord
from mappings.spec_schema import schema_problems
from mappings.specs import Spec

USE_MAP = {
    "resourceType": "ConceptMap",
    "id": "use",
    "url": "{base}/ConceptMap/use",
    "status": "active",
    "group": [
        {
            "target": "http://hl7.org/fhir/contact-point-use",
            "element": [
                {"code": "PRN", "target": [{"code": "home", "equivalence": "equivalent"}]},
                {"code": "EMR", "target": [{"equivalence": "unmatched", "comment": "紧急号码 / an emergency number"}]},
            ],
        }
    ],
}
EQUIPMENT_MAP = {
    "resourceType": "ConceptMap",
    "id": "equipment",
    "url": "{base}/ConceptMap/equipment",
    "status": "active",
    "group": [
        {
            "target": "http://hl7.org/fhir/contact-point-use",
            "element": [
                {"code": "CP", "target": [{"code": "mobile", "equivalence": "equivalent"}]},
                {"code": "PH", "target": [{"equivalence": "unmatched", "comment": "座机 / a landline"}]},
            ],
        }
    ],
}
OMIT_USE = {"from": "用途", "map": "use", "unmatched": "omit"}
BY_EQUIPMENT = {"from": "设备", "map": "equipment", "unmatched": "omit"}


def mapped(telecom: dict[str, Any], **fields: Any) -> Mapped:
    rule = {"path": "telecom[+]", "value": {"value": {"from": "号码"}, **telecom}}
    spec = Spec("test/omit", "测试", "test", frozenset({"号码"}), [{"name": "p", "type": "Patient", "rules": [rule]}])
    engine = MappingEngine([spec], ConceptMaps([USE_MAP, EQUIPMENT_MAP], "http://b"), "http://b")
    record = SourceRecord("test", "表.csv", "row 2", {"号码": "13803710001", **fields}, b"", "column")
    result = engine.map(record, spec)
    assert result is not None
    return result


def test_a_code_the_map_leaves_unmatched_omits_the_element_and_the_record_maps() -> None:
    result = mapped({"use": OMIT_USE}, 用途="EMR")
    assert (result.problems, result.resources["p"]["telecom"]) == ([], [{"value": "13803710001"}])


def test_an_omitted_code_is_noted_with_the_maps_reason() -> None:
    [note] = mapped({"use": OMIT_USE}, 用途="EMR").omitted
    assert (note.message_id, note.params["field"], note.params["reason"].params["en"]) == (
        "mapping.unmatched-omitted",
        "用途",
        "an emergency number",
    )


def test_without_omit_an_unmatched_code_is_still_a_problem() -> None:
    result = mapped({"use": {"from": "用途", "map": "use"}}, 用途="EMR")
    assert [p.message_id for p in result.problems] == ["mapping.unmatched-code"]


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=4).filter(lambda c: c not in ("PRN", "EMR")))
def test_a_code_the_map_does_not_list_is_refused_even_with_omit(code: str) -> None:
    result = mapped({"use": OMIT_USE}, 用途=code)
    assert [p.message_id for p in result.problems] == ["mapping.unknown-code"]


def test_a_code_another_element_carries_is_not_noted_as_omitted() -> None:
    result = mapped({"system": {"from": "用途", "transform": ["identifier"]}, "use": OMIT_USE}, 用途="EMR")
    assert result.omitted == []


def test_a_code_two_elements_leave_out_is_noted_once() -> None:
    result = mapped({"use": OMIT_USE, "rank": OMIT_USE}, 用途="EMR")
    assert len(result.omitted) == 1


def test_first_of_takes_the_first_alternative_that_gives_a_value() -> None:
    result = mapped({"use": {"first_of": [BY_EQUIPMENT, OMIT_USE]}}, 设备="CP", 用途="PRN")
    assert result.resources["p"]["telecom"][0]["use"] == "mobile"


def test_first_of_falls_back_when_an_alternative_omits_its_code() -> None:
    result = mapped({"use": {"first_of": [BY_EQUIPMENT, OMIT_USE]}}, 设备="PH", 用途="PRN")
    assert result.resources["p"]["telecom"][0]["use"] == "home"


def test_first_of_falls_back_when_an_alternative_s_field_is_empty() -> None:
    result = mapped({"use": {"first_of": [BY_EQUIPMENT, OMIT_USE]}}, 用途="PRN")
    assert result.resources["p"]["telecom"][0]["use"] == "home"


def test_the_lineage_of_a_first_of_names_the_alternative_that_gave_the_value() -> None:
    result = mapped({"use": {"first_of": [BY_EQUIPMENT, OMIT_USE]}}, 设备="PH", 用途="PRN")
    assert result.lineage[("p", "Patient.telecom[0].use")].field == "用途"


def test_the_schema_refuses_an_unmatched_choice_other_than_omit() -> None:
    rule = {"path": "gender", "value": {"from": "性别", "map": "sex", "unmatched": "keep"}}
    assert schema_problems({"id": "r", "rules": [rule]}, "r.yaml", "ruleset") != []


def test_a_code_unknown_to_two_maps_of_one_field_is_one_problem() -> None:
    result = mapped({"use": OMIT_USE, "system": {"from": "用途", "map": "equipment", "unmatched": "omit"}}, 用途="ZZ")
    assert [(p.message_id, p.params["conceptMap"]) for p in result.problems] == [("mapping.unknown-code", "use")]
