"""An HIS resending a person's emergency contact, with a contact written over REST beside it,
leaves the person as it is: the contact keeps its place, so the Patient gets no new version per
ADT message.  On both databases."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Config
from gateway.ingest.pipeline import Ingest
from gateway.limits import reader_limits
from gateway.services import Services
from gateway.storage.store import Stored
from mappings.readers import read
from tests.conftest import MakeServices

#: an A08 of 张秀英 whose PID-13 names her son's number as the emergency number (EMR)
MESSAGE = (
    "MSH|^~\\&|HIS|H41010500012|YIYANG-GW|YYPT|20261115160244||ADT^A08^ADT_A01|{control}|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A08|20261115160240\r"
    "PID|1||0000123^^^H41010500012^PI~410105194912310020^^^^ID||张秀英||19491231|F|||"
    "河南省郑州市金水区经八路街道幸福社区3号楼^^郑州市^河南省^450008^CHN^H^^410105||"
    "13803710001^PRN^CP~13903710002^EMR^CP\r"
    "PV1|1|N\r"
)


def ingested(made: Services, folder: Path, control: str) -> str:
    """The reference of the Patient the A08 with this control id (MSH-10) landed as."""
    path = folder / f"{control}.hl7"
    path.write_text(MESSAGE.format(control=control), encoding="utf-8")
    pipeline = Ingest(made.store, made.validator, made.engine)
    [record] = read(path, "hl7v2", reader_limits(Config()))
    outcome = pipeline.process(record)
    pipeline.finish()
    [person] = [f"{kind}/{id_}" for kind, id_ in outcome.written if kind == "Patient"]
    return person


def current(made: Services, reference: str) -> Stored:
    kind, id_ = reference.split("/")
    with made.store.reading() as tx:
        stored = tx.resources.read(kind, id_)
    assert stored is not None
    return stored


def test_the_his_resending_its_emergency_contact_writes_no_new_version_of_the_person(
    make_services: MakeServices, tmp_path: Path
) -> None:
    made = make_services()
    person = ingested(made, tmp_path, "R0001")
    content = current(made, person).content
    daughter = {"name": {"text": "李娟"}, "telecom": [{"system": "phone", "value": "13703710003"}]}
    made.repository.update("Patient", content["id"], {**content, "contact": [*content["contact"], daughter]})
    before = current(made, person).version
    ingested(made, tmp_path, "R0002")
    assert current(made, person).version == before
