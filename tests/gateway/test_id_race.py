"""A PUT creating an id and an ingest creating the same id, side by side on PostgreSQL.  The
ingest takes no lock of an id it creates (its ids come from a file's name and row), so each
writer finds the id free, and the one inserting second is refused by the version key once the
first commits.  The loser is run again and finds the winner's resource: the PUT updates it,
and the ingest's record resolves its person anew (another person holding the id it proposed,
its person lands at the next id).  Each race pauses the first writer before its commit, on a
real database."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Config
from gateway.ingest.pipeline import Ingest, Outcome
from gateway.limits import reader_limits
from gateway.services import Services
from gateway.storage.store import Transaction
from mappings.readers import read
from tests.conftest import MakeServices
from tests.gateway.test_birth_date_race import Pause, blocked_or_done
from tests.ingest_output import personal_info_file

ID_CARD_SYSTEM, ID_CARD = "urn:oid:2.16.156.10011.1.3", "410102195608016041"
#: another 身份证号 of someone born the same day as the ingested row's 孙福春 (410102195608016041)
OTHER_ID_CARD = "410102195608017028"


def record_ingest(made: Services, folder: Path) -> tuple[Ingest, Any]:
    """An ingest of the first row of the 个人基本信息表, and that record."""
    [record] = read(personal_info_file(folder, "序号", "1"), "community-health", reader_limits(Config()))
    return Ingest(made.store, made.validator, made.engine), record


def patient_of(outcome: Outcome) -> dict[str, Any]:
    return next(resource for resource in outcome.resources if resource["resourceType"] == "Patient")


def someone_else_at(made: Services, record: Any) -> tuple[str, dict[str, Any]]:
    """The id the record's person is proposed (the archive empty), and another person's
    Patient at that id."""
    with made.store.reading() as tx:
        proposed = patient_of(Ingest(made.store, made.validator, made.engine).evaluate(tx, record))
    return proposed["id"], {**proposed, "identifier": [{**proposed["identifier"][0], "value": OTHER_ID_CARD}]}


def outcome_of(write: Callable[[], Any]) -> Any:
    """What the write returned, or the error it ended with."""
    try:
        return write()
    except Exception as error:  # noqa: BLE001 - what the test looks for
        return error


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_put_creating_an_id_an_uncommitted_ingest_created_updates_it(
    make_services: MakeServices, tmp_path: Path
) -> None:
    """The ingest has written its person and not committed; the PUT of someone else at that id
    finds no row, inserts, waits for the ingest, and was refused by the key (a 503): run
    again, it updates the Patient the ingest made, as it would have right after."""
    made = make_services()
    pipeline, record = record_ingest(made, tmp_path)
    resource_id, someone = someone_else_at(made, record)
    assert patient_of(pipeline.process(record))["id"] == resource_id
    holding = Pause("ingest")
    holding.backend = pipeline._transaction().sql.one("SELECT pg_backend_pid()")[0]
    results: dict[str, Any] = {}
    put = threading.Thread(
        target=lambda: results.update(put=outcome_of(lambda: made.repository.update("Patient", resource_id, someone)))
    )
    put.start()
    blocked_or_done(made.store.url, holding, put)
    pipeline.finish()
    put.join(30)
    assert getattr(results["put"], "status", results["put"]) == 200


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_ingest_creating_an_id_an_uncommitted_put_created_lands_its_person_at_another(
    make_services: MakeServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone else's Patient is PUT at the id the record proposes, its rows sent and not
    committed; the ingest finds the id free, inserts, waits, and was refused by the key (its
    whole run stopped): its record, run again, finds the id taken and lands its person at the
    next one."""
    made = make_services()
    pipeline, record = record_ingest(made, tmp_path)
    resource_id, someone = someone_else_at(made, record)
    pause, atomically = Pause("put"), made.store.atomically

    def held_before_commit(work: Callable[[Transaction], Any]) -> Any:
        def worked(tx: Transaction) -> Any:
            done = work(tx)
            pause.hold(tx)  # a statement sends the rows waiting before it: they are in, uncommitted
            return done

        return atomically(worked)

    monkeypatch.setattr(made.store, "atomically", held_before_commit)
    results: dict[str, Any] = {}
    put = threading.Thread(
        target=lambda: results.update(put=outcome_of(lambda: made.repository.update("Patient", resource_id, someone))),
        name="put",
    )
    put.start()
    assert pause.reached.wait(30)

    def ingesting() -> None:
        results["ingest"] = outcome_of(lambda: pipeline.process(record))
        pipeline.finish()  # in the thread that began its transaction

    ingest = threading.Thread(target=ingesting)
    ingest.start()
    blocked_or_done(made.store.url, pause, ingest)
    pause.release()
    put.join(30)
    ingest.join(30)
    with made.store.reading() as tx:
        holders = tx.resources.holding_identifier("Patient", ID_CARD_SYSTEM, ID_CARD)
    assert len(holders) == 1 and resource_id not in holders
