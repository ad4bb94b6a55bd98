"""The CapabilityStatement is true: a walk of ``/metadata`` against a real server on both
databases, holding the package's valid examples, exercises every search parameter,
``_revinclude``, type-level interaction and operation it lists, and nothing it lists is
refused as unknown.

A parameter some stored example has a value of is searched with that value (read from the
resource by the indexer, as the archive indexes it) and must find the example; one no
example has a value of is searched with a value of its type and must be taken.  Requests
are grouped (all of a resource's values in one search, all of a type's parameters in
another) so that the walk of some 2,500 parameters costs a few hundred requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.search.indexer import SearchIndexer
from gateway.search.query import LIMITS
from profiles.registry import examples_dir
from tests.conftest import BACKENDS, TEST_CLIENT, Api, Served, add_client, fresh_database_url, running_server

#: a value of each search parameter type, for a parameter no stored example has a value of
TYPED_VALUES = {
    "token": "x",
    "string": "x",
    "date": "2020",
    "reference": "Patient/x",
    "quantity": "5",
    "number": "5",
    "uri": "http://x",
}
#: how many criteria, and how many _include and _revinclude values, one search takes
#: (``gateway/search/query.py`` LIMITS)
CRITERIA, INCLUDES = LIMITS["criteria"], LIMITS["includes"]
#: the search parameters a resource answers from its own columns, not from index rows
OWN_COLUMNS = ("_id", "_lastUpdated")


def _escaped(value: str) -> str:
    """A value as a search writes it (R4 search.html#escaping): ``\\``, ``,``, ``$`` and ``|``
    are the syntax's own characters."""
    for special in ("\\", ",", "$", "|"):
        value = value.replace(special, "\\" + special)
    return value


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _criterion(kind: str, row: tuple[Any, ...]) -> str:
    """A search value the index ``row`` (name, system, value, low, high, number) matches."""
    _, system, value, low, high, number = row
    if kind == "token":
        return f"{_escaped(system)}|{_escaped(value)}" if system else _escaped(value)
    if kind == "string":
        return _escaped(system)  # the text as written (the value column is normalised)
    if kind == "date":
        return f"ge{low[:10]}" if not low.startswith("0001") else f"le{high[:10]}"
    if kind == "reference":
        return f"{system}/{value}" if system else _escaped(value)
    if kind == "quantity":
        return f"{_number(number)}|{_escaped(system or '')}|{_escaped(value or '')}"
    if kind == "number":
        return _number(number)
    return _escaped(value)  # uri


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, client_key: Any
) -> Iterator[Served]:
    """The module's server, as conftest's but for its rate limit: the walk asks thousands of
    searches and operations of one client as fast as it can, and on a quiet machine passed
    the gateway's 200 a second (429 ``http.rate-limited``), which is not what it tests."""
    with fresh_database_url(request.param, tmp_path_factory.mktemp("server")) as url:
        add_client(url, TEST_CLIENT, key=client_key)
        with running_server(url, env={"YIYANG_RATE_LIMIT_PER_SECOND": "1000000"}) as base:
            yield Served(base, url)


def _examples() -> Iterator[dict[str, Any]]:
    """The package's valid examples but its Bundles (whose creates are no idempotent PUT)."""
    for path in sorted(examples_dir().glob("*/valid-*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource["resourceType"] != "Bundle":
            yield resource


@pytest.fixture(scope="module")
def walk(api: Api) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The statement, and the examples stored, by type, as the server answered their PUT
    (each PUT retried until no more lands: an example may name one stored after it)."""
    pending, stored = list(_examples()), {}
    while pending:
        refused = []
        for resource in pending:
            answer = api.put(f"{api.base}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=60)
            if answer.status_code in (200, 201):
                stored.setdefault(resource["resourceType"], []).append(answer.json())
            else:
                refused.append(resource)
        assert len(refused) < len(pending), [r["id"] for r in refused]
        pending = refused
    statement = api.get(f"{api.base}/metadata", timeout=60).json()
    return statement, stored


def _listed(statement: dict[str, Any]) -> list[dict[str, Any]]:
    return statement["rest"][0]["resource"]


def _refusal(answer: Any) -> str:
    """Why a search was not answered as one: its status and the OperationOutcome's codes."""
    try:
        issues = answer.json().get("issue", [])
    except ValueError:
        return f"{answer.status_code} {answer.text[:200]}"
    return f"{answer.status_code} {[issue.get('details', {}).get('coding', [{}])[0].get('code') for issue in issues]}"


def test_every_listed_search_parameter_finds_a_stored_resource_by_its_own_value(
    api: Api, walk: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]], indexer: SearchIndexer
) -> None:
    statement, stored = walk
    wrong = []
    for entry in _listed(statement):
        kind = entry["type"]
        definitions = indexer.parameters.for_type(kind)
        criteria: dict[str, list[tuple[str, str]]] = {}  # resource id → its (parameter, value)s
        for listed in entry["searchParam"]:
            name = listed["name"]
            for resource in stored.get(kind, []):
                if name in OWN_COLUMNS:
                    value = resource["id"] if name == "_id" else f"ge{resource['meta']['lastUpdated'][:10]}"
                else:
                    rows = [row for row in indexer.rows(resource) if row[0] == definitions[name].rows]
                    if not rows:
                        continue
                    value = _criterion(listed["type"], rows[0])
                criteria.setdefault(resource["id"], []).append((name, value))
                break
        for resource_id, pairs in criteria.items():
            query = [*(pair for pair in pairs if pair[0] != "_id"), ("_id", resource_id)]
            answer = api.get(f"{api.base}/{kind}", params=query, timeout=60)
            if answer.status_code != 200 or answer.json().get("total") != 1:
                wrong.append((kind, query, _refusal(answer)))
    assert wrong == []


def test_every_listed_search_parameter_takes_a_value_of_its_type(
    api: Api, walk: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]
) -> None:
    """A type's parameters, as many in one search as it takes: any one refused as unknown (a strict search
    refuses what it does not take) or failing is named by the OperationOutcome."""
    statement, _ = walk
    wrong = []
    for entry in _listed(statement):
        pairs = [(listed["name"], TYPED_VALUES[listed["type"]]) for listed in entry["searchParam"]]
        for at in range(0, len(pairs), CRITERIA):
            answer = api.get(f"{api.base}/{entry['type']}", params=pairs[at : at + CRITERIA], timeout=60)
            if answer.status_code != 200:
                wrong.append((entry["type"], _refusal(answer)))
    assert wrong == []


def test_every_listed_revinclude_and_type_interaction_is_taken(
    api: Api, walk: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]
) -> None:
    """Per type: searches with ``_include=*`` (where listed) and every ``_revinclude`` listed,
    as many at a time as a search takes (:data:`INCLUDES`), and the type's history when
    ``history-type`` is listed."""
    statement, _ = walk
    wrong = []
    for entry in _listed(statement):
        kind, codes = entry["type"], {interaction["code"] for interaction in entry["interaction"]}
        included = [("_include", value) for value in entry.get("searchInclude", [])]
        reverse = [("_revinclude", value) for value in entry.get("searchRevInclude", [])]
        step = INCLUDES - len(included)
        queries = [included + reverse[at : at + step] for at in range(0, max(len(reverse), 1), step)]
        asked = [(kind, query) for query in queries] if "search-type" in codes else []
        asked += [(f"{kind}/_history", [])] if "history-type" in codes else []
        for path, params in asked:
            answer = api.get(f"{api.base}/{path}", params=params, timeout=60)
            if answer.status_code != 200:
                wrong.append((path, _refusal(answer)))
    assert wrong == []


def test_every_listed_instance_interaction_works_on_a_stored_example(
    api: Api, walk: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]
) -> None:
    """read, vread, history-instance, update (the example as stored) and patch (a JSON Patch
    that only tests the id) on one stored example of each type listing them."""
    statement, stored = walk
    wrong = []
    patch = {"Content-Type": "application/json-patch+json"}
    for entry in _listed(statement):
        codes = {interaction["code"] for interaction in entry["interaction"]}
        for resource in stored.get(entry["type"], [])[:1]:
            at = f"{api.base}/{entry['type']}/{resource['id']}"
            asked = {
                "read": lambda at=at: api.get(at, timeout=60),
                "vread": lambda at=at, r=resource: api.get(f"{at}/_history/{r['meta']['versionId']}", timeout=60),
                "history-instance": lambda at=at: api.get(f"{at}/_history", timeout=60),
                "update": lambda at=at, r=resource: api.put(at, json=r, timeout=60),
                "patch": lambda at=at, r=resource: api.patch(
                    at, data=json.dumps([{"op": "test", "path": "/id", "value": r["id"]}]), headers=patch, timeout=60
                ),
            }
            for code, send in asked.items():
                if code in codes and (answer := send()).status_code != 200:
                    wrong.append((entry["type"], code, _refusal(answer)))
    assert wrong == []


#: what the router answers for a path or method no route serves: an operation listed must not
ROUTER_REFUSALS = {"http.unknown-route", "http.unknown-operation", "http.method-not-allowed"}
#: the operations invoked by POST alone; the others are invoked by GET (R4 lets one that
#: changes nothing be)
POSTED = {"merge", "ingest"}


def _served(answer: Any) -> bool:
    """Whether the operation's own code answered (its result, or its refusal of a request
    naming no one), not the router's refusal of a path or method it does not serve."""
    if answer.status_code == 501:
        return False
    try:
        issues = answer.json().get("issue", [])
    except ValueError:
        return answer.status_code < 400
    return not {issue.get("details", {}).get("coding", [{}])[0].get("code") for issue in issues} & ROUTER_REFUSALS


def test_every_listed_operation_is_served(
    api: Api, walk: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]
) -> None:
    """Each operation of each type, and of the system, is invoked once: ``$validate`` of an
    empty resource of the type gives an OperationOutcome of its issues; the others answer
    as the operation (:func:`_served`)."""
    statement, stored = walk
    wrong = []
    for entry in _listed(statement):
        kind = entry["type"]
        some = (stored.get(kind) or [{"id": "x"}])[0]["id"]
        for operation in entry.get("operation", []):
            name = operation["name"]
            if name == "validate":
                answer = api.post(f"{api.base}/{kind}/$validate", json={"resourceType": kind}, timeout=60)
                served = answer.status_code == 200 and answer.json()["resourceType"] == "OperationOutcome"
            else:
                instance = name in ("everything", "document", "evaluate-measure") or kind == "Group"
                path = f"{api.base}/{kind}/{some}/${name}" if instance else f"{api.base}/{kind}/${name}"
                answer = api.request("POST" if name in POSTED else "GET", path, timeout=60)
                served = _served(answer)
            if not served:
                wrong.append((kind, name, _refusal(answer)))
    for operation in statement["rest"][0]["operation"]:
        name = operation["name"]
        answer = api.request("POST" if name in POSTED else "GET", f"{api.base}/${name}", timeout=60)
        if not _served(answer):
            wrong.append(("system", name, _refusal(answer)))
    assert wrong == []


def test_every_listed_system_interaction_is_served(
    api: Api, walk: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]
) -> None:
    """transaction and batch (a Bundle of no entries) and history-system."""
    statement, _ = walk
    wrong = []
    for interaction in statement["rest"][0]["interaction"]:
        code = interaction["code"]
        if code == "history-system":
            answer = api.get(f"{api.base}/_history", timeout=60)
        else:
            answer = api.post(api.base, json={"resourceType": "Bundle", "type": code}, timeout=60)
        if answer.status_code != 200:
            wrong.append((code, _refusal(answer)))
    assert wrong == []


def test_every_supported_profile_is_one_validate_judges_by(
    api: Api, walk: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]
) -> None:
    """A profile the server lists but does not hold would be a 400 ``http.unknown-profile``."""
    statement, _ = walk
    wrong = []
    for entry in _listed(statement):
        for url in entry.get("supportedProfile", []):
            at = f"{api.base}/{entry['type']}/$validate"
            answer = api.post(at, params={"profile": url}, json={"resourceType": entry["type"]}, timeout=60)
            if answer.status_code != 200:
                wrong.append((entry["type"], url, _refusal(answer)))
    assert wrong == []


def test_every_listed_parameter_of_the_audit_trail_finds_the_event_of_a_put(
    api: Api, walk: tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]
) -> None:
    """The trail is searched by its own code (``gateway/api/audit.py``) and its own values
    (docs/security.md): the event of an example's PUT is found by every parameter listed for
    it at once (appended by its worker within 0.2 s, so looked for a few times)."""
    statement, stored = walk
    trail = next(entry for entry in _listed(statement) if entry["type"] == "AuditEvent")
    patient = stored["Patient"][0]
    day = patient["meta"]["lastUpdated"][:10]
    values = {
        "date": f"ge{day}",
        "agent": TEST_CLIENT,
        "entity-type": "Patient",
        "entity": f"Patient/{patient['id']}",
        "outcome": "0",
    }
    query = [(listed["name"], values.get(listed["name"], "")) for listed in trail["searchParam"]]
    for _ in range(50):
        answer = api.get(f"{api.base}/AuditEvent", params=query, timeout=60)
        if answer.status_code != 200 or answer.json().get("total", 0) > 0:
            break
        time.sleep(0.1)
    assert (answer.status_code, answer.json().get("total", 0) > 0) == (200, True), (query, _refusal(answer))
