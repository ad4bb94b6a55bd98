"""The participants' test kit against our own gateway: every test passes (or skips, saying why)
on both databases.  An end-to-end run is slow, so each database gets ONE run of every suite,
shared by the module's tests through a module-scoped fixture."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.cli import main
from tests.conftest import TEST_CLIENT, Served, add_client

ELDERLY_CLIENT, ELDERLY_ORGANIZATION = "kit-elderly", "kit-unrelated-home"


def pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="module")
def run(served: Served, client_key: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any]]:
    """``yiyang conformance run`` with every suite, as a participant would call it; also with
    an elderly-care client of an organisation that serves nobody."""
    add_client(
        served.database_url,
        ELDERLY_CLIENT,
        key=client_key,
        scope="system/Patient.rs system/Observation.rs",
        role="elderly-care",
        organization=ELDERLY_ORGANIZATION,
    )
    folder = tmp_path_factory.mktemp("kit")
    key = folder / "client.pem"
    key.write_text(pem(client_key), encoding="utf-8")
    out = folder / "report.json"
    argv = ["conformance", "run", "--base-url", served.base, "--client-id", TEST_CLIENT, "--key", str(key)]
    argv += ["--kid", "test-key", "--elderly-client-id", ELDERLY_CLIENT, "--elderly-key", str(key)]
    status = main([*argv, "--format", "json", "--out", str(out), "--lang", "en"])
    return status, json.loads(out.read_text(encoding="utf-8"))


def results(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for s in report["sections"] for r in s["results"]}


def test_every_test_passes_against_our_gateway(run: tuple[int, dict[str, Any]]) -> None:
    status, report = run
    failing = {
        test_id: [f["text"] for f in r.get("findings", []) if f["severity"] == "error"]
        for test_id, r in results(report).items()
        if r["verdict"] != "pass"
    }
    assert failing == {}
    assert status == 0
    assert report["kind"] == "testkit"
    assert {s["id"] for s in report["sections"]} == {"suite:capability", "suite:push", "suite:pull", "suite:security"}


def test_each_result_shows_its_description_requests_and_checks(run: tuple[int, dict[str, Any]]) -> None:
    found = results(run[1])
    export = found["pull.bulk-export"]
    assert export["note"] == "bulk $export: kick-off, poll, NDJSON retrieval, conformant"
    sent = [f for f in export["findings"] if f["rule"] == "testkit.request"]
    assert sent[0]["location"].startswith("GET ") and "Patient/$export" in sent[0]["location"]
    assert sent[0]["text"] == "202"
    assert any(f["rule"] == "testkit.check" and "conforms" in f["text"] for f in export["findings"])


def test_identity_card_numbers_are_masked_in_the_report(run: tuple[int, dict[str, Any]]) -> None:
    assert "410105194912310020" not in json.dumps(run[1], ensure_ascii=False)
