"""gunicorn's workers, answering what gunicorn refuses itself as the gateway answers
everything: with a FHIR OperationOutcome, never gunicorn's HTML page.

gunicorn reads the request line and headers before the gateway sees a request, and refuses a
line over ``limit_request_line`` (a search of a thousand ids in the query), headers over their
limits or bytes that are no HTTP with a page of its own (``text/html``), which a FHIR client
cannot read.  These workers keep gunicorn's judgement and logging, and word the answer from the
gateway's message catalog in its configured language.

The sync worker's heart beats while it answers a request, as the threaded worker's does:
gunicorn's master kills a worker that has not shown a sign of life for ``timeout`` seconds,
and the sync worker showed one only between requests, so a ``$ingest`` of 3,000 records
(0.5 MB) was killed after 30 s and answered 500, with 2,167 of them stored.  A client silent
on its connection for ``timeout`` seconds is cut off by the socket's own timeout instead, by
either worker.

They, and the :class:`Arbiter`, also take Ctrl-C as gunicorn takes SIGTERM: gracefully.
gunicorn's Ctrl-C is its "quick shutdown", a ``sys.exit`` raised in each worker wherever it
is (the terminal signals the whole process group, the master signals its workers again): a
create caught mid-request was answered 500, and one caught after its commit told its client
that what was stored had failed.
"""

from __future__ import annotations

import signal
import socket
import struct
import sys
import threading
import time
import uuid
from http import HTTPStatus
from typing import Any

import orjson
from gunicorn import arbiter, util
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from gateway.api.audit import record_unread
from gateway.api.auth import NO_STORE, SECURITY_HEADERS
from gateway.fhir.errors import FhirError
from gateway.messages import text


def refusal(exc: BaseException, limits: Any) -> FhirError:
    """What a request gunicorn could not read answers: 414 for a request line over its limit
    (RFC 9110 §15.5.15), 431 for headers over theirs (RFC 6585), 400 for anything else that is
    no HTTP, 500 (an incident) for a failure of the server itself."""
    if isinstance(exc, errors.LimitRequestLine):
        return FhirError(414, "http.request-line-too-long", limit=limits.limit_request_line)
    if isinstance(exc, errors.LimitRequestHeaders):
        return FhirError(
            431, "http.headers-too-large", size=limits.limit_request_field_size, count=limits.limit_request_fields
        )
    if isinstance(exc, errors.ParseException):
        return FhirError(400, "http.malformed-request")
    return FhirError(500, "http.internal", incident=uuid.uuid4().hex[:12])


def response(error: FhirError, language: str) -> bytes:
    """The whole HTTP answer, closing the connection (gunicorn does not read on after such a
    request: what follows it on the socket cannot be told from the request's own bytes)."""
    body = orjson.dumps(error.outcome(language))
    headers = [
        ("Content-Type", "application/fhir+json; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
        *SECURITY_HEADERS,
        *NO_STORE,
    ]
    head = f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("latin-1") + b"\r\n" + body


#: how long a threaded worker's thread may keep the interpreter lock while another waits for
#: it, in seconds (Python's default: 5 ms).  The worker's loop, woken by a new request, and a
#: request thread whose statement has returned each wait for whichever thread is computing to
#: let go, up to this long, at every such hand-off of a request.  Measured in turns against
#: 5 ms (SQLite, 2 workers of 2 threads, a loaded machine): reads 361 -> 515/s, searches by
#: identifier 478 -> 675/s, creates 74 -> 100/s, each with less server CPU a request
SWITCH_INTERVAL_S = 0.001


def time_out(sock: socket.socket, seconds: int) -> None:
    """Bound each read and write of a worker's connection to ``seconds`` with the kernel's own
    timeouts (``SO_RCVTIMEO``, ``SO_SNDTIMEO``), the socket left blocking.  Python's timeout
    (``settimeout``) polls the socket before every read and write, and each poll lets go of the
    interpreter lock: under gthread workers, three hand-offs of the lock between request threads
    a request, which made a secured read's server CPU grow by a quarter against an open one
    (docs/benchmarks.md).  The kernel's timeout ends such a read or write with ``EAGAIN``, a
    :class:`BlockingIOError`, where Python's raised a :class:`TimeoutError`."""
    limit = struct.pack("ll", seconds, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)


class _OutcomeErrors:
    """Mixed into a gunicorn worker: its ``handle_error`` answers an OperationOutcome."""

    cfg: Any
    log: Any
    wsgi: Any

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        error = refusal(exc, self.cfg)
        if error.status == 500:
            self.log.exception("incident %s: %s", error.params["incident"], getattr(req, "uri", "(no URI read)"))
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        config = getattr(self.wsgi, "config", {}).get("YIYANG")
        language, proxies = (config.language, config.trusted_proxies) if config else ("zh-CN", 0)
        try:
            util.write_nonblock(client, response(error, language))
        except OSError:
            self.log.debug("Failed to send error message.")
        if error.status != 500:  # a 500 fails a request the app had taken, which its own hook records
            self._audit(error, language, addr, proxies)

    def _audit(self, error: FhirError, language: str, addr: Any, proxies: int) -> None:
        """The refused request's AuditEvent (:func:`~gateway.api.audit.record_unread`), worded
        as its answer was, from its peer's address.  Behind ``proxies`` trusted proxies
        (YIYANG_TRUSTED_PROXIES) the peer is a proxy and the client's address is in a header
        gunicorn did not read: the event names no address, as the trail's other events name
        the client's, and its reason says which proxy forwarded it."""
        reason = f"{error.message_id} {text(error.message_id, language, error.params)}"
        peer = (addr or ("",))[0] or None
        if proxies and peer:
            reason += f"; {text('audit.unread-via-proxy', language, {'proxy': peer})}"
            peer = None
        record_unread(self.wsgi, error.status, reason, peer)


class _GracefulInterrupt:
    """Mixed into a gunicorn worker: SIGINT finishes the requests in flight, as SIGTERM does,
    and either tells the app's services the worker is stopping (``Services.stopping``).

    gunicorn's master kills a worker still busy ``graceful_timeout`` seconds after the signal:
    a ``$ingest`` of thousands of records was killed mid-file, its committed batches stored
    with no AuditEvent and no exchange record of the request (both are written once the
    request ends).  Told, it ends before its next record and answers 503, so the request is
    recorded as any other is and the worker exits in time."""

    wsgi: Any

    def init_signals(self) -> None:
        super().init_signals()  # type: ignore[misc]
        signal.signal(signal.SIGINT, self.handle_exit)

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)  # type: ignore[misc]
        # no app yet when the signal comes while the worker boots: nothing to tell
        services = getattr(getattr(self, "wsgi", None), "config", {}).get("SERVICES")
        if services is not None:
            services.stopping.set()


class OutcomeSyncWorker(_GracefulInterrupt, _OutcomeErrors, SyncWorker):
    """gunicorn's sync worker (one request at a time per process), its heart beating from a
    thread of its own: a worker stuck holding the interpreter is still found (the thread
    cannot run), one answering a long request is not killed.

    The master's kill was also what ended a client silent on its connection (half a request
    line, a body that never comes, an answer it never reads): gunicorn reads and writes the
    sync worker's socket blocking, for ever.  So the socket waits ``timeout`` seconds at most
    for each read or write: a silent client is cut off as before, a long request is not."""

    def run(self) -> None:
        threading.Thread(target=self._beat, name="yiyang-heartbeat", daemon=True).start()
        super().run()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        time_out(client, self.cfg.timeout)  # accept() made it blocking
        super().handle(listener, client, addr)

    def _beat(self) -> None:
        while self.alive:
            self.notify()
            time.sleep(self.timeout / 2)  # gunicorn gives a worker half the master's timeout


class OutcomeThreadWorker(_GracefulInterrupt, _OutcomeErrors, ThreadWorker):
    """gunicorn's gthread worker (``--threads`` above 1).  A thread reads its connection
    blocking once it is readable, and the worker's main loop beats whatever its threads do:
    so each connection waits ``timeout`` seconds at most for a read or write, as the sync
    worker's, and a client silent half-way through a request no longer holds a thread.

    Its interpreter hands the lock between threads every :data:`SWITCH_INTERVAL_S`."""

    def init_process(self) -> None:
        sys.setswitchinterval(SWITCH_INTERVAL_S)  # this process's alone: the worker is forked
        super().init_process()

    def handle(self, conn: Any) -> Any:
        time_out(conn.sock, self.cfg.timeout)  # conn.init() made it blocking
        return super().handle(conn)


class Arbiter(arbiter.Arbiter):  # type: ignore[misc]
    """gunicorn's master, stopping on SIGINT as on SIGTERM: its workers are told to finish
    what they are answering (SIGTERM), and killed only after ``graceful_timeout``."""

    def handle_int(self) -> None:
        self.handle_term()
