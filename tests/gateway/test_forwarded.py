"""The client's address behind a reverse proxy, against a real server: ``X-Forwarded-For`` is
believed from as many proxies as ``YIYANG_TRUSTED_PROXIES`` says, and from none by default
(any client may send the header, and would choose the address the trail records)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import TEST_CLIENT, Api, add_client, running_server

#: an address of TEST-NET-3 (RFC 5737), written by the proxy or forged by the client
FORWARDED = "203.0.113.7"


@pytest.fixture(scope="module", params=[0, 1], ids=["no-proxy-trusted", "one-proxy-trusted"])
def proxied(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, client_key: Any
) -> Iterator[tuple[int, str]]:
    """A server trusting ``request.param`` proxies, with a token limit of one a second per address."""
    url = f"sqlite:///{tmp_path_factory.mktemp('proxied') / 'archive.sqlite'}"
    add_client(url, TEST_CLIENT, key=client_key)
    env = {"YIYANG_TRUSTED_PROXIES": str(request.param), "YIYANG_TOKEN_RATE_LIMIT_PER_SECOND": "1"}
    with running_server(url, workers=1, env=env) as base:
        yield request.param, base


def test_the_token_limit_counts_the_forwarded_address_only_from_a_trusted_proxy(proxied: tuple[int, str]) -> None:
    """Two clients behind one proxy shared the proxy's bucket; a forged header must not give
    a client a bucket of its own.  Sent as JSON, the requests are refused at once after it."""
    trusted, base = proxied
    time.sleep(1.0)  # a full bucket, whatever asked this server for a token before
    form = {"grant_type": "client_credentials"}
    statuses = [
        requests.post(
            f"{base}/token", json=form, headers={"X-Forwarded-For": f"198.51.100.{n}"}, timeout=30
        ).status_code
        for n in (1, 2)
    ]
    assert (429 in statuses) == (trusted == 0)


def test_the_trail_records_the_forwarded_address_only_from_a_trusted_proxy(
    proxied: tuple[int, str], client_key: Any
) -> None:
    trusted, base = proxied
    time.sleep(1.0)  # the token this session asks for is not refused by the limit above
    with Api(base, TEST_CLIENT, client_key) as api:
        api.get(f"{base}/Patient", params={"_id": "forwarded-probe"}, headers={"X-Forwarded-For": FORWARDED})
        addresses: list[str] = []
        for _ in range(50):  # the worker appends its events every 0.2 s
            events = api.get(f"{base}/AuditEvent", params={"agent": TEST_CLIENT, "_sort": "-date"}).json()
            addresses = [
                agent["network"]["address"]
                for entry in events.get("entry", [])
                if "_id=forwarded-probe" in str(entry["resource"])
                for agent in entry["resource"]["agent"]
                if "network" in agent
            ]
            if addresses:
                break
            time.sleep(0.1)
    assert addresses == [FORWARDED if trusted else "127.0.0.1"]


def test_a_request_the_http_server_refuses_names_no_proxy_as_its_client(
    proxied: tuple[int, str], client_key: Any
) -> None:
    """gunicorn refuses a request line over its limit before anyone reads its headers, so
    behind a trusted proxy the client's address is unknown: its AuditEvent named the proxy's
    address as the client's.  It names none, and says which proxy forwarded it."""
    trusted, base = proxied
    probe = ",".join(f"unread{i:05d}" for i in range(1400))
    answer = requests.get(f"{base}/Patient?_id={probe}", headers={"X-Forwarded-For": FORWARDED}, timeout=60)
    assert answer.status_code == 414
    time.sleep(1.0)  # the token this session asks for is not refused by the limit above
    with Api(base, TEST_CLIENT, client_key) as api:
        found: list[dict[str, Any]] = []
        for _ in range(50):  # the worker appends its events every 0.2 s
            events = api.get(f"{base}/AuditEvent", params={"outcome": "4", "_sort": "-date"}).json()
            found = [
                entry["resource"]
                for entry in events.get("entry", [])
                if "http.request-line-too-long" in entry["resource"].get("outcomeDesc", "")
            ]
            if found:
                break
            time.sleep(0.1)
    addresses = [agent["network"]["address"] for agent in found[0]["agent"] if "network" in agent]
    described = "127.0.0.1" in found[0]["outcomeDesc"]
    assert (addresses, described) == (([], True) if trusted else (["127.0.0.1"], False))
