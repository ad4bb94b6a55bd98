"""The gateway: command line, REST API, storage, ingest pipeline — the only layer doing I/O.

It composes ``profiles``, ``conformance`` and ``mappings``.  :func:`create_app` is the
composition root of the server: one Config → one set of services → one Flask app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from gateway.config import Config
    from gateway.services import Services


def create_app(config: Config | None = None, services: Services | None = None, *, secure: bool = True) -> Flask:
    """The WSGI application (Flask's application factory): built from ``config`` (default:
    ``Config.load()``, i.e. the environment), or around ``services`` already built.
    ``secure=False`` is for the benchmark alone (see ``gateway.api.build_app``)."""
    from gateway.api import build_app
    from gateway.config import Config
    from gateway.services import Services

    return build_app(services or Services(config or Config.load()), secure=secure)
