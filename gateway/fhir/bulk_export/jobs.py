"""Export jobs (``$export``, Bulk Data Access IG v2) without HTTP.

An elderly-care platform synchronises its residents' archives with one full export, then
exports with ``_since`` set to the previous manifest's ``transactionTime``.  A job is a row of
``export_job`` and a folder of NDJSON files, one per resource type:

- The row is the source of truth: any gunicorn worker answers a status request from it,
  whichever worker runs the job.
- The job runs on a thread of the worker that received the kick-off, reading through a store
  of its own (a long export must not hold a connection the requests share, nor leave one
  open per finished thread), while a second thread moves ``heartbeat`` forward every few
  seconds and halts the job when it was cancelled.
- A worker killed mid-job stops beating.  The next status request or kick-off (of any job)
  that finds the heartbeat older than ``stale_seconds`` marks the job failed and removes its
  partial files; the client kicks off again.  Rerunning it in the worker that noticed was
  rejected: two workers noticing at once would have to elect one, and a job that kills its
  worker (memory) would kill the next one too.
- Files are owner-only (health data) and served only once the row says the job completed,
  only under the job's own folder and only by the names its manifest lists.
- A finished job expires ``expiry_seconds`` after it ended: from then on it is unknown (404),
  and the first kick-off or status request that notices removes its row and its files.  Health
  data does not wait on disk for a client that never cancels, and no cron job is needed.
- At most ``max_jobs`` jobs run at once in the whole gateway, ``max_jobs_per_client`` of one
  client: each holds threads and connections while it runs, and a kick-off beyond is a 429.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.config import Config
from gateway.export import DELETED_FILE
from gateway.fhir.bulk_export.batches import _Halted
from gateway.fhir.bulk_export.downloads import _lines, _visible_lines
from gateway.fhir.bulk_export.files import FILE_NAME
from gateway.fhir.bulk_export.ignored import MESSAGES_FILE, kept, message_lines
from gateway.fhir.bulk_export.job import _COLUMNS, COMPLETED, FAILED, IN_PROGRESS, JOB_ID, Job, _end, _load
from gateway.fhir.bulk_export.job_run import _JobRun, _Progress
from gateway.fhir.bulk_export.kick_off import (
    _check_members,
    _check_visible,
    _located,
    _names,
    _parameters,
    _patient_id,
)
from gateway.fhir.bulk_export.writing import _write
from gateway.fhir.errors import FhirError
from gateway.fhir.export_filters import Filtering, TypeFilter, export_elements, type_filters
from gateway.fhir.parameters import listed_types
from gateway.fhir.repository import READ_ONLY
from gateway.fhir.search import Searcher
from gateway.search.values import format_instant
from gateway.security.access import RESTRICTED_ROLES, Access, PersonalData
from gateway.security.principal import Principal, acting
from gateway.storage import open_store
from gateway.storage.resources import now_instant
from gateway.storage.store import Store, Transaction

log = logging.getLogger("yiyang.export")


class BulkExports:
    """Kick-off, run, status, cancel and files of export jobs on one store and one folder."""

    def __init__(
        self,
        store: Store,
        personal: PersonalData,
        resource_types: frozenset[str],
        folder: Path,
        stale_seconds: int,
        *,
        searcher: Searcher,
        expiry_seconds: int = Config.export_expiry_seconds,
        max_jobs: int = Config.export_max_jobs,
        max_jobs_per_client: int = Config.export_max_jobs_per_client,
        busy_timeout_s: int = Config.sqlite_busy_timeout_seconds,
    ) -> None:
        self.store = store
        self.searcher = searcher
        self.personal = personal
        self.resource_types = resource_types
        # absolute, so a file path never depends on who resolves it (Flask resolves relative
        # paths against the application's package, not the working directory)
        self.folder = folder.resolve()
        self.stale_seconds = stale_seconds
        self.beat_seconds = max(1.0, stale_seconds / 4)
        self.expiry_seconds = expiry_seconds
        self.max_jobs = max_jobs
        self.max_jobs_per_client = max_jobs_per_client
        #: how long a job's own SQLite connections wait for another's lock
        self.busy_timeout_s = busy_timeout_s

    # -- kick-off --------------------------------------------------------------------------
    def kick_off(
        self,
        request: str,
        scope: str,
        parameters: Sequence[tuple[str, str]],
        lenient: bool = False,
        where: Sequence[str] | None = None,
        authorised: list[str] | None = None,
    ) -> Job:
        """Check the request and record the job, in progress (start it with :meth:`start`),
        for the acting client; an elderly-care client exports only the people it serves, so
        a system-level export (everything) is not for it.  Without ``_type`` the job holds
        the ``authorised`` types (those of :meth:`exportable` the client's scopes cover),
        recorded as its types, so that its status and files need those scopes alone; None:
        every type.

        ``lenient`` (``Prefer: handling=lenient``) ignores parameters this server does not
        support instead of refusing them, as the IG allows, and the job keeps them for its
        manifest to report (:mod:`.ignored`).  ``where`` says where each
        parameter was given (a Parameters body's ``Parameters.parameter[2].valueString``),
        which a refusal of it names; by default its name, as a query string gives it."""
        where = list(where) if where is not None else _names(parameters)
        located = list(zip(parameters, where, strict=True))
        principal = acting.get()
        client = principal.client_id if principal else None
        served_by = principal.organization if principal and principal.role in RESTRICTED_ROLES else None
        if served_by and scope == "system":
            raise FhirError(403, "http.export-system-restricted", organization=served_by)
        types, since, ignored = _parameters(parameters, lenient, where)
        if types is None and authorised is not None:
            if not authorised:  # the scopes hook refuses first; no job of every type either way
                raise FhirError(403, "http.forbidden-scope", scope="system/*.rs", client=client or "")
            types = authorised
        # a person's export without _type sends along what its records refer to outside the
        # compartment (writing._write): those types take _typeFilter and _elements too
        supporting = scope != "system" and types is None

        def check_type(kind: str, parameter: str) -> None:
            if kind not in self.resource_types:
                raise FhirError(400, "http.unknown-type", parameter, type=kind)
            if kind in READ_ONLY:  # the audit trail is its own table: 202 and an empty output hid that
                raise FhirError(400, "http.export-type-not-archived", parameter, type=kind)
            outside = scope != "system" and kind not in self.personal.compartment
            if outside and (parameter == "_type" or not supporting):
                raise FhirError(400, "http.export-type-outside-compartment", parameter, type=kind)
            if parameter != "_type" and types is not None and kind not in types:
                raise FhirError(400, "http.export-type-filter-not-exported", parameter, type=kind)

        for (name, value), at in located:
            if name == "_type":
                with _located(at):
                    for kind in listed_types(value):
                        check_type(kind, "_type")
        searches: list[TypeFilter] = []
        held = types or self.resource_types
        elements: list[str] = []
        # each Patient named, and where it was first named
        patients: dict[str, str] = {}
        for (name, value), at in located:
            with _located(at):
                if name == "_typeFilter":
                    found = type_filters([value], self.searcher, check_type, given=len(searches))
                    searches += [search for search in found if search not in searches]
                elif name == "_elements":
                    elements += [e for e in export_elements([value], held) if e not in elements]
                elif name == "patient":
                    patients.setdefault(_patient_id(value, scope), at)
        self.sweep()
        job_id = uuid.uuid4().hex
        # every write stamped earlier has committed, so the next export's _since misses nothing
        created = self.store.settled_instant()
        with self.store.transaction() as tx:
            access = Access(principal, self.personal)
            if scope.startswith("Group/"):
                _check_visible(tx, "Group", scope.removeprefix("Group/"), access)
                # membership first: whom the Group names the client reads in the Group, but
                # a 404 for someone it does not name told whether they are in the archive
                _check_members(tx, scope, patients)
            for patient_id, at in patients.items():
                _check_visible(tx, "Patient", patient_id, access, at)
            self._check_room(tx, client)
            tx.sql.execute(
                f"INSERT INTO export_job ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    request,
                    scope,
                    tx.sql.dialect.json_in(types) if types else None,
                    since,
                    IN_PROGRESS,
                    created,
                    created,
                    client,
                    served_by,
                    tx.sql.dialect.json_in([[search.kind, search.criteria] for search in searches])
                    if searches
                    else None,
                    tx.sql.dialect.json_in(elements) if elements else None,
                    tx.sql.dialect.json_in(list(patients)) if patients else None,
                    tx.sql.dialect.json_in(kept(ignored)) if ignored else None,
                ),
            )
        return self.find(job_id)

    def exportable(self, scope: str) -> list[str]:
        """The types an export of ``scope`` may hold: every archived type, or, for a Patient
        or Group export, those of the Patient compartment (the audit trail is none of them)."""
        held = self.resource_types if scope == "system" else self.resource_types & self.personal.compartment.keys()
        return sorted(held - READ_ONLY)

    def _check_room(self, tx: Transaction, client: str | None) -> None:
        """429 when the gateway, or the client, runs as many jobs as it may: each job holds a
        thread and database connections while it runs, and 60 kick-offs at once opened 40
        connections to a PostgreSQL that allows 100.  Jobs whose worker stopped beating hold
        no room (the sweep before this failed them).  The lock makes two kick-offs at once,
        in any worker, count one after the other, so neither takes a room the other took."""
        tx.lock("export-kick-off")
        stale = format_instant(datetime.now(UTC) - timedelta(seconds=self.stale_seconds))
        running = [
            row[0]
            for row in tx.sql.all(
                "SELECT client FROM export_job WHERE status = ? AND heartbeat >= ?", (IN_PROGRESS, stale)
            )
        ]
        if len(running) >= self.max_jobs:
            raise FhirError(429, "http.export-too-many-jobs", limit=self.max_jobs)
        if running.count(client) >= self.max_jobs_per_client:
            raise FhirError(
                429, "http.export-too-many-client-jobs", client=client or "-", limit=self.max_jobs_per_client
            )

    def start(self, job_id: str) -> threading.Thread:
        """Run the job on a daemon thread: a stopping worker does not wait for it (the stale
        rule fails the job instead)."""
        thread = threading.Thread(target=self.run, args=(job_id,), name=f"export-{job_id}", daemon=True)
        thread.start()
        return thread

    # -- running ---------------------------------------------------------------------------
    def run(self, job_id: str) -> None:
        """Write the job's files and record how it ended."""
        store = open_store(self.store.url, upgrade=False, busy_timeout_s=self.busy_timeout_s)
        try:
            self._run(store, job_id)
        finally:
            store.close()

    def _run(self, store: Store, job_id: str) -> None:
        job = _load(store, job_id)
        if job is None or job.status != IN_PROGRESS:
            return
        folder = self.folder / job.id
        progress, done, halt = _Progress(), threading.Event(), threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(store, job.id, progress, done, halt), name=f"export-beat-{job.id}", daemon=True
        )
        beat.start()
        try:
            # one snapshot on PostgreSQL too: a resource read twice (in two residents'
            # compartments) is the same version both times, so what it names decides at its
            # first meeting whether a key of it is kept (_NdjsonFiles.remembers)
            with store.reading(consistent=True) as tx:
                output = self._write(tx, job, folder, progress, halt)
            ended = _end(store, job.id, COMPLETED, output=output)
        except _Halted:
            ended = False
        except FhirError as refused:
            error = {"message_id": refused.message_id, "params": refused.params, "status": refused.status}
            _end(store, job.id, FAILED, error=error)
            ended = False
        except Exception:
            incident = uuid.uuid4().hex[:12]
            error = {"message_id": "http.export-internal", "params": {"incident": incident}}
            # a job cancelled while it wrote fails too, its folder removed under it: that is
            # the client's DELETE, not an incident for the maintainers to chase
            if _end(store, job.id, FAILED, error=error):
                log.exception("incident %s: export job %s failed", incident, job.id)
            else:
                log.info("export job %s stopped: it was cancelled while it ran", job.id)
            ended = False
        finally:
            done.set()
            beat.join()
        if not ended:
            shutil.rmtree(folder, ignore_errors=True)

    def _beat(
        self, store: Store, job_id: str, progress: _Progress, done: threading.Event, halt: threading.Event
    ) -> None:
        """Report progress until the job ends; a job deleted or failed meanwhile is halted."""
        while not done.wait(self.beat_seconds):
            try:
                with store.transaction() as tx:
                    tx.sql.execute(
                        "UPDATE export_job SET heartbeat = ?, progress = ? WHERE id = ? AND status = ?",
                        (now_instant(), progress.written, job_id, IN_PROGRESS),
                    )
                    row = tx.sql.one("SELECT status FROM export_job WHERE id = ?", (job_id,))
            except Exception:  # a missed beat is not fatal: the stale rule decides
                log.warning("export job %s: heartbeat failed", job_id, exc_info=True)
                continue
            if row is None or row[0] != IN_PROGRESS:
                halt.set()
                return

    def _write(
        self, tx: Transaction, job: Job, folder: Path, progress: _Progress, halt: threading.Event
    ) -> list[dict[str, Any]]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.mkdir(mode=0o700, exist_ok=True)
        access = self._access(job)
        filtering = Filtering(job.type_filters, self.searcher, access)
        run = _JobRun(tx, job, access, filtering, halt, self.personal, self.searcher, self.resource_types)
        return _write(run, folder, progress)

    def _access(self, job: Job) -> Access:
        """What the job's client may see: an elderly-care client's job exports whom it serves
        as the job runs."""
        client = Principal(job.client or "", job.served_by, frozenset(), "elderly-care") if job.served_by else None
        return Access(client, self.personal)

    # -- status, cancel, files -------------------------------------------------------------
    def status(self, job_id: str) -> Job:
        """The job as it stands, once abandoned and expired jobs are swept (an abandoned one is
        failed, an expired one is gone)."""
        self.sweep()
        return self.find(job_id)

    def expires(self, job: Job) -> datetime | None:
        """When a finished job and its files expire (None while it runs)."""
        if job.finished is None:
            return None
        return datetime.fromisoformat(job.finished) + timedelta(seconds=self.expiry_seconds)

    def sweep(self) -> None:
        """Fail every job whose worker stopped beating and remove its partial files; delete
        every job that has expired, with its files.  Run at each kick-off and status request,
        so that the server clears what it holds without a cron job, whichever worker asks."""
        now = datetime.now(UTC)
        stale = format_instant(now - timedelta(seconds=self.stale_seconds))
        expired = format_instant(now - timedelta(seconds=self.expiry_seconds))
        with self.store.reading(snapshot=False) as tx:  # one statement: every poll runs it
            found = tx.sql.all(
                "SELECT id, status, heartbeat FROM export_job "
                "WHERE (status = ? AND heartbeat < ?) OR (status <> ? AND finished < ?)",
                (IN_PROGRESS, stale, IN_PROGRESS, expired),
            )
        abandoned = [(job_id, heartbeat) for job_id, status, heartbeat in found if status == IN_PROGRESS]
        ended = [job_id for job_id, status, _ in found if status != IN_PROGRESS]
        if abandoned:
            with self.store.transaction() as tx:
                for job_id, heartbeat in abandoned:
                    error = {"message_id": "http.export-abandoned", "params": {"heartbeat": heartbeat}}
                    tx.sql.execute(
                        "UPDATE export_job SET status = ?, finished = ?, error = ? WHERE id = ? AND status = ? AND heartbeat < ?",
                        (FAILED, now_instant(), tx.sql.dialect.json_in(error), job_id, IN_PROGRESS, stale),
                    )
        if ended:
            with self.store.transaction() as tx:
                for job_id in ended:
                    tx.sql.execute(
                        "DELETE FROM export_job WHERE id = ? AND status <> ? AND finished < ?",
                        (job_id, IN_PROGRESS, expired),
                    )
        # a job failed here, or by its own thread meanwhile, keeps no file either way
        for job_id in [job_id for job_id, _ in abandoned] + ended:
            shutil.rmtree(self.folder / job_id, ignore_errors=True)

    def cancel(self, job_id: str) -> None:
        """Delete the job and its files; a running job notices at its next heartbeat and
        removes whatever it wrote since."""
        job = self.find(job_id)
        with self.store.transaction() as tx:
            tx.sql.execute("DELETE FROM export_job WHERE id = ?", (job.id,))
        shutil.rmtree(self.folder / job.id, ignore_errors=True)

    def file(self, job_id: str, name: str) -> Path:
        """The path of one finished file of the job; never anything outside its folder."""
        if not FILE_NAME.fullmatch(name):
            raise FhirError(400, "http.export-bad-file-name", name=name)
        job = self.find(job_id)
        listed = {entry["file"] for entry in job.output} if job.status == COMPLETED else set()
        folder = self.folder / job.id
        path = (folder / name).resolve()
        if name not in listed or not path.is_relative_to(folder) or not path.is_file():
            raise FhirError(404, "http.export-file-not-found", id=job_id, name=name)
        return path

    def visible_lines(self, job_id: str, name: str, rules: Access) -> Iterator[bytes]:
        """A restricted client's file, checked again line by line as it is fetched: a person
        who withdrew their Consent after the export ran is no longer the client's to read."""
        path = self.file(job_id, name)
        if name == DELETED_FILE:  # judged when written: they name only what the client saw before
            return _lines(path)
        return _visible_lines(self.store, path, rules)

    def messages(self, job_id: str, lang: str) -> Iterator[bytes]:
        """The lines of a finished job's messages file (:data:`MESSAGES_FILE`), worded in
        ``lang``: the OperationOutcomes of the parameters it ignored."""
        job = self.find(job_id)
        if job.status != COMPLETED or not job.ignored:
            raise FhirError(404, "http.export-file-not-found", id=job_id, name=MESSAGES_FILE)
        return message_lines(job, lang)

    def find(self, job_id: str, principal: Principal | None = None) -> Job:
        """The job, when the acting client (or ``principal``, asked before it acts) may see it:
        its own (another client's is 404), and not expired (its files are no longer served,
        even before a sweep removes them)."""
        job = _load(self.store, job_id) if JOB_ID.fullmatch(job_id) else None
        principal = principal or acting.get()
        if job is None or (principal is not None and job.client not in (None, principal.client_id)):
            raise FhirError(404, "http.export-not-found", id=job_id)
        expires = self.expires(job)
        if expires is not None and expires <= datetime.now(UTC):
            raise FhirError(404, "http.export-not-found", id=job_id)
        return job
