"""A batch Bundle under way when the server is told to stop (``Services.stopping``, set on
SIGTERM or Ctrl-C) applies no entry after the signal: the entries before it stand committed,
the rest are answered 503, and the Bundle's answer ends the request, so it is audited and the
worker exits before gunicorn's master kills it (``graceful_timeout``) — which lost the
AuditEvent of a batch whose earlier entries stood committed."""

from __future__ import annotations

from typing import Any

from gateway.services import Services
from tests.conftest import MakeServices


def basic(value: str) -> dict[str, Any]:
    """A POST entry of a Basic resource."""
    resource = {"resourceType": "Basic", "code": {"coding": [{"system": "urn:test", "code": value}]}}
    return {"resource": resource, "request": {"method": "POST", "url": "Basic"}}


def stopped_after_the_first(services: Services, count: int) -> list[dict[str, Any]]:
    """The entries' answers of a batch of ``count`` POSTs whose first entry is asked about
    (authorized) just before the signal comes."""

    def authorize(method: str, kind: str, resource_id: str | None, criteria: str | None) -> None:
        services.stopping.set()

    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [basic(str(n)) for n in range(count)]}
    return services.bundles.process(bundle, authorize, "en")["entry"]


def test_a_batch_applies_no_entry_after_the_server_is_told_to_stop(make_services: MakeServices) -> None:
    answers = stopped_after_the_first(make_services("reject"), 3)
    assert [entry["response"]["status"].split(" ")[0] for entry in answers] == ["201", "503", "503"]


def test_an_entry_left_by_a_stopping_server_says_it_may_be_sent_again(make_services: MakeServices) -> None:
    issue = stopped_after_the_first(make_services("reject"), 2)[1]["response"]["outcome"]["issue"][0]
    assert (issue["details"]["coding"][0]["code"], issue["expression"]) == ("http.batch-stopped", ["Bundle.entry[1]"])
