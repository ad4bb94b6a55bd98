"""Search index rows: what each FHIR datatype becomes, and the parameter definitions behind them."""

from __future__ import annotations

import copy
import functools
import random
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fhirpathpy
import pytest
from fhirpathpy.models import models
from hypothesis import given
from hypothesis import strategies as st

from bench.server_data import SEED, coverage, encounter, valid_patient
from gateway.search.indexer import SearchIndexer
from gateway.search.parameters import IDENTIFIED_PEOPLE, UNINDEXED_REFERENCES, SearchParameters
from gateway.search.values import MAX_INSTANT, MIN_INSTANT, date_range, format_instant, normalise
from profiles.registry import Registry
from tests.conftest import load_example

ETHNICITY = "http://fhir.yiyang.cn/StructureDefinition/yy-ext-ethnicity"


def rows_named(indexer: SearchIndexer, resource: dict[str, Any], name: str) -> list[tuple[Any, ...]]:
    return [row[1:] for row in indexer.rows(resource) if row[0] == name]


def observation(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}, **elements}


def test_identifier_becomes_a_token_row_with_its_system(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    assert (
        "urn:oid:2.16.156.10011.1.3",
        "410105194912310020",
        None,
        None,
        None,
    ) in rows_named(indexer, patient, "identifier")


def test_string_row_keeps_the_raw_text_and_a_normalised_value(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    patient["name"] = [{"family": "ＭÜLLER"}]
    assert rows_named(indexer, patient, "family") == [("ＭÜLLER", "muller", None, None, None)]


def test_every_part_of_a_human_name_is_searchable(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    assert {row[1] for row in rows_named(indexer, patient, "name")} == {"张秀英", "张", "秀英"}


def test_address_city_district_and_state_are_searchable(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    assert {"郑州市", "金水区", "河南省"} <= {row[1] for row in rows_named(indexer, patient, "address")}


def test_a_date_without_offset_is_beijing_time(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    assert rows_named(indexer, patient, "birthdate") == [
        (None, None, "1949-12-30T16:00:00.000000Z", "1949-12-31T15:59:59.999999Z", None)
    ]


def test_a_partial_date_spans_its_whole_year() -> None:
    assert date_range("2026") == ("2025-12-31T16:00:00.000000Z", "2026-12-31T15:59:59.999999Z")


def test_a_date_time_to_the_second_spans_that_second() -> None:
    assert date_range("2026-11-01T09:30:00Z") == ("2026-11-01T09:30:00.000000Z", "2026-11-01T09:30:00.999999Z")


def test_a_period_without_end_is_open(indexer: SearchIndexer) -> None:
    encounter = load_example("yy-encounter/valid-home-visit.json") | {"period": {"start": "2026-11-01"}}
    assert [row[3] for row in rows_named(indexer, encounter, "date")] == [MAX_INSTANT]


def test_a_period_without_start_is_open_to_the_past(indexer: SearchIndexer) -> None:
    encounter = load_example("yy-encounter/valid-home-visit.json") | {"period": {"end": "2026-11-01"}}
    assert [row[2] for row in rows_named(indexer, encounter, "date")] == [MIN_INSTANT]


def test_each_timing_event_is_a_date_row(indexer: SearchIndexer) -> None:
    plan = load_example("yy-careplan/valid-family-doctor-package.json")
    plan["activity"] = [{"detail": {"status": "scheduled", "scheduledTiming": {"event": ["2026-12-01", "2026-12-08"]}}}]
    assert len(rows_named(indexer, plan, "activity-date")) == 2


def test_a_timing_bounded_by_a_period_is_a_date_row_of_that_period(indexer: SearchIndexer) -> None:
    """Weekly visits from December to February had no row: ``activity-date=ge2027-01-01``
    (or ``ap2027-01-15``) missed the plan, though R4 counts a schedule's outer limits."""
    plan = load_example("yy-careplan/valid-family-doctor-package.json")
    timing = {"repeat": {"boundsPeriod": {"start": "2026-12-01", "end": "2027-02-28"}, "frequency": 1, "period": 1}}
    plan["activity"] = [{"detail": {"status": "scheduled", "scheduledTiming": {**timing, "event": ["2026-11-24"]}}}]
    assert [row[2:4] for row in rows_named(indexer, plan, "activity-date")] == [
        date_range("2026-11-24"),
        (date_range("2026-12-01")[0], date_range("2027-02-28")[1]),
    ]


def test_a_local_reference_indexes_its_type_and_id(indexer: SearchIndexer) -> None:
    coverage = load_example("yy-coverage/valid-employee-insurance.json")
    assert rows_named(indexer, coverage, "beneficiary") == [("Patient", "zhang-xiuying", None, None, None)]


def test_an_absolute_reference_indexes_the_url_without_a_type(indexer: SearchIndexer) -> None:
    coverage = load_example("yy-coverage/valid-employee-insurance.json")
    coverage["beneficiary"] = {"reference": "https://other.example/fhir/Patient/9"}
    assert rows_named(indexer, coverage, "beneficiary") == [
        (None, "https://other.example/fhir/Patient/9", None, None, None)
    ]


def test_a_contained_reference_is_not_indexed(indexer: SearchIndexer) -> None:
    coverage = load_example("yy-coverage/valid-employee-insurance.json") | {"beneficiary": {"reference": "#p1"}}
    assert rows_named(indexer, coverage, "beneficiary") == []


ID_CARD = {"system": "urn:oid:2.16.156.10011.1.3", "value": "440524193801010019"}
LOCAL_NUMBER = {"system": "urn:oid:1.2.3", "value": "42"}


@pytest.mark.parametrize(
    ("patient", "contained", "keys"),
    [
        ({"identifier": ID_CARD, "display": "李建国"}, [], ["idcard|440524193801010019"]),
        ({"identifier": LOCAL_NUMBER, "type": "Patient"}, [], [""]),  # a person, but no one's key
        ({"identifier": LOCAL_NUMBER}, [], []),  # no sign of a person
        ({"identifier": ID_CARD, "type": "Practitioner"}, [], []),
        ({"reference": "Patient/li", "identifier": ID_CARD}, [], []),  # counted by its reference
        (
            {"reference": "#p"},
            [{"resourceType": "Patient", "id": "p", "identifier": [ID_CARD]}],
            ["idcard|440524193801010019"],
        ),
        ({"reference": "#p"}, [{"resourceType": "Patient", "id": "p"}], [""]),
    ],
)
def test_a_person_named_by_number_alone_is_indexed_by_match_key(
    indexer: SearchIndexer, patient: dict[str, Any], contained: list[dict[str, Any]], keys: list[str]
) -> None:
    """What the read rule asks the identity index about (``Access``): a number no one could
    hold is the key "" (no one's), so the resource stays hidden from a restricted reader.  The
    row's system is the parameter naming the person."""
    device = {
        "resourceType": "Device",
        "id": "d1",
        "patient": patient,
        **({"contained": contained} if contained else {}),
    }
    assert rows_named(indexer, device, IDENTIFIED_PEOPLE) == [("patient", key, None, None, None) for key in keys]


def test_a_person_named_by_number_alone_counts_for_a_parameter_narrowed_to_patients(indexer: SearchIndexer) -> None:
    """R4 narrows Condition's compartment parameter ``patient`` to ``subject.where(resolve() is
    Patient)``: a subject given by 身份证号 alone is a Patient's, so it is indexed under
    ``patient`` too, which places the Condition in that person's compartment."""
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"identifier": ID_CARD}}
    assert {row[0] for row in rows_named(indexer, condition, IDENTIFIED_PEOPLE)} == {"subject", "patient"}


def test_where_resolve_is_patient_keeps_only_patient_references(indexer: SearchIndexer) -> None:
    resource = observation(subject={"reference": "Group/g1"})
    assert (rows_named(indexer, resource, "patient"), len(rows_named(indexer, resource, "subject"))) == ([], 1)


def test_a_quantity_indexes_number_system_and_code(indexer: SearchIndexer) -> None:
    glucose = load_example("yy-observation-blood-glucose/valid-fasting-glucose.json")
    assert rows_named(indexer, glucose, "value-quantity") == [("http://unitsofmeasure.org", "mmol/L", None, None, 6.1)]


def test_a_quantity_whose_human_unit_differs_is_found_by_either(indexer: SearchIndexer) -> None:
    temperature = observation(
        valueQuantity={"value": 36.5, "unit": "℃", "system": "http://unitsofmeasure.org", "code": "Cel"}
    )
    assert rows_named(indexer, temperature, "value-quantity") == [
        ("http://unitsofmeasure.org", "Cel", None, None, 36.5),
        (None, "℃", None, None, 36.5),
    ]


def test_a_boolean_is_the_token_true_or_false(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    assert rows_named(indexer, patient, "active") == [(None, "true", None, None, None)]


def test_id_and_last_updated_are_left_to_the_resource_table(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    patient["meta"]["lastUpdated"] = "2026-12-01T00:00:00Z"
    assert {row[0] for row in indexer.rows(patient)} & {"_id", "_lastUpdated"} == set()


def test_meta_profile_tag_and_source_are_indexed(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    patient["meta"] |= {"tag": [{"system": "urn:t", "code": "vip"}], "source": "urn:src"}
    names = {row[0] for row in indexer.rows(patient)}
    assert {"_profile", "_tag", "_source"} <= names


def test_coverage_subscriber_id_is_the_provincial_search_parameter(indexer: SearchIndexer) -> None:
    coverage = load_example("yy-coverage/valid-employee-insurance.json")
    assert rows_named(indexer, coverage, "subscriber-id") == [(None, "41000000000000012345", None, None, None)]


def test_every_admin_division_of_an_address_is_indexed(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    assert [row[1] for row in rows_named(indexer, patient, "admin-division")] == ["410105", "410105001"]


def test_the_ethnicity_parameter_also_applies_to_practitioners(indexer: SearchIndexer) -> None:
    doctor = load_example("yy-practitioner/valid-family-doctor.json")
    doctor["extension"] = [
        {"url": ETHNICITY, "valueCoding": {"system": "urn:oid:2.16.156.10011.2.3.3.3", "code": "02"}}
    ]
    assert [row[1] for row in rows_named(indexer, doctor, "ethnicity")] == ["02"]


def test_the_direct_walk_agrees_with_fhirpath_on_a_choice_element() -> None:
    parameters = SearchParameters(Registry())
    glucose = load_example("yy-observation-blood-glucose/valid-fasting-glucose.json")
    expected = fhirpathpy.evaluate(glucose, "Observation.effective", model=models["r4"])
    assert parameters.get("Observation", "date").extract(glucose) == expected


def test_a_parameter_whose_expression_fails_is_reported_unsupported() -> None:
    registry = Registry()
    registry.add_resource(
        {
            "resourceType": "SearchParameter",
            "url": "urn:test:sp",
            "code": "broken",
            "base": ["Patient"],
            "type": "token",
            "expression": "Patient.name.nosuchfunction()",
        }
    )
    parameters = SearchParameters(registry)
    assert ("broken" in parameters.for_type("Patient"), "broken" in parameters.unsupported("Patient")) == (False, True)


def test_bundle_composition_and_message_reaching_an_inline_resource_are_not_offered() -> None:
    """R4 defines them on ``Bundle.entry[0].resource``, a resource held inline, for chaining
    into the Bundle: advertised, they matched nothing, and ``composition:missing=true`` every
    document Bundle."""
    parameters = SearchParameters(Registry())
    offered = [
        (code in parameters.for_type("Bundle"), code in parameters.unsupported("Bundle"))
        for code in ("composition", "message")
    ]
    assert offered == [(False, True), (False, True)]


def test_a_provincial_parameter_replaces_the_base_one_of_the_same_code() -> None:
    registry = Registry()
    registry.add_resource(
        {
            "resourceType": "SearchParameter",
            "url": "urn:test:gender",
            "code": "gender",
            "base": ["Patient"],
            "type": "token",
            "expression": "Patient.gender",
        }
    )
    assert registry.search_parameters("Patient")["gender"]["url"] == "urn:test:gender"


def test_a_parameter_of_the_same_expression_as_another_writes_no_rows_of_its_own(
    indexer: SearchIndexer, patient: dict[str, Any]
) -> None:
    """R4's phonetic is Patient.name, as name is: it reads name's rows (search_sql pins that
    it finds what name finds); a reference keeps its rows wherever its name reaches SQL."""
    assert rows_named(indexer, patient, "phonetic") == []
    assert indexer.parameters.get("Patient", "phonetic").rows == "name"
    coverage = load_example("yy-coverage/valid-employee-insurance.json")
    assert rows_named(indexer, coverage, "patient") == rows_named(indexer, coverage, "beneficiary") != []


def test_a_reference_no_parameter_indexes_is_kept_under_the_reserved_name(
    indexer: SearchIndexer, patient: dict[str, Any]
) -> None:
    """A delete's referrer check reads the index alone: an extension's valueReference was not
    there, so its target could be deleted from under it."""
    site = {"url": "http://hl7.org/fhir/StructureDefinition/bodySite", "valueReference": {"reference": "Basic/b1"}}
    patient["_birthDate"] = {"extension": [site]}
    assert rows_named(indexer, patient, UNINDEXED_REFERENCES) == [("Basic", "b1", None, None, None)]


def test_benchmark_resources_write_no_row_for_unindexed_references(indexer: SearchIndexer) -> None:
    """Their references are all a parameter's: the common write costs no extra row."""
    rng = random.Random(SEED)
    written = [valid_patient(rng, 0), encounter(rng, "p0", 0), coverage(rng, "p0", 0)]
    assert [rows_named(indexer, resource, UNINDEXED_REFERENCES) for resource in written] == [[], [], []]


def test_the_rows_a_delete_probes_are_made_once_per_target(indexer: SearchIndexer) -> None:
    """Every delete asks for them: about 146 pairs, made anew each time before."""
    parameters = indexer.parameters
    assert parameters.pointing("Patient") is parameters.pointing("Patient")


def test_a_parameter_of_the_reserved_name_is_refused() -> None:
    """Its rows would mix with the references no parameter indexes."""
    registry = Registry()
    registry.add_resource(
        {
            "resourceType": "SearchParameter",
            "url": "urn:test:reserved",
            "code": UNINDEXED_REFERENCES,
            "base": ["Patient"],
            "type": "reference",
            "expression": "Patient.generalPractitioner",
        }
    )
    assert UNINDEXED_REFERENCES in SearchParameters(registry).unsupported("Patient")


def test_rows_are_not_duplicated(indexer: SearchIndexer, patient: dict[str, Any]) -> None:
    twice = copy.deepcopy(patient)
    twice["identifier"] = patient["identifier"] * 2
    assert indexer.rows(twice) == indexer.rows(patient)


def test_normalising_ignores_case_width_and_accents() -> None:
    assert normalise("ＪＯＳÉ") == normalise("jose")


@given(st.text())
def test_a_string_is_normalised_as_nfkd_without_its_combining_marks_case_folded(text: str) -> None:
    """Character by character, as the comparison form is defined (the quick way must agree)."""
    decomposed = unicodedata.normalize("NFKD", text)
    assert normalise(text) == "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)), st.integers(-14 * 60, 14 * 60))
def test_an_instant_is_written_in_the_one_fixed_width_form_of_its_utc_moment(moment: Any, minutes: int) -> None:
    """27 characters, the year zero-padded, in UTC: text order is time order in the index."""
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    text = format_instant(aware)
    assert (len(text), datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)) == (27, aware)


@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.sampled_from([4, 7, 10, 16, 19, 23, 26]),
    st.sampled_from(["", "Z", "+08:00", "-10:00", "+14:00"]),
)
def test_every_date_encodes_to_a_range_whose_low_is_not_after_its_high(moment: Any, length: int, zone: str) -> None:
    text = moment.isoformat(timespec="microseconds")[:length]
    if length > 10:
        text += zone
    low, high = date_range(text)
    assert low <= high


def _following(moment: datetime, length: int) -> datetime:
    """The start of the period after the one ``moment``'s first ``length`` characters name."""
    if length == 4:
        return moment.replace(year=moment.year + 1)
    if length == 7:
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    steps = {10: timedelta(days=1), 16: timedelta(minutes=1), 19: timedelta(seconds=1), 23: timedelta(milliseconds=1)}
    return moment + steps.get(length, timedelta(microseconds=1))


@given(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 30)),
    st.sampled_from([4, 7, 10, 16, 19, 23, 26]),
    st.sampled_from(["", "Z", "+08:00", "-10:00"]),
)
def test_a_date_range_ends_a_microsecond_before_the_next_period_at_its_precision(
    moment: Any, length: int, zone: str
) -> None:
    """2026 ends where 2027 begins, 2026-11 where 2026-12 does, 09:30 where 09:31 does."""
    moment = moment.replace(day=min(moment.day, 28))  # a month's step keeps the day
    suffix = zone if length > 10 else ""
    high = date_range(moment.isoformat(timespec="microseconds")[:length] + suffix)[1]
    low = date_range(_following(moment, length).isoformat(timespec="microseconds")[:length] + suffix)[0]
    instant = "%Y-%m-%dT%H:%M:%S.%fZ"
    assert datetime.strptime(low, instant) - datetime.strptime(high, instant) == timedelta(microseconds=1)


def test_a_where_filter_on_a_string_child_agrees_with_fhirpath() -> None:
    parameters = SearchParameters(Registry())
    person = {
        "resourceType": "Patient",
        "telecom": [
            {"system": "email", "value": "a@b.cn"},
            {"system": "phone", "value": "13800000001"},
            {"value": "x"},
        ],
    }
    phone = parameters.get("Patient", "phone")
    assert phone.extract(person) == fhirpathpy.evaluate(person, phone.expression, model=models["r4"])


def test_a_where_filter_keeps_an_element_whose_compared_child_has_extensions() -> None:
    """fhirpathpy 2.2 compares ``system = 'phone'`` false once ``_system`` exists; the walk
    compares the value itself, as FHIRPath means."""
    parameters = SearchParameters(Registry())
    phone = {
        "system": "phone",
        "_system": {"extension": [{"url": "urn:x", "valueString": "y"}]},
        "value": "13800000001",
    }
    assert parameters.get("Patient", "phone").extract({"resourceType": "Patient", "telecom": [phone]}) == [phone]


@functools.cache
def shared_parameters() -> SearchParameters:
    """One instance across examples, so the memo of an expression fhirpathpy evaluates carries over."""
    return SearchParameters(Registry())


_names = st.lists(
    st.fixed_dictionaries(
        {"family": st.sampled_from(["张", "李", "王"])},
        optional={"given": st.lists(st.sampled_from(["秀英", "建国", "桂"]), max_size=2), "text": st.just("张三")},
    ),
    max_size=3,
)
_deceased = st.one_of(
    st.just({}),
    st.builds(lambda flag: {"deceasedBoolean": flag}, st.booleans()),
    st.builds(lambda day: {"deceasedDateTime": day}, st.sampled_from(["2020-01-01", "2021-06-30T08:00:00+08:00"])),
)


@given(_names, _deceased, st.sampled_from(["name", "given", "family", "deceased", "phonetic"]))
def test_an_extractor_agrees_with_fhirpath_evaluated_afresh(
    names: list[dict[str, Any]], deceased: dict[str, Any], code: str
) -> None:
    person = {"resourceType": "Patient", "id": "p", "name": names, **deceased}
    parameter = shared_parameters().get("Patient", code)
    assert parameter.extract(person) == fhirpathpy.evaluate(person, parameter.expression, model=models["r4"])


def test_a_references_identifier_is_indexed_as_a_token_under_its_own_name(indexer: SearchIndexer) -> None:
    """What ``subject:identifier`` searches, a reference beside it or not; the parameter's own
    rows keep only the reference (a type and an id)."""
    resource = observation(subject={"reference": "Patient/li", "identifier": ID_CARD})
    rows = (rows_named(indexer, resource, "subject:identifier"), rows_named(indexer, resource, "subject"))
    assert rows == ([(ID_CARD["system"], ID_CARD["value"], None, None, None)], [("Patient", "li", None, None, None)])
