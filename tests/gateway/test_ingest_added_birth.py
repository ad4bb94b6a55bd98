"""An ingest adding a birth date to a Patient stored without one (possible under ``warn``) is
judged against what the archive holds of the person, as a REST write moving the birth date
is: a visit the archive holds dated before the birth the record brings quarantines the
record at its 出生日期, instead of landing a contradiction.  On both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.config import Config
from gateway.ingest.pipeline import Ingest, Outcome
from gateway.limits import reader_limits
from gateway.security.principal import Principal, acting
from gateway.services import Services
from mappings.readers import read
from tests.conftest import MakeServices, load_example
from tests.gateway.test_birth_date_moved import AT_HOME, HOME, person
from tests.ingest_output import personal_info_file

#: the 身份证号 of the first row of the shipped 个人基本信息表.csv (孙福春, born 1956-08-01)
ID_CARD = "410102195608016041"


def stored_without_birth_date(made: Services, **more: Any) -> None:
    """孙福春 as a REST client stored her under ``warn``: her 身份证号, no birth date."""
    patient = load_example("yy-patient/valid-zhang-xiuying.json")
    patient = {k: v for k, v in patient.items() if k != "birthDate"}
    patient["identifier"] = [{**patient["identifier"][0], "value": ID_CARD}]
    made.repository.update("Patient", "sun", {**patient, "id": "sun", **more})


def stored_visit(made: Services, start: str) -> None:
    encounter = {k: v for k, v in load_example("yy-encounter/valid-home-visit.json").items() if k != "id"}
    made.repository.create({**encounter, "subject": {"reference": "Patient/sun"}, "period": {"start": start}})


def ingested(made: Services, folder: Path) -> Outcome:
    """The first row of the 个人基本信息表, ingested into the archive."""
    pipeline = Ingest(made.store, made.validator, made.engine)
    [record] = read(personal_info_file(folder, "序号", "1"), "community-health", reader_limits(Config()))
    outcome = pipeline.process(record)
    pipeline.finish()
    return outcome


def cover_held_by_son(made: Services, start: str) -> str:
    """A cover of 孙福春 whose policy holder is her son, whom the elderly-care home does not
    serve: hidden from the home."""
    son = person("1975-06-01")
    made.repository.update("Patient", "son", {**son, "id": "son", "identifier": son["identifier"][:1]})
    cover = {k: v for k, v in load_example("yy-coverage/valid-employee-insurance.json").items() if k != "id"}
    cover |= {"policyHolder": {"reference": "Patient/son"}, "beneficiary": {"reference": "Patient/sun"}}
    return made.repository.create({**cover, "period": {"start": start}}).stored.reference


def reasons(outcome: Outcome) -> list[tuple[str, Any]]:
    return [(reason.message_id, reason.field) for reason in outcome.reasons]


def test_a_birth_date_added_after_a_stored_visit_quarantines_the_record(
    make_services: MakeServices, tmp_path: Path
) -> None:
    made = make_services("warn")
    stored_without_birth_date(made)
    stored_visit(made, "1950-03-01T09:30:00+08:00")
    assert reasons(ingested(made, tmp_path)) == [
        ("rule.birth-date-after-events", "个人基本信息表.csv row 2, column 出生日期")
    ]


def test_a_birth_date_added_after_a_record_the_sender_may_not_see_is_listed_for_the_staff(
    make_services: MakeServices, tmp_path: Path
) -> None:
    """Pushed by the elderly-care home that manages her, the record lands (the home is not
    told what others hold of her), and the contradiction is an identity conflict."""
    made = make_services("warn")
    stored_without_birth_date(made, **AT_HOME)
    hidden = cover_held_by_son(made, "1950-01-01")
    token = acting.set(HOME)
    try:
        ingested(made, tmp_path)
    finally:
        acting.reset(token)
    with made.store.reading() as tx:
        offered = [entry["offered"] for entry in tx.conflicts.entries() if entry["element"] == "birthDate"]
    assert offered == [hidden]


def test_a_birth_date_added_after_a_visit_the_sender_may_not_read_leaves_the_full_reason_to_the_auditors(
    make_services: MakeServices, tmp_path: Path
) -> None:
    """The sender, reading no visits, is told ``-unseen``; the exchange record failed the record
    for the reason the rule knew (it kept none, and called the file's exchange a pass)."""
    made = make_services("warn")
    stored_without_birth_date(made)
    stored_visit(made, "1950-03-01T09:30:00+08:00")
    token = acting.set(Principal("unreading-his", "test-org", frozenset({"system/*.cu"}), "operator"))
    try:
        told = [reason for reason, _ in reasons(ingested(made, tmp_path))]
    finally:
        acting.reset(token)
    with made.store.reading() as tx:
        kept = tx.sql.all("SELECT e.verdict, i.rule FROM exchange e JOIN exchange_issue i ON i.exchange_id = e.id")
    assert (told, [tuple(row) for row in kept if row[1].startswith("rule.")]) == (
        ["rule.birth-date-after-events-unseen"],
        [("fail", "rule.birth-date-after-events")],
    )


def test_a_birth_date_added_after_a_visit_the_sender_may_not_read_is_quarantined_with_the_full_reason(
    make_services: MakeServices, tmp_path: Path
) -> None:
    """The quarantine is the operators': its entry said ``-unseen`` ("an event the sender may not
    see"), which gave them nothing to fix; it says the full reason, and what the sender was told."""
    made = make_services("warn")
    stored_without_birth_date(made)
    stored_visit(made, "1950-03-01T09:30:00+08:00")
    token = acting.set(Principal("unreading-his", "test-org", frozenset({"system/*.cu"}), "operator"))
    try:
        ingested(made, tmp_path)
    finally:
        acting.reset(token)
    with made.store.reading() as tx:
        [entry] = tx.quarantine.entries()
    assert [(reason["id"], reason["told"]["id"]) for reason in entry["reasons"]] == [
        ("rule.birth-date-after-events", "rule.birth-date-after-events-unseen")
    ]
