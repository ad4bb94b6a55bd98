"""A name from an export in GBK that lost characters: Excel saving "CSV (逗号分隔)" writes ``?``
for every character GBK lacks (王䶮 becomes 王?), and a conversion that could not map a
character writes U+FFFD.  Such a name is no name: the record is quarantined
(``mapping.lost-characters``), never landed as 王?."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ingest.commands import build_engine
from mappings.normalise import MappingError, person_name
from mappings.readers import read
from profiles.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
PERSONAL_INFO = ROOT / "mappings/samples/community-health/个人基本信息表.csv"
ELDER_PROFILES = ROOT / "mappings/samples/elderly-care/老人档案.json"
LOST = "mapping.lost-characters"


def problems(path: Path, source: str) -> list[tuple[str, str | None]]:
    [record, *_] = read(path, source)
    mapped = build_engine(Registry()).map(record)
    assert mapped is not None
    return [(problem.message_id, problem.params.get("field")) for problem in mapped.problems]


@pytest.mark.parametrize("lost", ["孙?", "孙\ufffd", "?福春"])
def test_a_csv_name_an_export_lost_characters_of_is_a_problem(tmp_path: Path, lost: str) -> None:
    header, first = PERSONAL_INFO.read_text(encoding="utf-8-sig").splitlines()[:2]
    path = tmp_path / "个人基本信息表.csv"
    path.write_text(f"{header}\n{first.replace('孙福春', lost)}\n", encoding="utf-8")
    assert problems(path, "community-health") == [(LOST, "姓名")]


def test_an_emergency_contact_name_an_export_lost_characters_of_is_a_problem(tmp_path: Path) -> None:
    export = json.loads(ELDER_PROFILES.read_text(encoding="utf-8"))
    export["data"] = export["data"][:1]
    export["data"][0]["emergencyContact"]["name"] = "李?"
    path = tmp_path / "老人档案.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    assert problems(path, "elderly-care") == [(LOST, "emergencyContact.name")]


def test_the_refusal_quotes_the_name_as_exported() -> None:
    with pytest.raises(MappingError) as refused:
        person_name("王?")
    assert (refused.value.message_id, refused.value.params) == (LOST, {"value": "王?"})


#: names in CJK ideographs (extension A, where 䶮 is, and the unified block), none of them the
#: characters of garbled text (锟斤拷, 烫烫烫), which are refused as mojibake
names = st.text(
    alphabet=st.characters(min_codepoint=0x3400, max_codepoint=0x9FFF, exclude_characters="锟斤拷烫"),
    min_size=1,
    max_size=6,
)


@given(names, st.sampled_from(["?", "\ufffd"]), st.integers(min_value=0, max_value=6))
def test_any_name_holding_a_lost_character_is_refused(name: str, lost: str, at: int) -> None:
    with pytest.raises(MappingError, match=LOST):
        person_name(name[:at] + lost + name[at:])


@given(names)
def test_a_name_without_a_lost_character_is_the_name(name: str) -> None:
    assert person_name(f" {name} ") == name
