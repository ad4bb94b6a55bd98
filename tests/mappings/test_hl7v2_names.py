"""PID-5 is an HL7 v2 XPN: component 1 the family name, 2 the given name.  A sender that splits
the name gives family and given beside the whole name; a sender that puts the whole name in
PID-5.1 keeps today's name.text alone, with no 复姓 guessed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ingest_output import mapped_resources

MESSAGE = (
    "MSH|^~\\&|HIS|H41010500012|YIYANG-GW|YYPT|20261103080001||ADT^A04^ADT_A01|N0001|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A04|20261103080500\r"
    "PID|1||9000001^^^H41010500012^PI~410102194503083032^^^^ID||{name}||19450308|M\r"
    "PV1|1|O|LNBMZ^^^H41010500012|||||||||||||||||MZ00000001^^^H41010500012^VN"
    "|||||||||||||||||||||||||20261103080500\r"
)


def mapped_patient(tmp_path: Path, name: str) -> dict[str, Any]:
    path = tmp_path / "adt.hl7"
    path.write_text(MESSAGE.format(name=name), encoding="utf-8")
    return mapped_resources(path, "hl7v2")[0]["patient"]


def test_a_name_sent_as_family_and_given_keeps_both_parts_and_the_whole(tmp_path: Path) -> None:
    assert mapped_patient(tmp_path, "王^建国")["name"] == [{"text": "王建国", "family": "王", "given": ["建国"]}]


def test_a_whole_name_in_pid_5_1_stays_whole_in_text_alone(tmp_path: Path) -> None:
    assert mapped_patient(tmp_path, "欧阳建国")["name"] == [{"text": "欧阳建国"}]


def test_a_split_compound_surname_is_the_family_name_the_sender_gives(tmp_path: Path) -> None:
    assert mapped_patient(tmp_path, "欧阳^建国")["name"] == [{"text": "欧阳建国", "family": "欧阳", "given": ["建国"]}]
