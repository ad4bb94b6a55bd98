"""Records naming records (gateway/security/naming_records.json), over HTTP on both databases:
a record of 张秀英 (served by the centre) naming a record of 李建国 (served by no one) through a
reference would show the centre his record's id, so it answers 404 and is in no search or
``$everything`` of hers; one naming a record the archive never stored tells nothing about
anyone, and is shown as any record of hers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Api, Served
from tests.gateway.test_access_http import example, home  # noqa: F401 - the centre's session, a fixture

Resource = dict[str, Any]


def _reading(**naming: Any) -> Resource:
    return {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": "bp-naming", **naming}


@pytest.fixture
def written(served: Served, api: Api) -> Iterator[Callable[[Resource], Resource]]:
    """Writes a record of 张秀英 as the operator, deleted when the test ends so that her other
    searches stay as they were."""
    done: list[Resource] = []

    def write(resource: Resource) -> Resource:
        answer = api.put(f"{served.base}/{resource['resourceType']}/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text
        done.append(resource)
        return resource

    yield write
    for resource in done:
        assert api.delete(f"{served.base}/{resource['resourceType']}/{resource['id']}").status_code in (200, 204)


def _found(served: Served, home: Api, resource: Resource) -> tuple[int, bool, bool]:  # noqa: F811
    """How the centre sees a record of 张秀英: its read's status, and whether her search of its
    type and her ``$everything`` hold it."""
    kind, record_id = resource["resourceType"], resource["id"]
    read = home.get(f"{served.base}/{kind}/{record_id}").status_code
    search = home.get(f"{served.base}/{kind}", params={"patient": "zhang-xiuying", "_count": 200}).json()
    everything = home.get(f"{served.base}/Patient/zhang-xiuying/$everything", params={"_count": 500}).json()
    return (
        read,
        record_id in [e["resource"]["id"] for e in search.get("entry", [])],
        f"{kind}/{record_id}"
        in [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in everything["entry"]],
    )


@pytest.mark.parametrize("naming", ["derivedFrom", "hasMember"])
def test_a_reading_naming_a_reading_never_stored_is_shown(
    served: Served,
    home: Api,  # noqa: F811
    written: Callable[[Resource], Resource],
    naming: str,
) -> None:
    """A reading whose source never landed (never sent, or quarantined) names no one: hidden,
    the centre lost its resident's reading for nothing."""
    resource = written(_reading(**{naming: [{"reference": "Observation/never-stored"}]}))
    assert _found(served, home, resource) == (200, True, True)


def test_a_reading_naming_a_deleted_reading_is_not_found(
    served: Served,
    api: Api,
    home: Api,  # noqa: F811
    written: Callable[[Resource], Resource],
) -> None:
    """Whose a deleted record was, the index no longer tells: it counts as a stranger's."""
    gone = {**_reading(), "id": "bp-gone", "subject": {"reference": "Patient/li-jianguo"}}
    assert api.put(f"{served.base}/Observation/bp-gone", json=gone).status_code in (200, 201)
    assert api.delete(f"{served.base}/Observation/bp-gone").status_code in (200, 204)
    resource = written(_reading(derivedFrom=[{"reference": "Observation/bp-gone"}]))
    assert _found(served, home, resource) == (404, False, False)
