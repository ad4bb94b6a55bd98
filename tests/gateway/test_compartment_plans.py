"""How the compartment's statements are planned on PostgreSQL, which prepares each once for any
values (``postgres._configure``): a person's ``$everything`` and a Patient export must read
that person's rows, not the archive's."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from gateway.match_keys import match_keys
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.storage.dialect import POSTGRES
from gateway.storage.resources import Referrers, _referrer_keys, now_instant
from gateway.storage.store import Store
from profiles.registry import Registry
from tests.gateway.test_access import generic_plan, rows_read
from tests.gateway.test_access_by_identifier import ID_CARD, ZHANG, by_number

#: other people, each named by 身份证号 alone in a reading: enough that reading all such rows
#: costs the planner more than looking up one person's keys
OTHERS_NAMED_BY_NUMBER = 40_000


ZHANG_XIUYING = {"resourceType": "Patient", "id": "zhang", "identifier": [{"system": ID_CARD, "value": ZHANG}]}
#: a hospital's reading naming her by 身份证号 alone
READING = {"resourceType": "Observation", "id": "hers", "status": "final", "code": {"text": "心率"}}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_persons_records_by_number_are_found_from_their_keys_in_any_plan(store: Store) -> None:
    """The records naming 张秀英 by number are looked up by her keys in the value index, type
    by type.  The types were one listed parameter, which a plan for any values guesses at 100
    rows: PostgreSQL read every ``_person`` row of the archive instead (48,000 rows, 14 ms of
    a 17 ms ``$everything`` on 1,000 people)."""
    with store.transaction() as tx:
        tx.identity.link("zhang", match_keys(ZHANG_XIUYING))
        tx.resources.write(ZHANG_XIUYING)
        tx.resources.write({**READING, "subject": by_number(ZHANG)})
        tx.sql.execute(  # other people, each known by two numbers, each named by one reading
            "INSERT INTO person_key (key, person_id) SELECT k || n, 'p' || n FROM generate_series(1, ?) n, "
            "(VALUES ('idcard|'), ('record|')) keys (k)",
            [OTHERS_NAMED_BY_NUMBER],
        )
        tx.sql.execute(
            "INSERT INTO search_index (type, id, name, system, value) SELECT 'Observation', 'o' || n, ?, "
            "'subject', 'idcard|' || n FROM generate_series(1, ?) n",
            [IDENTIFIED_PEOPLE, OTHERS_NAMED_BY_NUMBER],
        )
    wanted = Referrers("Patient", "zhang", Registry().patient_compartment, identified=IDENTIFIED_PEOPLE)
    sql, params = _referrer_keys(wanted) or ("", [])
    assert rows_read(generic_plan(store, sql, params)) < 1_000


#: a province's readings, each of its own person, and a Group of some of them
READINGS = 20_000
GROUP = [f"p{n}" for n in range(1, 1_001)]
#: the compartment's parameters of the records whose Provenances a Group export holds
TARGETED = {
    kind: names for kind, names in Registry().patient_compartment.items() if kind not in ("Patient", "Provenance")
}
PROVENANCE = {
    "resourceType": "Provenance",
    "recorded": "2026-12-07T08:00:00+08:00",
    "agent": [{"who": {"display": "护士"}}],
}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_provenances_of_a_groups_records_changed_since_are_found_from_what_changed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Provenances changed since a Group's last export that target its people's records
    (``Resources.referring_into``) are found from those that changed, each target's own
    index rows telling whose record it is, the people looked up in Python.  Asked inside
    the statement (``c.value IN`` the people), each target's owner was matched against the
    whole list (19,960 rows read here for 20 Provenances; 276 ms against 35 ms to find 200
    among 500 changed, for a Group of 1,000 among 5,000 people)."""
    with store.transaction() as tx:
        tx.sql.execute(
            "INSERT INTO search_index (type, id, name, system, value) SELECT 'Observation', 'o' || n, "
            "'subject', 'Patient', 'p' || n FROM generate_series(1, ?) n",
            [READINGS],
        )
        tx.sql.execute(  # each reading's Provenance, written before the Group's last export
            "INSERT INTO resource (type, id, version, last_updated, deleted, content, method) SELECT 'Provenance', "
            "'old' || n, 1, '2026-01-01T00:00:00.000000Z', false, '{}', 'PUT' FROM generate_series(1, ?) n",
            [READINGS],
        )
        tx.sql.execute(
            "INSERT INTO search_index (type, id, name, system, value) SELECT 'Provenance', 'old' || n, "
            "'target', 'Observation', 'o' || n FROM generate_series(1, ?) n",
            [READINGS],
        )
    since = now_instant()
    with store.transaction() as tx:
        for n in range(991, 1_011):  # of the last ten members, and of ten others
            tx.resources.write({**PROVENANCE, "id": f"v{n}", "target": [{"reference": f"Observation/o{n}"}]})
    streamed: list[tuple[str, list[Any]]] = []
    with store.transaction() as tx:
        stream = tx.sql.stream

        def noted(sql: str, params: Sequence[Any] = (), size: int = 500) -> Iterator[Sequence[Any]]:
            """The store's own stream, its statement noted."""
            streamed.append((sql, list(params)))
            return stream(sql, params, size)

        monkeypatch.setattr(tx.sql, "stream", noted)
        list(tx.resources.referring_into("Provenance", ["target"], TARGETED, GROUP, since))
    assert rows_read(streamed_plan(store, *streamed[0])) < 1_000


def streamed_plan(store: Store, sql: str, params: list[Any]) -> dict[str, Any]:
    """The executed plan (EXPLAIN ANALYZE, JSON) of a statement as ``Executor.stream`` runs
    it on PostgreSQL, after an ANALYZE of its tables: a server-side cursor's, which is
    planned for its values (a ``DECLARE`` is planned anew each time, never for any values)."""
    with store.transaction() as tx:
        connection = tx.sql.connection  # type: ignore[attr-defined]
        connection.execute("ANALYZE resource, search_index, person_key", prepare=False)
        explained = connection.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {POSTGRES.sql(sql)}", params, prepare=False)
        return json.loads(explained.fetchone()[0])[0]["Plan"]  # type: ignore[no-any-return]


#: stays at one hospital, each of its own person: the Organization every one of them names
STAYS = 20_000
#: the people of a Group export, two of the hospital's patients
TWO = ["p1", "p2"]


def hospital_stays(store: Store) -> None:
    """:data:`STAYS` Encounters naming the hospital ``o1``, each of its own person."""
    with store.transaction() as tx:
        for name, system, value in (("service-provider", "Organization", "'o1'"), ("subject", "Patient", "'p' || n")):
            tx.sql.execute(
                "INSERT INTO search_index (type, id, name, system, value) "
                f"SELECT 'Encounter', 'e' || n, ?, ?, {value} FROM generate_series(1, ?) n",
                [name, system, STAYS],
            )


def most_loops(node: dict[str, Any]) -> int:
    """The most times any step of an executed plan (EXPLAIN ANALYZE, JSON) ran."""
    return max([node.get("Actual Loops", 1), *(most_loops(step) for step in node.get("Plans", []))])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_organizations_referrers_among_a_groups_records_are_found_from_their_people(store: Store) -> None:
    """An incremental Group export asks which changed Organizations its people's records name
    (``Referrers.compartment`` with ``people``).  Each record naming the hospital was asked
    whether it is in one of the people's compartments, a subquery per record: 60,000 for 2
    people, 0.3–1.2 s; the people's records are read first now, and the hospital's matched
    against them in one pass (31–76 ms)."""
    hospital_stays(store)
    wanted = Referrers(
        "Organization",
        "o1",
        {"Encounter": ["service-provider"]},
        compartment=Registry().patient_compartment,
        people=TWO,
        identified=IDENTIFIED_PEOPLE,
    )
    sql, params = _referrer_keys(wanted, ["o1"]) or ("", [])
    assert most_loops(generic_plan(store, sql, params)) < 100
