"""The gateway's one configuration: defaults here, then ``YIYANG_*`` environment variables,
then what the caller (a command-line option, a test) sets explicitly.

Nothing deeper in the gateway reads the environment; it receives a :class:`Config`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from gateway.messages import Worded
from gateway.storage import SQLITE_BUSY_TIMEOUT_SECONDS

DEFAULT_DATA_DIR = Path("yiyang-data")
#: what an invalid write gets: refused (422), or stored with its issues reported
VALIDATION_MODES = ("reject", "warn")
#: the buffers a worker writes to the store from threads of their own (gateway/batch_writer.py):
#: the audit trail and the exchange log
BUFFER_WRITERS = 2
#: the fewest connections a store holds: the MLLP listener's connection threads take turns on
#: them, however few request threads the configuration names
FEWEST_CONNECTIONS = 4


@dataclass(frozen=True)
class Config:
    #: sqlite:///PATH (embedded default) or postgresql://…
    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR / 'archive.sqlite'}"
    #: seconds a SQLite connection waits for another process's lock on the database before it
    #: fails with "database is locked" (the store's own default: why it is what it is)
    sqlite_busy_timeout_seconds: int = SQLITE_BUSY_TIMEOUT_SECONDS
    #: canonical base of the provincial package (a province publishing under its own domain)
    canonical_base: str = "http://fhir.yiyang.cn"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    #: request threads per worker process (gunicorn's gthread worker when above 1): a thread
    #: waiting for the database lets another one use the processor
    threads: int = 1
    #: seconds a worker process may go without a sign of life before gunicorn's master kills
    #: and replaces it (one stuck holding the interpreter); a request may take longer
    worker_timeout: int = 30
    #: seconds a worker told to stop (SIGTERM, Ctrl-C) has to finish its requests before
    #: gunicorn's master kills it (a ``$ingest`` ends at its next record): longer for a request
    #: that may wait that long for SQLite's lock (``sqlite_busy_timeout_seconds``)
    graceful_timeout: int = 10
    #: what an invalid write gets: "reject" (422) or "warn" (stored, issues returned)
    validation: str = "reject"
    #: the base URL clients see, when a proxy in front changes it (default http://HOST:PORT/fhir)
    public_base: str | None = None
    #: largest request body, JSON document or legacy file accepted (bytes)
    max_bytes: int = 64 * 1024 * 1024
    #: search page size when _count is absent, and the largest _count honoured
    page_size: int = 20
    max_page_size: int = 1000
    #: language of messages when the client does not ask (Accept-Language)
    language: str = "zh-CN"
    #: where Bulk Data $export jobs write their NDJSON files, one owner-only folder per job
    export_dir: str = str(DEFAULT_DATA_DIR / "exports")
    #: an export job whose worker has not reported for this long is failed (the worker died)
    export_stale_seconds: int = 60
    #: a finished export job and its files are kept this long, then removed (health data must
    #: not wait on disk for a client that never deletes its job)
    export_expiry_seconds: int = 24 * 3600
    #: export jobs in progress at once in the whole gateway (every worker), and of one client:
    #: each holds a thread and up to two database connections for as long as it runs, so a
    #: kick-off beyond either is answered 429
    export_max_jobs: int = 8
    export_max_jobs_per_client: int = 2
    #: accept client_secret_basic at the token endpoint: development only (``serve --demo``)
    allow_client_secret: bool = False
    #: requests per second one client may make to one worker (token bucket; 429 beyond it)
    rate_limit_per_second: int = 200
    #: token requests per second one address may make to one worker: the token endpoint is
    #: open to anyone and each request verifies a signature (or a secret's scrypt hash)
    token_rate_limit_per_second: int = 50
    #: reverse proxies in front of the gateway whose ``X-Forwarded-For`` is believed (werkzeug's
    #: ProxyFix): the audit trail and the token endpoint's limit per address then see the
    #: client's address, the last this many proxies wrote.  0 believes no such header, which any
    #: client may send: a gateway reached directly must keep it so
    trusted_proxies: int = 0
    #: how long a worker trusts that a client is active before reading its status again; a
    #: revoked client's tokens stop working within this time (0: read on every request)
    client_status_ms: int = 1000
    # -- limits on input, one place for every path (see gateway/limits.py) ------------------
    #: a legacy file read as a stream (CSV, NDJSON, HL7 v2, .xlsx on disk): this bounds time only
    file_bytes: int = 1024 * 1024 * 1024
    #: a legacy file read whole (.json, CDA .xml)
    document_bytes: int = 8 * 1024 * 1024
    #: one legacy record (a row, a line, a message) and one value in it
    record_bytes: int = 8 * 1024 * 1024
    cell_chars: int = 1024 * 1024
    #: the uncompressed size of an .xlsx, checked before it is parsed (decompression bombs)
    xlsx_uncompressed_bytes: int = 128 * 1024 * 1024
    #: nesting of JSON objects and arrays, in a legacy record and in a FHIR instance
    json_depth: int = 64
    #: entries of one Bundle validated (larger exchanges belong in NDJSON)
    bundle_entries: int = 5_000
    #: contained resources of one resource
    contained: int = 10_000
    #: codes a ValueSet may expand to before a binding is reported unchecked
    expansion_codes: int = 200_000
    # -- validation ---------------------------------------------------------------------------
    #: URL prefixes (space- or comma-separated) whose extensions may be used without a loaded
    #: definition: information instead of an error, as the reference validator's -extension
    extension_domains: str = ""
    # -- HL7 v2 over MLLP (gateway/mllp.py) ----------------------------------------------------
    #: the senders MLLP accepts, each a peer address and the registered client it acts as
    #: ("10.0.0.5=his-zz1, 10.0.0.6=his-zz2"): MLLP carries no credentials of its own
    mllp_peers: str = ""
    #: connections the listener serves at once (each holds a thread); more are closed at once
    mllp_max_connections: int = 64
    #: seconds a connection may stay silent before it is closed (interface engines reconnect)
    mllp_idle_seconds: int = 600
    #: connections open at once from addresses registered as no sender (each is answered AR
    #: once), and the messages a second each such address is answered (and audited) at most
    mllp_stranger_connections: int = 4
    mllp_stranger_rate: int = 1
    # -- exchanges and the auditors' report (gateway/exchanges.py) --------------------------
    #: days an exchange record is kept before it is purged (0 keeps them for ever)
    exchange_retention_days: int = 365
    #: the most failing exchanges one ``/reports`` request or ``yiyang report`` may list (its
    #: ``limit``): a limit of millions ran a worker out of memory; a larger one is refused
    #: (400, exit 2)
    report_max_limit: int = 10_000
    #: the most issues one ``/reports`` download (CSV, xlsx, JSON, JUnit) or ``yiyang report``
    #: file lists of its failing exchanges, errors first and newest exchanges first; it says
    #: how many it left out.  All of a thousand exchanges' 10,000 issues each took a gigabyte
    #: of one worker's memory
    report_max_issues: int = 50_000
    # -- indicators (gateway/measures/) -------------------------------------------------------
    #: the resident population CSV that $evaluate-measure divides by (empty: rates over the
    #: resident population are answered without a denominator, and say so)
    population_file: str = ""

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Config:
        """Defaults, overridden by ``YIYANG_<FIELD>`` variables, overridden by ``explicit``
        values that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = f"YIYANG_{field.name.upper()}"
            raw = environ.get(name)
            if raw is not None:
                values[field.name] = _parsed(name, raw, field.type)
        values.update({k: v for k, v in explicit.items() if v is not None})
        return replace(cls(), **values)

    def __post_init__(self) -> None:
        # a misspelt mode must not quietly turn "reject invalid writes" into "accept them"
        if self.validation not in VALIDATION_MODES:
            modes = ", ".join(VALIDATION_MODES)
            raise ConfigError("config.unknown-mode", name="YIYANG_VALIDATION", modes=modes, value=self.validation)
        # no expiry would keep health data for ever, an instant one would remove a manifest
        # before its client could read it; a limit of no jobs would refuse every export; a
        # worker timeout of none would leave a stuck worker stuck, a stop grace of none kill
        # every request in flight; no wait for SQLite's lock would fail a writer whenever
        # another process writes
        positive = (
            "export_expiry_seconds",
            "export_max_jobs",
            "export_max_jobs_per_client",
            "worker_timeout",
            "graceful_timeout",
            "sqlite_busy_timeout_seconds",
            "report_max_limit",
            "report_max_issues",
        )
        for name in positive:
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError("config.not-positive", name=f"YIYANG_{name.upper()}", value=value)
        # no count of proxies below none: a negative one would name no hop of the header
        if self.trusted_proxies < 0:
            raise ConfigError("config.negative", name="YIYANG_TRUSTED_PROXIES", value=self.trusted_proxies)

    @property
    def store_connections(self) -> int:
        """The database connections one worker process's store may hold at once: one for each
        request thread and one for each writer flushing a buffer on a thread of its own (the
        audit trail's and the exchange log's), and never fewer than :data:`FEWEST_CONNECTIONS`.
        Fewer, and a request waits for a connection; export jobs read through stores of their
        own, bounded by the job limits."""
        return max(self.threads + BUFFER_WRITERS, FEWEST_CONNECTIONS)

    @property
    def token_url(self) -> str:
        """The token endpoint, as clients address it (the ``aud`` of their assertions)."""
        return f"{self.base_url}/token"

    @property
    def extension_domain_list(self) -> tuple[str, ...]:
        return tuple(part for part in self.extension_domains.replace(",", " ").split() if part)

    @property
    def mllp_peer_clients(self) -> dict[str, str]:
        """Peer address → client id, from ``mllp_peers``."""
        pairs = (part.partition("=") for part in self.mllp_peers.replace(",", " ").split())
        return {address.strip(): client.strip() for address, _, client in pairs if address and client}

    @property
    def address(self) -> str:
        """``host:port`` as a URL and gunicorn's ``bind`` write it: an IPv6 host in brackets
        (``[::1]:8080``; ``::1:8080`` was no address)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return (self.public_base or f"http://{self.address}/fhir").rstrip("/")


def configured_language(environ: Mapping[str, str] | None = None) -> str:
    """The ``language`` setting alone: the command line's parser is built before the whole
    configuration may be read (a bad other setting must not stop ``--help``)."""
    environ = os.environ if environ is None else environ
    name = "YIYANG_LANGUAGE"
    return Config.load({name: environ[name]} if name in environ else {}).language


def database_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``YIYANG_DATABASE_URL`` names the store: ``ingest`` and ``quarantine replay``
    then write and read it, as every command does, rather than a folder's own store."""
    environ = os.environ if environ is None else environ
    return "YIYANG_DATABASE_URL" in environ


class ConfigError(Worded, ValueError):
    """A setting the gateway cannot start with, naming the variable (a usage error, exit 2),
    worded by whoever reports it: the command line in its ``--lang``, a log in English."""


def _parsed(name: str, raw: str, kind: Any) -> Any:
    """An environment variable's text as the field's type (``true``/``1``/``yes`` for a bool)."""
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError("config.not-a-whole-number", name=name, value=raw) from None
    if kind == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw
