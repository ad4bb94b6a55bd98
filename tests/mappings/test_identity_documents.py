"""Issue 13 in the mappings: a person identified by a 港澳台居民居住证 or a 外国人永久居留身份证 becomes
a Patient with that document's identifier system instead of being quarantined (community health,
elderly care, 医保 psn_cert_type, HL7 v2 PID-3), a bad number is still quarantined with the
document's own reason, and division codes go to GB/T 2260 or the 统计用区划代码 by their level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.ingest import commands
from mappings.conceptmaps import ConceptMaps
from mappings.normalise import division_list, id_document_kind
from profiles.registry import Registry
from tests.ingest_output import ndjson, reasons

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://fhir.yiyang.cn"
ID_CARD = "urn:oid:2.16.156.10011.1.3"
RESIDENCE_PERMIT = f"{BASE}/sid/hmt-residence-permit"
FOREIGN_PR = f"{BASE}/sid/foreign-permanent-residence"
GB = f"{BASE}/CodeSystem/gb-t-2260"
NBS = f"{BASE}/CodeSystem/nbs-division"

MACAO = "820000194511030027"  # 澳门, born 1945-11-03, female
TAIWAN = "830000194709080048"  # 台湾, born 1947-09-08, female
FOREIGNER = "941840194806200022"  # 2023 edition: 河南, 840, born 1948-06-20
BAD_TAIWAN = "830000194709080049"


# -- the normalisers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("410105194912310020", "id-card"),
        ("41010519491231002x", "id-card"),
        ("410105491231002", "id-card"),  # 15-digit 身份证
        ("81000019500315013X", "hmt-residence-permit"),
        ("８２００００１９４５１１０３００２７", "hmt-residence-permit"),  # full-width
        (FOREIGNER, "foreign-permanent-residence"),
        ("usa410048062012", "foreign-permanent-residence"),  # the older 15-character card
        ("810105194912310020", "id-card"),  # 81 but not 810000: a (wrong) 身份证
        ("garbage", "id-card"),
        ("", None),
    ],
)
def test_the_number_s_shape_picks_the_document(number: str, kind: str | None) -> None:
    assert id_document_kind(number) == kind


def test_a_number_excel_mangled_gives_no_system_so_its_value_rule_reports_it_once() -> None:
    assert id_document_kind(4.10105e17) is None


@pytest.mark.parametrize(
    ("code", "listed"),
    [("410000", "gb-t-2260"), ("410105", "gb-t-2260"), ("410171", "nbs-division"), ("410105001", "nbs-division")]
    + [("410105001001", "nbs-division"), ("", None)],
)
def test_a_division_code_goes_to_the_list_of_its_level(code: str, listed: str | None) -> None:
    assert division_list(code) == listed


# -- community health ----------------------------------------------------------------------------------
HEADER = "序号,个人档案编号,姓名,性别,出生日期,身份证号,民族,联系电话,现住址,县区代码,乡镇街道代码,常住类型,血型,文化程度,婚姻状况,医疗费用支付方式,药物过敏史,既往疾病,医保人员编号,建档日期"
ROWS = [
    f"1,41017111100000001,何美玲,女,1945-11-03,{MACAO},汉族,13803710101,河南省郑州市郑州经济技术开发区,410171,410171111,2,4,9,丧偶,2,无,无,,2024-03-01",
    f"2,41010500100000002,林淑芬,女,1947-09-08,{BAD_TAIWAN},汉族,13803710102,河南省郑州市金水区经八路街道,410105,410105001,2,4,9,丧偶,2,无,无,,2024-03-01",
    f"3,41010500100000003,玛丽·史密斯,女,1948-06-20,{FOREIGNER},,13803710103,河南省郑州市金水区经八路街道,410105,410105001,2,4,9,丧偶,2,无,无,,2024-03-01",
]


def _patients(out: Path) -> dict[str, dict[str, Any]]:
    return {p["name"][0]["text"]: p for p in ndjson(out / "Patient.ndjson")}


def _national(patient: dict[str, Any]) -> tuple[str, str]:
    identifier = next(i for i in patient["identifier"] if i["system"] in (ID_CARD, RESIDENCE_PERMIT, FOREIGN_PR))
    return identifier["system"], identifier["value"]


@pytest.fixture(scope="module")
def community(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, commands.Counts]:
    folder = tmp_path_factory.mktemp("community-identity")
    export = folder / "个人基本信息表.csv"
    export.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    out = folder / "out"
    return out, commands.ingest("community-health", [export], out, Registry(), bundle=False)


def test_community_health_people_with_other_documents_are_accepted(community: tuple[Path, commands.Counts]) -> None:
    out, counts = community
    assert (counts.read, counts.mapped, counts.quarantined) == (3, 2, 1)
    people = _patients(out)
    assert _national(people["何美玲"]) == (RESIDENCE_PERMIT, MACAO)
    assert _national(people["玛丽·史密斯"]) == (FOREIGN_PR, FOREIGNER)


def test_a_development_zone_and_its_township_go_to_the_statistics_list(community: tuple[Path, commands.Counts]) -> None:
    address = _patients(community[0])["何美玲"]["address"][0]
    assert [(e["valueCoding"]["system"], e["valueCoding"]["code"]) for e in address["extension"]] == [
        (NBS, "410171"),
        (NBS, "410171111"),
    ]
    address = _patients(community[0])["玛丽·史密斯"]["address"][0]
    assert [e["valueCoding"]["system"] for e in address["extension"]] == [GB, NBS]


def test_a_bad_residence_permit_number_is_quarantined_with_its_own_reason(
    community: tuple[Path, commands.Counts],
) -> None:
    assert reasons(community[0], "row 3") == [
        ("rule.residence-permit-checksum", "Patient.identifier[0].value", "个人基本信息表.csv row 3, column 身份证号")
    ]


# -- 医保 1101 (psn_cert_type) ----------------------------------------------------------------------------
def _reply(cert_type: str, certno: str, name: str, born: str, psn_no: str) -> str:
    sample = json.loads(
        (ROOT / "mappings/samples/insurance/1101-replies.ndjson").read_text(encoding="utf-8").splitlines()[0]
    )
    base = sample["output"]["baseinfo"]
    base.update(psn_cert_type=cert_type, certno=certno, psn_name=name, gend="2", brdy=born, psn_no=psn_no, naty="01")
    sample["inf_refmsgid"] = f"4101052026061509150000000{psn_no[-5:]}"
    return json.dumps(sample, ensure_ascii=False)


@pytest.fixture(scope="module")
def insurance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, commands.Counts]:
    folder = tmp_path_factory.mktemp("insurance-identity")
    export = folder / "1101-replies.ndjson"
    lines = [
        _reply("17", TAIWAN, "林淑芬", "1947-09-08", "41000000000000077001"),
        _reply("07", FOREIGNER, "玛丽·史密斯", "1948-06-20", "41000000000000077002"),
        _reply("17", BAD_TAIWAN, "林淑芬", "1947-09-08", "41000000000000077003"),
    ]
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = folder / "out"
    return out, commands.ingest("insurance", [export], out, Registry(), bundle=False)


def test_psn_cert_type_17_and_07_carry_their_documents(insurance: tuple[Path, commands.Counts]) -> None:
    out, counts = insurance
    assert (counts.read, counts.mapped, counts.quarantined) == (3, 2, 1)
    people = _patients(out)
    assert _national(people["林淑芬"]) == (RESIDENCE_PERMIT, TAIWAN)
    assert _national(people["玛丽·史密斯"]) == (FOREIGN_PR, FOREIGNER)
    assert [r[0] for r in reasons(out, "line 3")] == ["rule.residence-permit-checksum"]


# -- HL7 v2 PID-3 ------------------------------------------------------------------------------------------
MESSAGE = (
    "MSH|^~\\&|HIS|H41010500012|YIYANG-GW|YYPT|20261103080511||ADT^A04^ADT_A01|HIS20261103080599|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A04|20261103080500|||U0032^赵敏|20261103080500\r"
    "PID|1||0000999^^^H41010500012^PI~{number}^^^^{kind}||{name}||{born}|F|||河南省郑州市金水区经八路街道^^郑州市^河南省^450008^CHN^H^^410105"
    "||13803710001^PRN^CP|||W^丧偶^HL70002\r"
    "PV1|1|O|LNBMZ^^^H41010500012||||D0522^孙立新|||LNBMZ^老年病门诊|||||||||{visit}^^^H41010500012^VN"
    "|||||||||||||||||||||||||20261103080500|\r"
)


@pytest.fixture(scope="module")
def hl7(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, commands.Counts]:
    folder = tmp_path_factory.mktemp("hl7-identity")
    export = folder / "adt.hl7"
    export.write_text(
        MESSAGE.format(number=FOREIGNER, kind="PRC", name="玛丽·史密斯", born="19480620", visit="MZ20261103901")
        + MESSAGE.format(number=TAIWAN, kind="居住证", name="林淑芬", born="19470908", visit="MZ20261103902")
        .replace("0000999", "0000998")
        .replace("HIS20261103080599", "HIS20261103080600"),  # a message control id of its own
        encoding="utf-8",
    )
    out = folder / "out"
    return out, commands.ingest("hl7v2", [export], out, Registry(), bundle=False)


def test_pid_3_carries_a_permanent_resident_card_and_a_residence_permit(hl7: tuple[Path, commands.Counts]) -> None:
    out, counts = hl7
    assert (counts.read, counts.quarantined) == (2, 0), ndjson(out / "quarantine.ndjson")
    people = _patients(out)
    assert _national(people["玛丽·史密斯"]) == (FOREIGN_PR, FOREIGNER)
    assert _national(people["林淑芬"]) == (RESIDENCE_PERMIT, TAIWAN)


@pytest.mark.parametrize(("written", "system"), [("7", FOREIGN_PR), ("1", "urn:oid:2.16.156.10011.1.3")])
def test_a_psn_cert_type_that_lost_its_leading_zero_names_the_same_document(written: str, system: str) -> None:
    """A reply whose psn_cert_type went through a number (07 → 7) is the same document type."""
    maps = ConceptMaps.load("http://fhir.yiyang.cn")
    assert maps.translate("nhsa-psn-cert-type-to-identifier-system", written) == system
