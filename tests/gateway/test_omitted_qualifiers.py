"""An ADT message whose second phone is an answering service's (XTN.2 ASN) and whose address is a
mailing address (XAD.7 M) was quarantined whole once every PID-11/13 repetition was mapped with
its use: FHIR has no Address.use or ContactPoint.use for either.  An optional qualifier must not
sink the admission: the Patient and the Encounter land, the mailing address as Address.type
postal, and the answering-service use left out is told to the sender as a warning (an AA with a
W ERR) and kept in the exchange record with the ConceptMap's reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.validator import Validator
from gateway.config import Config
from gateway.fhir.operations import _record_part
from gateway.ingest import commands
from gateway.ingest.pipeline import Counts, Ingest
from gateway.mllp import Answer, Peer, acknowledge
from gateway.security.principal import Principal
from gateway.services import Services
from gateway.storage.store import Store
from mappings.readers.hl7v2 import read_message
from profiles.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
HOME_PHONE = "13803710001^PRN^CP"
HOME_ADDRESS = "河南省郑州市金水区经八路街道幸福社区3号楼^^郑州市^河南省^450008^CHN^H^^410105"
MAILING = "郑州市邮政局第18号信箱^^郑州市^河南省^450000^CHN^M"


def admission() -> bytes:
    """The sample ADT^A01 with an answering service's landline after the mobile and a mailing address."""
    data = (ROOT / "mappings/samples/hl7v2/adt.hl7").read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    message = b"MSH" + data.split(b"MSH")[1]
    message = message.replace(HOME_PHONE.encode(), f"{HOME_PHONE}~0371-65551234^ASN^PH".encode())
    return message.replace(HOME_ADDRESS.encode(), f"{HOME_ADDRESS}~{MAILING}".encode())


@pytest.fixture
def answered(store: Store, database_url: str, validator: Validator) -> tuple[Answer, Store]:
    services = Services(Config.load(database_url=database_url), registry=validator.registry)
    services.__dict__.update(store=store, validator=validator)
    engine = Principal("his-engine", "zhengzhou-first-hospital", frozenset({"system/*.cruds"}), "operator")
    return acknowledge(services, admission(), Peer("127.0.0.1", engine)), store


def warnings(answer: Answer) -> list[list[str]]:
    segments = answer.ack.decode("utf-8").split("\r")
    return [s.split("|") for s in segments if s.startswith("ERR") and s.split("|")[4] == "W"]


def test_the_admission_is_acknowledged_aa(answered: tuple[Answer, Store]) -> None:
    assert answered[0].code == "AA"


def test_the_patient_and_the_encounter_land(answered: tuple[Answer, Store]) -> None:
    assert sorted({kind for kind, _ in answered[0].written} & {"Patient", "Encounter"}) == ["Encounter", "Patient"]


def test_the_mailing_address_lands_as_a_postal_address(answered: tuple[Answer, Store]) -> None:
    [patient] = [resource_id for kind, resource_id in answered[0].written if kind == "Patient"]
    with answered[1].reading() as tx:
        stored = tx.resources.read("Patient", patient)
    assert stored is not None
    assert [a.get("type") for a in stored.content["address"]] == [None, "postal"]


def test_the_ack_warns_of_the_answering_service_use_left_out_at_its_field(answered: tuple[Answer, Store]) -> None:
    assert [(err[2], err[3]) for err in warnings(answered[0])] == [
        ("PID^1^13^2^2", "103^Table value not found^HL70357")
    ]


def test_an_ae_lists_the_codes_left_out_as_warnings_after_its_errors(
    store: Store, database_url: str, validator: Validator
) -> None:
    """A sender fixing the errors of an AE hears of the qualifiers left out now (HL7 v2.5 allows
    ERR-4 W beside E), not only once the corrected message lands."""
    services = Services(Config.load(database_url=database_url), registry=validator.registry)
    services.__dict__.update(store=store, validator=validator)
    engine = Principal("his-engine", "zhengzhou-first-hospital", frozenset({"system/*.cruds"}), "operator")
    broken = admission().replace(b"410105194912310020", b"410105194912310021")
    answer = acknowledge(services, broken, Peer("127.0.0.1", engine))
    errors = [s.split("|") for s in answer.ack.decode("utf-8").split("\r") if s.startswith("ERR")]
    assert (answer.code, [(err[4], err[2]) for err in errors]) == ("AE", [("E", "PID^1^3^2^1"), ("W", "PID^1^13^2^2")])


def test_the_exchange_record_keeps_the_warning(answered: tuple[Answer, Store]) -> None:
    with answered[1].reading() as tx:
        rows = tx.sql.all("SELECT severity, location FROM exchange_issue WHERE rule = 'mapping.unmatched-omitted'")
    assert [(row[0], row[1].rpartition(" ")[2]) for row in rows] == [("warning", "PID-13~2.2")]


def test_yiyang_ingest_counts_the_admission_as_landed_with_a_qualifier_left_out(tmp_path: Path) -> None:
    path = tmp_path / "adt.hl7"
    path.write_bytes(admission())
    counts = commands.ingest("hl7v2", [path], tmp_path / "out", Registry())
    assert (counts.read, counts.mapped, counts.quarantined, counts.omitted) == (1, 1, 0, 1)


def test_the_ingest_summary_says_a_record_landed_with_a_qualifier_left_out() -> None:
    assert "1 of them landed without an optional qualifier" in commands.summary(Counts(omitted=1), "en")


def test_an_ingest_operation_s_record_lists_the_code_left_out_as_a_warning(
    store: Store, database_url: str, validator: Validator
) -> None:
    services = Services(Config.load(database_url=database_url), registry=validator.registry)
    services.__dict__.update(store=store, validator=validator)
    pipeline = Ingest(services.store, services.validator, services.engine)
    outcome = pipeline.process(read_message(admission(), "hl7v2", "adt.hl7"))
    pipeline.finish()
    [found] = [p["resource"] for p in _record_part(outcome, "en") if p["name"] == "outcome"]
    assert [(i["severity"], i["location"][0].rpartition(" ")[2]) for i in found["issue"]] == [("warning", "PID-13~2.2")]
