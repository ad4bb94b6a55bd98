"""Every HTTP request as an exchange record (see ``gateway/exchanges.py``).

A ``before_request`` hook activates a fresh :class:`Collector`, into which the repository notes
each resource it validates and a route the resources of each Bundle it answers; an
``after_request`` hook adds what only HTTP knows — who asked, the interaction, the status, the
resource a read returned, the OperationOutcome of a refusal — and hands the record to this
worker's :class:`ExchangeLog`.  A request refused before the first hook ran (a missing token)
is recorded all the same, with an empty collector.

The hooks do no database work: the log appends in batches on its own thread.
"""

from __future__ import annotations

import logging
from functools import partial

import orjson
from flask import Flask, Response, current_app, g, request

from gateway.api.audit import bundle_type, requested_types
from gateway.exchanges import Collector, ExchangeLog, Later, Party, activate, deactivate
from gateway.interactions import BY_METHOD, Interaction
from gateway.security.audit import ANONYMOUS, FIXED_TYPES, INTERACTIONS
from gateway.security.principal import Principal
from gateway.services import Services

log = logging.getLogger("yiyang.exchanges")
#: answers that carry the one resource their URL names (Bundle answers note theirs: routes.py)
_SINGLE = frozenset({"fhir.read", "fhir.vread"})
#: the parties seen lately (a few clients × endpoints): made once, not per request
_parties: dict[tuple[str, str, str, str], Party] = {}
_PARTIES = 4096


def install(app: Flask) -> None:
    """Record every request of ``app`` as an exchange, into a buffer of its own (which opens
    the store only when it first writes)."""
    services: Services = app.config["SERVICES"]
    buffer = ExchangeLog(lambda: services.store, services.config.exchange_retention_days)
    app.extensions["yiyang.exchanges"] = buffer
    app.before_request(start)
    app.after_request(partial(record, buffer))
    app.teardown_request(stop)


def exchange_log() -> ExchangeLog:
    """This app's (this worker's) buffer."""
    return current_app.extensions["yiyang.exchanges"]


def start() -> None:
    collector = Collector()
    found = g._get_current_object()  # one proxy lookup, not one per attribute
    found.exchange = collector
    found.exchange_token = activate(collector)


def stop(_: BaseException | None) -> None:
    """The request's collector must not outlive it, whatever ended the request (teardown
    runs when after-request hooks do not): the thread serves the next request, and a
    collector left active would take its notes, or an ingest's."""
    token = g._get_current_object().pop("exchange_token", None)  # one proxy lookup: this runs every request
    if token is not None:
        deactivate(token)


def record(buffer: ExchangeLog, response: Response) -> Response:
    """Buffer this request's exchange record.  Never fails the answer: a bug here is logged.
    Runs on every request, so Flask's context proxies are resolved once."""
    state, asked = g._get_current_object(), request._get_current_object()
    try:
        collector: Collector = state.pop("exchange", None) or Collector()
        endpoint = asked.endpoint or ""
        kind = (asked.view_args or {}).get("kind") or FIXED_TYPES.get(endpoint, "")
        collector.carried(kind, 0)
        for other in requested_types(asked.args):
            collector.carried(other, 0)
        if response.status_code >= 400:
            _refusal(collector, response)
        elif endpoint in _SINGLE:
            collector.carried(kind, 1)
        party = _party(state.get("principal"), interaction(endpoint, asked.method))
        buffer.record(Later(collector, party, response.status_code))
    except Exception:  # noqa: BLE001 - the client's answer stands; the failure is logged
        log.exception("exchanges: could not record %s %s", asked.method, asked.path)
    return response


def _party(principal: Principal | None, named: str) -> Party:
    """The party of a REST exchange, made once per client and interaction."""
    client, organization, role = (
        (principal.client_id, principal.organization, principal.role) if principal else (ANONYMOUS, "", ANONYMOUS)
    )
    key = (client, organization, role, named)
    found = _parties.get(key)
    if found is None:
        if len(_parties) >= _PARTIES:
            _parties.clear()
        found = _parties[key] = Party(client, organization, role, "rest", named)
    return found


def interaction(endpoint: str, method: str) -> str:
    """The interaction's name, in the audit trail's vocabulary (restful-interaction codes and
    operation names)."""
    if endpoint.startswith("reports."):
        return "report"
    if endpoint == "fhir.transaction_or_batch":
        return bundle_type() or "transaction"
    found = INTERACTIONS.get(endpoint) or BY_METHOD.get(method) or Interaction(None, "E")
    if found.login:
        return "login"
    return found.operation or found.code or method.lower()


def _refusal(collector: Collector, response: Response) -> None:
    """The OperationOutcome of a refused request, as its reasons (:meth:`Collector.refusal`):
    worded again in both languages from the refusal itself, as the auditors read it (in full,
    where the client was told less: ``FhirError.audited``); a body alone (a refusal made
    elsewhere) is taken as it reads."""
    refused = g.get("refusal")
    if refused is not None:
        collector.refusal(refused.audited("zh-CN")["issue"], refused.audited("en")["issue"], response.status_code)
        return
    if response.is_streamed or not (response.mimetype or "").endswith("json"):
        return
    try:
        issues = orjson.loads(response.get_data())["issue"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return
    found = [issue for issue in issues if isinstance(issue, dict)] if isinstance(issues, list) else []
    collector.refusal(found, found, response.status_code)
