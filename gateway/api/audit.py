"""The audit trail over HTTP: one AuditEvent recorded for every request (and for an export
file's download a second once its body has ended, :func:`_delivered`), and the read-only
``/fhir/AuditEvent`` endpoints auditors search it with.

Recording is an ``after_request`` hook on the whole app, so no route (nor a 401, 404 or 405
that matched no route) escapes it; it only gathers plain facts about the request and hands
them to ``gateway/security/audit.py``, which builds the event and buffers it.  A request the
HTTP server refuses before the app sees it is recorded by the server's worker
(:func:`record_unread`).

The AuditEvent routes are served from the audit table, never the resource table.  They are
static rules (``/fhir/AuditEvent…``), which werkzeug prefers to the generic ``/fhir/<kind>``
rules whatever the registration order; every method they do not serve is claimed here too and
refused with 405, because werkzeug would otherwise hand a POST /fhir/AuditEvent to the generic
create route.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import orjson
from flask import Blueprint, Flask, Request, Response, current_app, g, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from gateway.api.delivery import Delivery, Ended
from gateway.api.methods import method_refused, refusing
from gateway.api.negotiation import given_once, language, respond, search_form
from gateway.api.serving import services
from gateway.fhir.errors import FhirError
from gateway.fhir.paging import page_links
from gateway.fhir.parameters import (
    listed_types,
    refuse_nul_in,
    unsupported_parameter,
    unsupported_value,
    whole_number,
)
from gateway.messages import Worded
from gateway.search import cursor
from gateway.search.cursor import OrderColumn
from gateway.search.query import IGNORED_CONTROLS
from gateway.search.values import MAX_INSTANT, ascii_digits, date_range, format_instant, queried_date
from gateway.security.audit import (
    DELIVERY_OUTCOMES,
    TRAIL_SEARCH_PARAMETERS,
    UNREADABLE,
    AuditTrail,
    Delivered,
    RequestFacts,
    event_of,
)
from gateway.services import Services
from gateway.storage.audit_tables import AuditQuery

log = logging.getLogger("yiyang.audit")
audit = Blueprint("audit", __name__, url_prefix="/fhir")
#: every method but the ones served; claimed so that no generic route gets them
WRITES = ["POST", "PUT", "PATCH", "DELETE"]
_BUNDLE_TYPE = re.compile(rb'"type"\s*:\s*"(transaction|batch)"|<type\s+value="(transaction|batch)"')
_trail_guard = threading.Lock()
T = TypeVar("T")
SEARCH_PARAMETERS = frozenset({*TRAIL_SEARCH_PARAMETERS, "_count", "_offset", "_upto", "_after", "_sort", "_summary"})
#: the orders the trail is searched in: oldest or newest first
SORTS = ("date", "-date")
#: what an ``_after`` holds, by order: the last event shown's time recorded and place in the
#: chain, the columns the trail is ordered by
PAGE_COLUMNS = {
    sort: (OrderColumn("recorded", sort.startswith("-")), OrderColumn("seq", sort.startswith("-"))) for sort in SORTS
}
#: the forms ``date`` takes (as in every search, a year, month, day or time without an offset
#: is Beijing's)
DATE_EXAMPLES = "2026 / 2026-07 / 2026-07-01 / ge2026-07-01T08:00:00+08:00"


def install(app: Flask) -> None:
    """Record every request of ``app`` and serve its trail at /fhir/AuditEvent."""
    from gateway.masking import install_log_masking

    install_log_masking()
    app.register_blueprint(audit)
    app.after_request(record)


def trail() -> AuditTrail:
    """This app's (this worker's) buffer, made on first use so that building the app opens no
    store."""
    app = current_app._get_current_object()  # one context-proxy lookup: this runs every request
    found = app.extensions.get("yiyang.audit")
    if found is None:
        with _trail_guard:
            found = app.extensions.get("yiyang.audit")
            if found is None:
                services: Services = app.config["SERVICES"]
                found = app.extensions["yiyang.audit"] = AuditTrail(services.store)
    return found


# -- every request ---------------------------------------------------------------------------------
def record(response: Response) -> Response:
    """Buffer the facts of this request's AuditEvent.  Never fails the answer: a bug here is
    logged.  Runs on every request, so Flask's context proxies are resolved once."""
    asked, state = request._get_current_object(), g._get_current_object()
    try:
        endpoint, method, args = asked.endpoint, asked.method, asked.args
        # most reads carry no query: theirs is the one empty set, with nothing to list
        query = [(k, v) for k, v in args.items(multi=True) if k != "_format"] if args else []
        if method == "POST" and endpoint and endpoint.endswith("search"):
            query += _form(asked)
        # only a write's answer names a new id (a read's URL already holds it)
        location = None
        if method not in ("GET", "HEAD"):
            location = response.headers.get("Location") or response.headers.get("Content-Location")
        facts = RequestFacts(
            method=method,
            path=asked.path,
            endpoint=endpoint,
            view_args=asked.view_args or {},
            query=query,
            status=response.status_code,
            remote_addr=asked.remote_addr,
            principal=state.get("principal"),
            reason=state.get("audit_reason") or _reason(response),
            bundle_type=bundle_type() if endpoint == "fhir.transaction_or_batch" else None,
            location=location,
            touched=state.get("touched", ()),
            types=requested_types(args),
            entries=state.get("bundle_entries", ()),
        )
        delivery: Delivery | None = state.get("delivery")
        if delivery is not None:  # a streamed file: its delivery is recorded when it ends
            facts.request_id = uuid.uuid4().hex
            delivery.on_end(functools.partial(_delivered, trail(), facts, language()))
        trail().record(facts)
    except Exception:  # noqa: BLE001 - the client's answer stands; the failure is logged
        log.exception("audit: could not record %s %s", asked.method, asked.path)
    return response


def _delivered(found: AuditTrail, facts: RequestFacts, lang: str, ended: Ended) -> None:
    """The second event of a streamed download, for the same request (its id, its entity):
    when the body began and ended, whether it was sent whole, and how many bytes.  The first
    stays, so a worker killed mid-download still leaves the access.  Runs in the WSGI
    server's ``close()``, outside the request: a bug here is logged, never raised."""
    try:
        outcome, message_id = DELIVERY_OUTCOMES[ended.how]
        said = f"{message_id}: {Worded(message_id, sent=ended.sent).text(lang)}"
        delivered = Delivered(ended.start, ended.end, outcome, ended.sent, ended.size, said)
        found.record(replace(facts, delivery=delivered), ended.end)
    except Exception:  # noqa: BLE001 - the download is over either way; the failure is logged
        log.exception("audit: could not record the delivery of %s %s", facts.method, facts.path)


def _if_readable(read: Callable[[], T]) -> T | None:
    """What ``read`` reads of the request's body, or None when it cannot be read: a body over
    the size limit raises its 413 again when the record reads it, and the refusal is to be
    recorded still (with the facts the body would have added left out)."""
    try:
        return read()
    except HTTPException:
        return None


def _form(asked: Request) -> list[tuple[str, str]]:
    """A POST search's criteria, for its record (none when its form cannot be read)."""
    form = _if_readable(lambda: asked.form)
    return [(k, v) for k, v in form.items(multi=True) if k != "_format"] if form is not None else []


def record_unread(app: Flask | None, status: int, reason: str, address: str | None) -> None:
    """The AuditEvent of a request the HTTP server refused before ``app`` saw it (gunicorn's
    414, 431 or 400: a request line or headers over their limits, bytes that are no HTTP),
    which :func:`record` never meets: every request leaves one.  Its line and headers were not
    read, so it names no method, path or client: an anonymous request from its address,
    refused with the ``reason`` it was told."""
    if app is None or "audit" not in app.blueprints:
        return  # a worker still booting, or an app without the trail
    facts = RequestFacts(
        method="",
        path="",
        endpoint=None,
        view_args={},
        query=[],
        status=status,
        remote_addr=address,
        principal=None,
        reason=reason,
    )
    with app.app_context():
        trail().record(facts)


def _reason(response: Response) -> str | None:
    """Why a request was refused: the first issue of the OperationOutcome answer."""
    if response.status_code < 400 or response.is_streamed or not (response.mimetype or "").endswith("json"):
        return None
    try:
        found = orjson.loads(response.get_data())
        first = found["issue"][0]
        code = (first.get("details", {}).get("coding") or [{}])[0].get("code")
        words = first.get("details", {}).get("text") or first.get("diagnostics")
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return " ".join(part for part in (code, words) if part) or None


def requested_types(args: MultiDict[str, str]) -> list[str]:
    """The types the query's ``_type`` lists, read as the export's job and ``$everything`` read
    them (:func:`listed_types`): split untrimmed, ``_type=Observation, Patient`` was recorded
    with the type `` Patient``, which an auditor's ``entity-type=Patient`` did not name."""
    return [kind for value in args.getlist("_type") for kind in listed_types(value)] if args else []


def bundle_type() -> str | None:
    """A Bundle's type as its body says, None when the body does not say or cannot be read."""
    body = _if_readable(lambda: request.get_data(cache=True))
    found = _BUNDLE_TYPE.search(body) if body is not None else None
    if found is None:
        return None
    return (found.group(1) or found.group(2)).decode()


# -- the auditors' endpoints -----------------------------------------------------------------------
@audit.get("/AuditEvent")
@audit.post("/AuditEvent/_search")
def search() -> Response:
    config = services().config
    asked = list(request.args.items(multi=True))
    if request.method == "POST":
        asked += search_form()
    # the controls every answer takes (R4 http.html: _format, _pretty) are no criteria
    query = parse_query([(k, v) for k, v in asked if k not in IGNORED_CONTROLS], config.page_size, config.max_page_size)
    trail().flush()  # this worker's latest events are visible to its own auditor at once
    with services().store.reading() as tx:
        # the pages list the events up to the last one now, which their links carry as _upto:
        # every request adds events, and newest first the next page began one event further
        # back for each, repeating the last entries of the page before
        if query.upto is None:
            query = replace(query, upto=tx.audit.head()[0])
        events, total = tx.audit.search(query)
    base = config.base_url
    more = query.count > 0 and query.offset + query.count < total
    anchor = [("_upto", str(query.upto))]
    # the next page starts past the last event shown, not at an offset (see cursor.py)
    last = cursor.write(SORTS[query.newest_first], events[-1][:2]) if events else None
    links = page_links(
        f"{base}/AuditEvent",
        asked,
        query.count,
        query.offset,
        more=more,
        total=total,
        anchor=anchor,
        cursor=("_after", last),
    )
    entries = []
    for _, seq, text in events:
        event = readable(seq, text)
        entries.append({"fullUrl": f"{base}/AuditEvent/{seq}", "resource": event, "search": {"mode": "match"}})
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    if entries:  # FHIR JSON has no empty arrays
        bundle["entry"] = entries
    return respond(bundle)


@audit.get("/AuditEvent/<event_id>")
def read(event_id: str) -> Response:
    trail().flush()
    text = None
    if ascii_digits(event_id) and len(event_id) < 19:
        with services().store.reading() as tx:
            text = tx.audit.get(int(event_id))
    if text is None:
        raise FhirError(404, "http.not-found", reference=f"AuditEvent/{event_id}")
    return respond(readable(int(event_id), text))


def readable(seq: int, text: str) -> dict[str, Any]:
    """The AuditEvent of stored row ``seq``, or — the row altered into no record of ours — a
    500 saying the trail is damaged there: no incident of the gateway's to report, but an
    alteration ``yiyang audit verify`` locates, and an auditor must not be shown a guess."""
    try:
        return event_of(text)
    except UNREADABLE:
        log.warning("AuditEvent/%s is stored damaged: not a readable AuditEvent", seq)
        raise FhirError(500, "audit.event-unreadable", "AuditEvent", seq=seq) from None


@audit.route("/AuditEvent", methods=WRITES, endpoint="refuse")
@audit.route("/AuditEvent/<event_id>", methods=WRITES, endpoint="refuse")
@audit.route("/AuditEvent/<event_id>/<path:rest>", methods=["GET", *WRITES], endpoint="refuse")
@audit.route("/AuditEvent/_history", methods=["GET", *WRITES], endpoint="refuse")
@refusing
def refuse(**_path: str) -> Response:
    """The trail is append-only: written by the gateway alone, never through the API.  Its
    search and its events are read (Allow: GET, HEAD); its history and an event's sub-paths
    not at all (an empty Allow says so)."""
    raise method_refused()


#: the trail search's controls of one value: of a repeated _count or _offset the first counted
#: and of a repeated _upto the last, silently, so a page could be another than the client asked
GIVEN_ONCE = ("_count", "_offset", "_upto", "_after", "_sort", "_summary")


def parse_query(pairs: list[tuple[str, str]], page_size: int, max_page_size: int) -> AuditQuery:
    """The supported search parameters; anything else is a 400 (a silently ignored filter
    would show an auditor more, or less, than they think), and so is a control of one value
    given twice (:data:`GIVEN_ONCE`), as a history's and a search's are."""
    low: str | None = None
    high: str | None = None
    fields: dict[str, Any] = {}
    refuse_nul_in(pairs)  # the trail's search does not go through Searcher.parse
    given_once(MultiDict(pairs), GIVEN_ONCE)
    for name, value in pairs:
        if name not in SEARCH_PARAMETERS:
            raise unsupported_parameter(name, "AuditEvent", sorted(SEARCH_PARAMETERS))
        if name == "date":
            start, end = _date_range(value)
            low = start if low is None or (start and start > low) else low
            high = end if high is None or (end and end < high) else high
        elif name in _MATCHED:
            # commas separate alternatives and a repeated parameter must match too, as in
            # every FHIR search: "outcome=4,8" was compared whole and matched nothing, and a
            # repeated "entity" replaced the one before it
            field, normal = _MATCHED[name]
            fields[field] = (*fields.get(field, ()), tuple(normal(piece) for piece in value.split(",")))
        elif name == "_sort":
            if value not in SORTS:
                raise unsupported_value(name, value, SORTS)
            fields["newest_first"] = value == "-date"
        elif name == "_summary" and value != "count":
            raise unsupported_value(name, value, ["count"])
    given = dict(pairs)
    count = min(whole_number(given, "_count", page_size), max_page_size)
    if ("_summary", "count") in pairs:  # the total alone, as a search of the archive answers it
        count = 0
    offset = whole_number(given, "_offset", 0)
    upto = whole_number(given, "_upto", -1)
    fields["upto"] = None if upto < 0 else upto
    if "_after" in given:
        fields["after"] = _after_event(given["_after"], SORTS[fields.get("newest_first", False)])
    return AuditQuery(recorded_from=low, recorded_before=high, count=count, offset=offset, **fields)


def _after_event(token: str, sort: str) -> tuple[str, int]:
    """The (recorded, seq) an ``_after`` of a trail page in ``sort`` order carries; 400 for
    any text a next link of that order does not give."""
    found = cursor.read(token, sort, PAGE_COLUMNS[sort])
    if found is None:
        example = cursor.write(sort, ["2026-12-01T00:00:00.000000Z", 1])
        raise FhirError(400, "http.not-a-page-cursor", "_after", name="_after", value=token, example=example)
    return cast(tuple[str, int], found)  # as PAGE_COLUMNS read them: an instant, then a whole number


#: the parameters matched against a column of the trail: the AuditQuery field and the value
#: as the column holds it (a token's code without its system, an entity's ``Type/id``)
_MATCHED = {
    "agent": ("agent", lambda value: value.rsplit("|", 1)[-1]),
    "entity-type": ("entity_type", lambda value: value.rsplit("|", 1)[-1]),
    "entity": ("entity", lambda value: "/".join(value.rstrip("/").split("/")[-2:])),
    "outcome": ("outcome", lambda value: value.rsplit("|", 1)[-1]),
}
_PREFIXES = ("eq", "ge", "gt", "le", "lt")


def _date_range(value: str) -> tuple[str | None, str | None]:
    """``date=[prefix]VALUE`` → (inclusive lower bound, exclusive upper bound) in the store's
    instant form.  The value is read by :func:`date_range`, as every other search reads one, so
    a day is a Beijing day and a time without an offset Beijing time."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    try:
        first, last = date_range(queried_date(text))
    except ValueError as exc:  # its message is English: the refusal names the forms instead
        raise FhirError(400, "http.not-a-date", "date", name="date", value=value, examples=DATE_EXAMPLES) from exc
    after = _after(last)
    return {
        "eq": (first, after),
        "ge": (first, None),
        "gt": (after, None),
        "le": (None, after),
        "lt": (None, first),
    }[prefix]


def _after(last: str) -> str:
    """The instant one microsecond after ``last``, the store's finest step: the trail's upper
    bound is exclusive where date_range's is inclusive.  The last instant there is stays itself
    (no event is recorded at the end of year 9999)."""
    if last == MAX_INSTANT:
        return last
    return format_instant(datetime.strptime(last, "%Y-%m-%dT%H:%M:%S.%f%z") + timedelta(microseconds=1))
