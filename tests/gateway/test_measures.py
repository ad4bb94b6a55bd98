"""The provincial indicators on an archive small enough to count by hand, on both databases.

The archive (period 2026):

=====  ==========  ======  ========  ===========================================================
who    born        sex     county    in 2026
=====  ==========  ======  ========  ===========================================================
p1     1950-03-01  female  410105    体检, 自理评估, 签约 (all year), 中医体质辨识
p2     1940-06-01  male    410105    签约 2025-06-01..2026-05-31; 体检 only in 2025; 失能 grade 3
p3     1961-12-31  female  410102    turns 65 on the last day: 体检
p4     1962-01-01  male    410102    64 at the end of 2026: 体检 (not counted); 签约
p5     1930-08-08  male    410102    签约 ended 2025; 自理评估 without 体检; 失能 grade 0; hospice
=====  ==========  ======  ========  ===========================================================

Population file: 410105 — female 75-79 40, male 85+ 10; 410102 — female 65-69 30, male 85+ 20,
male 0-64 500 (never in a 65+ denominator).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.measures.catalog import package_measures, select
from gateway.measures.definition import MeasureDefinitionError, read_measure
from gateway.measures.evaluate import MeasureError, MeasureEvaluator, MeasureResult, Period, bed_days
from gateway.measures.population import PopulationFileError, PopulationTable, read_population
from gateway.measures.render import render_html, render_xlsx
from gateway.measures.report import measure_report
from gateway.search.indexer import SearchIndexer
from gateway.storage import open_store
from gateway.storage.store import Store
from profiles.registry import Registry
from tests.conftest import BACKENDS, fresh_database_url

BASE = "http://fhir.yiyang.cn"
YEAR = Period.parse("2026")
POPULATION = """区划代码,性别,年龄段,常住人口
410105,2,75-79,40
410105,1,85+,10
410102,2,65-69,30
410102,1,85+,20
410102,1,0-64,500
"""


def _patient(pid: str, born: str, sex: str, county: str, id_card: str | None = None) -> dict[str, Any]:
    division = f"{BASE}/StructureDefinition/yy-ext-admin-division"
    return {
        "resourceType": "Patient",
        "id": pid,
        **({"identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": id_card}]} if id_card else {}),
        "gender": sex,
        "birthDate": born,
        "address": [
            {
                "extension": [
                    {"url": division, "valueCoding": {"system": f"{BASE}/CodeSystem/gb-t-2260", "code": county}}
                ]
            }
        ],
    }


def _check(eid: str, pid: str, day: str) -> dict[str, Any]:
    coding = {"system": f"{BASE}/CodeSystem/encounter-type", "code": "health-check"}
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"code": "AMB"},
        "type": [{"coding": [coding]}],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": day, "end": day},
    }


def _observation(
    oid: str, pid: str, day: str, system: str, code: str, value: dict[str, Any] | None = None
) -> dict[str, Any]:
    found = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": f"{BASE}/CodeSystem/{system}", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": day,
    }
    return {**found, **(value or {})}


def _contract(cid: str, pid: str, start: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "id": cid,
        "status": "active",
        "intent": "plan",
        "category": [{"coding": [{"system": f"{BASE}/CodeSystem/careplan-category", "code": "family-doctor-package"}]}],
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start, "end": end},
    }


def _disability(oid: str, pid: str, grade: str, day: str = "2026-04-01") -> dict[str, Any]:
    value = {"valueCodeableConcept": {"coding": [{"system": f"{BASE}/CodeSystem/ltc-disability-level", "code": grade}]}}
    return _observation(oid, pid, day, "ltc-indicator", "disability-level", value)


def _organization(oid: str, types: list[str], designations: list[str] = ()) -> dict[str, Any]:
    designation = f"{BASE}/StructureDefinition/yy-ext-designation"
    return {
        "resourceType": "Organization",
        "id": oid,
        "type": [{"coding": [{"system": f"{BASE}/CodeSystem/organization-type", "code": t}]} for t in types],
        "extension": [
            {
                "url": designation,
                "extension": [
                    {"url": "code", "valueCoding": {"system": f"{BASE}/CodeSystem/organization-designation", "code": d}}
                ],
            }
            for d in designations
        ],
    }


def _episode(eid: str, pid: str, kind: str, start: str, end: str | None) -> dict[str, Any]:
    return {
        "resourceType": "EpisodeOfCare",
        "id": eid,
        "status": "finished" if end else "active",
        "type": [{"coding": [{"system": f"{BASE}/CodeSystem/episode-type", "code": kind}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "period": {"start": start, **({"end": end} if end else {})},
    }


def _coverage(cid: str, pid: str, insurance: str, status: str, start: str, end: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "id": cid,
        "status": status,
        "type": {"coding": [{"system": f"{BASE}/CodeSystem/nhsa-insutype", "code": insurance}]},
        "beneficiary": {"reference": f"Patient/{pid}"},
        "payor": [{"display": "参保地医疗保障局"}],
        "period": {"start": start, **({"end": end} if end else {})},
    }


ARCHIVE = [
    _patient("p1", "1950-03-01", "female", "410105001"),
    _patient("p2", "1940-06-01", "male", "410105"),
    _patient("p3", "1961-12-31", "female", "410102"),
    _patient("p4", "1962-01-01", "male", "410102"),
    _patient("p5", "1930-08-08", "male", "410102", "410102193008080013"),
    _patient("p5-twin", "1930-08-08", "male", "410102", "410102193008080013"),  # one person, two records
    _check("e1", "p1", "2026-05-10"),
    _check("e2", "p2", "2025-11-02"),
    _check("e3", "p3", "2026-12-31"),
    _check("e4", "p4", "2026-03-03"),
    _observation("s1", "p1", "2026-05-10", "selfcare-item", "total"),
    _observation("s5", "p5", "2026-02-02", "selfcare-item", "total"),
    _observation("t1", "p1", "2026-05-10", "tcm-constitution", "qixu"),
    _disability("d1", "p1", "2", "2026-02-01"),
    _disability("d1-again", "p1", "0", "2026-06-01"),  # reassessed: no longer disabled
    _disability("d2", "p2", "3"),
    _disability("d2-again", "p2", "0", "2027-03-01"),  # after 2026
    _disability("d5", "p5", "0"),
    _disability("d5-again", "p5", "4", "2026-09-01"),
    _disability("d5-twin", "p5-twin", "0", "2026-10-01"),  # reassessed on the other record
    {**_disability("d3", "p3", "4"), "status": "entered-in-error"},  # recorded by mistake: no assessment
    _contract("c1", "p1", "2026-01-01", "2026-12-31"),
    _contract("c2", "p2", "2025-06-01", "2026-05-31"),
    _contract("c4", "p4", "2026-02-01", "2027-01-31"),
    _contract("c5", "p5", "2024-01-01", "2025-12-31"),
    _organization("o1", ["community-health-center", "elderly-care-institution"], ["elder-friendly"]),
    _organization("o2", ["township-health-center"]),
    _organization("o3", ["elderly-care-institution"]),
    _episode("h1", "p5", "hospice", "2026-12-20", None),
    _episode("h2", "p2", "hospice", "2025-12-25", "2026-01-05"),
    _coverage("ltc1", "p1", "410", "active", "2020-01-01"),
    _coverage("ltc2", "p2", "410", "active", "2020-01-01", "2026-06-30"),  # 暂停参保 in June
    _coverage("ltc3", "p3", "410", "cancelled", "2020-01-01", "2027-03-31"),  # 终止 after the period
    _coverage("ltc4", "p4", "410", "active", "2027-02-01"),  # insured after the period
    _coverage("med5", "p5", "390", "active", "2020-01-01"),  # 城乡居民医保, not 长护险
]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


@pytest.fixture(scope="module", params=BACKENDS)
def archive(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, registry: Registry
) -> Iterator[Store]:
    indexer = SearchIndexer(registry)
    with fresh_database_url(request.param, tmp_path_factory.mktemp("measures")) as url:
        store = open_store(url, indexer.rows)
        with store.transaction() as tx:
            for resource in ARCHIVE:
                tx.resources.write(resource)
        yield store
        store.close()


@pytest.fixture(scope="module")
def evaluate(archive: Store, registry: Registry) -> Any:
    evaluator = MeasureEvaluator(archive, SearchIndexer(registry).parameters)
    measures = package_measures(registry)

    def run(measure_id: str, **options: Any) -> MeasureResult:
        return evaluator.evaluate(select(measures, measure_id)[0], options.pop("period", YEAR), **options)

    return run


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> PopulationTable:
    path = tmp_path_factory.mktemp("population") / "population.csv"
    path.write_text(POPULATION, encoding="utf-8")
    return read_population(path)


# -- the package's Measures --------------------------------------------------------------------
def test_every_package_measure_is_evaluable(registry: Registry) -> None:
    assert len(package_measures(registry)) >= 14


def test_every_rate_names_its_source_in_the_seed_documents(registry: Registry) -> None:
    assert all("shared/seeds/" in " ".join(m.sources) for m in package_measures(registry))


def test_a_measure_with_an_unknown_criteria_language_is_refused() -> None:
    broken = {
        "url": "x",
        "scoring": {"coding": [{"code": "cohort"}]},
        "group": [
            {
                "population": [
                    {
                        "code": {"coding": [{"code": "initial-population"}]},
                        "criteria": {"language": "text/cql", "expression": "x"},
                    }
                ]
            }
        ],
    }
    with pytest.raises(MeasureDefinitionError, match=r"population\[0\]\.criteria\.language"):
        read_measure(broken)


# -- proportions over the population file --------------------------------------------------------
def test_health_management_counts_people_65_and_over_with_a_check_in_the_period(evaluate: Any) -> None:
    assert evaluate("elderly-health-management-rate").count("numerator") == 2  # p1, p3 (p2's was 2025, p4 is 64)


def test_the_denominator_is_the_resident_population_aged_65_and_over(
    evaluate: Any, population: PopulationTable
) -> None:
    assert evaluate("elderly-health-management-rate", population=population).count("denominator") == 100


def test_the_rate_is_numerator_over_resident_population_in_percent(evaluate: Any, population: PopulationTable) -> None:
    assert evaluate("elderly-health-management-rate", population=population).score == 2.0


def test_without_a_population_file_the_rate_is_unknown_not_invented(evaluate: Any) -> None:
    result = evaluate("elderly-health-management-rate")
    assert (result.count("denominator"), result.score, result.notes) == (None, None, ["measure.no-population-file"])


def test_standard_management_needs_both_a_check_and_a_self_care_assessment(evaluate: Any) -> None:
    assert evaluate("elderly-standard-health-management-rate").count("numerator") == 1  # p1; p5 has no check


def test_a_contract_counts_when_it_is_in_force_at_some_time_in_the_period(evaluate: Any) -> None:
    assert evaluate("family-doctor-contract-rate").count("numerator") == 2  # p1, p2; p4 is 64, p5's ended


def test_a_contract_ending_on_the_periods_first_day_was_in_force_in_it(evaluate: Any) -> None:
    """c2 ends 2026-05-31: asked for that day alone, R4's ge (the value's day must lie within
    or above it) left it out; the criteria are written as overlaps."""
    day = Period.parse("2026-05-31")
    assert evaluate("family-doctor-contract-rate", period=day).count("numerator") == 2  # p1, p2


def test_a_draft_contract_is_not_in_force(evaluate: Any, archive: Store) -> None:
    with archive.transaction() as tx:
        tx.resources.write({**_contract("c-draft", "p5", "2026-03-01", "2026-12-31"), "status": "draft"})
    try:
        assert evaluate("family-doctor-contract-rate").count("numerator") == 2  # p1, p2; not p5's draft
    finally:
        with archive.transaction() as tx:
            tx.resources.delete("CarePlan", "c-draft")


def test_oldest_old_rate_counts_only_people_80_and_over(evaluate: Any, population: PopulationTable) -> None:
    result = evaluate("family-doctor-contract-rate-oldest-old", population=population)
    assert (result.count("numerator"), result.count("denominator")) == (1, 30)  # p2; 85+ residents


def test_disabled_rate_divides_by_people_assessed_disabled_in_the_archive(evaluate: Any) -> None:
    result = evaluate("family-doctor-contract-rate-disabled")
    # p2 (grade 3; reassessed after 2026); p1 and p5 were reassessed grade 0 (p5 on the
    # record of p5-twin, the same 身份证号), p3's assessment was entered in error
    assert (result.count("numerator"), result.count("denominator"), result.score) == (1, 1, 100.0)


def test_disabled_is_what_the_latest_assessment_by_the_periods_end_says(evaluate: Any) -> None:
    """Counted as disabled once assessed so, p1 stayed disabled after a reassessment to grade 0."""
    denominators = [
        evaluate("family-doctor-contract-rate-disabled", period=Period.parse(month)).count("denominator")
        for month in ("2026-05", "2026-06", "2026-09")
    ]
    assert denominators == [2, 1, 2]  # p1 and p2; p2 alone; p2 and p5 (before p5-twin's reassessment)


def test_disabled_is_judged_by_the_latest_assessment_of_the_person_whatever_the_record(evaluate: Any) -> None:
    """p5 was assessed grade 4 on one record and reassessed grade 0 on another of the same
    身份证号: the latest of each record kept p5 disabled."""
    october = evaluate("family-doctor-contract-rate-disabled", period=Period.parse("2026-10"))
    assert october.count("denominator") == 1  # p2


def test_a_latest_match_of_another_type_than_the_criteria_is_refused() -> None:
    population = {
        "code": {"coding": [{"code": "initial-population"}]},
        "criteria": {"language": "application/x-fhir-query", "expression": "Observation?code=x"},
        "extension": [
            {
                "url": f"{BASE}/StructureDefinition/yy-ext-measure-latest-matches",
                "valueExpression": {"language": "application/x-fhir-query", "expression": "Encounter?status=finished"},
            }
        ],
    }
    measure = {"url": "x", "scoring": {"coding": [{"code": "cohort"}]}, "group": [{"population": [population]}]}
    with pytest.raises(MeasureDefinitionError, match=r"population\[0\]\.extension\[0\]"):
        read_measure(measure)


def test_ltc_insured_are_the_people_whose_coverage_is_in_force_on_the_periods_last_day(evaluate: Any) -> None:
    """期末参保人数: p1 (insured since 2020) and p3 (terminated only after the period), not p2
    (paused in June, still "active"), p4 (insured from 2027) or p5 (another 险种)."""
    assert evaluate("ltc-insured-count").count("initial-population") == 2


def test_tcm_management_counts_a_constitution_identification_in_the_period(evaluate: Any) -> None:
    assert evaluate("elderly-tcm-health-management-rate").count("numerator") == 1


#: p5's 身份证号 (p5-twin's too), and the match key the identity index holds it under
P5_NUMBER = "410102193008080013"
P5_KEY = f"idcard|{P5_NUMBER}"


@contextmanager
def naming_p5_by_number(archive: Store, *records: dict[str, Any], held: bool = True) -> Iterator[None]:
    """``records`` written with their subject p5's 身份证号 alone (a hospital's, no reference),
    the identity index saying p5 holds it (``held``, else no one yet); both undone afterwards."""
    by_number = {"identifier": {"system": "urn:oid:2.16.156.10011.1.3", "value": P5_NUMBER}}
    with archive.transaction() as tx:
        if held:
            tx.identity.link("p5", [P5_KEY])
        for record in records:
            tx.resources.write({**record, "subject": by_number})
    try:
        yield
    finally:
        with archive.transaction() as tx:
            tx.identity.release("p5", [P5_KEY])
            for record in records:
                tx.resources.delete(record["resourceType"], record["id"])


def test_a_record_naming_the_person_by_number_alone_counts_for_them(evaluate: Any, archive: Store) -> None:
    """A hospital's 中医体质辨识 of p5 given by 身份证号 is p5's, as it is in p5's compartment."""
    with naming_p5_by_number(archive, _observation("t5", "p5", "2026-07-01", "tcm-constitution", "qixu")):
        assert evaluate("elderly-tcm-health-management-rate").count("numerator") == 2  # p1, p5


def test_a_record_naming_the_person_by_number_counts_only_if_it_meets_the_criterion(
    evaluate: Any, archive: Store
) -> None:
    """p5's 中医体质辨识 by 身份证号 was in 2025: not one of 2026's."""
    with naming_p5_by_number(archive, _observation("t5", "p5", "2025-07-01", "tcm-constitution", "qixu")):
        assert evaluate("elderly-tcm-health-management-rate").count("numerator") == 1  # p1


def test_a_number_no_one_holds_counts_no_one(evaluate: Any, archive: Store) -> None:
    with naming_p5_by_number(archive, _observation("t5", "p5", "2026-07-01", "tcm-constitution", "qixu"), held=False):
        assert evaluate("elderly-tcm-health-management-rate").count("numerator") == 1  # p1


def test_a_person_whose_number_is_known_after_the_record_is_counted(evaluate: Any, archive: Store) -> None:
    """The 中医体质辨识 came first, naming a number no one held; p5's record was then found to
    hold it.  Nothing was resolved when the record was written: the count asks the identity
    index as it stands."""
    with naming_p5_by_number(archive, _observation("t5", "p5", "2026-07-01", "tcm-constitution", "qixu"), held=False):
        with archive.transaction() as tx:
            tx.identity.link("p5", [P5_KEY])
        assert evaluate("elderly-tcm-health-management-rate").count("numerator") == 2  # p1, p5


def test_a_latest_assessment_naming_the_person_by_number_judges_them(evaluate: Any, archive: Store) -> None:
    """In September p5's latest assessment was grade 4 (d5-again); a reassessment to grade 0
    a fortnight later, naming p5 by 身份证号, is the latest: p5 is no longer disabled."""
    with naming_p5_by_number(archive, _disability("d5-by-number", "p5", "0", "2026-09-15")):
        denominator = evaluate("family-doctor-contract-rate-disabled", period=Period.parse("2026-09"))
        assert denominator.count("denominator") == 1  # p2


# -- strata and divisions ---------------------------------------------------------------------
def test_strata_by_county_use_the_first_six_digits_of_a_township_code(evaluate: Any) -> None:
    strata = evaluate("elderly-health-management-rate").populations["numerator"].strata
    assert (strata[("division", "410105")], strata[("division", "410102")]) == (1, 1)


def test_someone_who_turns_65_on_the_last_day_is_in_the_65_69_band(evaluate: Any) -> None:
    strata = evaluate("elderly-health-management-rate").populations["numerator"].strata
    assert strata[("age-band", "65-69")] == 1  # p3


def test_stratum_rates_divide_by_the_same_stratum_of_the_population(evaluate: Any, population: PopulationTable) -> None:
    result = evaluate("family-doctor-contract-rate", population=population)
    assert result.strata_scores[("division", "410105")] == 4.0  # p1, p2 of 50 residents


def test_a_division_restricts_numerator_and_denominator_alike(evaluate: Any, population: PopulationTable) -> None:
    result = evaluate("family-doctor-contract-rate", population=population, division="410102")
    assert (result.count("numerator"), result.count("denominator")) == (0, 50)


# full-width digits are digits to str.isdigit: that counted a division no record carries, as 0
@pytest.mark.parametrize("division", ["金水区", "\uff14\uff11\uff10\uff11\uff10\uff12"])
def test_a_division_that_is_not_a_code_is_refused(evaluate: Any, division: str) -> None:
    with pytest.raises(MeasureError, match="measure.bad-division"):
        evaluate("family-doctor-contract-rate", division=division)


# -- institutions, cohorts, bed-days ----------------------------------------------------------
def test_an_integrated_institution_carries_a_medical_and_an_elderly_care_type(evaluate: Any) -> None:
    assert evaluate("yiyang-institution-count").count("initial-population") == 1  # o1 only


def test_elder_friendly_share_divides_by_medical_institutions(evaluate: Any) -> None:
    assert evaluate("elder-friendly-institution-rate").score == 50.0  # o1 of o1, o2


def test_disability_assessments_count_people_of_any_grade(evaluate: Any) -> None:
    assert evaluate("ltc-disability-assessed-count").count("initial-population") == 3  # p1, p2, p5


def test_hospice_patients_are_those_with_an_episode_overlapping_the_period(evaluate: Any) -> None:
    assert evaluate("hospice-patient-count").count("initial-population") == 2


def test_hospice_bed_days_sum_the_episodes_within_the_period(evaluate: Any) -> None:
    assert evaluate("hospice-bed-days").score == 16.0  # h2: Jan 1–4 (4); h1: Dec 20–31 (12)


def test_a_same_day_episode_counts_one_bed_day() -> None:
    assert bed_days({"start": "2026-03-01", "end": "2026-03-01"}, YEAR) == 1


def test_an_episode_outside_the_period_counts_none() -> None:
    assert bed_days({"start": "2025-01-01", "end": "2025-02-01"}, YEAR) == 0


# -- periods and population files ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2026", "2026-01-01", "2026-12-31"),
        ("2024-02", "2024-02-01", "2024-02-29"),
        ("2026-01-01/2026-06-30", "2026-01-01", "2026-06-30"),
    ],
)
def test_a_period_is_a_year_a_month_or_two_dates(text: str, start: str, end: str) -> None:
    period = Period.parse(text)
    assert (period.start.isoformat(), period.end.isoformat()) == (start, end)


@pytest.mark.parametrize("year", ["0001", "1000", "9999"])
def test_a_period_whose_criteria_dates_cannot_be_computed_is_refused(evaluate: Any, year: str) -> None:
    """An auditor asking for 0001/9999 got an internal error (a 500), and 1000 blamed the
    Measure: the criteria's dates (the day before, 65 years before) left the years 1000-9999."""
    with pytest.raises(MeasureError) as refused:
        evaluate("elderly-health-management-rate", period=Period.parse(year))
    assert refused.value.message_id == "measure.period-out-of-range"


@pytest.mark.parametrize("text", ["2026-W01-1/2026-W26-2", "20260101/20260630", "2026-01-01/2026-182"])
def test_a_period_of_dates_iso_reads_but_fhir_does_not_write_is_refused(text: str) -> None:
    """``date.fromisoformat`` read week dates, the basic and the ordinal form on either side
    of the slash: a report for a period no one wrote (2026-W01-1 is 29 December 2025)."""
    with pytest.raises(MeasureError, match="measure.bad-period"):
        Period.parse(text)


def test_a_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(MeasureError, match="measure.period-reversed"):
        Period.parse("2026-06-30/2026-01-01")


def test_a_population_file_with_an_unknown_age_band_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("区划代码,性别,年龄段,常住人口\n410105,1,60-64,3\n", encoding="utf-8")
    with pytest.raises(PopulationFileError, match=r"p\.csv:2: 年龄段") as refused:
        read_population(path)
    bands = "0-64, 65-69, 70-74, 75-79, 80-84, 85+"
    assert refused.value.text("zh-CN") == f"{path} 第 2 行：年龄段“60-64”不是 {bands} 之一"


# str.isdigit takes both: "²" then was a ValueError, the full-width code a county no one lives in
@pytest.mark.parametrize(
    ("row", "column"),
    [("410105,1,65-69,\u00b2", "常住人口"), ("\uff14\uff11\uff10\uff11\uff10\uff15,1,65-69,3", "区划代码")],
)
def test_a_population_file_with_non_ascii_digits_names_its_line(tmp_path: Path, row: str, column: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"区划代码,性别,年龄段,常住人口\n{row}\n", encoding="utf-8")
    with pytest.raises(PopulationFileError, match=rf"p\.csv:2: {column}"):
        read_population(path)


def test_a_population_file_that_is_not_there_is_worded_without_the_systems_english(tmp_path: Path) -> None:
    with pytest.raises(PopulationFileError) as refused:
        read_population(tmp_path / "none.csv")
    assert (refused.value.text("zh-CN"), str(refused.value)) == (
        f"{tmp_path / 'none.csv'}（文件不存在）",
        f"{tmp_path / 'none.csv'}: no such file",
    )


# -- the MeasureReport and its views ----------------------------------------------------------------
def test_an_unknown_denominator_is_marked_data_absent_not_zero(evaluate: Any) -> None:
    report = measure_report(evaluate("family-doctor-contract-rate"), "2026-12-31", BASE)
    denominator = report["group"][0]["population"][1]
    assert (denominator.get("count"), denominator["extension"][0]["valueCode"]) == (None, "unknown")


def test_the_measure_report_is_valid_r4(evaluate: Any, population: PopulationTable) -> None:
    from fhir.resources.R4B.measurereport import MeasureReport

    report = measure_report(
        evaluate("family-doctor-contract-rate", population=population), "2026-12-31T00:00:00+08:00", BASE
    )
    assert MeasureReport.model_validate(report).group[0].measureScore.value == 2.0  # 2 of 100


def test_the_html_view_shows_the_target_status(evaluate: Any, population: PopulationTable) -> None:
    page = render_html([evaluate("family-doctor-contract-rate", population=population)], "zh-CN", {})
    assert "未达标" in page.decode("utf-8")


def test_the_strata_table_heads_the_stratifier_and_the_stratum_apart(evaluate: Any) -> None:
    """Both columns were headed "Stratum": the one holding County, Age band, Sex is the stratifier."""
    page = render_html([evaluate("ltc-insured-count")], "en", {}).decode("utf-8")
    assert "<th>Stratified by</th><th>Stratum</th>" in page


def test_the_xlsx_view_is_a_workbook(evaluate: Any) -> None:
    assert render_xlsx([evaluate("ltc-insured-count")], "en", {})[:2] == b"PK"


def test_a_stored_value_in_the_xlsx_view_is_text_never_a_formula(tmp_path: Path, registry: Registry) -> None:
    """A county is whatever code a record stored (with YIYANG_VALIDATION=warn, not always a
    GB/T 2260 one): "=1+2" was written as a formula, which the auditor's Excel would run."""
    from openpyxl import load_workbook

    indexer = SearchIndexer(registry)
    store = open_store(f"sqlite:///{tmp_path / 'archive.sqlite'}", indexer.rows)
    with store.transaction() as tx:
        tx.resources.write(_patient("formula", "1950-01-01", "male", "=1+2"))
        tx.resources.write(_disability("formula-grade", "formula", "3"))
    measure = select(package_measures(registry), "ltc-disability-assessed-count")[0]
    result = MeasureEvaluator(store, indexer.parameters).evaluate(measure, YEAR)
    store.close()
    book = load_workbook(io.BytesIO(render_xlsx([result], "en", {})))
    assert [c.data_type for sheet in book for row in sheet.iter_rows() for c in row if c.value == "=1+2"] == ["s"]


def test_the_measure_observation_population_counts_episodes_not_days(evaluate: Any) -> None:
    assert evaluate("hospice-bed-days").count("measure-observation") == 2


# -- the demo archive ----------------------------------------------------------------------------------
def test_every_indicator_computes_on_the_demo_archive(tmp_path: Path, registry: Registry) -> None:
    """The package examples and every sample export, with the invented demo population: each
    indicator has its number (none lacks a denominator or fails to run)."""
    from gateway.config import Config
    from gateway.demo import DEMO_POPULATION, load_demo
    from gateway.services import Services

    services = Services(Config.load(database_url=f"sqlite:///{tmp_path / 'demo.sqlite'}"), registry)
    try:
        list(load_demo(services, "en"))
        results = services.measures.evaluate_all(
            list(services.measure_definitions), YEAR, population=read_population(DEMO_POPULATION)
        )
    finally:
        services.close()
    assert [r.measure.id for r in results if r.score is None] == []


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        ("2026", "2026", "2026-01-01", "2026-12-31"),
        ("2026-07", "2026-09", "2026-07-01", "2026-09-30"),
        ("2026-01-01", "2026-06-30", "2026-01-01", "2026-06-30"),
    ],
)
def test_a_period_asked_as_r4_dates_of_any_precision_spans_them_whole(
    start: str, end: str, first: str, last: str
) -> None:
    """R4's $evaluate-measure: periodStart 2014 starts 2014-01-01, periodEnd 2014 ends 2014-12-31."""
    period = Period.between(start, end)
    assert (period.start.isoformat(), period.end.isoformat()) == (first, last)


# -- populations nest: numerator ⊆ denominator ⊆ initial population ---------------------------------
def _counts(result: MeasureResult) -> dict[str, int | None]:
    return {code: found.count for code, found in result.populations.items()}


def _nested(report: dict[str, Any]) -> bool:
    """Every group and stratum of a MeasureReport counts numerator ≤ denominator ≤ initial."""
    group = report["group"][0]
    listings = [group["population"]] + [s["population"] for f in group.get("stratifier", []) for s in f["stratum"]]
    for populations in listings:
        count = {p["code"]["coding"][0]["code"]: p.get("count") for p in populations}
        initial, denominator, numerator = (count.get(c) for c in ("initial-population", "denominator", "numerator"))
        if None not in (initial, denominator) and denominator > initial:
            return False
        if None not in (denominator, numerator) and numerator > denominator:
            return False
    return True


@pytest.mark.parametrize(
    "measure_id",
    ["elderly-health-management-rate", "family-doctor-contract-rate", "family-doctor-contract-rate-oldest-old"],
)
def test_a_resident_population_denominator_never_exceeds_the_initial_population(
    evaluate: Any, population: PopulationTable, measure_id: str
) -> None:
    """The rate is over the residents of the population file, so they are its initial population
    too (the archive's people aged 65+ were 4 against 100 residents)."""
    report = measure_report(evaluate(measure_id, population=population), "2026-12-31", BASE)
    assert _nested(report)


def test_without_a_population_file_the_initial_population_is_unknown_too(evaluate: Any) -> None:
    assert _counts(evaluate("family-doctor-contract-rate")) == {
        "initial-population": None,
        "denominator": None,
        "numerator": 2,
    }


def test_a_numerator_counts_only_residents_of_strata_the_population_file_has(evaluate: Any, tmp_path: Path) -> None:
    """p1 and p2 (410105) have contracts in force; a file listing only 410102 has no resident
    of 410105, so neither may be counted over it (it was 2 of 50, a stratum 410105 of 2 over 0)."""
    path = tmp_path / "410102.csv"
    path.write_text("区划代码,性别,年龄段,常住人口\n410102,2,65-69,30\n410102,1,85+,20\n", encoding="utf-8")
    result = evaluate("family-doctor-contract-rate", population=read_population(path))
    report = measure_report(result, "2026-12-31", BASE)
    assert (result.count("numerator"), _nested(report), "measure.outside-population-file" in result.notes) == (
        0,
        True,
        True,
    )


def test_a_platform_never_sees_the_resident_population_of_people_it_does_not_serve(
    evaluate: Any, population: PopulationTable, registry: Registry
) -> None:
    """An elderly-care platform counts only the people it serves: the county's residents
    (100) are not all its people, so the resident counts are masked, not shown."""
    from gateway.security.access import Access, PersonalData
    from gateway.security.principal import Principal

    platform = Principal("platform", "nowhere", frozenset({"system/MeasureReport.r"}), "elderly-care")
    result = evaluate(
        "elderly-health-management-rate", population=population, access=Access(platform, PersonalData(registry))
    )
    report = measure_report(result, "2026-12-31", BASE)
    absent = [p["extension"][0]["valueCode"] for p in report["group"][0]["population"] if "count" not in p]
    assert (_counts(result)["numerator"], absent, result.score) == (0, ["masked", "masked"], None)


def test_bed_days_read_an_instant_in_beijing_time() -> None:
    """Admitted 2026-12-30 09:00 and discharged 2027-01-01 02:00 Beijing time (written in UTC):
    two nights in 2026, 30 and 31 December."""
    episode = {"start": "2026-12-30T01:00:00Z", "end": "2026-12-31T18:00:00Z"}
    assert bed_days(episode, YEAR) == 2


def test_two_patient_records_of_one_person_count_as_one_person(tmp_path: Path, registry: Registry) -> None:
    """A hospital POSTed a Patient the archive held already: one 身份证号, two records, each
    with a 体检 in 2026; the indicator counts people."""
    id_card = [{"system": "urn:oid:2.16.156.10011.1.3", "value": "410105195003010026"}]
    twice = [  # the hospital's copy names another county: still one person, in one stratum
        {**_patient(pid, "1950-03-01", "female", county), "identifier": id_card}
        for pid, county in (("a", "410105"), ("b", "410102"))
    ]
    with fresh_database_url("sqlite", tmp_path) as url:
        store = open_store(url, SearchIndexer(registry).rows)
        with store.transaction() as tx:
            for resource in [*twice, _check("ea", "a", "2026-05-10"), _check("eb", "b", "2026-06-10")]:
                tx.resources.write(resource)
        measure = select(package_measures(registry), "elderly-health-management-rate")[0]
        counted = MeasureEvaluator(store, SearchIndexer(registry).parameters).evaluate(measure, YEAR).count("numerator")
        store.close()
    assert counted == 1


def test_a_booked_check_and_a_planned_or_waitlisted_bed_are_no_service(database_url: str, registry: Registry) -> None:
    """预约 and 计划 in a community export map to Encounter and EpisodeOfCare status planned
    (waitlist: waiting for a bed): the 体检 has not been done, the bed not yet set up, so
    neither counts; the 体检 done and the bed in use beside them do."""
    archive = [
        _patient("booked", "1950-01-01", "female", "410105"),
        {**_check("e-booked", "booked", "2026-12-20"), "status": "planned"},
        _patient("checked", "1950-01-01", "male", "410105"),
        {**_check("e-checked", "checked", "2026-12-20"), "status": "in-progress"},
        _patient("bed", "1950-01-01", "male", "410105"),
        _episode("b-bed", "bed", "home-bed", "2026-12-30", None),
        _patient("planned", "1950-01-01", "male", "410105"),
        {**_episode("b-planned", "planned", "home-bed", "2026-12-01", None), "status": "planned"},
        _patient("waiting", "1950-01-01", "female", "410105"),
        {**_episode("b-waiting", "waiting", "home-bed", "2026-12-21", None), "status": "waitlist"},
    ]
    store = open_store(database_url, SearchIndexer(registry).rows)
    try:
        with store.transaction() as tx:
            for resource in archive:
                tx.resources.write(resource)
        evaluator = MeasureEvaluator(store, SearchIndexer(registry).parameters)
        measures = package_measures(registry)

        def run(measure_id: str) -> MeasureResult:
            return evaluator.evaluate(select(measures, measure_id)[0], YEAR)

        assert run("elderly-health-management-rate").count("numerator") == 1
        assert run("home-bed-patient-count").count("initial-population") == 1
        assert run("home-bed-bed-days").score == 2.0  # b-bed: 30 and 31 December
    finally:
        store.close()


def test_a_measure_reads_its_populations_in_one_snapshot(database_url: str, registry: Registry) -> None:
    """A measure counts each population by a statement of its own; on PostgreSQL each statement
    read what was committed by then, so a person written between the denominator and the
    numerator was counted in the numerator alone (a rate over 100 %).  A 体检 committed by
    another connection while the view is open is not seen by the view's next statement."""
    store = open_store(database_url, SearchIndexer(registry).rows)
    try:
        with store.transaction() as tx:
            tx.resources.write(_patient("seen", "1950-01-01", "female", "410105"))
        counting = ("SELECT COUNT(*) FROM resource", [])
        with store.reading(consistent=True) as view:
            before = view.resources.tally(counting)
            with store.transaction() as tx:  # another connection: committed while the view is open
                tx.resources.write(_patient("later", "1950-01-01", "male", "410105"))
            after = view.resources.tally(counting)
    finally:
        store.close()
    assert before == after == [(1,)]
