"""The 参保地医保区划 (insuplc_admdvs, IN1-3) is a 医保区划 based on GB/T 2260 (DOMAIN §6c): a city's
own 统筹区, XXXX99 (郑州市本级 410199), lands in the code system of those codes, every other value
is still checked as a GB/T 2260 code, and an address keeps the plain GB/T 2260 check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ingest import commands
from mappings.normalise import insured_region_list
from profiles.registry import Registry
from tests.ingest_output import SAMPLES, ndjson, personal_info_file
from tools.derive_nhsa_city_level import code_system

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://fhir.yiyang.cn"
CITY_LEVEL = f"{BASE}/CodeSystem/nhsa-admdvs-city-level"
GB_T_2260 = f"{BASE}/CodeSystem/gb-t-2260"


# -- the normaliser -----------------------------------------------------------------------------------
@given(st.text(alphabet="0123456789", min_size=4, max_size=4))
def test_four_digits_and_99_are_a_city_level_code(prefix: str) -> None:
    assert insured_region_list(prefix + "99") == "nhsa-admdvs-city-level"


@given(st.text(alphabet="0123456789", min_size=6, max_size=6).filter(lambda code: not code.endswith("99")))
def test_any_other_six_digit_code_is_a_gb_t_2260_code(code: str) -> None:
    assert insured_region_list(code) == "gb-t-2260"


def test_an_empty_region_gives_no_system() -> None:
    assert insured_region_list("") is None


# -- the code system ----------------------------------------------------------------------------------
def test_the_shipped_city_level_codes_are_what_the_tool_derives_from_gb_t_2260() -> None:
    package = ROOT / "profiles/package"
    shipped = json.loads((package / "CodeSystem-nhsa-admdvs-city-level.json").read_text(encoding="utf-8"))
    assert shipped == code_system(json.loads((package / "CodeSystem-gb-t-2260.json").read_text(encoding="utf-8")))


# -- 1101 replies ---------------------------------------------------------------------------------------
def reply(message_id: str, region: str) -> str:
    first = json.loads((SAMPLES / "insurance/1101-replies.ndjson").read_text(encoding="utf-8").splitlines()[0])
    first["inf_refmsgid"] = message_id
    first["output"]["insuinfo"] = [{**first["output"]["insuinfo"][0], "insuplc_admdvs": region}]
    return json.dumps(first, ensure_ascii=False)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("regions")
    lines = [reply("CITY-LEVEL", "410199"), reply("NO-SUCH-CITY", "419999")]
    (folder / "1101.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    commands.ingest("insurance", [folder / "1101.ndjson"], folder / "out", Registry(), bundle=False)
    return folder / "out"


def regions(out: Path) -> list[dict[str, Any]]:
    return [
        e["valueCoding"]
        for coverage in ndjson(out / "Coverage.ndjson")
        for e in coverage["extension"]
        if e["url"].endswith("yy-ext-insured-region")
    ]


def test_a_reply_insured_at_city_level_lands_with_the_city_level_code(out: Path) -> None:
    assert regions(out) == [{"system": CITY_LEVEL, "code": "410199"}]


def test_a_99_code_of_no_gb_t_2260_city_is_still_quarantined(out: Path) -> None:
    quarantined = [(q["location"], [r["id"] for r in q["reasons"]]) for q in ndjson(out / "quarantine.ndjson")]
    assert quarantined == [("line 2", ["code.unknown-in-system"])]


def test_an_address_division_ending_in_99_is_still_no_gb_t_2260_code(tmp_path: Path) -> None:
    path = personal_info_file(tmp_path, "县区代码", "410199")
    commands.ingest("community-health", [path], tmp_path / "out", Registry(), bundle=False)
    reasons = {r["id"] for q in ndjson(tmp_path / "out/quarantine.ndjson") for r in q["reasons"]}
    assert "rule.division-unknown" in reasons
