"""``/reports`` on a running server: refused without a token or the audit scope (as
OperationOutcomes), the JSON report naming what a push broke, the pull counts recorded —
and the HTML page in a real headless Chromium (Debian's ``chromium`` driven by selenium with
Debian's ``chromium-driver``): it loads, its SVG charts have a size, a drill-down link leads to
the failing exchange, and a screenshot of it is not blank.

Chromium is installed by ``.ci/run`` (apt-get), so in CI these tests always run; elsewhere,
without /usr/bin/chromium, the browser tests skip saying how to install it."""

from __future__ import annotations

import copy
import os
import shutil
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.storage import open_store
from tests.conftest import TEST_ORGANIZATION, Api, Served, add_client, load_example, request_token

ROOT = Path(__file__).resolve().parents[2]
AUDITOR, AUDIT_SCOPE = "auditor-1", "system/AuditEvent.rs"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def host(served: Served) -> str:
    return served.base.removesuffix("/fhir")


@pytest.fixture(scope="module")
def auditor(served: Served, client_key: Any) -> Iterator[Api]:
    add_client(served.database_url, AUDITOR, key=client_key, scope=AUDIT_SCOPE, role="auditor")
    with Api(served.base, AUDITOR, client_key, AUDIT_SCOPE) as session:
        yield session


@pytest.fixture(scope="module")
def exchanged(served: Served, api: Api, auditor: Api) -> dict[str, Any]:
    """A valid push, an invalid one, and a search; then the auditor's JSON report, once both
    workers' buffers have reached the store."""
    valid = copy.deepcopy(load_example("yy-patient/valid-zhang-xiuying.json"))
    invalid = copy.deepcopy(load_example("yy-patient/invalid-id-card-checksum.json"))
    assert api.post(f"{served.base}/Patient", json=valid, headers=FHIR_JSON).status_code == 201
    assert api.post(f"{served.base}/Patient", json=invalid, headers=FHIR_JSON).status_code == 422
    assert api.get(f"{served.base}/Patient", params={"_count": "5"}).status_code == 200
    deadline = time.monotonic() + 20
    while recorded(served, "SELECT COUNT(*) FROM exchange WHERE interaction IN ('create', 'search-type')")[0] < 3:
        assert time.monotonic() < deadline, "the workers' exchange buffers did not reach the store in 20 s"
        time.sleep(0.2)
    return auditor.get(f"{host(served)}/reports", headers={"Accept": "application/json"}).json()


def recorded(served: Served, query: str) -> tuple[Any, ...]:
    """One row of what the server's store holds, read beside the running server."""
    store = open_store(served.database_url)
    try:
        with store.reading() as tx:
            return tuple(tx.sql.one(query) or ())
    finally:
        store.close()


# -- HTTP ---------------------------------------------------------------------------------------
def test_reports_without_a_token_is_a_401_operation_outcome(served: Served) -> None:
    answer = requests.get(f"{host(served)}/reports", timeout=30)
    assert (answer.status_code, answer.json()["resourceType"]) == (401, "OperationOutcome")


def test_reports_without_the_audit_scope_is_a_403_naming_it(served: Served, client_key: Any) -> None:
    with Api(served.base, "test-admin", client_key, "system/Patient.rs") as reader:
        answer = reader.get(f"{host(served)}/reports", headers={"Accept-Language": "en"})
    assert (answer.status_code, "system/AuditEvent.rs" in answer.json()["issue"][0]["details"]["text"]) == (403, True)


def test_a_report_on_an_organisation_a_client_is_registered_for_is_given(served: Served, auditor: Api) -> None:
    answer = auditor.get(f"{host(served)}/reports", params={"org": TEST_ORGANIZATION, "_format": "json"})
    assert answer.status_code == 200


def test_a_downloads_file_name_says_what_period_and_filters_it_covers(served: Served, auditor: Api) -> None:
    """Every CSV was report.csv: saved side by side, one month's read as another's."""
    period = {"since": "2026-11-01", "until": "2026-11-30", "source": "hl7v2", "_format": "csv"}
    answer = auditor.get(f"{host(served)}/reports", params=period)
    assert answer.headers["Content-Disposition"] == 'attachment; filename="report_2026-11-01_2026-11-30_hl7v2.csv"'


def test_an_unknown_parameter_is_a_400_operation_outcome(served: Served, auditor: Api) -> None:
    answer = auditor.get(f"{host(served)}/reports", params={"organisation": "x"})
    assert (answer.status_code, answer.json()["issue"][0]["details"]["coding"][0]["code"]) == (
        400,
        "http.unsupported-parameter",
    )


@pytest.mark.parametrize(
    ("name", "value"),
    # an unknown source or organisation matched nothing, and its empty report read as a quiet period
    [
        ("since", "2026-02-30"),
        ("until", "2026-13-01"),
        ("limit", "x"),
        ("limit", "\u00b2"),
        ("source", "nonesuch"),
        ("org", "nonesuch-hospital"),
    ],
)
def test_a_refused_report_parameter_is_named_in_the_outcome(
    served: Served, auditor: Api, name: str, value: str
) -> None:
    answer = auditor.get(f"{host(served)}/reports", params={name: value})
    assert (answer.status_code, answer.json()["issue"][0].get("expression")) == (400, [name])


def test_a_report_up_to_the_calendars_first_days_covers_the_days_there_are(served: Served, auditor: Api) -> None:
    """Thirty days before 0001-01-10 are not in the calendar: that was a 500, not a report."""
    answer = auditor.get(f"{host(served)}/reports", params={"until": "0001-01-10", "_format": "json"})
    assert answer.status_code == 200


@pytest.mark.parametrize("exchange_id", ["99999999", "\u00b2"])  # ² is a digit to isdigit, no number to int
def test_an_unknown_exchange_is_a_404_operation_outcome(served: Served, auditor: Api, exchange_id: str) -> None:
    answer = auditor.get(f"{host(served)}/reports/exchanges/{exchange_id}")
    assert (answer.status_code, answer.json()["resourceType"]) == (404, "OperationOutcome")


def test_the_json_report_names_the_rule_the_invalid_push_broke(exchanged: dict[str, Any]) -> None:
    rules = next(s for s in exchanged["sections"] if s["id"] == "rules")
    assert "rule.id-card-checksum" in [r["label"] for r in rules["results"]]


def test_the_invalid_push_is_a_failing_exchange_of_its_client(exchanged: dict[str, Any]) -> None:
    """Looked for among the failing exchanges: the auditor's own refused requests of the tests
    before may be listed first (each worker writes its exchanges when its buffer flushes)."""
    failing = [e for e in exchanged["exchanges"] if e["interaction"] == "create" and e["verdict"] == "fail"]
    assert [(e["client"], e["status"]) for e in failing] == [("test-admin", 422)]


def test_a_search_records_how_many_resources_it_returned(served: Served, exchanged: dict[str, Any]) -> None:
    query = "SELECT resource_types, resources FROM exchange WHERE interaction = 'search-type'"
    assert recorded(served, query) == (" Patient ", 1)


def test_a_valid_write_refused_at_the_store_records_why(served: Served, api: Api, exchanged: dict[str, Any]) -> None:
    """A second record of one person (409) passed validation, so its exchange was "judged" and
    its refusal was not noted: an error verdict with no reason the auditors could see."""
    again = copy.deepcopy(load_example("yy-patient/valid-zhang-xiuying.json"))
    assert api.post(f"{served.base}/Patient", json=again, headers=FHIR_JSON).status_code == 409
    query = "SELECT i.rule FROM exchange_issue i JOIN exchange e ON e.id = i.exchange_id WHERE e.status = 409"
    deadline = time.monotonic() + 20
    while not recorded(served, query):
        assert time.monotonic() < deadline, "the 409's exchange did not reach the store in 20 s"
        time.sleep(0.2)
    assert recorded(served, query) == ("http.duplicate-person",)


def test_an_ingest_over_http_is_one_exchange_of_its_legacy_source(served: Served, api: Api) -> None:
    sample = ROOT / "mappings/samples/community-health/个人基本信息表.csv"
    answer = api.post(
        f"{served.base}/$ingest",
        params={"source": "community-health", "filename": sample.name},
        data=sample.read_bytes(),
        headers={"Content-Type": "text/csv"},
    )
    assert answer.status_code == 200
    deadline = time.monotonic() + 20
    query = "SELECT client, source, verdict FROM exchange WHERE interaction = '$ingest'"
    while not recorded(served, query):
        assert time.monotonic() < deadline, "the $ingest exchange did not reach the store in 20 s"
        time.sleep(0.2)
    assert recorded(served, query) == ("test-admin", "community-health", "fail")


@pytest.mark.parametrize(
    ("accept", "answered"),
    [
        ("text/csv", (200, "text/csv")),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (200, "application/vnd.openxmlformats")),
        ("application/xml", (200, "application/xml")),
        ("text/html,application/xhtml+xml,*/*;q=0.8", (200, "text/html")),
        ("image/png", (406, "application/fhir+json")),
    ],
)
def test_the_report_comes_as_accept_asks(served: Served, auditor: Api, accept: str, answered: tuple[int, str]) -> None:
    """Accept asking for CSV, a workbook or JUnit got the HTML page; one asking for what no
    report comes as got it too, where a 406 names the formats there are."""
    answer = auditor.get(f"{host(served)}/reports", headers={"Accept": accept})
    assert (answer.status_code, answer.headers["Content-Type"][: len(answered[1])]) == answered


def test_the_page_allows_nothing_but_inline_styles(served: Served, auditor: Api) -> None:
    policy = auditor.get(f"{host(served)}/reports", headers={"Accept": "text/html"}).headers["Content-Security-Policy"]
    assert policy == "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


# -- a real browser ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(served: Served, client_key: Any, exchanged: dict[str, Any]) -> Iterator[Any]:
    """Headless Chromium sending the auditor's bearer token with every request (a browser
    cannot be told to, so the DevTools protocol adds the header) and asking for Chinese."""
    if not (os.path.exists(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs it with apt-get")
        pytest.skip(
            "browser tests need Debian's chromium and chromium-driver: apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1600", "--lang=zh-CN"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        token = request_token(served.base, AUDITOR, client_key, AUDIT_SCOPE).json()["access_token"]
        driver.execute_cdp_cmd("Network.enable", {})
        headers = {"Authorization": f"Bearer {token}", "Accept-Language": "zh-CN,zh;q=0.9"}  # a Chinese auditor
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})
        driver.get(f"{host(served)}/reports")
        yield driver
    finally:
        driver.quit()


def test_the_page_loads_in_chinese(browser: Any) -> None:
    assert browser.title == "医养结合数据交换一致性报告"


@pytest.mark.parametrize("chart", ["svg.chart-trend", "svg.chart-bars"])
def test_the_charts_render_with_a_size(browser: Any, chart: str) -> None:
    from selenium.webdriver.common.by import By

    size = browser.find_element(By.CSS_SELECTOR, chart).size
    assert (size["width"] > 0, size["height"] > 0) == (True, True)


def test_a_screenshot_of_the_page_is_not_blank(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("screenshots") / "reports.png"
    browser.save_screenshot(str(path))
    assert colours(path.read_bytes()) > 16


def test_a_drill_down_link_leads_to_the_failing_exchange(served: Served, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{host(served)}/reports")
    browser.find_element(By.CSS_SELECTOR, "a.drill").click()
    WebDriverWait(browser, 20).until(expected_conditions.url_contains("/reports/exchanges/"))
    assert "rule.id-card-checksum" in browser.find_element(By.TAG_NAME, "body").text


# -- PNG, read without an imaging library -------------------------------------------------------------
def colours(png: bytes, rows: int = 400) -> int:
    """How many different colours the top ``rows`` rows of an 8-bit RGB or RGBA PNG hold (its
    filters undone; undoing them in Python costs about 2 ms a row)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, data, header = 8, b"", b""
    while position < len(png):
        length = int.from_bytes(png[position : position + 4], "big")
        kind, body = png[position + 4 : position + 8], png[position + 8 : position + 8 + length]
        header = body if kind == b"IHDR" else header
        data += body if kind == b"IDAT" else b""
        position += 12 + length
    width, height, depth, colour_type = (
        int.from_bytes(header[:4], "big"),
        int.from_bytes(header[4:8], "big"),
        header[8],
        header[9],
    )
    assert (depth, colour_type) in ((8, 2), (8, 6)), "an 8-bit RGB(A) screenshot"
    pixel = 3 if colour_type == 2 else 4
    stride = width * pixel
    raw, previous, seen = zlib.decompress(data), bytearray(stride), set()
    for row in range(min(height, rows)):
        start = row * (stride + 1)
        method, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if method == 2:  # the commonest filter, undone at C speed
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
            method = 0
        for i in range(stride if method else 0):
            left = line[i - pixel] if i >= pixel else 0
            up, corner = previous[i], previous[i - pixel] if i >= pixel else 0
            if method == 1:
                line[i] = (line[i] + left) & 0xFF
            elif method == 2:
                line[i] = (line[i] + up) & 0xFF
            elif method == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif method == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up), (abs(guess - corner), 2, corner))
                line[i] = (line[i] + near[2]) & 0xFF
        if row % 8 == 0:  # every 8th row is plenty to tell a page from a blank
            seen.update(bytes(line[i : i + pixel]) for i in range(0, stride, pixel))
        previous = line
    return len(seen)


def test_a_blank_png_has_one_colour() -> None:
    row = b"\x00" + b"\xff\xff\xff" * 4
    body = zlib.compress(row * 4)
    header = (4).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    assert colours(png) == 1


def test_an_export_type_list_spaced_after_its_commas_records_each_type(served: Served, api: Api) -> None:
    """``_type=Observation, MedicationRequest`` exports both types: split untrimmed, the record
    kept `` MedicationRequest`` as no type at all, and the report missed it."""
    params = {"_type": "Observation, MedicationRequest"}
    answer = api.get(f"{served.base}/$export", params=params, headers={"Prefer": "respond-async"})
    assert answer.status_code == 202, answer.text
    api.delete(answer.headers["Content-Location"])
    query = (
        "SELECT resource_types FROM exchange WHERE interaction = '$export' AND resource_types LIKE '% Observation %'"
    )
    deadline = time.monotonic() + 20
    while not recorded(served, query):
        assert time.monotonic() < deadline, "the $export exchange did not reach the store in 20 s"
        time.sleep(0.2)
    assert recorded(served, query) == (" MedicationRequest Observation ",)
