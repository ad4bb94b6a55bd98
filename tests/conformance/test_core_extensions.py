"""Extensions looked up by URL in the R4 core extension definitions and in the registry's own:
each rule with a passing and a failing instance (unknown URL — an error unless its domain is
allowed, as the reference's -extension —, value type, context, modifier, sub-extensions), for
extensions no profile slices."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.validator import Validator
from profiles.registry import Registry, _load_base
from tests.conformance.definitions import sd, validator_with
from tests.conftest import errors, found

CORE = "http://hl7.org/fhir/StructureDefinition/"
BIRTH_PLACE = CORE + "patient-birthPlace"


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def ids(issues: list) -> set[str]:
    return {i.message_id for i in issues if i.message_id.startswith("extension.")}


def test_derived_table_records_its_source() -> None:
    stamp = _load_base("r4-extensions.json")["_derived"]
    assert "extension definitions 4.0.1" in stamp["source"] and "derive_core_extensions.py" in stamp["regenerate"]
    registry = Registry()
    assert len(registry.base_extensions) == 393
    entry = registry.base_extensions[BIRTH_PLACE]
    assert entry == {
        "contexts": [["element", "Patient"]],
        "types": ["Address"],
        "valueMin": 1,
        "extensionCount": [0, 0],
    }


def test_birth_place_on_patient_with_address_passes(validator: Validator) -> None:
    issues = validator.validate(patient(extension=[{"url": BIRTH_PLACE, "valueAddress": {"city": "郑州市"}}]))
    assert errors(issues) == []
    assert ids(issues) == set()


def test_unknown_url_in_core_namespace_is_an_error(validator: Validator) -> None:
    issues = validator.validate(patient(extension=[{"url": CORE + "patient-birthplace", "valueString": "郑州"}]))
    assert ("extension.unknown-core", "Patient.extension[0]") in errors(issues)


HOSPITAL_EXTENSION = "http://his.example-hospital.cn/fhir/ext/bed-number"


def test_unknown_url_elsewhere_is_an_error(validator: Validator) -> None:
    issues = validator.validate(patient(extension=[{"url": HOSPITAL_EXTENSION, "valueString": "x"}]))
    assert ("extension.unknown-not-allowed", "Patient.extension[0]") in errors(issues)


def test_unknown_url_in_an_allowed_domain_is_information(validator: Validator) -> None:
    allowing = Validator(validator.registry, extension_domains=["http://his.example-hospital.cn/"])
    issues = allowing.validate(patient(extension=[{"url": HOSPITAL_EXTENSION, "valueString": "x"}]))
    assert [(i.severity, i.message_id) for i in issues if i.message_id.startswith("extension.")] == [
        ("information", "extension.unknown")
    ]


def test_extension_known_to_the_registry_is_not_unknown(validator: Validator) -> None:
    known = next(sd["url"] for sd in validator.registry.all("StructureDefinition") if sd.get("type") == "Extension")
    issues = validator.validate(patient(extension=[{"url": known, "valueString": "x"}]))
    assert not found(issues, "extension.unknown") and not found(issues, "extension.unknown-core")


def test_wrong_value_type_is_an_error(validator: Validator) -> None:
    issues = validator.validate(patient(extension=[{"url": BIRTH_PLACE, "valueString": "郑州"}]))
    assert ("extension.value-type", "Patient.extension[0].valueString") in errors(issues)


def test_wrong_context_is_an_error(validator: Validator) -> None:
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "体温"},
        "extension": [{"url": BIRTH_PLACE, "valueAddress": {"city": "郑州市"}}],
    }
    assert ("extension.context", "Observation.extension[0]") in errors(validator.validate(observation))


def test_context_inside_a_bundle_entry_and_backbone_element(validator: Validator) -> None:
    entry = patient(
        extension=[{"url": BIRTH_PLACE, "valueAddress": {"city": "郑州市"}}],
        contact=[{"name": {"text": "李四"}, "extension": [{"url": BIRTH_PLACE, "valueAddress": {"city": "x"}}]}],
    )
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:1", "resource": entry}]}
    assert [e for e in errors(validator.validate(bundle)) if e[0].startswith("extension.")] == [
        ("extension.context", "Bundle.entry[0].resource.contact[0].extension[0]")
    ]


def test_context_of_a_primitive_and_of_a_datatype_element(validator: Validator) -> None:
    good = patient(
        birthDate="2000-01-01",
        _birthDate={"extension": [{"url": CORE + "patient-birthTime", "valueDateTime": "2000-01-01T08:30:00+08:00"}]},
        name=[
            {"family": "欧阳", "_family": {"extension": [{"url": CORE + "humanname-own-prefix", "valueString": "x"}]}}
        ],
    )
    assert ids(validator.validate(good)) == set()
    bad = patient(
        gender="female",
        _gender={"extension": [{"url": CORE + "patient-birthTime", "valueDateTime": "2000-01-01T08:30:00+08:00"}]},
    )
    assert ("extension.context", "Patient.gender.extension[0]") in errors(validator.validate(bad))


def test_modifier_flag_must_match_the_list(validator: Validator) -> None:
    issues = validator.validate(patient(modifierExtension=[{"url": BIRTH_PLACE, "valueAddress": {"city": "x"}}]))
    assert ("extension.modifier-mismatch", "Patient.modifierExtension[0]") in errors(issues)


def test_sub_extensions_of_a_complex_core_extension(validator: Validator) -> None:
    nationality = CORE + "patient-nationality"
    good = patient(
        extension=[{"url": nationality, "extension": [{"url": "code", "valueCodeableConcept": {"text": "中国"}}]}]
    )
    assert ids(validator.validate(good)) == set()
    bad = patient(
        extension=[
            {
                "url": nationality,
                "extension": [{"url": "kode", "valueString": "x"}, {"url": "period", "valueString": "x"}],
            }
        ]
    )
    found_errors = errors(validator.validate(bad))
    assert ("extension.unknown-slice", "Patient.extension[0].extension[0]") in found_errors
    assert ("extension.value-type", "Patient.extension[0].extension[1].valueString") in found_errors


def test_complex_core_extension_takes_no_value(validator: Validator) -> None:
    issues = validator.validate(patient(extension=[{"url": CORE + "patient-nationality", "valueString": "中国"}]))
    assert ("extension.value-type", "Patient.extension[0].valueString") in errors(issues)


def test_relative_url_outside_a_complex_extension_is_an_error(validator: Validator) -> None:
    issues = validator.validate(patient(extension=[{"url": "nickname", "valueString": "x"}]))
    assert ("extension.relative-url", "Patient.extension[0]") in errors(issues)


# -- the registry's own extensions, checked by URL where no profile slices them -----------------
def package_extension(validator: Validator, name: str) -> str:
    return next(sd["url"] for sd in validator.registry.all("StructureDefinition") if sd.get("id") == f"yy-ext-{name}")


def ethnicity(validator: Validator) -> dict[str, Any]:
    coding = {"system": "http://www.stats.gov.cn/gb3304", "code": "01"}
    return {"url": package_extension(validator, "ethnicity"), "valueCoding": coding}


def test_a_package_extension_in_its_context_passes_without_a_profile(validator: Validator) -> None:
    issues = validator.validate(patient(extension=[ethnicity(validator)]))
    assert not {"extension.context", "extension.value-type"} & ids(issues)


def test_a_package_extension_outside_its_context_is_an_error(validator: Validator) -> None:
    organization = {"resourceType": "Organization", "name": "某院", "extension": [ethnicity(validator)]}
    assert ("extension.context", "Organization.extension[0]") in errors(validator.validate(organization))


def test_a_package_extension_with_a_value_of_another_type_is_an_error(validator: Validator) -> None:
    wrong = {"url": package_extension(validator, "ethnicity"), "valueString": "汉族"}
    assert ("extension.value-type", "Patient.extension[0].valueString") in errors(
        validator.validate(patient(extension=[wrong]))
    )


def test_an_unknown_part_of_a_complex_package_extension_is_an_error(validator: Validator) -> None:
    record = {
        "url": package_extension(validator, "health-record"),
        "extension": [{"url": "stauts", "valueCode": "active"}],
    }
    issues = validator.validate(patient(extension=[record]))
    assert ("extension.unknown-slice", "Patient.extension[0].extension[0]") in errors(issues)


def health_record_status(validator: Validator, coding: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": package_extension(validator, "health-record"),
        "extension": [{"url": "status", "valueCoding": coding}],
    }


def test_a_package_extension_value_outside_its_required_value_set_is_an_error(validator: Validator) -> None:
    wrong = {"url": package_extension(validator, "ethnicity"), "valueCoding": {"system": "http://x", "code": "x"}}
    issues = validator.validate(patient(extension=[wrong]))
    assert ("binding.not-in-valueset", "Patient.extension[0].valueCoding") in errors(issues)


def test_a_complex_package_extension_part_outside_its_required_value_set_is_an_error(validator: Validator) -> None:
    record = health_record_status(validator, {"system": "http://x", "code": "x"})
    issues = validator.validate(patient(extension=[record]))
    assert ("binding.not-in-valueset", "Patient.extension[0].extension[0].valueCoding") in errors(issues)


def expansions_asked(validator: Validator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The value sets the validator's terminology is asked to expand from now on."""
    asked: list[str] = []
    expand = validator.terminology.expand

    def recording(url: str) -> Any:
        asked.append(url)
        return expand(url)

    monkeypatch.setattr(validator.terminology, "expand", recording)
    return asked


def test_a_value_found_by_url_is_not_looked_up_again_for_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """One memo for every binding: an ethnicity code the extension check found in GB 3304 is
    not expanded again when yy-patient's slice holds it to the same binding."""
    validator = Validator(Registry())
    han = {"system": "urn:oid:2.16.156.10011.2.3.3.3", "code": "01", "display": "汉族"}
    person = patient(extension=[{"url": package_extension(validator, "ethnicity"), "valueCoding": han}])
    validator.validate(person)
    asked = expansions_asked(validator, monkeypatch)
    profile = validator.registry.url("StructureDefinition", "yy-patient")
    validator.validate({**person, "meta": {"profile": [profile]}})
    assert validator.registry.url("ValueSet", "gb-3304") not in asked


def test_a_value_found_before_definitions_were_added_is_judged_again() -> None:
    """The memo is by registry generation: an ``--ig`` value set taking over a core URL judges
    the gender a Patient had passed with."""
    registry = Registry()
    validator = Validator(registry)
    validator.validate(patient(gender="male"))
    registry.add_resource(
        {
            "resourceType": "ValueSet",
            "url": "http://hl7.org/fhir/ValueSet/administrative-gender",
            "status": "active",
            "compose": {
                "include": [{"system": "http://hl7.org/fhir/administrative-gender", "concept": [{"code": "female"}]}]
            },
        }
    )
    assert ("binding.not-in-valueset", "Patient.gender") in errors(validator.validate(patient(gender="male")))


def test_a_value_outside_its_value_set_is_refused_each_time(validator: Validator) -> None:
    wrong = {"url": package_extension(validator, "ethnicity"), "valueCoding": {"system": "http://x", "code": "x"}}
    verdicts = [found(validator.validate(patient(extension=[wrong])), "binding.not-in-valueset") for _ in range(2)]
    assert verdicts == [True, True]


STATUS_CODES = "http://fhir.yiyang.cn/CodeSystem/health-record-status"


@settings(max_examples=25, deadline=None)
@given(code=st.sampled_from(["managed", "x", "closed", "在管"]) | st.text(min_size=1, max_size=8))
def test_a_part_is_judged_by_url_as_the_profile_slicing_it_judges_it(validator: Validator, code: str) -> None:
    """With or without yy-patient claimed, a 健康档案 status is held to its value set alike."""
    record = health_record_status(validator, {"system": STATUS_CODES, "code": code})
    profile = validator.registry.url("StructureDefinition", "yy-patient")
    verdicts = [
        found(validator.validate(patient(extension=[record], **claimed)), "binding.not-in-valueset")
        for claimed in ({}, {"meta": {"profile": [profile]}})
    ]
    assert verdicts[0] == verdicts[1]


GRADE = "http://example.org/fhir/StructureDefinition/test-grade"


def test_a_part_outside_its_extensible_value_set_is_a_warning() -> None:
    """Extensible, as the reference validator holds it: a code from elsewhere is a warning."""
    bound = {"strength": "extensible", "valueSet": "http://fhir.yiyang.cn/ValueSet/health-record-status"}
    grade = sd(
        GRADE,
        "Extension",
        [
            {"id": "Extension.extension", "slicing": {"discriminator": [{"type": "value", "path": "url"}]}},
            {"id": "Extension.extension:level", "sliceName": "level"},
            {"id": "Extension.extension:level.url", "fixedUri": "level"},
            {"id": "Extension.extension:level.value[x]", "type": [{"code": "Coding"}], "binding": bound},
            {"id": "Extension.url", "fixedUri": GRADE},
            {"id": "Extension.value[x]", "max": "0"},
        ],
        kind="complex-type",
    )
    grade["context"] = [{"type": "element", "expression": "Patient"}]
    part = {"url": "level", "valueCoding": {"system": "http://example.org/levels", "code": "high"}}
    issues = validator_with(grade).validate(patient(extension=[{"url": GRADE, "extension": [part]}]))
    warned = [(i.severity, i.expression) for i in issues if i.message_id == "binding.not-in-valueset"]
    assert warned == [("warning", "Patient.extension[0].extension[0].valueCoding")]


CARE_PLAN = "http://example.org/fhir/StructureDefinition/test-care-plan"
RECORD_STATUS = {"strength": "required", "valueSet": "http://fhir.yiyang.cn/ValueSet/health-record-status"}


def care_plan_definition() -> dict[str, Any]:
    """A complex extension whose part ``step`` is itself complex, with a bound part ``status``."""
    definition = sd(
        CARE_PLAN,
        "Extension",
        [
            {"id": "Extension.extension", "slicing": {"discriminator": [{"type": "value", "path": "url"}]}},
            {"id": "Extension.extension:note", "sliceName": "note"},
            {"id": "Extension.extension:note.url", "fixedUri": "note"},
            {"id": "Extension.extension:note.value[x]", "type": [{"code": "string"}]},
            {"id": "Extension.extension:step", "sliceName": "step"},
            {
                "id": "Extension.extension:step.extension",
                "slicing": {"discriminator": [{"type": "value", "path": "url"}]},
            },
            {"id": "Extension.extension:step.extension:status", "sliceName": "status"},
            {"id": "Extension.extension:step.extension:status.url", "fixedUri": "status"},
            {
                "id": "Extension.extension:step.extension:status.value[x]",
                "type": [{"code": "Coding"}],
                "binding": RECORD_STATUS,
            },
            {"id": "Extension.extension:step.url", "fixedUri": "step"},
            {"id": "Extension.extension:step.value[x]", "max": "0"},
            {"id": "Extension.url", "fixedUri": CARE_PLAN},
            {"id": "Extension.value[x]", "max": "0"},
        ],
        kind="complex-type",
    )
    definition["context"] = [{"type": "element", "expression": "Patient"}]
    return definition


def care_plan(*step: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": CARE_PLAN,
        "extension": [{"url": "note", "valueString": "每周随访"}, {"url": "step", "extension": list(step)}],
    }


def test_a_part_of_a_part_outside_its_required_value_set_is_an_error_without_a_profile() -> None:
    status = {"url": "status", "valueCoding": {"system": "http://x", "code": "x"}}
    issues = validator_with(care_plan_definition()).validate(patient(extension=[care_plan(status)]))
    assert ("binding.not-in-valueset", "Patient.extension[0].extension[1].extension[0].valueCoding") in errors(issues)


def test_a_part_of_a_part_in_its_value_set_passes_without_a_profile() -> None:
    status = {"url": "status", "valueCoding": {"system": STATUS_CODES, "code": "managed"}}
    issues = validator_with(care_plan_definition()).validate(patient(extension=[care_plan(status)]))
    assert errors(issues) == []


def test_an_unknown_part_of_a_part_is_an_error() -> None:
    issues = validator_with(care_plan_definition()).validate(patient(extension=[care_plan({"url": "stauts"})]))
    assert ("extension.unknown-slice", "Patient.extension[0].extension[1].extension[0]") in errors(issues)


def test_a_part_of_a_part_is_reported_once_where_a_profile_applies_its_extension() -> None:
    """By URL and by the profile's slice alike: the one finding, at the part's value."""
    slicing = sd(
        "http://example.org/fhir/StructureDefinition/test-patient",
        "Patient",
        [
            {
                "id": "Patient.extension",
                "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
            },
            {
                "id": "Patient.extension:plan",
                "sliceName": "plan",
                "type": [{"code": "Extension", "profile": [CARE_PLAN]}],
            },
        ],
    )
    status = {"url": "status", "valueCoding": {"system": "http://x", "code": "x"}}
    claimed = {"meta": {"profile": [slicing["url"]]}}
    issues = validator_with(care_plan_definition(), slicing).validate(patient(extension=[care_plan(status)], **claimed))
    assert [i.expression for i in issues if i.message_id == "binding.not-in-valueset"] == [
        "Patient.extension[0].extension[1].extension[0].valueCoding"
    ]


# -- contextInvariant: must hold on the element the extension sits on --------------------------
SLIDER_STEP = CORE + "questionnaire-sliderStepValue"
MIN_OCCURS = CORE + "questionnaire-minOccurs"


def questionnaire(item_type: str, *extensions: dict[str, Any], **item: Any) -> dict[str, Any]:
    entry = {"linkId": "1", "text": "每周锻炼次数", "type": item_type, "extension": list(extensions), **item}
    return {"resourceType": "Questionnaire", "status": "draft", "item": [entry]}


def test_a_slider_step_on_an_integer_item_passes(validator: Validator) -> None:
    issues = validator.validate(questionnaire("integer", {"url": SLIDER_STEP, "valueInteger": 1}))
    assert not found(issues, "extension.context-invariant")


def test_a_slider_step_on_a_string_item_is_an_error(validator: Validator) -> None:
    issues = validator.validate(questionnaire("string", {"url": SLIDER_STEP, "valueInteger": 1}))
    assert ("extension.context-invariant", "Questionnaire.item[0]") in errors(issues)


def test_a_context_invariant_reading_the_extension_itself(validator: Validator) -> None:
    """minOccurs: type!='display' and (required=true or %extension.valueInteger=0)."""
    optional = questionnaire("integer", {"url": MIN_OCCURS, "valueInteger": 0})
    demanding = questionnaire("integer", {"url": MIN_OCCURS, "valueInteger": 2}, required=False)
    verdicts = [found(validator.validate(q), "extension.context-invariant") for q in (optional, demanding)]
    assert verdicts == [False, True]


# -- the definition's cardinalities, applied where no profile slices the extension -------------
VISIT = "http://example.org/fhir/StructureDefinition/test-visit"
VISIT_PROFILE = "http://example.org/fhir/StructureDefinition/test-visit-patient"


def visit_definition() -> dict[str, Any]:
    """A complex extension with a required ``reason`` (1..1) and at most two ``note`` parts, each
    a simple part: a value required, no parts of its own."""
    elements: list[dict[str, Any]] = [
        {"id": "Extension.extension", "slicing": {"discriminator": [{"type": "value", "path": "url"}]}}
    ]
    for name, maximum in (("reason", "1"), ("note", "2")):
        elements += [
            {"id": f"Extension.extension:{name}", "sliceName": name, "min": int(name == "reason"), "max": maximum},
            {"id": f"Extension.extension:{name}.extension", "max": "0"},
            {"id": f"Extension.extension:{name}.url", "fixedUri": name},
            {"id": f"Extension.extension:{name}.value[x]", "min": 1, "type": [{"code": "string"}]},
        ]
    elements += [{"id": "Extension.url", "fixedUri": VISIT}, {"id": "Extension.value[x]", "max": "0"}]
    definition = sd(VISIT, "Extension", elements, kind="complex-type")
    definition["context"] = [{"type": "element", "expression": "Patient"}]
    return definition


def visit_profile() -> dict[str, Any]:
    """A Patient profile slicing ``Patient.extension`` by the visit extension's URL."""
    return sd(
        VISIT_PROFILE,
        "Patient",
        [
            {"id": "Patient.extension", "slicing": {"discriminator": [{"type": "value", "path": "url"}]}},
            {
                "id": "Patient.extension:visit",
                "sliceName": "visit",
                "type": [{"code": "Extension", "profile": [VISIT]}],
            },
        ],
    )


def visit(*parts: dict[str, Any]) -> dict[str, Any]:
    return patient(extension=[{"url": VISIT, "extension": list(parts)}])


def test_a_complex_extension_with_its_parts_in_their_counts_passes() -> None:
    reason, note = {"url": "reason", "valueString": "随访"}, {"url": "note", "valueString": "血压平稳"}
    assert errors(validator_with(visit_definition()).validate(visit(reason, note, note))) == []


def test_a_complex_extension_without_its_required_part_is_an_error_without_a_profile() -> None:
    issues = validator_with(visit_definition()).validate(visit({"url": "note", "valueString": "x"}))
    assert ("profile.slice-cardinality-min", "Patient.extension[0].extension") in errors(issues)


def test_a_part_repeated_beyond_its_maximum_is_an_error_without_a_profile() -> None:
    reason = {"url": "reason", "valueString": "随访"}
    issues = validator_with(visit_definition()).validate(visit(reason, reason))
    assert ("profile.slice-cardinality-max", "Patient.extension[0].extension") in errors(issues)


def test_a_part_without_its_value_is_an_error_located_at_its_value() -> None:
    part = {"url": "reason", "extension": [{"url": "why", "valueString": "x"}]}
    issues = validator_with(visit_definition()).validate(visit(part))
    assert ("profile.cardinality-min", "Patient.extension[0].extension[0].value[x]") in errors(issues)


def test_a_simple_part_with_parts_of_its_own_is_an_error() -> None:
    part = {"url": "reason", "extension": [{"url": "why", "valueString": "x"}]}
    issues = validator_with(visit_definition()).validate(visit(part))
    assert ("profile.cardinality-max", "Patient.extension[0].extension[0].extension") in errors(issues)


def test_a_simple_package_extension_with_parts_instead_of_a_value_is_an_error(validator: Validator) -> None:
    """yy-ext-ethnicity: value[x] 1..1 and extension 0..0 in its definition."""
    wrong = {"url": package_extension(validator, "ethnicity"), "extension": [{"url": "code", "valueString": "01"}]}
    found_errors = errors(validator.validate(patient(extension=[wrong])))
    assert [e for e in found_errors if e[0].startswith("profile.cardinality")] == [
        ("profile.cardinality-min", "Patient.extension[0].value[x]"),
        ("profile.cardinality-max", "Patient.extension[0].extension"),
    ]


def test_a_missing_part_is_reported_once_where_a_profile_slices_the_extension() -> None:
    claimed = {"meta": {"profile": [VISIT_PROFILE]}}
    person = {**visit({"url": "note", "valueString": "x"}), **claimed}
    issues = validator_with(visit_definition(), visit_profile()).validate(person)
    assert [i.message_id for i in issues if "cardinality" in i.message_id] == ["profile.slice-cardinality-min"]


def cardinality_findings(issues: list) -> list[tuple[str, str, tuple]]:
    return sorted(
        (i.message_id, i.expression, tuple(sorted(i.params.items()))) for i in issues if "cardinality" in i.message_id
    )


@settings(max_examples=30, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(
            [
                {"url": "reason", "valueString": "随访"},
                {"url": "note", "valueString": "x"},
                {"url": "note"},
                {"url": "reason", "extension": [{"url": "why", "valueString": "x"}]},
            ]
        ),
        max_size=5,
    )
)
def test_cardinalities_by_url_are_the_findings_of_a_profile_slicing_the_extension(parts: list) -> None:
    """Whatever the parts, the definition's cardinalities give the same findings by URL as the
    profile applying the definition does, and claiming the profile adds none twice."""
    validator = validator_with(visit_definition(), visit_profile())
    by_url = cardinality_findings(validator.validate(visit(*parts)))
    claimed = cardinality_findings(validator.validate({**visit(*parts), "meta": {"profile": [VISIT_PROFILE]}}))
    assert by_url == claimed


# -- the R4 core extensions' cardinalities and bindings, from the derived table -----------------
TRANSLATION = CORE + "translation"


def translated_name(*parts: dict[str, Any]) -> dict[str, Any]:
    return patient(name=[{"text": "张三", "_text": {"extension": [{"url": TRANSLATION, "extension": list(parts)}]}}])


def test_a_core_translation_with_both_its_parts_passes(validator: Validator) -> None:
    issues = validator.validate(
        translated_name({"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": "Zhang San"})
    )
    assert errors(issues) == []


def test_a_core_translation_without_its_content_is_an_error(validator: Validator) -> None:
    issues = validator.validate(translated_name({"url": "lang", "valueCode": "en"}))
    assert ("profile.slice-cardinality-min", "Patient.name[0].text.extension[0].extension") in errors(issues)


def test_a_core_simple_extension_with_parts_instead_of_a_value_is_an_error(validator: Validator) -> None:
    birth_place = {"url": BIRTH_PLACE, "extension": [{"url": "city", "valueString": "郑州"}]}
    found_errors = errors(validator.validate(patient(extension=[birth_place])))
    assert [e for e in found_errors if e[0].startswith("profile.cardinality")] == [
        ("profile.cardinality-min", "Patient.extension[0].value[x]"),
        ("profile.cardinality-max", "Patient.extension[0].extension"),
    ]


def test_a_core_extension_value_outside_its_required_value_set_is_an_error(validator: Validator) -> None:
    absent = {"extension": [{"url": CORE + "data-absent-reason", "valueCode": "forgotten"}]}
    issues = validator.validate(patient(_birthDate=absent))
    assert ("binding.not-in-valueset", "Patient.birthDate.extension[0].valueCode") in errors(issues)


def test_a_canonical_value_is_not_judged_by_the_binding_of_its_extension(validator: Validator) -> None:
    """``elementdefinition-allowedUnits`` is a CodeableConcept or the canonical of a value set;
    its ucum-units binding was applied to the canonical, read as a unit (R4 eld-11: a binding
    judges codes, Codings, CodeableConcepts, Quantities, strings and URIs alone)."""
    allowed = {
        "url": CORE + "elementdefinition-allowedUnits",
        "valueCanonical": "http://hl7.org/fhir/ValueSet/ucum-units",
    }
    element = {"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "extension": [allowed]}
    definition = {
        "resourceType": "StructureDefinition",
        "url": "http://example.org/StructureDefinition/units",
        "name": "Units",
        "status": "draft",
        "kind": "resource",
        "abstract": False,
        "type": "Observation",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "derivation": "constraint",
        "differential": {"element": [element]},
    }
    assert not [i for i in validator.validate(definition) if i.message_id.startswith("binding.")]


# -- findings remembered per extension: each place it sits gets its own, as if walked afresh ---
INSURANCE_STATUS = {"system": "http://fhir.yiyang.cn/CodeSystem/nhsa-psn-insu-stas", "code": "1"}


def test_an_extension_met_again_is_answered_from_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same 参保状态 extension on every Coverage is checked against its definition once;
    its finding (here: not a Patient's context) is reported again at each place it sits."""
    from conformance.core_extensions import ExtensionChecker

    validator = Validator(Registry())
    status = {"url": package_extension(validator, "insurance-status"), "valueCoding": INSURANCE_STATUS}
    checks = []
    check = ExtensionChecker.check
    monkeypatch.setattr(ExtensionChecker, "check", lambda self, *a: checks.append(a[1]) or check(self, *a))
    first, second = (validator.validate(patient(extension=[status]), path=p) for p in ("Patient", "Bundle.entry[3]"))
    assert checks == ["Patient.extension[0]"]
    assert ("extension.context", "Patient.extension[0]") in errors(first)
    assert ("extension.context", "Bundle.entry[3].extension[0]") in errors(second)


def test_a_remembered_finding_is_not_changed_by_what_a_caller_does_with_the_first() -> None:
    validator = Validator(Registry())
    person = patient(extension=[{"url": HOSPITAL_EXTENSION, "valueString": "3床"}])
    first = [i for i in validator.validate(person) if i.message_id == "extension.unknown-not-allowed"]
    first[0].params["url"] = "(masked)"
    again = [i for i in validator.validate(person) if i.message_id == "extension.unknown-not-allowed"]
    assert again[0].params == {"url": HOSPITAL_EXTENSION}


def test_an_extension_remembered_before_definitions_were_added_is_judged_again() -> None:
    """The memo is by registry generation: an extension unknown when first met is known once
    an ``--ig`` package defines it."""
    registry = Registry()
    validator = Validator(registry)
    person = patient(extension=[{"url": HOSPITAL_EXTENSION, "valueString": "3床"}])
    assert ("extension.unknown-not-allowed", "Patient.extension[0]") in errors(validator.validate(person))
    definition = sd(HOSPITAL_EXTENSION, "Extension", [{"id": "Extension.value[x]", "type": [{"code": "string"}]}])
    definition["kind"] = "complex-type"
    definition["context"] = [{"type": "element", "expression": "Patient"}]
    registry.add_resource(definition)
    assert not ids(validator.validate(person))


def test_a_nested_extension_under_a_parent_whose_url_is_no_text_is_judged(validator: Validator) -> None:
    """Its parent's url is part of what its findings are remembered by: a list there (a
    client's mistake) raised a TypeError, a 500, instead of the parent's own finding."""
    designation = {
        "url": ["http://fhir.yiyang.cn/StructureDefinition/yy-ext-designation"],
        "extension": [{"url": "code", "valueCoding": INSURANCE_STATUS}],
    }
    issues = validator.validate(patient(extension=[designation]))
    assert any(i.expression.startswith("Patient.extension[0]") for i in issues if i.is_error)


SHARED = Validator(Registry())
EXTENSION_URLS = [
    CORE + "patient-birthPlace",  # an Address
    CORE + "data-absent-reason",  # a code bound required
    CORE + "questionnaire-sliderStepValue",  # a context invariant on the item it sits on
    CORE + "patient-nationality",  # complex: parts
    HOSPITAL_EXTENSION,  # unknown
    "nickname",  # relative
]
EXTENSION_VALUES = [
    {},
    {"valueString": "郑州"},
    {"valueCode": "unknown"},
    {"valueCode": "forgotten"},
    {"valueInteger": 1},
    {"valueCoding": {"system": "urn:iso:std:iso:3166", "code": "CN"}},
    {"valueCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/v3/x", "code": "x"}]}},
    {"valueReference": {"reference": "Patient/x"}},
    {"valueAddress": {"city": "郑州市"}},
    {"extension": [{"url": "code", "valueCodeableConcept": {"text": "中国"}}]},
    {"valueCode": "unknown", "_valueCode": {"extension": [{"url": HOSPITAL_EXTENSION, "valueString": "x"}]}},
]
extensions = st.builds(
    lambda url, value: {"url": url, **value}, st.sampled_from(EXTENSION_URLS), st.sampled_from(EXTENSION_VALUES)
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(extensions, max_size=3),
    st.lists(extensions, max_size=2),
    st.sampled_from(["integer", "string"]),
)
def test_remembered_extension_findings_are_a_fresh_validators(
    on_patient: list[dict[str, Any]], on_item: list[dict[str, Any]], item_type: str
) -> None:
    """Extensions met before, anywhere (a Patient, its address, a Questionnaire item of either
    type), are judged by a validator that has met them as by one that has not."""
    address = {"city": "郑州市", "extension": on_patient} if on_patient else {"city": "郑州市"}
    instances = [
        patient(**({"extension": on_patient} if on_patient else {}), address=[address]),
        questionnaire(item_type, *on_item),
    ]
    for instance in instances:
        SHARED.validate(instance)
    fresh = Validator(SHARED.registry)
    assert [SHARED.validate(i) for i in instances] == [fresh.validate(i) for i in instances]
