"""How the compartment's statements are planned on PostgreSQL, which prepares each once for any
values (``postgres._configure``): a person's ``$everything`` and a Patient export must read
that person's rows, not the archive's."""

from __future__ import annotations

import pytest

from gateway.match_keys import match_keys
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.storage.resources import Referrers, _referrer_keys
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
