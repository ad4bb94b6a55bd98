"""A CDA telecom is a URL (CDA R2 TEL): its scheme says what kind of contact point it is —
``tel:`` a phone, ``fax:`` a fax, ``mailto:`` an e-mail address — and the rest is the number
or the address, checked as such."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings.readers import read
from tests.ingest_output import SAMPLES, _engine, mapped_resources


def cda_telecoms(tmp_path: Path, written: str) -> list[dict]:
    document = (SAMPLES / "community-health/健康档案-张秀英.xml").read_text(encoding="utf-8")
    path = tmp_path / "健康档案.xml"
    path.write_text(document.replace('telecom value="13803710001"', f'telecom value="{written}"'), "utf-8")
    return mapped_resources(path, "community-health")[0]["patient"]["telecom"]


@pytest.mark.parametrize(
    ("written", "telecom"),
    [
        ("mailto:zhangxy@example.cn", {"system": "email", "value": "zhangxy@example.cn"}),
        ("MAILTO:zhangxy@example.cn", {"system": "email", "value": "zhangxy@example.cn"}),
        ("fax:+86-371-68801234", {"system": "fax", "value": "+8637168801234"}),
        ("http://www.example.cn/zhangxy", {"system": "url", "value": "http://www.example.cn/zhangxy"}),
        ("tel:13803710001", {"system": "phone", "value": "13803710001"}),
        ("13803710001", {"system": "phone", "value": "13803710001"}),
    ],
)
def test_a_cda_telecom_url_is_the_contact_point_its_scheme_names(tmp_path: Path, written: str, telecom: dict) -> None:
    assert cda_telecoms(tmp_path, written) == [telecom]


def problems(tmp_path: Path, written: str) -> list[str]:
    document = (SAMPLES / "community-health/健康档案-张秀英.xml").read_text(encoding="utf-8")
    path = tmp_path / "健康档案.xml"
    path.write_text(document.replace('telecom value="13803710001"', f'telecom value="{written}"'), "utf-8")
    mapped = _engine().map(next(read(path, "community-health")))
    return [problem.message_id for problem in mapped.problems]


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("mailto:张秀英", "mapping.not-an-email"),
        ("fax:传真号", "mapping.not-digits"),
        # Arabic-Indic digits are no number a phone dials: refused as another script's digits
        ("fax:\u0663\u0668\u0660\u0663\u0667\u0661\u0660\u0660\u0660\u0661", "mapping.foreign-digits"),
        ("skype:zhangxy", "mapping.unknown-code"),
    ],
)
def test_a_cda_telecom_is_refused_once_with_the_reason_of_its_scheme(tmp_path: Path, written: str, reason: str) -> None:
    assert problems(tmp_path, written) == [reason]


def two_telecoms(tmp_path: Path) -> Path:
    """The sample with a second telecom, an e-mail address after the phone, as WS/T 500
    documents list a patient's contact points: one ``telecom`` element each."""
    document = (SAMPLES / "community-health/健康档案-张秀英.xml").read_text(encoding="utf-8")
    path = tmp_path / "健康档案.xml"
    both = '<telecom value="tel:13803710001"/><telecom value="mailto:zhangxy@example.cn"/>'
    path.write_text(document.replace('<telecom value="13803710001"/>', both), "utf-8")
    return path


def test_every_telecom_element_of_a_cda_document_is_a_contact_point(tmp_path: Path) -> None:
    assert mapped_resources(two_telecoms(tmp_path), "community-health")[0]["patient"]["telecom"] == [
        {"system": "phone", "value": "13803710001"},
        {"system": "email", "value": "zhangxy@example.cn"},
    ]


def test_each_cda_contact_point_names_the_telecom_element_it_came_from(tmp_path: Path) -> None:
    mapped = _engine().map(next(read(two_telecoms(tmp_path), "community-health")))
    assert [mapped.lineage[("patient", f"Patient.telecom[{i}].value")].field for i in (0, 1)] == [
        "recordTarget/patientRole/telecom/@value",
        "recordTarget/patientRole/telecom[2]/@value",
    ]
