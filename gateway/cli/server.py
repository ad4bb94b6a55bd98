"""``yiyang serve``: the FHIR server, through gunicorn with N worker processes; ``yiyang mllp``:
the HL7 v2 listener.

``yiyang serve [--host 127.0.0.1] [--port 8080] [--database URL] [--workers N] [--demo]``

Before any worker starts, the master brings the store's schema up to date and, with
``--demo``, loads the package's valid examples and every shipped sample export (both
idempotent: running it again adds nothing), and builds the validator and settles it
(``Services.settle``).  Each worker then builds its own services around that validator (a
database connection must not cross a fork; the validator holds none).  Ctrl-C and SIGTERM
stop gunicorn gracefully: requests in flight finish (a ``$ingest`` before its next record,
answering 503: gateway/cli/workers.py), then the workers exit.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

from gateway.cli.common import EXIT_OK, add_database, add_language, config_of, port, positive, usage
from gateway.config import Config
from gateway.storage import displayable_url

if TYPE_CHECKING:
    from conformance.validator import Validator
    from profiles.registry import Registry


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="cli.help.serve")
    serve.add_argument("--host", default=None, help="cli.help.host")
    serve.add_argument("--port", type=port, default=None, help="cli.help.serve.port")
    add_database(serve)
    serve.add_argument("--workers", type=positive, default=None, help="cli.help.serve.workers")
    serve.add_argument("--demo", action="store_true", help="cli.help.serve.demo")
    add_language(serve)
    serve.set_defaults(run=run_serve)
    register_mllp(commands)


def run_serve(args: argparse.Namespace, out: IO[str]) -> int:
    # --demo turns on client_secret_basic: development only, and only when asked for
    config = config_of(
        args, host=args.host, port=args.port, workers=args.workers, allow_client_secret=True if args.demo else None
    )
    _can_listen(args, config.host, config.port)
    if args.demo and not config.population_file:
        from dataclasses import replace

        from gateway.demo import DEMO_POPULATION

        config = replace(config, population_file=str(DEMO_POPULATION))  # $evaluate-measure gets its rates
    from gateway.services import Services

    services = Services(config)
    secret = None
    try:
        services.store  # noqa: B018 - opening it applies the migrations, once, before any fork
        if args.demo:
            from gateway.demo import DEMO_CLIENT, load_demo, register_demo_client

            for line in load_demo(services, args.lang):
                out.write(line + "\n")
            secret = register_demo_client(services)
            if secret is None:
                raise usage(args, "cli.serve.demo-client-revoked", id=DEMO_CLIENT)
        services.settle()  # the validator, once for every worker (no connection in it)
    finally:
        services.close()
    _announce(config, out, args.lang, secret)
    out.flush()
    _Gunicorn(config, services.registry, services.validator).run()
    return EXIT_OK


def _can_listen(args: argparse.Namespace, host: str, port: int) -> None:
    """A usage error (exit 2) when ``host:port`` cannot be listened on (in use, not this
    host's address), said before the store is opened: gunicorn retried for five seconds,
    logging in English, and exited 1, the status of invalid data.  Bound as gunicorn binds
    (``SO_REUSEADDR``), then let go for it."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise usage(args, "cli.cannot-listen", host=host, port=port, reason=error.strerror or error) from error


def _announce(config: Config, out: IO[str], lang: str, secret: str | None = None) -> None:
    from gateway.messages import text

    out.write(text("cli.serve.base", lang, {"url": config.base_url}) + "\n")
    out.write(text("cli.serve.store", lang, {"url": displayable_url(config.database_url)}) + "\n")
    if secret is None:
        out.write(text("cli.serve.token-needed", lang) + "\n")
        if config.allow_client_secret:  # YIYANG_ALLOW_CLIENT_SECRET, set by hand
            out.write(
                "!! 开发模式：已启用 client_secret_basic（YIYANG_ALLOW_CLIENT_SECRET），切勿用于生产环境！\n"
                "!! DEVELOPMENT MODE: client_secret_basic is enabled (YIYANG_ALLOW_CLIENT_SECRET). "
                "NEVER use this in production!\n"
            )
        return
    _announce_demo_client(config, out, secret)


def _announce_demo_client(config: Config, out: IO[str], secret: str) -> None:
    """The development client, loudly in both languages: the secret flow and an all-powerful
    client must never be mistaken for a production setup."""
    from gateway.demo import DEMO_CLIENT, DEMO_ORGANIZATION, DEMO_ROLE, DEMO_SCOPES

    base = config.base_url
    bar = "!" * 78
    out.write(
        f"{bar}\n"
        "!! 开发模式：已启用 client_secret_basic，并注册了拥有全部权限的演示客户端。切勿用于生产环境！\n"
        "!! DEVELOPMENT MODE: client_secret_basic is enabled and an all-powerful demo client is\n"
        "!! registered. NEVER use this in production!\n"
        f"!! client {DEMO_CLIENT}  organisation {DEMO_ORGANIZATION}  role {DEMO_ROLE}  scope {DEMO_SCOPES}\n"
        f"!! secret (shown once; a restart makes a new one) {secret}\n"
        f"{bar}\n"
        "获取令牌 / get a token:\n"
        f"  TOKEN=$(curl -s -u '{DEMO_CLIENT}:{secret}' -d grant_type=client_credentials "
        f"-d 'scope={DEMO_SCOPES}' {config.token_url} | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        "使用令牌 / use it:\n"
        f"  curl -s '{base}/Patient?name=张' -H \"Authorization: Bearer $TOKEN\" -H 'Accept: application/fhir+json'\n"
    )


class _Gunicorn:
    """gunicorn run in-process with our app factory (no config file, no import strings)."""

    def __init__(self, config: Config, registry: Registry, validator: Validator) -> None:
        from gunicorn.app.base import BaseApplication

        from gateway.cli.workers import OutcomeSyncWorker, OutcomeThreadWorker

        factory_config = config

        class Application(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                self.cfg.set("bind", factory_config.address)
                self.cfg.set("workers", factory_config.workers)
                self.cfg.set("threads", factory_config.threads)
                threaded = factory_config.threads > 1
                self.cfg.set("worker_class", OutcomeThreadWorker if threaded else OutcomeSyncWorker)
                self.cfg.set("accesslog", None)
                self.cfg.set("timeout", factory_config.worker_timeout)
                self.cfg.set("graceful_timeout", factory_config.graceful_timeout)
                # the longest request line gunicorn takes (its default is half): a search by a
                # hundred ids fits; beyond it the worker answers 414 before the gateway sees it
                self.cfg.set("limit_request_line", 8190)
                self.cfg.set("proc_name", "yiyang")

            def load(self) -> Any:
                """Runs in each worker after the fork: its services are its own (no connection
                crosses a fork) but for the master's settled registry and validator."""
                from gateway import create_app
                from gateway.services import Services

                app = create_app(services=Services(factory_config, registry, validator))
                app.config["SERVICES"].settle()
                return app

        self.application = Application()

    def run(self) -> None:
        from gateway.cli.workers import Arbiter

        sys.argv = sys.argv[:1]  # gunicorn reads sys.argv; ours are not its options
        Arbiter(self.application).run()  # BaseApplication.run, but with a master Ctrl-C stops gracefully


def register_mllp(commands: Any) -> None:
    mllp = commands.add_parser("mllp", help="cli.help.mllp")
    mllp.add_argument("--host", default="127.0.0.1", help="cli.help.host")
    mllp.add_argument("--port", type=port, default=2575, help="cli.help.mllp.port")
    mllp.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="ADDRESS=CLIENT",
        help="cli.help.mllp.peer",
    )
    add_database(mllp)
    add_language(mllp)
    mllp.set_defaults(run=run_mllp)


def run_mllp(args: argparse.Namespace, out: IO[str]) -> int:
    import signal
    import threading

    from gateway.messages import text
    from gateway.mllp import MllpServer
    from gateway.services import Services

    config = config_of(args)
    for peer in args.peer:
        address, _, client = peer.partition("=")
        if not address.strip() or not client.strip():
            raise usage(args, "cli.bad-peer", peer=peer)
    if args.peer:
        config = replace(config, mllp_peers=" ".join([config.mllp_peers, *args.peer]).strip())
    if not config.mllp_peer_clients:
        out.write(text("cli.mllp.no-sender", args.lang) + "\n")
    services = Services(config)
    for warning in peer_warnings(services, args.lang):
        out.write(warning + "\n")
    try:
        server = MllpServer(services, args.host, args.port)
    except OSError as error:  # the port is taken, the address not this host's …
        services.close()
        raise usage(
            args, "cli.cannot-listen", host=args.host, port=args.port, reason=error.strerror or error
        ) from error
    # SIGTERM stops like Ctrl-C: the listener closes and the process exits.  A message caught
    # mid-commit is rolled back and never acknowledged, so its sender resends it: nothing is
    # lost and nothing is written twice (the ledger knows a message that did land)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    out.write(f"MLLP {args.host}:{server.server_address[1]} → {displayable_url(services.config.database_url)}\n")
    out.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        services.close()
    return EXIT_OK


def peer_warnings(services: Any, lang: str) -> list[str]:
    """What is wrong with the registered senders: a client not registered (or revoked), whose
    every message would be refused (AR, unknown sender), or an address that is none.  Said
    when the listener starts rather than when the hospital calls; it still starts (a client
    may be registered later)."""
    import ipaddress

    from gateway.messages import text

    warnings = []
    with services.store.reading() as tx:
        for address, client in sorted(services.config.mllp_peer_clients.items()):
            words = {"address": address, "client": client}
            try:
                ipaddress.ip_address(address)
            except ValueError:
                warnings.append(text("cli.mllp.peer-not-an-address", lang, words))
            row = tx.security.client(client)
            if row is None or row.status != "active":
                warnings.append(text("cli.mllp.peer-unknown-client", lang, words))
    return warnings
