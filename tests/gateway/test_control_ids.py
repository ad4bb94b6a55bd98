"""An HL7 message's control id (MSH-10) is unique only within its sending application (MSH-3),
and an application whose counter restarts uses it again: a message of another patient under a
control id seen before is another record, which neither takes over the first one's resources nor
resolves its quarantine entry."""

from __future__ import annotations

from pathlib import Path

from gateway.export import RESOLVED_FILE
from gateway.ingest import commands
from profiles.registry import Registry
from tests.ingest_output import ndjson

ROOT = Path(__file__).resolve().parents[2]
#: 张秀英's admission of 2 November, its IN1-12 left out (the Coverages keep per-message ids)
ADMISSION = (
    ROOT.joinpath("mappings/samples/hl7v2/adt.hl7")
    .read_text(encoding="utf-8")
    .split("\nMSH")[0]
    .replace("|20040701|", "||")
    .replace("|20240101|", "||")
)
#: 王建国 admitted on 1 December under the same MSH-4 and MSH-10, the counter having restarted
OTHER = {
    "0000123^^^H41010500012^PI~410105194912310020^^^^ID||张秀英||19491231|F": (
        "0000456^^^H41010500012^PI~410102194503080018^^^^ID||王建国||19450308|M"
    ),
    "|20261102091502|": "|20261201091502|",
    "ZY20261102003": "ZY20261201001",
    "20261102091500": "20261201091500",
    "41000000000000012345": "41000000000000067890",
}


def other_admission(first: str) -> str:
    for old, new in OTHER.items():
        first = first.replace(old, new)
    return first


def ingested(folder: Path, *messages: str) -> Path:
    """Each message ingested on its own, as an MLLP listener takes them, into one archive."""
    for number, text in enumerate(messages):
        (folder / f"{number}.hl7").write_text(text + "\n", encoding="utf-8")
        commands.ingest("hl7v2", [folder / f"{number}.hl7"], folder / "out", Registry())
    return folder / "out"


def test_another_patients_admission_under_a_reused_control_id_leaves_the_first_ones_coverages(
    tmp_path: Path,
) -> None:
    out = ingested(tmp_path, ADMISSION, other_admission(ADMISSION))
    zhang = next(p["id"] for p in ndjson(out / "Patient.ndjson") if p["name"][0]["text"] == "张秀英")
    covers = [c for c in ndjson(out / "Coverage.ndjson") if c["beneficiary"]["reference"] == f"Patient/{zhang}"]
    assert len(covers) == 2


def test_another_patients_admission_under_a_reused_control_id_leaves_the_first_ones_quarantine_open(
    tmp_path: Path,
) -> None:
    refused = ADMISSION.replace("410105194912310020^^^^ID", "410105194912310021^^^^ID")  # its check digit
    out = ingested(tmp_path, refused, other_admission(ADMISSION))
    assert (len(ndjson(out / "quarantine.ndjson")), ndjson(out / RESOLVED_FILE)) == (1, [])
