"""An ADT^A08 (update patient information) is the HIS's statement of the person as it now holds
them: its corrected name and marital status replace the archive's, in a new version of the same
Patient, where they were kept as first recorded and listed as disagreements.  The same message
again changes nothing.  On both databases."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Config
from gateway.ingest.identity import updated
from gateway.ingest.pipeline import Ingest, Outcome
from gateway.limits import reader_limits
from gateway.services import Services
from mappings.readers import read
from tests.conftest import MakeServices

#: an A08 of the person of 身份证号 410105194912310020, with her name and marital status (PID-16)
MESSAGE = (
    "MSH|^~\\&|HIS|H41010500012|YIYANG-GW|YYPT|{time}||ADT^A08^ADT_A01|{control}|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A08|{time}\r"
    "PID|1||410105194912310020^^^^ID||{name}||19491231|F||||||||{marital}\r"
)


def ingested(made: Services, folder: Path, control: str, name: str, marital: str, time: str) -> Outcome:
    """The outcome of one A08, sent with control id (MSH-10) ``control`` at ``time``."""
    path = folder / f"{control}.hl7"
    path.write_text(MESSAGE.format(control=control, name=name, marital=marital, time=time), encoding="utf-8")
    pipeline = Ingest(made.store, made.validator, made.engine)
    [record] = read(path, "hl7v2", reader_limits(Config()))
    outcome = pipeline.process(record)
    pipeline.finish()
    return outcome


def person(made: Services, outcome: Outcome) -> tuple[str, int, str, str]:
    """(id, version, name, marital status: its GB/T 2261.2 code, 30 for W 丧偶) of the Patient the outcome wrote."""
    [patient_id] = [id_ for kind, id_ in outcome.written if kind == "Patient"]
    with made.store.reading() as tx:
        stored = tx.resources.read("Patient", patient_id)
    assert stored is not None and stored.resource is not None
    content = stored.content
    marital = content["maritalStatus"]["coding"][0]["code"]
    return patient_id, stored.version, content["name"][0]["text"], marital


def test_an_a08_replaces_the_name_and_marital_status_in_a_new_version_of_the_person(
    make_services: MakeServices, tmp_path: Path
) -> None:
    made = make_services()
    first = ingested(made, tmp_path, "U1", "张秀英", "M", "20261115160244")
    second = ingested(made, tmp_path, "U2", "张秀瑛", "W", "20261120090000")
    first_id = person(made, first)[0]
    assert person(made, second) == (first_id, 2, "张秀瑛", "30")


def test_an_a08_sent_again_leaves_the_updated_person_as_it_is(make_services: MakeServices, tmp_path: Path) -> None:
    made = make_services()
    ingested(made, tmp_path, "U1", "张秀英", "M", "20261115160244")
    update = ingested(made, tmp_path, "U2", "张秀瑛", "W", "20261120090000")
    again = ingested(made, tmp_path, "U2", "张秀瑛", "W", "20261120090000")
    assert (again.status, person(made, update)[1:]) == ("unchanged", (2, "张秀瑛", "30"))


def test_an_older_a08_arriving_after_a_newer_one_does_not_undo_it(make_services: MakeServices, tmp_path: Path) -> None:
    """An A08 of 15 November replayed from the quarantine after the one of 20 November landed (its
    event time, EVN-2, is the earlier): applied in its turn, it put back the name corrected since."""
    made = make_services()
    ingested(made, tmp_path, "U0", "张秀英", "M", "20261101080000")
    newer = ingested(made, tmp_path, "U2", "张秀瑛", "W", "20261120090000")
    ingested(made, tmp_path, "U1", "张秀英", "M", "20261115160244")
    assert person(made, newer)[2:] == ("张秀瑛", "30")


def test_an_update_saying_the_archived_name_as_text_alone_keeps_its_parts() -> None:
    """Only what the A08 corrects is replaced: the name 张秀英 the archive holds in parts (a CDA
    document's family and given) is the name the A08 sends as text, and stays as archived (replaced whole, it lost its parts)."""
    archived = {"resourceType": "Patient", "id": "x", "name": [{"text": "张秀英", "family": "张", "given": ["秀英"]}]}
    incoming = {"resourceType": "Patient", "name": [{"text": "张秀英"}], "gender": "female"}
    assert updated(dict(archived), incoming, frozenset())["name"] == archived["name"]
