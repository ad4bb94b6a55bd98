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
        ("skype:zhangxy", "mapping.unknown-code"),
    ],
)
def test_a_cda_telecom_is_refused_once_with_the_reason_of_its_scheme(tmp_path: Path, written: str, reason: str) -> None:
    assert problems(tmp_path, written) == [reason]
