"""The AuditEvent of a ``$ingest`` names what landed: the resources of the batches it
committed, even when the store failed a later batch and the request answered 503."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bench.legacy_samples import rows, write
from tests.conftest import BACKENDS, TEST_CLIENT, Api, add_client, fresh_database_url, running_server
from tests.gateway.test_audit import audit_events

#: the name of the person whose Patient the store refuses to insert
DOOMED = "故障注入"
#: the record that carries it: in the second batch of the run (an ingest commits every 200)
DOOMED_ROW = 220


def fail_inserting(url: str) -> None:
    """Make the database itself refuse the insert of any resource naming :data:`DOOMED`, as a
    lock timeout or a full disk refuses a write: an error of the driver, raised in the batch."""
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            connection.execute(
                f"CREATE TRIGGER doomed BEFORE INSERT ON resource WHEN NEW.content LIKE '%{DOOMED}%'"
                " BEGIN SELECT RAISE(ABORT, 'injected store failure'); END"
            )
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "CREATE FUNCTION doomed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            f" IF NEW.content::text LIKE '%{DOOMED}%' THEN"
            " RAISE EXCEPTION 'injected store failure' USING ERRCODE = '55P03'; END IF;"
            " RETURN NEW; END $$"
        )
        connection.execute("CREATE TRIGGER doomed BEFORE INSERT ON resource FOR EACH ROW EXECUTE FUNCTION doomed()")


@pytest.fixture(scope="module", params=BACKENDS)
def failing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, client_key: Any
) -> Iterator[tuple[Api, dict[str, Any]]]:
    """A server whose store fails the second batch of an ingest, the answer of that ingest
    and a session to the server."""
    with fresh_database_url(request.param, tmp_path_factory.mktemp("server")) as url:
        add_client(url, TEST_CLIENT, key=client_key)  # migrates the store: the table is there
        fail_inserting(url)
        csv = tmp_path_factory.mktemp("export") / "个人基本信息表.csv"
        people = [dict(row, 姓名=DOOMED) if row["序号"] == str(DOOMED_ROW) else row for row in rows(DOOMED_ROW + 5)]
        write(csv, iter(people))
        with running_server(url) as base, Api(base, TEST_CLIENT, client_key) as api:
            answer = api.post(
                f"{base}/$ingest?source=community-health&filename=个人基本信息表.csv",
                data=csv.read_bytes(),
                headers={"Content-Type": "text/csv"},
                timeout=300,
            )
            assert answer.status_code == 503, answer.text
            yield api, people[0]


def patient_of(api: Api, person: dict[str, Any]) -> str:
    """The reference of the Patient the store holds for a row of the export."""
    found = api.get(f"{api.base}/Patient?identifier={person['身份证号']}", timeout=60).json()
    return f"Patient/{found['entry'][0]['resource']['id']}"


def test_a_failed_ingest_is_found_by_a_resource_its_committed_batch_wrote(failing: tuple[Api, dict[str, Any]]) -> None:
    api, first = failing
    events = audit_events(api, f"entity={patient_of(api, first)}")
    assert "$ingest" in [s["code"] for e in events for s in e.get("subtype", [])]


def test_a_failed_ingest_names_no_resource_of_the_batch_rolled_back(failing: tuple[Api, dict[str, Any]]) -> None:
    """Its Patients are those the store holds: the 200 of the committed batch, not the 19 more
    the failed batch had written before it was rolled back."""
    api, first = failing
    event = audit_events(api, f"entity={patient_of(api, first)}")[0]
    named = [e["what"]["reference"] for e in event["entity"] if e["what"]["reference"].startswith("Patient/")]
    stored = api.get(f"{api.base}/Patient?_summary=count", timeout=60).json()["total"]
    assert len(named) == stored
