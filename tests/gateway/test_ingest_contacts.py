"""An HIS resending a person's emergency contact, with a contact written over REST beside it,
leaves the person as it is: the contact keeps its place, so the Patient gets no new version per
ADT message.  On both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.config import Config
from gateway.ingest.pipeline import Ingest
from gateway.limits import reader_limits
from gateway.services import Services
from gateway.storage.store import Stored
from mappings.readers import read
from tests.conftest import MakeServices

#: an A08 of 张秀英 whose PID-13 names her son's number as the emergency number (EMR)
MESSAGE = (
    "MSH|^~\\&|HIS|{hospital}|YIYANG-GW|YYPT|20261115160244||ADT^A08^ADT_A01|{control}|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|A08|20261115160240\r"
    "PID|1||{his_number}410105194912310020^^^^ID||张秀英||19491231|F|||"
    "河南省郑州市金水区经八路街道幸福社区3号楼^^郑州市^河南省^450008^CHN^H^^410105||"
    "13803710001^PRN^CP~{emergency}^EMR^CP\r"
    "PV1|1|N\r"
)


HOSPITAL = "H41010500012"


def ingested(
    made: Services, folder: Path, control: str, hospital: str = HOSPITAL, emergency: str = "13903710002"
) -> str:
    """The reference of the Patient the A08 with this control id (MSH-10) landed as, sent by the
    HIS of ``hospital`` (MSH-4; another hospital's carries no HIS 患者ID of the first)."""
    path = folder / f"{control}.hl7"
    his_number = "0000123^^^H41010500012^PI~" if hospital == HOSPITAL else ""
    message = MESSAGE.format(control=control, hospital=hospital, his_number=his_number, emergency=emergency)
    path.write_text(message, encoding="utf-8")
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


def sent_by(**value: Any) -> dict[str, Any]:
    """A yy-ext-contact-source mark with its value (``valueCode=…`` or ``valueIdentifier=…``)."""
    return {"url": "http://fhir.yiyang.cn/StructureDefinition/yy-ext-contact-source", **value}


def his(hospital: str) -> dict[str, Any]:
    """The mark of a contact the HIS of ``hospital`` sent (MSH-3^MSH-4)."""
    system = "http://fhir.yiyang.cn/sid/sending-system/hl7v2"
    return sent_by(valueIdentifier={"system": system, "value": f"HIS^{hospital}"})


def test_a_contact_marked_with_its_kind_alone_becomes_the_named_hospital_s_another_s_beside_it(
    make_services: MakeServices, tmp_path: Path
) -> None:
    """A Patient stored under yy-ext-contact-source 0.1.0 marks the HIS's emergency contact with
    the kind hl7v2 alone (a REST write of that shape is still valid).  The hospital, naming itself
    in MSH-3 and MSH-4, sends him again: he stays, its own now; a second hospital's emergency
    contact then stands beside him, where it used to replace him."""
    made = make_services()
    person = ingested(made, tmp_path, "R0001")
    content = current(made, person).content
    old = [{**contact, "extension": [sent_by(valueCode="hl7v2")]} for contact in content["contact"]]
    made.repository.update("Patient", content["id"], {**content, "contact": old})
    ingested(made, tmp_path, "R0002")
    ingested(made, tmp_path, "R0003", hospital="H41010200034", emergency="13703710003")
    contacts = current(made, person).content["contact"]
    assert [(c["telecom"][0]["value"], c["extension"]) for c in contacts] == [
        ("13903710002", [his(HOSPITAL)]),
        ("13703710003", [his("H41010200034")]),
    ]
