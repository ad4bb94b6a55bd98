"""The mapping engine, normalisers and paths, independent of any real source."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings import normalise
from mappings.conceptmaps import ConceptMaps
from mappings.engine import MappingEngine
from mappings.normalise import MappingError
from mappings.paths import parse, set_path
from mappings.records import SourceRecord
from mappings.specs import Spec

SEX_MAP = {
    "resourceType": "ConceptMap",
    "id": "sex",
    "url": "{base}/ConceptMap/sex",
    "status": "active",
    "group": [
        {
            "target": "urn:oid:2.16.156.10011.2.3.3.4",
            "element": [
                {"code": "男", "target": [{"code": "1", "display": "男性", "equivalence": "equivalent"}]},
                {"code": "1", "target": [{"code": "1", "display": "男性", "equivalence": "equivalent"}]},
            ],
        }
    ],
}


def spec(*rules: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> Spec:
    resources = [{"name": "patient", "type": "Patient", "rules": list(rules)}, *(extra or [])]
    return Spec("test/spec", "测试", "test", frozenset({"姓名"}), resources)


def record(**fields: Any) -> SourceRecord:
    return SourceRecord("test", "表.csv", "row 2", fields, b"raw", "column", frozenset(fields))


def engine(*specs: Spec) -> MappingEngine:
    return MappingEngine(list(specs), ConceptMaps([SEX_MAP], "http://b"), "http://b")


# -- paths ---------------------------------------------------------------------------------
def test_plus_appends_and_equals_reuses_the_item() -> None:
    resource: dict[str, Any] = {}
    set_path(resource, parse("identifier[+].system"), "a")
    written = set_path(resource, parse("identifier[=].value"), "1")
    assert (resource, written) == ({"identifier": [{"system": "a", "value": "1"}]}, "identifier[0].value")


# -- normalisers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "1945-01-01",
        "1945/1/1",
        "19450101",
        "1945年1月1日",
        "1945.01.01",
        16438,
        16438.0,
        "16438",
        19450101,
        19450101.0,
        "１９４５－０１－０１",
        datetime(1945, 1, 1, 8, 30),
    ],
)
def test_every_date_spelling_in_exports_becomes_iso(raw: Any) -> None:
    assert normalise.fhir_date(raw) == "1945-01-01"


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("1949-12-30T16:00:00.000+0000", "1949-12-31"),  # a Java platform's birthday, midnight in Beijing
        ("2026-02-28T16:00:00Z", "2026-03-01"),
        ("1946-05-31T15:00:00.000+0000", "1946-06-01"),  # China's summer time of 1946: midnight was 15:00Z
        ("2026-03-01T09:30:00+08:00", "2026-03-01"),
        ("2026-03-01 23:30:00", "2026-03-01"),  # no offset: Beijing time, the day as written
    ],
)
def test_a_date_written_as_a_moment_with_an_offset_is_the_day_it_was_in_china(raw: str, day: str) -> None:
    assert normalise.fhir_date(raw) == day


@pytest.mark.parametrize(
    ("millis", "day", "moment"),
    [
        (-631180800000, "1950-01-01", "1950-01-01T00:00:00+08:00"),  # a birthday, midnight in Beijing
        (1772332200000, "2026-03-01", "2026-03-01T10:30:00+08:00"),  # an assessment at 10:30
    ],
)
def test_a_java_platforms_date_as_epoch_milliseconds_is_read_in_beijing_time(
    millis: int, day: str, moment: str
) -> None:
    """Jackson writes a java.util.Date as milliseconds since 1970 unless told otherwise."""
    assert (normalise.fhir_date(millis), normalise.fhir_datetime(millis)) == (day, moment)


@pytest.mark.parametrize("raw", ["1938-05", "1938/5", "1938.05", "1938年5月", "１９３８－０５"])
def test_a_birth_month_without_its_day_is_a_date_of_that_precision(raw: str) -> None:
    """An old archive may know the month alone, as it may know the year alone (1938)."""
    assert normalise.fhir_date(raw) == "1938-05"


@pytest.mark.parametrize("raw", ["1938.1", 1938.05, 1938.1])
def test_a_year_and_month_a_spreadsheet_may_have_cut_is_refused_not_read_as_a_day_of_1905(raw: Any) -> None:
    """1938.1 may be 1938.10 saved as a number; as an Excel serial it was read as 1905-04-21."""
    with pytest.raises(MappingError) as caught:
        normalise.fhir_date(raw)
    assert caught.value.message_id == "mapping.bad-date"


@pytest.mark.parametrize("raw", [1938, 1938.0, "1938"])
def test_a_year_alone_is_a_year_as_a_number_as_it_is_as_text(raw: Any) -> None:
    assert normalise.fhir_date(raw) == "1938"


def test_a_month_that_does_not_exist_is_an_impossible_date() -> None:
    with pytest.raises(MappingError) as caught:
        normalise.fhir_date("1938-13")
    assert caught.value.message_id == "mapping.impossible-date"


@pytest.mark.parametrize(
    ("raw", "message_id"), [("1945-02-30", "mapping.impossible-date"), ("去年", "mapping.bad-date")]
)
def test_dates_that_cannot_be_true_are_refused(raw: str, message_id: str) -> None:
    with pytest.raises(MappingError) as caught:
        normalise.fhir_date(raw)
    assert caught.value.message_id == message_id


@pytest.mark.parametrize("raw", [19501340, 19501340.0, "19501340"])
def test_an_impossible_eight_digit_date_is_the_same_problem_as_a_number_or_as_text(raw: Any) -> None:
    with pytest.raises(MappingError) as caught:
        normalise.fhir_date(raw)
    assert (caught.value.message_id, caught.value.params) == ("mapping.impossible-date", {"value": "19501340"})


@pytest.mark.parametrize(("raw", "read"), [(19500101, "1950-01-01"), (18264, "1950-01-01"), (20260315, "2026-03-15")])
def test_a_date_typed_as_a_number_is_read_as_its_digits_or_as_an_excel_serial(raw: int, read: str) -> None:
    assert normalise.fhir_datetime(raw) == read


@pytest.mark.parametrize("raw", [45632.5, "45632.5"])
def test_an_excel_serial_with_a_fraction_keeps_its_time_of_day(raw: Any) -> None:
    """A date-and-time cell formatted General (or saved so to CSV) was cut back to its day."""
    assert normalise.fhir_datetime(raw) == "2024-12-06T12:00:00+08:00"


@pytest.mark.parametrize("raw", [45632.5, "45632.5"])
def test_an_excel_serial_with_a_fraction_is_its_day_where_a_date_is_wanted(raw: Any) -> None:
    """As text (a General cell saved to CSV) it was refused as no date at all."""
    assert normalise.fhir_date(raw) == "2024-12-06"


def test_an_excel_serial_s_time_of_day_is_read_to_the_nearest_second() -> None:
    """09:30 is 0.395833… of a day: a float a hair under it."""
    assert normalise.fhir_datetime(45632 + (9 * 3600 + 30 * 60) / 86_400) == "2024-12-06T09:30:00+08:00"


@pytest.mark.parametrize("raw", ["1.10105E+17", 1.10105e17, "4.10105e+17"])
def test_excel_mangled_identifiers_are_refused(raw: Any) -> None:
    with pytest.raises(MappingError, match="mapping.excel-mangled-number"):
        normalise.identifier(raw)


def test_full_width_identifier_is_folded() -> None:
    assert normalise.identifier("１１０１０５１９４９１２３１００２ｘ") == "11010519491231002X"


@pytest.mark.parametrize("raw", ["å¼ ä¸‰", "锟斤拷", "张\ufffd三"])
def test_mojibake_is_refused(raw: str) -> None:
    with pytest.raises(MappingError, match="mapping.mojibake"):
        normalise.text(raw)


def test_garbled_text_is_quoted_no_further_than_a_family_name() -> None:
    """èµµæ·‘èŠ¬ read back as UTF-8 is 赵淑芬: the message keeps 赵's three characters."""
    with pytest.raises(MappingError) as refused:
        normalise.text("èµµæ·‘èŠ¬")
    assert refused.value.params["value"] == "èµµ…"


@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=8))
def test_plain_chinese_text_passes_through(name: str) -> None:
    assert normalise.text(name) == name


def test_multi_valued_cells_split_on_any_separator() -> None:
    assert normalise.split_list("高血压，糖尿病、冠心病;脑卒中") == ["高血压", "糖尿病", "冠心病", "脑卒中"]


# -- engine --------------------------------------------------------------------------------
NAME = {"path": "name[+]", "value": {"text": {"from": "姓名", "required": True}}}


def test_mapped_value_lands_at_its_path() -> None:
    mapped = engine(spec(NAME)).map(record(姓名="张三"))
    assert mapped.resources["patient"]["name"] == [{"text": "张三"}]


def test_a_joined_leaf_joins_every_field_that_has_a_value() -> None:
    rule = {"path": "name[+]", "value": {"text": {"from": ["姓", "名", "字"], "join": ""}}}
    mapped = engine(spec(rule)).map(record(姓名="x", 姓="欧阳", 名="", 字="建国"))
    assert mapped.resources["patient"]["name"] == [{"text": "欧阳建国"}]


def test_every_set_element_knows_its_legacy_field() -> None:
    mapped = engine(spec(NAME)).map(record(姓名="张三"))
    assert str(mapped.lineage[("patient", "Patient.name[0].text")]) == "表.csv row 2, column 姓名"


def test_required_empty_field_is_a_problem_with_its_location() -> None:
    mapped = engine(spec(NAME)).map(record(姓名=""))
    assert [(p.message_id, str(p.ref)) for p in mapped.problems] == [
        ("mapping.missing-required", "表.csv row 2, column 姓名")
    ]


def test_constant_only_structure_is_dropped_when_its_source_is_empty() -> None:
    rule = {"path": "identifier[+]", "value": {"system": "urn:x", "value": {"from": "档案号"}}}
    mapped = engine(spec(NAME, rule)).map(record(姓名="张三", 档案号=""))
    assert "identifier" not in mapped.resources["patient"]


def test_concept_map_translates_a_legacy_code_to_a_coding() -> None:
    rule = {
        "path": "_gender.extension[+]",
        "value": {"url": "u", "valueCoding": {"from": "性别", "map": "sex", "as": "coding"}},
    }
    mapped = engine(spec(NAME, rule)).map(record(姓名="张三", 性别="男"))
    expected = {"system": "urn:oid:2.16.156.10011.2.3.3.4", "code": "1", "display": "男性"}
    assert mapped.resources["patient"]["_gender"]["extension"][0]["valueCoding"] == expected


def test_unknown_code_is_a_problem_naming_the_concept_map() -> None:
    rule = {"path": "gender", "value": {"from": "性别", "map": "sex"}}
    mapped = engine(spec(NAME, rule)).map(record(姓名="张三", 性别="X"))
    assert [(p.message_id, p.params["conceptMap"]) for p in mapped.problems] == [("mapping.unknown-code", "sex")]


def test_every_problem_is_reported_not_only_the_first() -> None:
    rules = [
        NAME,
        {"path": "gender", "value": {"from": "性别", "map": "sex"}},
        {"path": "birthDate", "value": {"from": "出生日期", "transform": ["date"]}},
    ]
    mapped = engine(spec(*rules)).map(record(姓名="", 性别="X", 出生日期="1945-13-01"))
    assert len(mapped.problems) == 3


def test_each_makes_one_resource_per_item_referencing_the_patient() -> None:
    condition = {
        "name": "condition",
        "type": "Condition",
        "each": "疾病",
        "skip": ["无"],
        "rules": [{"path": "code.text", "value": {"from": "$item"}}, {"path": "subject", "value": {"ref": "patient"}}],
    }
    mapped = engine(spec(NAME, extra=[condition])).map(record(姓名="张三", 疾病="高血压,无,糖尿病"))
    texts = [r["code"]["text"] for n, r in mapped.resources.items() if n.startswith("condition")]
    assert texts == ["高血压", "糖尿病"]


def test_dotted_field_reaches_into_nested_json() -> None:
    rule = {"path": "name[+]", "value": {"text": {"from": "baseinfo.psn_name"}}}
    the_spec = spec(rule)
    mapped = engine(the_spec).map(record(baseinfo={"psn_name": "张三"}), the_spec)
    assert mapped.resources["patient"]["name"] == [{"text": "张三"}]


def test_a_dotted_step_not_in_ascii_digits_reaches_nothing() -> None:
    """``²`` is a digit to str.isdigit and no number to int(): that was a ValueError mid-map."""
    rule = {"path": "name[+]", "value": {"text": {"from": "names.\u00b2.text"}}}
    the_spec = spec(rule)
    mapped = engine(the_spec).map(record(names=[{"text": "张三"}] * 3), the_spec)
    assert "name" not in mapped.resources["patient"]


def test_resource_ids_are_stable_across_runs() -> None:
    first = engine(spec(NAME)).map(record(姓名="张三")).resources["patient"]["id"]
    assert engine(spec(NAME)).map(record(姓名="张三")).resources["patient"]["id"] == first


def test_fields_no_rule_consumed_are_reported_as_unused() -> None:
    mapped = engine(spec(NAME)).map(record(姓名="张三", 备注="无"))
    assert mapped.unused_fields == ["备注"]


def test_a_member_of_a_json_object_no_rule_read_is_reported_not_hidden_by_its_siblings() -> None:
    """The 老人档案's address without its text: the rule reading the county code is skipped, and
    the code, unread, is told; a member of the object read by a rule (the text) is not."""
    rule = {
        "path": "address[+]",
        "when": "address.detail",
        "value": {"text": {"from": "address.detail"}, "district": {"from": "address.areaCode"}},
    }
    contact = {"path": "contact[+].name.text", "value": {"from": "emergencyContact.name"}}
    fields = {
        "姓名": "张秀英",
        "address": {"detail": "", "areaCode": "410105"},
        "emergencyContact": {"name": "李娟", "phone": "13903710002", "extra": {"relation": "女儿"}},
    }
    mapped = engine(spec(NAME, rule, contact)).map(record(**fields))
    assert mapped.unused_fields == ["address.areaCode", "emergencyContact.phone", "emergencyContact.extra.relation"]


ADDRESS = {"path": "address[+]", "value": {"text": {"from": "PID-11.1"}, "city": {"from": "PID-11.3"}}}


def hl7_like(**fields: Any) -> SourceRecord:
    """A record whose keys name parts of fields, and a typed key viewing one of them."""
    views = {"PID-3[ID].1": "PID-3~2.1"}
    return SourceRecord("test", "a.hl7", "message 1", fields, b"raw", "field", frozenset({"姓名"}), views)


def test_a_field_a_part_of_which_was_read_is_not_reported_unused() -> None:
    mapped = engine(spec(ADDRESS)).map(
        hl7_like(**{"PID-11": "经八路^^郑州市", "PID-11.1": "经八路", "PID-11.3": "郑州市"})
    )
    assert mapped.unused_fields == []


def test_an_unread_field_is_named_once_not_with_each_of_its_parts() -> None:
    mapped = engine(spec(ADDRESS)).map(hl7_like(**{"PID-16": "W^丧偶", "PID-16.1": "W", "PID-16.2": "丧偶"}))
    assert mapped.unused_fields == ["PID-16"]


def test_a_value_read_under_one_of_its_names_is_read_under_all() -> None:
    rule = {"path": "identifier[+].value", "value": {"from": "PID-3[ID].1"}}
    fields = {"PID-3~2.1": "410105194912310020", "PID-3[ID].1": "410105194912310020"}
    assert engine(spec(rule)).map(hl7_like(**fields)).unused_fields == []


def test_a_rule_each_over_fallback_fields_repeats_over_the_first_with_a_value() -> None:
    rule = {
        "path": "telecom[+].value",
        "each": ["XTN.1", "XTN.12"],
        "split": "phone_numbers",
        "value": {"from": "$item"},
    }
    mapped = engine(spec(rule)).map(record(姓名="张三", **{"XTN.1": "", "XTN.12": "66668888 77779999"}))
    assert mapped.resources["patient"]["telecom"] == [{"value": "66668888"}, {"value": "77779999"}]


REPEATED = {"path": "telecom[+].value", "each": "t[*]/@value", "split": "phone_numbers", "value": {"from": "$item"}}
OCCURRENCES = {"姓名": "张三", "t/@value": "13800000001", "tx/@value": "0", "t[2]/@value": "13800000002 13800000003"}


def test_a_rule_each_over_a_repeated_element_repeats_over_every_occurrence() -> None:
    mapped = engine(spec(REPEATED)).map(record(**OCCURRENCES))
    assert [telecom["value"] for telecom in mapped.resources["patient"]["telecom"]] == [
        "13800000001",
        "13800000002",
        "13800000003",
    ]


def test_each_value_of_a_repeated_element_names_the_occurrence_it_came_from() -> None:
    mapped = engine(spec(REPEATED)).map(record(**OCCURRENCES))
    assert [mapped.lineage[("patient", f"Patient.telecom[{i}].value")].field for i in range(3)] == [
        "t/@value",
        "t[2]/@value[0]",
        "t[2]/@value[1]",
    ]


def test_every_occurrence_of_a_repeated_element_counts_as_read() -> None:
    mapped = engine(spec(REPEATED)).map(record(**OCCURRENCES))
    assert mapped.unused_fields == ["姓名", "tx/@value"]


def test_a_rule_each_over_an_element_reads_the_parts_of_every_occurrence() -> None:
    rule = {"path": "address[+].city", "each": "a[*]", "value": {"from": "$item.city"}}
    fields = {"姓名": "张三", "a/city": "郑州市", "a/@use": "H", "a[2]/city": "开封市"}
    assert engine(spec(rule)).map(record(**fields)).resources["patient"]["address"] == [
        {"city": "郑州市"},
        {"city": "开封市"},
    ]


def test_an_unless_about_the_item_skips_the_items_it_holds_for_and_keeps_those_without_the_field() -> None:
    """``unless`` is the negation ``when: {not_in}`` cannot say: a field without a value never
    holds, so a repetition without an XTN.2 is kept where one of use EMR is left to another rule."""
    rule = {
        "path": "telecom[+].value",
        "each": "t[*]",
        "unless": {"field": "$item.2", "in": ["EMR"]},
        "value": {"from": "$item.1"},
    }
    fields = {"姓名": "张三", "t/1": "1", "t/2": "PRN", "t[2]/1": "2", "t[2]/2": "EMR", "t[3]/1": "3"}
    assert engine(spec(rule)).map(record(**fields)).resources["patient"]["telecom"] == [{"value": "1"}, {"value": "3"}]


def test_a_list_item_after_an_empty_one_names_its_own_field_in_lineage() -> None:
    rule = {"path": "address[+].line", "value": [{"from": "乡镇"}, {"from": "街道"}, {"from": "门牌"}]}
    mapped = engine(spec(rule)).map(record(姓名="张三", 乡镇="", 街道="经八路", 门牌="3号楼"))
    assert [mapped.lineage[("patient", f"Patient.address[0].line[{i}]")].field for i in (0, 1)] == ["街道", "门牌"]


def test_explain_shows_a_list_item_after_an_empty_one_where_it_landed() -> None:
    rule = {"path": "address[+].line", "value": [{"from": "乡镇"}, {"from": "街道"}]}
    mapped = engine(spec(rule)).map(record(姓名="张三", 乡镇="", 街道="经八路"), trace=True)
    assert [step.target for step in mapped.steps if step.field == "街道"] == ["Patient.address[+].line[0]"]


def test_an_ignore_with_every_occurrence_covers_each_occurrence_of_the_repeated_element() -> None:
    ignoring = Spec("test/spec", "测试", "test", frozenset({"姓名"}), spec(NAME).resources, frozenset({"t[*]/@use"}))
    fields = {"姓名": "张三", "t/@use": "H", "t[2]/@use": "WP", "tx/@use": "H"}
    assert engine(ignoring).map(record(**fields)).unused_fields == ["tx/@use"]


def test_a_resource_each_over_every_occurrence_fails_at_load_time() -> None:
    condition = {"name": "condition", "type": "Condition", "each": "t[*]/@value", "rules": []}
    with pytest.raises(ValueError, match="not a resource's"):
        engine(spec(NAME, extra=[condition]))


def test_a_spread_without_an_each_over_element_occurrences_fails_at_load_time() -> None:
    rule = {"path": "telecom[+].value", "each": "电话", "spread": ["1"], "value": {"from": "$item.1"}}
    with pytest.raises(ValueError, match="spread needs an each"):
        engine(spec(NAME, rule))


def test_a_default_stands_for_an_empty_field() -> None:
    rule = {"path": "telecom[+]", "value": {"system": {"from": "设备", "default": "phone"}, "value": {"from": "电话"}}}
    mapped = engine(spec(NAME, rule)).map(record(姓名="张三", 电话="13803710001", 设备=""))
    assert mapped.resources["patient"]["telecom"] == [{"system": "phone", "value": "13803710001"}]


def test_spec_naming_an_unknown_split_fails_at_load_time() -> None:
    rule = {"path": "telecom[+].value", "each": "电话", "split": "phones", "value": {"from": "$item"}}
    with pytest.raises(ValueError, match="unknown split"):
        engine(spec(rule))


def test_spec_naming_an_unknown_transform_fails_at_load_time() -> None:
    with pytest.raises(ValueError, match="unknown transform"):
        engine(spec({"path": "name[+]", "value": {"text": {"from": "姓名", "transform": ["magic"]}}}))


def test_spec_is_selected_by_the_record_shape() -> None:
    assert engine(spec(NAME)).select(record(身份证号="1")) is None


# -- keys ----------------------------------------------------------------------------------
INSTITUTION = {
    "name": "institution",
    "type": "Organization",
    "key": ["identifier.first().system", "identifier.first().value"],
    "rules": [{"path": "identifier[+]", "value": {"system": "{base}/sid/uscc", "value": {"from": "机构代码"}}}],
}
CARED_FOR = {"path": "generalPractitioner[+]", "value": {"ref": "institution"}}


def test_a_keyed_resource_takes_its_id_from_its_business_key() -> None:
    mapped = engine(spec(NAME, extra=[INSTITUTION])).map(record(姓名="张三", 机构代码="52410105MJY123456L"))
    first = mapped.resources["institution"]["id"]
    again = engine(spec(NAME, extra=[INSTITUTION])).map(record(姓名="李四", 机构代码="52410105MJY123456L"))
    assert again.resources["institution"]["id"] == first


def test_references_follow_a_keyed_resource_to_its_new_id() -> None:
    mapped = engine(spec(NAME, CARED_FOR, extra=[INSTITUTION])).map(record(姓名="张三", 机构代码="52410105MJY123456L"))
    institution = mapped.resources["institution"]["id"]
    assert mapped.resources["patient"]["generalPractitioner"] == [{"reference": f"Organization/{institution}"}]


def test_a_resource_whose_key_is_incomplete_keeps_its_per_record_id() -> None:
    mapped = engine(spec(NAME, extra=[INSTITUTION])).map(record(姓名="张三", 机构代码=""))
    assert "institution" not in mapped.keyed


DATED_INSTITUTION = {**INSTITUTION, "as_of": {"from": "更新时间", "transform": ["datetime"]}}


def test_a_keyed_resource_carries_the_time_its_record_speaks_for() -> None:
    mapped = engine(spec(NAME, extra=[DATED_INSTITUTION])).map(
        record(姓名="张三", 机构代码="52410105MJY123456L", 更新时间="2026/11/2 9:15")
    )
    assert mapped.keyed["institution"] == "2026-11-02T09:15:00+08:00"


def test_an_unreadable_as_of_time_is_a_problem_of_the_record() -> None:
    mapped = engine(spec(NAME, extra=[DATED_INSTITUTION])).map(
        record(姓名="张三", 机构代码="52410105MJY123456L", 更新时间="2026/13/2 9:15")
    )
    assert [(p.message_id, p.params["field"]) for p in mapped.problems] == [("mapping.impossible-date", "更新时间")]


def test_an_as_of_without_a_key_fails_at_load_time() -> None:
    unkeyed = {key: value for key, value in DATED_INSTITUTION.items() if key != "key"}
    with pytest.raises(ValueError, match="as_of but no key"):
        engine(spec(NAME, extra=[unkeyed]))


def test_an_as_of_that_is_not_read_as_a_time_fails_at_load_time() -> None:
    untimed = {**DATED_INSTITUTION, "as_of": {"from": "更新时间"}}
    with pytest.raises(ValueError, match="must read a time"):
        engine(spec(NAME, extra=[untimed]))


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("2026/11/2 9:15", "2026-11-02T09:15:00+08:00"),
        ("2024-03-01T10:20:30+08:00", "2024-03-01T10:20:30+08:00"),
        ("2024-03-01T02:20:30.000Z", "2024-03-01T10:20:30+08:00"),
    ],
)
def test_a_time_keeps_its_time_of_day_in_beijing_time(written: str, read: str) -> None:
    assert normalise.fhir_datetime(written) == read


def test_an_impossible_time_of_day_is_refused() -> None:
    with pytest.raises(MappingError, match="mapping.impossible-date"):
        normalise.fhir_datetime("2026-11-02 25:61:00")


def test_a_list_where_one_value_belongs_is_refused_not_written_as_python_text() -> None:
    with pytest.raises(MappingError, match="mapping.not-text"):
        normalise.text(["张三", "李四"])


@pytest.mark.parametrize("written", ["nan", "inf", "1_000"])
def test_decimal_takes_plain_decimal_notation_only(written: str) -> None:
    with pytest.raises(MappingError, match="mapping.not-a-number"):
        normalise.decimal(written)


def test_a_masked_name_is_text_not_mojibake() -> None:
    assert normalise.text("王××") == "王××"


def test_a_time_with_an_offset_no_clock_has_is_refused() -> None:
    with pytest.raises(MappingError, match="mapping.impossible-date"):
        normalise.fhir_datetime("2024-01-01T10:00+24:00")


def test_a_time_no_pattern_reads_is_refused_not_cut_to_its_date() -> None:
    with pytest.raises(MappingError, match="mapping.bad-date"):
        normalise.fhir_datetime("2024-01-01T10:00:00 CST")


def test_a_long_integer_keeps_every_digit() -> None:
    assert normalise.integer("123456789012345678901") == 123456789012345678901


# -- when ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "made"), [("家庭病床", True), ("随访", False)])
def test_a_resource_can_be_made_only_for_some_values_of_a_field(kind: str, made: bool) -> None:
    episode = {
        "name": "bed",
        "type": "EpisodeOfCare",
        "when": {"field": "服务类型", "in": ["家庭病床"]},
        "rules": [{"path": "status", "value": "active"}],
    }
    mapped = engine(spec(NAME, extra=[episode])).map(record(姓名="张三", 服务类型=kind))
    assert ("bed" in mapped.resources) is made


def test_an_unreadable_records_identity_is_its_bytes_not_the_wording_of_its_reason() -> None:
    """Quarantined again after the reader's wording changed, it must stay one entry."""
    from mappings.engine import content_digest
    from mappings.records import Message, unparseable

    first = unparseable("community-health", "表.csv", "row 2", b"1,\x01", Message("reader.control-character", {}))
    again = unparseable("community-health", "表.csv", "row 2", b"1,\x01", Message("reader.at-row", {"row": 2}))
    assert content_digest(first) == content_digest(again)
