"""How a search's statements are planned on PostgreSQL, which prepares each once for any values
(``postgres._configure``): a criterion checked on the candidates another one found must read
those candidates' rows, not every row of its own value."""

from __future__ import annotations

import pytest

from gateway.search.parameters import SearchParameters
from gateway.search.query import parse_search
from gateway.storage import search_sql
from gateway.storage.store import Store, Transaction
from profiles.registry import Registry
from tests.gateway.test_access import generic_plan, rows_read

CATEGORY_SYSTEM = "http://fhir.yiyang.cn/CodeSystem/careplan-category"
#: other people's 签约 CarePlans, all of the one category: enough that reading them all costs
#: more than probing one candidate
OTHER_PLANS = 5_000
#: 张's 签约 CarePlan, of that category
HERS = {
    "resourceType": "CarePlan",
    "id": "hers",
    "status": "active",
    "intent": "plan",
    "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "family-doctor-package"}]}],
    "subject": {"reference": "Patient/zhang"},
}
#: her search: her rows drive, and the category is probed on each
HER_PLANS = [("subject", "Patient/zhang"), ("category", f"{CATEGORY_SYSTEM}|family-doctor-package")]


def add_other_plans(tx: Transaction) -> None:
    """The category rows of :data:`OTHER_PLANS` CarePlans of hers (their index rows alone)."""
    tx.sql.execute(
        "INSERT INTO search_index (type, id, name, system, value) SELECT 'CarePlan', 'cp' || n, 'category', "
        "?, 'family-doctor-package' FROM generate_series(1, ?) n",
        [CATEGORY_SYSTEM, OTHER_PLANS],
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_common_category_is_probed_on_the_one_persons_plans_in_any_plan(store: Store) -> None:
    """``CarePlan?subject=…&category=…``: the subject's rows drive and the category is probed
    on each of them.  A plan for any values guesses that each value matches a row or two, and
    PostgreSQL made the probe a merge join of its own, sorting every CarePlan of the category
    (the operator's search took 7.6 ms on 5,000 people, 38 ms on 10,000); behind a fence
    (``dialect.FENCE``) it stays a probe of the candidate's own rows."""
    with store.transaction() as tx:
        tx.resources.write(HERS)
        add_other_plans(tx)
    query = parse_search("CarePlan", HER_PLANS, SearchParameters(Registry()))
    assert rows_read(generic_plan(store, *search_sql.page_sql(query))) < 20


#: index rows each of its own value and its own few owners, as an archive's identifiers, names
#: and telephone numbers are: a value then looks rarer to PostgreSQL's statistics than an owner
DISTINCT_VALUES = 100_000


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_probe_reads_the_candidates_own_rows_however_rare_values_look(store: Store) -> None:
    """``CarePlan?subject=…&category=…`` again, in an archive whose values are more varied than
    its resources.  A plan for any values guesses a value's rows from how many values there
    are: more of them than resources, and it read the category's rows from the index on values
    and kept the candidate's, every CarePlan of the category once per candidate; behind the
    fence, only the candidate's own rows are read, and tested against the value."""
    with store.transaction() as tx:
        add_other_plans(tx)
        tx.sql.execute(
            "INSERT INTO search_index (type, id, name, value) SELECT 'Patient', 'p' || mod(n, 10), 'telecom', "
            "'138' || n FROM generate_series(1, ?) n",
            [DISTINCT_VALUES],
        )
        tx.resources.write(HERS)  # after the others: the last of the category's rows on the index
    query = parse_search("CarePlan", HER_PLANS, SearchParameters(Registry()))
    assert rows_read(generic_plan(store, *search_sql.page_sql(query))) < 20
