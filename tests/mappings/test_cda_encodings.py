"""A CDA document's XML declaration names its character set, and Chinese systems name GB2312 or
GBK over text holding characters GB 2312 lacks (喆, 镕, 堃 …, common in names) or the alias GB_2312-80: the document is
read as GB 18030, their superset, as an HL7 v2 message declaring either is."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings.readers import cda

SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/健康档案-张秀英.xml"
NAME = "recordTarget/patientRole/patient/name"


@pytest.mark.parametrize("declared", ["GB2312", "gb2312", "GB_2312-80"])
@pytest.mark.parametrize("name", ["王喆", "朱镕基", "李堃"])
def test_a_document_declared_gb2312_or_gbk_reads_a_name_gb2312_lacks(tmp_path: Path, declared: str, name: str) -> None:
    document = SAMPLE.read_text(encoding="utf-8").replace('encoding="UTF-8"', f'encoding="{declared}"')
    path = tmp_path / SAMPLE.name
    path.write_bytes(document.replace("张秀英", name).encode("gb18030"))
    [record] = cda.read_cda(path, "community-health")
    assert record.fields[NAME] == name
