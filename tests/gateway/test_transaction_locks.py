"""Two transactions changing the same resources take their row locks in one order (type, then
id), or PostgreSQL breaks the deadlock they make by failing one (a 503 to its client).  A
conditional update's match is held with the rest, before the transaction's deletes run."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gateway.fhir.bundles import Bundles
from tests.conftest import MakeServices

SYSTEM = "urn:audit"


def basic(value: str, text: str) -> dict[str, Any]:
    return {"resourceType": "Basic", "identifier": [{"system": SYSTEM, "value": value}], "code": {"text": text}}


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_conditional_update_and_a_plain_transaction_on_its_match_do_not_deadlock(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deletes Basic/z9 and updates Basic?identifier=…|a1 (Basic/a1); B updates Basic/a1
    and Basic/z9 by id.  A pauses before resolving its condition, so B queues on what A holds."""
    made = make_services()
    for value in ("a1", "z9"):
        made.repository.update("Basic", value, {**basic(value, "before"), "id": value})
    resolve, paused = Bundles._resolve_conditions, threading.Event()

    def slowly(self: Bundles, *args: Any) -> None:
        if threading.current_thread().name == "A":
            paused.set()
            time.sleep(1.5)
        resolve(self, *args)

    monkeypatch.setattr(Bundles, "_resolve_conditions", slowly)
    a = transaction(
        {"request": {"method": "DELETE", "url": "Basic/z9"}},
        {"resource": basic("a1", "A"), "request": {"method": "PUT", "url": f"Basic?identifier={SYSTEM}|a1"}},
    )
    b = transaction(
        *(
            {"resource": {**basic(v, "B"), "id": v}, "request": {"method": "PUT", "url": f"Basic/{v}"}}
            for v in ("a1", "z9")
        )
    )
    failures: list[Exception] = []

    def run(bundle: dict[str, Any]) -> None:
        try:
            made.bundles.process(bundle)
        except Exception as exc:  # noqa: BLE001 - what the test looks for
            failures.append(exc)

    first = threading.Thread(target=run, args=(a,), name="A")
    first.start()
    paused.wait(5)
    second = threading.Thread(target=run, args=(b,), name="B")
    second.start()
    first.join(30)
    second.join(30)
    assert failures == []
