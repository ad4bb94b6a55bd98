"""A CDA patient's name is a PN: WS/T 500 writes it as text, generic CDA generators in parts
(``<family>``, ``<given>``).  Read as text alone, a name in parts was empty, and the document
was quarantined for a missing name."""

from __future__ import annotations

from pathlib import Path

from gateway.ingest.commands import build_engine
from mappings.readers import cda
from profiles.registry import Registry

SAMPLE = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/健康档案-张秀英.xml"


def test_a_name_in_parts_is_the_name_its_parts_render_to(tmp_path: Path) -> None:
    path = tmp_path / SAMPLE.name
    parts = "<name><family>张</family><given>秀英</given></name>"
    path.write_text(SAMPLE.read_text(encoding="utf-8").replace("<name>张秀英</name>", parts), encoding="utf-8")
    [record] = cda.read_cda(path, "community-health")
    mapped = build_engine(Registry()).map(record)
    assert mapped is not None
    assert (mapped.resources["patient"]["name"], mapped.problems) == (
        [{"text": "张秀英", "family": "张", "given": ["秀英"]}],
        [],
    )
