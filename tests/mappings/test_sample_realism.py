"""The demo archive is a believable one: every shipped sample of every source, ingested together,
must not contradict itself, and gives the measures (家庭医生签约率, 规范健康管理率, 中医药健康管理率,
失能评定人数) a population they can count by hand.

- One person's assessments of one day agree: a 生活自理能力 band, a 长护险 失能等级 and a 老年人能力
  等级 of the same person on the same day are at most one severity step apart (可自理 and 重度失能
  on one day cannot both be true).
- A 长护险 (insutype 410) Coverage starts no earlier than its city's pilot (PILOT_STARTS).
- A 体检's 体质指数 is its 体重 / 身高².
- The population table (people per county, sex and age band, and what each measure counts) is
  pinned here and written out in docs/mappings.md ("The demo population").

A check that fails names the person, the day and the values, so whoever reintroduces a
contradiction into a sample sees where."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.demo import sample_files
from gateway.ingest import commands
from mappings.readers import read
from mappings.specs import SOURCES
from profiles.registry import Registry
from tests.ingest_output import ndjson

BASE = "http://fhir.yiyang.cn"
#: 长护险 pilot start per city (the first four digits of the 参保地医保区划).  Only the cities the
#: samples use; docs/mappings.md lists the sources.  U = unconfirmed.
PILOT_STARTS = {
    "4101": date(2024, 1, 1),  # 郑州: not a national pilot city; the samples assume a municipal scheme from 2024 (U)
    "4102": date(2020, 9, 10),  # 开封: national expansion, 医保发〔2020〕37号 (date of the document, U)
}
#: the day ages are counted at: the end of the measurement year
AGE_AT = date(2026, 12, 31)
YEAR = "2026"


def severity(observation: dict[str, Any]) -> tuple[str, int] | None:
    """What an assessment says about how dependent a person is, on one scale: 0 independent,
    1 mild, 2 moderate, 3 severe."""
    profile = observation.get("meta", {}).get("profile", [""])[0].rsplit("/", 1)[-1]
    if profile == "yy-observation-selfcare":  # 0 可自理, 1 轻度依赖, 2 中度依赖, 3 不能自理
        return "生活自理能力", int(observation["interpretation"][0]["coding"][0]["code"])
    if profile == "yy-observation-ltc-disability":  # 0 基本正常 … 3–5 重度失能Ⅰ–Ⅲ级
        return "长护险失能等级", min(int(observation["valueCodeableConcept"]["coding"][0]["code"]), 3)
    if profile == "yy-observation-ability":  # GB/T 42195: 0 能力完好 … 3 重度受损, 4 完全丧失
        level = next(
            (int(i["coding"][0]["code"]) for i in observation.get("interpretation", []) if i.get("coding")),
            None,
        )
        if level is None and "valueCodeableConcept" in observation:
            level = int(observation["valueCodeableConcept"]["coding"][0]["code"])
        return ("老年人能力等级", min(level, 3)) if level is not None else None
    return None


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("all-samples")
    for source in SOURCES:
        counts = commands.ingest(source, sample_files(source), out, Registry(), bundle=False)
        assert counts.reconciled, source
    return out


def resources(archive: Path, kind: str) -> list[dict[str, Any]]:
    return ndjson(archive / f"{kind}.ndjson")


def assessments(archive: Path) -> dict[str, list[tuple[date, str, int]]]:
    """Per person: (day, kind, severity) of every assessment in the archive."""
    found: dict[str, list[tuple[date, str, int]]] = defaultdict(list)
    for observation in resources(archive, "Observation"):
        said = severity(observation)
        if said and "effectiveDateTime" in observation:
            day = date.fromisoformat(observation["effectiveDateTime"][:10])
            found[observation["subject"]["reference"]].append((day, *said))
    return found


def test_no_person_is_assessed_both_independent_and_dependent_on_one_day(archive: Path) -> None:
    found = assessments(archive)
    contradictions = [
        (person, a, b) for person, said in found.items() for a in said for b in said if a[0] == b[0] and a[2] - b[2] > 1
    ]
    kinds = {kind for said in found.values() for _, kind, _ in said}
    assert (contradictions, kinds) == ([], {"生活自理能力", "长护险失能等级", "老年人能力等级"})


def test_no_one_goes_between_independent_and_severely_disabled_within_a_month(archive: Path) -> None:
    found = assessments(archive)
    pairs = [
        (person, a, b) for person, said in found.items() for a in said for b in said if 0 < (b[0] - a[0]).days <= 30
    ]
    jumps = [(person, a, b) for person, a, b in pairs if abs(a[2] - b[2]) == 3]
    assert (jumps, len(pairs) > 0) == ([], True)


def test_long_term_care_cover_starts_no_earlier_than_the_citys_pilot(archive: Path) -> None:
    early, unknown, seen = [], [], 0
    for coverage in resources(archive, "Coverage"):
        if coverage["type"]["coding"][0]["code"] != "410":
            continue
        seen += 1
        region = next(e["valueCoding"]["code"] for e in coverage["extension"] if e["url"].endswith("insured-region"))
        pilot = PILOT_STARTS.get(region[:4])
        if pilot is None:
            unknown.append((coverage["beneficiary"]["reference"], region))
        elif date.fromisoformat(coverage["period"]["start"]) < pilot:
            early.append((coverage["beneficiary"]["reference"], region, coverage["period"]["start"]))
    assert (early, unknown, seen > 0) == ([], [], True)


def test_no_long_term_care_assessment_precedes_its_citys_pilot() -> None:
    """Read from the export itself (the Observation does not carry the 参保地): an impossible
    evalt_date is the quarantine's business, not this check's."""
    path = Path(__file__).resolve().parents[2] / "mappings/samples/insurance/长护险失能评估.json"
    early = []
    for record in read(path, "insurance"):
        region, when = record.fields.get("insuplc_admdvs", ""), record.fields.get("evalt_date", "")
        try:
            day = date.fromisoformat(when[:10])
        except ValueError:
            continue
        if region[:4] not in PILOT_STARTS or day < PILOT_STARTS[region[:4]]:
            early.append((record.location, region, when))
    assert (early, json.loads(path.read_text(encoding="utf-8"))["data"]["total"]) == ([], 9)


def test_a_check_ups_bmi_is_its_weight_over_its_height_squared(archive: Path) -> None:
    by_check: dict[str, dict[str, float]] = defaultdict(dict)
    for observation in resources(archive, "Observation"):
        code = observation["code"]["coding"][0]["code"]
        if code in ("8302-2", "29463-7", "39156-5") and "encounter" in observation:
            by_check[observation["encounter"]["reference"]][code] = observation["valueQuantity"]["value"]
    wrong = {
        check: m
        for check, m in by_check.items()
        if len(m) == 3 and abs(m["29463-7"] / (m["8302-2"] / 100) ** 2 - m["39156-5"]) > 0.1
    }
    assert (wrong, len(by_check) > 0) == ({}, True)


# -- the population the measures count ------------------------------------------------------------
def band(born: str) -> str:
    birth = date.fromisoformat(born)
    age = AGE_AT.year - birth.year - ((AGE_AT.month, AGE_AT.day) < (birth.month, birth.day))
    if age < 65:
        return "<65"
    return "80+" if age >= 80 else f"{age // 5 * 5}–{age // 5 * 5 + 4}"


def county(patient: dict[str, Any]) -> str | None:
    """The 区县 of the person's 健康档案: the first six digits of the 17-digit 健康档案编号 (GB/T 2260
    county of the filing institution, shared/DOMAIN.md §3a); the samples' 个人基本信息表 addresses
    carry the same code."""
    for identifier in patient.get("identifier", []):
        if identifier["system"] == "urn:oid:2.16.156.10011.1.2" and len(identifier["value"]) == 17:
            return identifier["value"][:6]
    return None


def population(archive: Path) -> dict[str, Any]:
    """Per county: people by sex and age band, and the people each measure counts (65+ only)."""
    signed = {
        c["subject"]["reference"]
        for c in resources(archive, "CarePlan")
        if any(g.get("code") == "family-doctor-package" for cat in c["category"] for g in cat.get("coding", []))
        and c["status"] == "active"
        and c["period"]["start"][:4] <= YEAR <= c["period"].get("end", "9999")[:4]
    }
    checked = {
        e["subject"]["reference"]
        for e in resources(archive, "Encounter")
        if e["type"][0]["coding"][0]["code"] == "health-check" and e["period"]["start"].startswith(YEAR)
    }
    tcm, disabled = set(), set()
    for o in resources(archive, "Observation"):
        profile = o.get("meta", {}).get("profile", [""])[0]
        if profile.endswith("yy-observation-tcm-constitution") and o["effectiveDateTime"].startswith(YEAR):
            tcm.add(o["subject"]["reference"])
        if profile.endswith("yy-observation-ltc-disability") and o["effectiveDateTime"].startswith(YEAR):
            disabled.add(o["subject"]["reference"])
    table: dict[str, Any] = {}
    for patient in resources(archive, "Patient"):
        where = county(patient)
        if where not in ("410105", "410102"):
            continue
        row = table.setdefault(
            where, {"people": Counter(), "signed": 0, "checked": 0, "tcm": 0, "disabled": 0, "65+": 0}
        )
        age_band = band(patient["birthDate"])
        row["people"][(patient["gender"], age_band)] += 1
        if age_band == "<65":
            continue
        me = f"Patient/{patient['id']}"
        row["65+"] += 1
        row["signed"] += me in signed
        row["checked"] += me in checked
        row["tcm"] += me in tcm
        row["disabled"] += me in disabled
    return table


def test_the_demo_population_is_as_docs_mappings_md_tells_it(archive: Path) -> None:
    m, f = "male", "female"
    assert population(archive) == {
        "410105": {  # 金水区
            "people": Counter(
                {
                    (m, "65–69"): 1,
                    (f, "65–69"): 1,
                    (m, "70–74"): 1,
                    (f, "70–74"): 1,
                    (m, "75–79"): 1,
                    (f, "75–79"): 1,
                    (m, "80+"): 1,
                    (f, "80+"): 4,
                    (f, "<65"): 1,
                }
            ),
            "65+": 11,
            "signed": 6,
            "checked": 8,
            "tcm": 4,
            "disabled": 3,
        },
        "410102": {  # 中原区
            "people": Counter(
                {
                    (m, "65–69"): 1,
                    (f, "65–69"): 1,
                    (m, "70–74"): 1,
                    (f, "70–74"): 2,
                    (m, "75–79"): 1,
                    (f, "75–79"): 2,
                    (m, "80+"): 4,
                    (f, "80+"): 1,
                }
            ),
            "65+": 13,
            "signed": 6,
            "checked": 7,
            "tcm": 3,
            "disabled": 1,
        },
    }
