"""A CDA patient has one ``addr`` element per address (home, work …): each is an address of
the Patient, its use from ``addr/@use`` (HL7 v3 PostalAddressUse)."""

from __future__ import annotations

from pathlib import Path

from tests.ingest_output import SAMPLES, mapped_resources

WORKPLACE = '<addr use="WP"><streetName>花园路</streetName><houseNumber>88号</houseNumber><city>郑州市</city></addr>'


def with_second_address(tmp_path: Path, second: str) -> Path:
    document = (SAMPLES / "community-health/健康档案-张秀英.xml").read_text(encoding="utf-8")
    path = tmp_path / "健康档案.xml"
    path.write_text(document.replace("</addr>", f"</addr>{second}", 1), "utf-8")
    return path


def test_every_addr_element_of_a_cda_document_is_an_address_of_its_use(tmp_path: Path) -> None:
    addresses = mapped_resources(with_second_address(tmp_path, WORKPLACE), "community-health")[0]["patient"]["address"]
    assert [(address["use"], address["line"]) for address in addresses] == [
        ("home", ["经八路街道", "经八路", "幸福社区3号楼"]),
        ("work", ["花园路", "88号"]),
    ]


def test_an_addr_without_use_writes_no_use_rather_than_calling_it_home(tmp_path: Path) -> None:
    unsaid = WORKPLACE.replace(' use="WP"', "")
    addresses = mapped_resources(with_second_address(tmp_path, unsaid), "community-health")[0]["patient"]["address"]
    assert "use" not in addresses[1]


def test_an_addr_written_as_one_line_of_text_is_the_address_text(tmp_path: Path) -> None:
    line = '<addr use="TMP">河南省郑州市金水区花园路88号</addr>'
    addresses = mapped_resources(with_second_address(tmp_path, line), "community-health")[0]["patient"]["address"]
    assert addresses[1] == {"use": "temp", "text": "河南省郑州市金水区花园路88号"}
