"""An ADT message's PID is its sender's statement of the person as it now holds them (HL7 v2:
an A08 carries the current demographics, not a change): the phones and addresses it gives
replace those the same sender gave before, while another source's stay.  Which lists a record
states so is its spec's ``states`` (data, not a branch for A08).  On both databases."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Config
from gateway.ingest.pipeline import Ingest
from gateway.limits import reader_limits
from gateway.services import Services
from mappings.readers import read
from tests.conftest import MakeServices

HOME = "河南省郑州市金水区经八路街道幸福社区3号楼^^郑州市^河南省^450008^CHN^H^^410105"
MOVED = "河南省郑州市金水区花园路88号^^郑州市^河南省^450003^CHN^H^^410105"
#: an ADT of the person of 身份证号 410105194912310020 from ``sender`` (MSH-3), with her
#: addresses (PID-11) and phones (PID-13)
MESSAGE = (
    "MSH|^~\\&|{sender}|H41010500012|YIYANG-GW|YYPT|{time}||ADT^{event}^ADT_A01|{control}|P|2.5|||||CHN|UNICODE UTF-8\r"
    "EVN|{event}|{time}\r"
    "PID|1||410105194912310020^^^^ID||张秀英||19491231|F|||{address}||{phone}^PRN^CP\r"
    "{visit}\r"
)
#: the PV1 of an admission (A01): the stay it opens
ADMISSION = (
    "PV1|1|I|LNYXK^0312^02^H41010500012||||D0417^李红梅|||LNYXK^老年医学科|||||||||ZY20261102003^^^H41010500012^VN"
    "|||||||||||||||||||||||||20261102091500|"
)


def ingested(made: Services, folder: Path, control: str, phone: str, **given: str) -> None:
    """One ADT (an A08 of the HIS unless ``given`` says otherwise), sent in its turn."""
    time = f"202611{10 + int(control[1:]):02d}090000"
    words = {"sender": "HIS", "event": "A08", "address": HOME, "time": time, "visit": "PV1|1|N"}
    text = MESSAGE.format(control=control, phone=phone, **(words | given))
    path = folder / f"{control}.hl7"
    path.write_text(text, encoding="utf-8")
    pipeline = Ingest(made.store, made.validator, made.engine)
    [record] = read(path, "hl7v2", reader_limits(Config()))
    outcome = pipeline.process(record)
    pipeline.finish()
    assert outcome.status in ("mapped", "unchanged"), outcome.reasons


def stored(made: Services, key: str) -> list[str]:
    """The values of the person's ``telecom`` or the texts of their ``address``."""
    with made.store.reading() as tx:
        rows = tx.sql.all("SELECT id FROM resource WHERE type = 'Patient'")
        [(person_id,)] = [tuple(row) for row in rows]
        content = tx.resources.read("Patient", person_id).content
    return [item.get("value") or item.get("text") for item in content.get(key, [])]


def test_a_changed_phone_replaces_the_one_its_sender_gave(make_services: MakeServices, tmp_path: Path) -> None:
    made = make_services()
    ingested(made, tmp_path, "U1", "13803710001")
    ingested(made, tmp_path, "U2", "13903710002")
    assert stored(made, "telecom") == ["13903710002"]


def test_a_changed_phone_leaves_another_senders_phone(make_services: MakeServices, tmp_path: Path) -> None:
    made = make_services()
    ingested(made, tmp_path, "U1", "13603710009", sender="LIS")
    ingested(made, tmp_path, "U2", "13803710001")
    ingested(made, tmp_path, "U3", "13903710002")
    assert stored(made, "telecom") == ["13603710009", "13903710002"]


def test_a_phone_two_senders_gave_stays_when_one_changes_it(make_services: MakeServices, tmp_path: Path) -> None:
    made = make_services()
    ingested(made, tmp_path, "U1", "13803710001", sender="LIS")
    ingested(made, tmp_path, "U2", "13803710001")
    ingested(made, tmp_path, "U3", "13903710002")
    assert stored(made, "telecom") == ["13803710001", "13903710002"]


def test_an_a08_replaces_the_phone_an_admission_gave(make_services: MakeServices, tmp_path: Path) -> None:
    made = make_services()
    ingested(made, tmp_path, "U1", "13803710001", event="A01", visit=ADMISSION)
    ingested(made, tmp_path, "U2", "13903710002")
    assert stored(made, "telecom") == ["13903710002"]


def test_a_changed_address_replaces_the_one_its_sender_gave(make_services: MakeServices, tmp_path: Path) -> None:
    made = make_services()
    ingested(made, tmp_path, "U1", "13803710001")
    ingested(made, tmp_path, "U2", "13803710001", address=MOVED)
    assert stored(made, "address") == ["河南省郑州市金水区花园路88号"]
