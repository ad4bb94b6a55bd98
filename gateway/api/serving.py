"""The services of the app answering this request, for every blueprint's views and hooks.

One accessor rather than a copy in each blueprint: the routes, the authentication hooks, the
bulk export, the reports and the audit trail each read ``current_app.config["SERVICES"]``
their own way.  It lives apart from :mod:`gateway.api.routes` because the routes import the
authentication module, which needs the services too (an import cycle otherwise)."""

from __future__ import annotations

from flask import current_app

from gateway.services import Services


def services() -> Services:
    """The running app's services.  Resolved once per call through the context proxy: each
    attribute looked up through a Flask proxy costs 1.5 µs, and this runs several times a
    request."""
    return current_app._get_current_object().config["SERVICES"]
