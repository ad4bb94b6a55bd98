"""The auditors' downloads (``/reports`` as a workbook or CSV) on a running server, with what
a participant sent in them: a report must open whatever a client wrote into its request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import Api, Served, load_example, running_server
from tests.gateway.test_reports_http import AUDIT_SCOPE, AUDITOR, FHIR_JSON, add_client, host, recorded


@pytest.fixture(scope="module")
def auditor(served: Served, client_key: Any) -> Iterator[Api]:
    add_client(served.database_url, AUDITOR, key=client_key, scope=AUDIT_SCOPE, role="auditor")
    with Api(served.base, AUDITOR, client_key, AUDIT_SCOPE) as session:
        yield session


def test_a_workbook_opens_when_a_client_sent_a_control_character(served: Served, api: Api, auditor: Api) -> None:
    """A resource id with a control character (refused, and recorded as sent): openpyxl
    refuses such a cell, and the whole workbook was a 500."""
    sent = {"resourceType": "Patient", "id": "bad\u0001id", "gender": "female"}
    assert api.put(f"{served.base}/Patient/x", json=sent, headers=FHIR_JSON).status_code >= 400
    deadline = time.monotonic() + 20
    while recorded(served, "SELECT COUNT(*) FROM exchange WHERE interaction = 'update'")[0] < 1:
        assert time.monotonic() < deadline, "the exchange did not reach the store in 20 s"
        time.sleep(0.2)
    answer = auditor.get(f"{host(served)}/reports", params={"_format": "xlsx"})
    assert answer.status_code == 200, answer.text[:500]


def test_the_anonymous_source_the_report_lists_can_be_asked_for(served: Served, auditor: Api) -> None:
    """A request without a token is recorded with the source ``anonymous`` and listed under
    the report's sources; asking for that source was a 400 naming every other one."""
    assert requests.get(f"{served.base}/Patient", timeout=30).status_code == 401
    deadline = time.monotonic() + 20
    # the server's readiness probe (an anonymous GET /metadata) is an anonymous exchange too
    while recorded(served, "SELECT COUNT(*) FROM exchange WHERE source = 'anonymous' AND status = 401")[0] < 1:
        assert time.monotonic() < deadline, "the exchange did not reach the store in 20 s"
        time.sleep(0.2)
    answer = auditor.get(f"{host(served)}/reports", params={"source": "anonymous", "_format": "json"})
    assert (answer.status_code, answer.json()["summary"]["errors"] >= 1) == (200, True)


def test_a_download_lists_no_more_issues_than_the_setting_allows(
    served: Served, api: Api, auditor: Api, client_key: Any
) -> None:
    """YIYANG_REPORT_MAX_ISSUES bounds the issues a download lists (all of a thousand failing
    exchanges' 10,000 issues each took a gigabyte of a worker's memory), and it says how many
    it left out."""
    invalid = load_example("yy-patient/invalid-id-card-checksum.json")
    for _ in range(2):
        assert api.post(f"{served.base}/Patient", json=invalid, headers=FHIR_JSON).status_code == 422
    failing_issues = (
        "SELECT COUNT(*) FROM exchange_issue i JOIN exchange e ON e.id = i.exchange_id WHERE e.verdict = 'fail'"
    )
    deadline = time.monotonic() + 20
    while recorded(served, failing_issues)[0] < 2:
        assert time.monotonic() < deadline, "the exchanges did not reach the store in 20 s"
        time.sleep(0.2)
    env = {"YIYANG_REPORT_MAX_ISSUES": "1"}
    with (
        running_server(served.database_url, workers=1, env=env) as base,
        Api(base, AUDITOR, client_key, AUDIT_SCOPE) as bounded,
    ):
        document = bounded.get(f"{base.removesuffix('/fhir')}/reports", params={"_format": "json"}).json()
    listed = sum(len(exchange["findings"]) for exchange in document["exchanges"])
    assert (listed, document["findingsOmitted"]) == (1, recorded(served, failing_issues)[0] - 1)
