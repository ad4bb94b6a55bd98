"""Shared fixtures: one compiled validator per test session (compiling R4 takes ~1 s), and
stores on both databases."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from hypothesis import settings

from conformance.issues import Issue
from conformance.validator import Validator
from gateway.config import Config
from gateway.fhir.search import Searcher
from gateway.search.indexer import SearchIndexer
from gateway.storage import open_store
from gateway.storage.store import Store
from profiles.canonical import DEFAULT_BASE
from profiles.registry import Registry, examples_dir

if TYPE_CHECKING:
    from gateway.services import Services

# Hypothesis's deadline (200 ms an example) times the machine, not the code: on a shared 2-core
# machine running the suite, a slow example is load, not a fault.  Speed is bench/'s to measure.
settings.register_profile("yiyang", deadline=None)
settings.load_profile("yiyang")

SD = f"{DEFAULT_BASE}/StructureDefinition/"
CS = f"{DEFAULT_BASE}/CodeSystem/"


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator(Registry())


def load_example(relative: str) -> dict[str, Any]:
    with (examples_dir() / relative).open(encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture
def patient() -> dict[str, Any]:
    return copy.deepcopy(load_example("yy-patient/valid-zhang-xiuying.json"))


def found(issues: list[Issue], message_id: str, expression: str | None = None) -> bool:
    """Whether an issue with this id (and FHIRPath, when given) was reported."""
    return any(i.message_id == message_id and (expression is None or i.expression == expression) for i in issues)


def errors(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.message_id, i.expression) for i in issues if i.is_error]


# -- stores ------------------------------------------------------------------------------
BACKENDS = ("sqlite", "postgresql")


@contextmanager
def fresh_database_url(backend: str, folder: Path) -> Iterator[str]:
    """An empty database of the backend: a SQLite file in ``folder``, or a schema of its own in
    the PostgreSQL that YIYANG_TEST_DATABASE_URL names (dropped afterwards).  Without that
    variable the PostgreSQL tests skip, saying why; CI sets it, so there they always run."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'archive.sqlite'}"
        return
    server = os.environ.get("YIYANG_TEST_DATABASE_URL")
    if not server:
        pytest.skip("PostgreSQL tests need YIYANG_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    try:
        yield f"{server}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def advisory_lock_held(url: str, name: str) -> bool:
    """Whether a transaction of the PostgreSQL at ``url`` holds the store's lock ``name``
    (``Transaction.lock``): its 64-bit key is shown as two halves, in ``classid`` and ``objid``."""
    import psycopg

    from gateway.storage.postgres import advisory_key

    key = advisory_key(name) & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(url) as other:
        row = other.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            (key >> 32, key & 0xFFFF_FFFF),
        ).fetchone()
    return bool(row and row[0])


def second_behind_first(url: str, run: Callable[[str], None], paused: threading.Event, resume: threading.Event) -> None:
    """``run`` in two threads on PostgreSQL: "first", which the test's patch pauses (setting
    ``paused``) until ``resume``, and "second", started once first has paused and let go once
    it waits for a lock first holds (or has finished): two processes' overlap, made certain."""
    import psycopg

    names = [f"{role}-{uuid.uuid4().hex[:8]}" for role in ("first", "second")]
    first, second = (
        threading.Thread(target=run, args=(f"{url}&application_name={name}",), name=role)
        for role, name in zip(("first", "second"), names, strict=True)
    )
    first.start()
    paused.wait(timeout=120)
    second.start()
    with psycopg.connect(url, autocommit=True) as watcher:
        # blocked by first itself: advisory locks are the database's, and another test's
        # migration in another schema of it holds the schema lock now and then
        waiting = (
            "SELECT 1 FROM pg_stat_activity AS s JOIN pg_stat_activity AS f ON f.pid = ANY(pg_blocking_pids(s.pid)) "
            "WHERE s.application_name = %s AND f.application_name = %s"
        )
        while second.is_alive() and watcher.execute(waiting, names[::-1]).fetchone() is None:
            time.sleep(0.01)  # until the second waits for the first, or has finished
    resume.set()
    first.join()
    second.join()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    with fresh_database_url(request.param, tmp_path) as url:
        yield url


#: builds Services on the test's fresh store with a validation policy ("reject" by default)
MakeServices = Callable[..., "Services"]


@pytest.fixture
def make_services(database_url: str, validator: Validator) -> Iterator[MakeServices]:
    """Services on a fresh store of the backend (the session's compiled validator shared),
    with the validation policy asked for; closed when the test ends."""
    from gateway.config import Config
    from gateway.services import Services

    built: list[Services] = []

    def make(validation: str = "reject") -> Services:
        made = Services(Config.load(database_url=database_url, validation=validation), validator.registry)
        made.__dict__["validator"] = validator  # a cached_property, preset: no second compile
        built.append(made)
        return made

    yield make
    for made in built:
        made.close()


@pytest.fixture(scope="session")
def indexer() -> SearchIndexer:
    return SearchIndexer(Registry())


@pytest.fixture(scope="session")
def searcher(indexer: SearchIndexer) -> Searcher:
    return Searcher(indexer.parameters, Config.page_size, Config.max_page_size)


@pytest.fixture
def store(database_url: str, indexer: SearchIndexer) -> Iterator[Store]:
    opened = open_store(database_url, indexer.rows)
    yield opened
    opened.close()


# -- a real running server ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(
    database_url: str, *options: str, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``yiyang serve`` in a child process (gunicorn, real sockets) on a free port; yields the
    FHIR base URL and stops the server with SIGTERM, as an operator would.  ``env`` adds
    ``YIYANG_*`` settings for this server only."""
    with server_process(database_url, *options, workers=workers, env=env) as (base, _):
        yield base


@contextmanager
def server_process(
    database_url: str, *options: str, workers: int = 2, env: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`running_server`, yielding its process too, which leads a process group of its
    own (its workers are in it) as a command started from a terminal does: a test signals the
    group as the terminal's Ctrl-C does.  ``host`` is the ``--host`` it listens on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gateway.cli", "serve", "--host", host, "--port", str(port)]
    command += ["--workers", str(workers), "--database", database_url, *options]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finally; a pipe nobody reads would block the server
    child = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True
    )
    base = f"http://{f'[{host}]' if family == socket.AF_INET6 else host}:{port}/fhir"
    try:
        deadline = time.monotonic() + 120
        while True:
            if child.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"yiyang serve exited {child.returncode}: {log.read().decode(errors='replace')}")
            try:
                if requests.get(f"{base}/metadata", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("yiyang serve did not answer within 120 s")
            time.sleep(0.2)
        yield base, child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        log.close()


# -- authentication against a real server ------------------------------------------------
#: the client every server fixture registers before it starts: all scopes, a hospital
TEST_CLIENT, TEST_ORGANIZATION, ALL_SCOPES = "test-admin", "test-org", "system/*.cruds"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="session")
def client_key() -> Any:
    """The RSA private key of the test clients (their JWKS holds its public half)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(private_key: Any, kid: str = "test-key") -> dict[str, Any]:
    """A JWK Set with the public half of an RSA or EC private key."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    public = private_key.public_key()
    converter = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
    jwk = converter.to_jwk(public, as_dict=True)
    return {"keys": [{**jwk, "kid": kid}]}


def add_client(
    database_url: str,
    client_id: str,
    *,
    key: Any = None,
    secret: str | None = None,
    scope: str = ALL_SCOPES,
    role: str = "operator",
    organization: str = TEST_ORGANIZATION,
) -> None:
    """Register a client through the command line, as an operator would."""
    from gateway.cli import main

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "credentials"
        if key is not None:
            path.write_text(json.dumps(jwks_of(key)), encoding="utf-8")
            option = "--jwks"
        else:
            path.write_text(secret or "", encoding="utf-8")
            option = "--secret-file"
        argv = ["client", "add", "--id", client_id, "--org", organization, "--role", role, "--scope", scope]
        assert main([*argv, option, str(path), "--database", database_url]) == 0


def assertion(
    base: str, client_id: str, key: Any, algorithm: str = "RS384", header: dict[str, Any] | None = None, **claims: Any
) -> str:
    """A private_key_jwt client assertion for the server at ``base`` (claims and ``header``
    entries override; a header entry set to None is left out)."""
    import jwt

    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": f"{base}/token", "exp": now + 240, "jti": uuid.uuid4().hex}
    headers = {name: value for name, value in {"kid": "test-key", **(header or {})}.items() if value is not None}
    return jwt.encode({**body, **claims}, key, algorithm=algorithm, headers=headers)


def request_token(base: str, client_id: str, key: Any, scope: str = ALL_SCOPES, **claims: Any) -> requests.Response:
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(base, client_id, key, **claims),
    }
    return requests.post(f"{base}/token", data=form, timeout=60)


class Api(requests.Session):
    """A session carrying a bearer token of one client, fetched with private_key_jwt and
    fetched again shortly before it expires (tokens last five minutes, a test module longer)."""

    def __init__(self, base: str, client_id: str, key: Any, scope: str = ALL_SCOPES) -> None:
        super().__init__()
        self.base, self.client_id, self.key, self.scope = base, client_id, key, scope
        self._renew_at = 0.0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if time.monotonic() >= self._renew_at:
            answer = request_token(self.base, self.client_id, self.key, self.scope)
            assert answer.status_code == 200, answer.text
            self.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
            self._renew_at = time.monotonic() + answer.json()["expires_in"] - 60
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True)
class Served:
    """A running server and the store behind it (tests register more clients there)."""

    base: str
    database_url: str


def audited(served: Served, api: Api, operation: str, saying: str = "") -> list[dict[str, Any]]:
    """The newest AuditEvents recording ``operation`` (whose entity's description says
    ``saying``), once the trail holds one: each server worker appends its events every 0.2 s,
    and a search flushes only the worker that answers it."""
    for _ in range(50):
        events = api.get(f"{served.base}/AuditEvent", params={"_sort": "-date", "_count": "20"}).json()
        found = [
            e["resource"]
            for e in events.get("entry", [])
            if operation in [c["code"] for c in e["resource"].get("subtype", [])]
            and saying in e["resource"].get("entity", [{}])[0].get("description", "")
        ]
        if found:
            return found
        time.sleep(0.1)
    return []


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, client_key: Any
) -> Iterator[Served]:
    """A running server on a fresh store with the test client registered, once per module and
    backend."""
    with fresh_database_url(request.param, tmp_path_factory.mktemp("server")) as url:
        add_client(url, TEST_CLIENT, key=client_key)
        with running_server(url) as base:
            yield Served(base, url)


@pytest.fixture(scope="module")
def server(served: Served) -> str:
    """The FHIR base URL of the module's server (requests to it need a token: use ``api``)."""
    return served.base


@pytest.fixture(scope="module")
def api(served: Served, client_key: Any) -> Iterator[Api]:
    """A requests session authenticated as the all-scopes test client of ``server``."""
    with Api(served.base, TEST_CLIENT, client_key) as session:
        yield session
