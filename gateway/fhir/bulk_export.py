"""FHIR Bulk Data export (``$export``, Bulk Data Access IG v2) without HTTP.

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

import itertools
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import orjson

from gateway.config import Config
from gateway.export import DELETED_FILE, deletion_bundles
from gateway.fhir.errors import FhirError, not_found
from gateway.fhir.export_filters import Filtering, TypeFilter, export_elements, type_filters
from gateway.fhir.export_parameters import kick_off_parts
from gateway.fhir.literal_references import current_targets, literal_references
from gateway.fhir.parameters import instant, listed_types, refuse_unsupported_parameters
from gateway.fhir.repository import ID, READ_ONLY
from gateway.fhir.search import Searcher, shaped
from gateway.search.indexer import referenced_id, referenced_key
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.search.query import Include, SearchQuery
from gateway.search.values import date_range, format_instant
from gateway.security.access import RESTRICTED_ROLES, Access, PersonalData
from gateway.security.principal import Principal, acting
from gateway.storage import open_store
from gateway.storage.resources import Referrers, now_instant
from gateway.storage.store import Store, Stored, Transaction

log = logging.getLogger("yiyang.export")

IN_PROGRESS, COMPLETED, FAILED = "in-progress", "completed", "failed"
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
JOB_ID = re.compile(r"[0-9a-f]{32}")
FILE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}\.ndjson")
#: the file of an incremental export's deletions (no resource type is called so), and how
#: many DELETE entries each of its Bundles holds
DELETED = "Deleted"
#: resources a job writes at a time, each batch's filtered types asked about in one statement
BATCH = 500
#: the resources outside the compartment changed since an incremental export whose referrers
#: one statement reads, and how many of each target's it reads at first
_TARGETS_AT_ONCE, _FIRST_REFERRERS = 100, 10
_COLUMNS = (
    "id, request, scope, types, since, status, created, heartbeat, progress, finished, error, output, client, "
    "served_by, type_filters, elements, patients"
)
#: what a ``patient`` parameter names: a Patient by a relative reference
PATIENT_REFERENCE = re.compile(rf"Patient/({ID.pattern})")
PROVENANCE = "Provenance"
#: the Provenances of a batch of records, found as ``_revinclude=Provenance:target`` finds them
_PROVENANCE_OF = SearchQuery(PROVENANCE, revinclude=[Include(PROVENANCE, ("target",))])


@dataclass(frozen=True, slots=True)
class Job:
    """One row of ``export_job``."""

    id: str
    request: str
    #: "system", "Patient" or "Group/<id>"
    scope: str
    types: list[str] | None
    since: str | None
    status: str
    #: the store's time at kick-off: the manifest's transactionTime
    created: str
    heartbeat: str
    progress: int
    finished: str | None
    error: dict[str, Any] | None
    #: [{"type", "file", "count"}] once completed
    output: list[dict[str, Any]]
    client: str | None
    #: the organisation whose served people alone are exported (an elderly-care client's)
    served_by: str | None = None
    #: the ``_typeFilter`` searches: a filtered type keeps only what one of them matches
    type_filters: list[TypeFilter] = field(default_factory=list)
    #: the ``_elements`` names each exported resource is cut to (none: whole)
    elements: list[str] = field(default_factory=list)
    #: the ids of the Patients the ``patient`` parameter named (None: everyone in scope)
    patients: list[str] | None = None

    def failure(self) -> FhirError:
        """Why a failed job failed, as the status request's 500 answer."""
        error = self.error or {"message_id": "http.export-internal", "params": {"incident": "?"}}
        return FhirError(500, error["message_id"], **error["params"])


@dataclass
class _Progress:
    """Shared between the job's thread (which counts) and its heartbeat (which reports)."""

    written: int = 0


class _Halted(Exception):
    """The job was cancelled or failed elsewhere while it ran: stop writing."""


def _unless_halted(halt: threading.Event) -> None:
    """Stop the job (:class:`_Halted`) once its heartbeat has found it cancelled or failed
    elsewhere: checked between two statements of each long step, so that a cancelled job
    neither writes nor reads on for long."""
    if halt.is_set():
        raise _Halted


@dataclass(frozen=True)
class _JobRun:
    """What one run of a job judges a record of its scope by (:meth:`BulkExports._changed_supporting`,
    :meth:`BulkExports._deleted`): the same for each statement it reads with, so passed as one."""

    tx: Transaction
    job: Job
    access: Access
    filtering: Filtering
    halt: threading.Event

    def kept(self, found: Iterable[Stored]) -> list[Stored]:
        """The records of ``found`` the export holds: its client may see them and its
        ``_typeFilter`` keeps them."""
        return self.filtering.kept(self.tx, list(self.access.among_served(self.tx, found)))

    def people(self) -> list[str] | None:
        """The export's people (None: anyone) whom its client may see, as the store looks
        records up by them (:class:`Referrers`, :meth:`Resources.in_compartment`)."""
        served = self.access.served_people(self.tx) if self.access.restricted else None
        return _listed_people(_person_ids(self.tx, self.job), served)


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
        support instead of refusing them, as the IG allows.  ``where`` says where each
        parameter was given (a Parameters body's ``Parameters.parameter[2].valueString``),
        which a refusal of it names; by default its name, as a query string gives it."""
        where = list(where) if where is not None else _names(parameters)
        located = list(zip(parameters, where, strict=True))
        principal = acting.get()
        client = principal.client_id if principal else None
        served_by = principal.organization if principal and principal.role in RESTRICTED_ROLES else None
        if served_by and scope == "system":
            raise FhirError(403, "http.export-system-restricted", organization=served_by)
        types, since = _parameters(parameters, lenient, where)
        if types is None and authorised is not None:
            if not authorised:  # the scopes hook refuses first; no job of every type either way
                raise FhirError(403, "http.forbidden-scope", scope="system/*.rs", client=client or "")
            types = authorised

        def check_type(kind: str, parameter: str) -> None:
            if kind not in self.resource_types:
                raise FhirError(400, "http.unknown-type", parameter, type=kind)
            if kind in READ_ONLY:  # the audit trail is its own table: 202 and an empty output hid that
                raise FhirError(400, "http.export-type-not-archived", parameter, type=kind)
            if scope != "system" and kind not in self.personal.compartment:
                raise FhirError(400, "http.export-type-outside-compartment", parameter, type=kind)
            if parameter != "_type" and types is not None and kind not in types:
                raise FhirError(400, "http.export-type-filter-not-exported", parameter, type=kind)

        for (name, value), at in located:
            if name == "_type":
                with _located(at):
                    for kind in listed_types(value):
                        check_type(kind, "_type")
        searches: list[TypeFilter] = []
        held = types or (self.personal.compartment if scope != "system" else self.resource_types)
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
            for patient_id, at in patients.items():
                _check_visible(tx, "Patient", patient_id, access, at)
            if scope.startswith("Group/") and patients:
                _check_members(tx, scope, patients)
            self._check_room(tx, client)
            tx.sql.execute(
                f"INSERT INTO export_job ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL, ?, ?, ?, ?, ?)",
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
        # a person's export brings what its records refer to outside the compartment, unless
        # _type says which types it wants: a platform may not export those types alone
        supporting: dict[tuple[str, str], None] | None = {} if job.scope != "system" and job.types is None else None
        newcomers = self._newcomers(tx, job, access)
        run = _JobRun(tx, job, access, filtering, halt)
        provenance = job.scope != "system" and PROVENANCE in (job.types or self.personal.compartment)
        with _NdjsonFiles(folder, self._remembers(job, newcomers)) as files:

            def write(found: Iterable[Stored]) -> list[Stored]:
                """Write each of ``found`` not written yet, noting what it refers to outside the
                compartment; those it wrote."""
                written = []
                for stored in found:
                    resource = shaped(stored.resource, None, job.elements)
                    if files.add(stored, resource):
                        progress.written += 1
                        written.append(stored)
                        if supporting is not None:
                            supporting.update(dict.fromkeys(self._outside_compartment(resource)))
                return written

            for batch in _batches(self._selected(tx, job, access, newcomers)):
                _unless_halted(halt)
                written = write(filtering.kept(tx, batch))
                if provenance:
                    write(_provenances(run, written))
            if provenance and job.since is not None:
                write(self._provenances_since(run, files.seen))
            if supporting is not None and job.since is not None:
                changed = self._changed_supporting(run, supporting)
                supporting.update(dict.fromkeys(changed))
            for stored in current_targets(tx, access, list(supporting or {})):
                _unless_halted(halt)
                if files.add(stored, shaped(stored.resource, None, job.elements)):
                    progress.written += 1
            if job.since is not None:
                files.add_deletions(self._deleted(run, job.since, frozenset(files.seen)))
            return files.output()

    @staticmethod
    def _remembers(job: Job, newcomers: frozenset[str]) -> Callable[[Stored], bool]:
        """Whether the key of a resource the job writes is kept: a key of each was ~170 MB a
        million resources, and a hospital's Patient export holds its whole archive.

        A system export meets each resource once: it keeps only the keys :meth:`_deleted`
        asks about (with ``_since``, of the types ``_typeFilter`` filters).  A Patient or
        Group export meets a record once per person whose compartment holds it (the index
        rows :meth:`_selected` reads), and once more if it names a newcomer
        (:meth:`_naming_newcomers`): a record whose text names one Patient, no newcomer, and
        no one by number is met once, so only one naming two Patients or a newcomer
        (:func:`_patients_named` reads every reference as the index does) or perhaps someone
        by number (:func:`_may_name_by_number`) keeps its key; with ``_since``, so does one
        changed since, which :meth:`_deleted` asks about.  A Provenance is met once more per
        exported record it targets (:func:`_provenances`): one of several targets keeps its key."""
        if job.scope == "system":
            filtered = {search.kind for search in job.type_filters} if job.since else set()
            return lambda stored: stored.type in filtered
        since = job.since

        def met_again(stored: Stored) -> bool:
            if (since is not None and stored.last_updated > since) or _may_name_by_number(stored):
                return True
            if stored.type == PROVENANCE and len(stored.resource.get("target", [])) > 1:
                return True
            if not newcomers and stored.json().count(b"Patient") < 2:
                return False  # the usual record names its resident alone: no reference is parsed
            named = set(_patients_named(stored))
            return len(named) > 1 or not newcomers.isdisjoint(named)

        return met_again

    def _targeted(self, job: Job) -> dict[str, list[str]]:
        """The compartment's parameters, per type, of the records a Patient or Group export
        holds the Provenances of (:func:`_provenances`): the types it exports but Patient
        (whose Provenances are in its compartment) and Provenance itself."""
        wanted = job.types or self.personal.compartment
        return {
            kind: params
            for kind, params in self.personal.compartment.items()
            if kind in wanted and kind not in ("Patient", PROVENANCE)
        }

    def _provenances_since(self, run: _JobRun, written: Container[tuple[str, str]]) -> Iterator[Stored]:
        """The Provenances changed after ``_since``, not ``written`` already, that target a
        record the export holds (one of its people's, its client may see, ``_typeFilter``
        keeps): one unchanged since is not written, so :func:`_provenances` never asks for
        them.  Per :data:`BATCH` of them, one statement on the index finds which of their
        targets are the people's records, one reads those to judge them as the export does."""
        tx, targeted, people = run.tx, self._targeted(run.job), run.people()
        for batch in _batches(tx.resources.current([PROVENANCE], run.job.since)):
            _unless_halted(run.halt)
            fresh = [(found, _targets(found.resource)) for found in batch if (found.type, found.id) not in written]
            within = tx.resources.in_compartment([key for _, keys in fresh for key in keys], targeted, people)
            records = tx.resources.read_many(sorted(within)).values() if within else ()
            held = {(stored.type, stored.id) for stored in run.kept(records)}
            yield from run.kept(found for found, keys in fresh if not held.isdisjoint(keys))

    def _outside_compartment(self, resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
        """What an exported resource (as written: ``_elements`` may have cut a reference out)
        refers to outside the Patient compartment, as (type, id)."""
        compartment = self.personal.compartment
        for reference in literal_references(resource):
            kind, _, resource_id = reference.partition("/")
            if kind not in compartment:
                yield kind, resource_id

    def _changed_supporting(self, run: _JobRun, named: Container[tuple[str, str]]) -> Iterator[tuple[str, str]]:
        """What changed after ``_since`` outside the Patient compartment and a current resource
        of the export's scope refers to, whatever that resource's own last change, but for the
        ``named`` (coming along already), as (type, id): an Organization renamed since the last
        export, named only by a stay unchanged since, would otherwise stay stale in the
        platform's copy for good.  The scope is what the export would hold without ``_since``:
        its people's records the client may see, that ``_typeFilter`` keeps and that still name
        the target once cut by ``_elements``.  One indexed statement finds what changed outside
        the compartment (mostly nothing); those are looked up in the reference index
        :data:`_TARGETS_AT_ONCE` at a time, among the records of the export's people alone,
        and the job stops between two of those statements once it is cancelled."""
        tx = run.tx
        outside = tx.resources.current(self._outside_types(), run.job.since)
        candidates = ((changed.type, changed.id) for changed in outside if (changed.type, changed.id) not in named)
        first = next(candidates, None)
        if first is None:  # the usual case: nothing the export may name changed since
            return
        people = run.people()
        for kind, keys in itertools.groupby(itertools.chain([first], candidates), key=itemgetter(0)):
            ids = (resource_id for _, resource_id in keys)
            while chunk := list(itertools.islice(ids, _TARGETS_AT_ONCE)):
                _unless_halted(run.halt)
                wanted = Referrers(
                    kind,
                    chunk[0],
                    self._referring(kind),
                    compartment=self.personal.compartment,
                    people=people,
                    identified=IDENTIFIED_PEOPLE,
                )
                yield from ((kind, target) for target in self._named_among(run, wanted, chunk))

    def _referring(self, kind: str) -> dict[str, list[str]]:
        """The reference parameters of the Patient compartment's types that may point at
        ``kind``, per type: where the index says a person's record names one."""
        referring: dict[str, list[str]] = {}
        for source, code in self.searcher.parameters.referring(kind):
            if source in self.personal.compartment and source not in READ_ONLY:
                referring.setdefault(source, []).append(code)
        return referring

    def _named_among(self, run: _JobRun, wanted: Referrers, targets: list[str]) -> list[str]:
        """Those of ``targets`` (ids of ``wanted.kind``) that a record the export holds names
        as it writes it (:meth:`_named_in_scope`), in their order.  The first
        :data:`_FIRST_REFERRERS` records naming each are read in one statement and judged
        together (the first usually counts); a target whose first records all fall out, and
        that has more, is paged through on its own."""
        found = run.tx.resources.referrers_of_each(wanted, targets, _FIRST_REFERRERS)
        unique = {(stored.type, stored.id): stored for page in found.values() for stored in page}
        names = {(stored.type, stored.id): frozenset(self._names(run, stored)) for stored in run.kept(unique.values())}
        named: list[str] = []
        for target in targets:
            page = found.get(target, [])
            if any((wanted.kind, target) in names.get((stored.type, stored.id), ()) for stored in page) or (
                len(page) == _FIRST_REFERRERS
                and self._named_in_scope(run, replace(wanted, resource_id=target), (page[-1].type, page[-1].id))
            ):
                named.append(target)
        return named

    def _named_in_scope(self, run: _JobRun, wanted: Referrers, after: tuple[str, str]) -> bool:
        """Whether a record the index finds naming ``wanted``'s target (past ``after``, by type
        and id) is one the export holds and, as it writes it, names the target: read a page at
        a time, stopping at the first."""
        target = (wanted.kind, wanted.resource_id)
        while page := run.tx.resources.referrers(wanted, limit=BATCH, after=after):
            _unless_halted(run.halt)
            for stored in run.kept(page):
                if target in self._names(run, stored):
                    return True
            if len(page) < BATCH:
                return False
            after = (page[-1].type, page[-1].id)
        return False

    def _names(self, run: _JobRun, stored: Stored) -> Iterator[tuple[str, str]]:
        """What a record refers to outside the compartment as the job writes it (``_elements``
        may cut a reference out)."""
        return self._outside_compartment(shaped(stored.resource, None, run.job.elements))

    def _selected(self, tx: Transaction, job: Job, access: Access, newcomers: frozenset[str]) -> Iterator[Stored]:
        """The resources the job exports, type by type (system) or person by person."""
        if job.scope == "system":
            for kind in job.types or sorted(tx.resources.counts()):
                yield from tx.resources.current([kind], job.since)
            return
        wanted = set(job.types or self.personal.compartment)
        # other Patients (Patient.link) are exported only as people of the export
        members = {
            kind: params for kind, params in self.personal.compartment.items() if kind in wanted and kind != "Patient"
        }
        people = access.served_people(tx) if access.restricted else None
        for patient in _people(tx, job, people):
            since = None if patient.id in newcomers else job.since
            if "Patient" in wanted and (since is None or patient.last_updated > since):
                yield patient
            # a resource naming someone else besides the resident is hidden from its client;
            # one naming the resident by number alone (their 身份证号) is theirs as one by id
            records = Referrers("Patient", patient.id, members, since, identified=IDENTIFIED_PEOPLE)
            yield from access.among_served(tx, tx.resources.referrers(records))
        if newcomers:
            yield from self._naming_newcomers(tx, job, access, members, people, newcomers)

    @staticmethod
    def _newcomers(tx: Transaction, job: Job, access: Access) -> frozenset[str]:
        """The people a Patient or Group export with ``_since`` sends in full: someone the
        client has begun to serve, or the Group has taken in, since its last export (their
        older records were not in it)."""
        if job.scope == "system" or job.since is None:
            return frozenset()
        return access.newly_served_people(tx, job.since) | _joined(tx, job.scope, job.since)

    def _naming_newcomers(
        self,
        tx: Transaction,
        job: Job,
        access: Access,
        members: dict[str, list[str]],
        served: frozenset[str] | None,
        newcomers: frozenset[str],
    ) -> Iterator[Stored]:
        """The records of the export's people that name a newcomer outside their compartment
        (a resident's Observation whose ``focus`` is someone the client has begun to serve, by
        id or by a number the newcomer holds): hidden from the previous export for naming
        someone it did not serve, visible now, and unchanged since, so neither the resident's
        ``_since`` nor the newcomer's compartment finds them.  Found by key in the index: the
        newcomer's reference rows and the rows of their numbers (``person_key`` by holder)."""
        naming = {kind: self.personal.references[kind] for kind in members if kind in self.personal.references}
        ours, holder = _among(_person_ids(tx, job), served), access.holder(tx)
        for person in sorted(newcomers):
            records = Referrers("Patient", person, naming, identified=IDENTIFIED_PEOPLE)
            yield from (
                stored
                for stored in access.among_served(tx, tx.resources.referrers(records))
                if stored.resource is not None and self.personal.in_compartment_of(stored.resource, ours, holder)
            )

    def _access(self, job: Job) -> Access:
        """What the job's client may see: an elderly-care client's job exports whom it serves
        as the job runs."""
        client = Principal(job.client or "", job.served_by, frozenset(), "elderly-care") if job.served_by else None
        return Access(client, self.personal)

    def _deleted(self, run: _JobRun, since: str, exported: frozenset[tuple[str, str]]) -> Iterator[str]:
        """The resources the job would have exported but that were deleted after its
        ``_since`` (the IG's ``deleted``), by reference.  For a Patient or Group export each is
        judged by its contents before the deletion (each version since ``_since``: see below)
        as :meth:`_selected` judges: in the
        compartment of one of the export's people (whoever else it names: a reading of a
        Group member whose focus is someone outside the Group was exported, so its deletion
        is listed) and, for an elderly-care client, concerning only people it serves.

        A Patient or Group export also lists what has left it since without being deleted: a
        resource changed after ``_since`` that this job did not export (``exported``) although
        a version of it since ``_since`` was the export's (a reading filed under a resident and
        moved to someone else's record, or one that now names someone the client does not
        serve).  The platform's copy may hold that version from its earlier export, and nothing
        else would ever tell it to drop it: its copy would keep another person's reading as
        its resident's.  Not only the version current at ``_since`` is judged: the earlier
        export read the archive after its kick-off, and may have sent a version written in
        between; a deletion listed for something the copy never held is harmless.

        Without ``_type`` it lists as well what it sent along outside the compartment and is
        deleted since (:meth:`_supporting_deleted`)."""
        tx, job, access = run.tx, run.job, run.access
        if job.scope == "system":
            yield from (gone.reference for gone in tx.resources.deleted_since(job.types, since))
            # changed since, of a type _typeFilter filters, and no search keeps it any more:
            # the client's copy of its earlier version must go
            if filtered := sorted({search.kind for search in job.type_filters}):
                changed = tx.resources.current(filtered, since)
                yield from (stored.reference for stored in changed if (stored.type, stored.id) not in exported)
            return
        served = access.served_people(tx) if access.restricted else None
        chosen = _person_ids(tx, job)
        people, holder = _among(chosen, None), access.holder(tx)
        # the records of the export's people some version of a Provenance targeted, and those
        # of them it lists as deleted (Provenances are judged after every other type)
        targeted, records, gone = self._targeted(job), run.people(), set[tuple[str, str]]()
        ours: set[tuple[str, str]] = set()

        def note_targets(versions: Iterable[Sequence[Stored]]) -> None:
            """Note which records the Provenance versions among ``versions`` target are the
            people's: one statement on the index for them all."""
            keys = [
                key
                for found in versions
                for version in found
                if version.type == PROVENANCE
                for key in _targets(version.resource)
            ]
            ours.update(tx.resources.in_compartment(keys, targeted, records), gone.intersection(keys))

        def held(stored: Stored) -> bool:
            """Whether this version was one the export holds.  Of a chosen few people (a
            Group's), one whose text names none of them and no one by number is not indexed
            to learn so.  A Provenance is held, too, if it targeted a record of theirs
            (:meth:`_provenances_since`)."""
            return (
                stored.resource is not None
                and (
                    (stored.type == PROVENANCE and not ours.isdisjoint(_targets(stored.resource)))
                    or (
                        (
                            chosen is None
                            or stored.type == "Patient"
                            or _names_any(stored, people)
                            or _may_name_by_number(stored)
                        )
                        and self.personal.in_compartment_of(stored.resource, people, holder)
                    )
                )
                and (served is None or self.personal.concerns_only(stored.resource, served.__contains__, holder))
            )

        # what an export without _type sent along outside the compartment and is deleted
        # since (mostly nothing): listed if a version the export held referred to it
        targets = self._supporting_deleted(tx, since) if job.types is None else frozenset()
        named: set[str] = set()

        def held_since(latest: Stored, versions: Sequence[Stored]) -> bool:
            """Whether a version of ``versions`` (from the one current at ``_since`` on) before
            ``latest`` was one the export holds; what such versions referred to among
            ``targets`` is named."""
            found = False
            for version in filter(held, (version for version in versions if version.version < latest.version)):
                found = True
                if not targets:
                    break
                named.update(f"{kind}/{key}" for kind, key in self._names(run, version))
            return found

        # their versions since are read BATCH resources at a time, a statement per type
        kinds = job.types or sorted(self.personal.compartment)
        # a Provenance's deletion is judged after its targets' (``gone``), in batches of its own
        order = ([kind for kind in kinds if kind != PROVENANCE], [PROVENANCE] if PROVENANCE in kinds else [])
        deletions = (_batches(tx.resources.deleted_since(some, since)) for some in order if some)
        for batch in itertools.chain.from_iterable(deletions):
            _unless_halted(run.halt)
            earlier = tx.resources.versions_since([(deleted.type, deleted.id) for deleted in batch], since)
            note_targets(earlier.values())
            for deleted in batch:
                if held_since(deleted, earlier.get((deleted.type, deleted.id), ())):
                    if deleted.type in targeted:
                        gone.add((deleted.type, deleted.id))
                    yield deleted.reference
        for batch in _batches(tx.resources.current(kinds, since)):
            _unless_halted(run.halt)
            # one exported again is asked only for the targets an earlier version may have named
            asked = [changed for changed in batch if targets or (changed.type, changed.id) not in exported]
            earlier = tx.resources.versions_since([(changed.type, changed.id) for changed in asked], since)
            note_targets(earlier.values())
            for changed in asked:
                key = (changed.type, changed.id)
                if held_since(changed, earlier.get(key, ())) and key not in exported:
                    yield changed.reference
        yield from sorted(targets & named)

    def _outside_types(self) -> list[str]:
        """The archived types outside the Patient compartment: those of what a Patient or Group
        export without ``_type`` sends along."""
        return sorted(self.resource_types - self.personal.compartment.keys() - READ_ONLY)

    def _supporting_deleted(self, tx: Transaction, since: str) -> frozenset[str]:
        """The resources outside the Patient compartment deleted after ``since``, by reference:
        what a Patient or Group export without ``_type`` may have sent along and must now list
        as deleted, if a version it held referred to them.  The archive refuses to delete
        what a current resource refers to (``Repository.check_unreferenced``), so the referrers
        are among the resources changed or deleted since, whose versions :meth:`_deleted`
        reads anyway."""
        return frozenset(gone.reference for gone in tx.resources.deleted_since(self._outside_types(), since))

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


#: lines checked per reading transaction while a restricted client's file streams
_CHECKED_AT_ONCE = 500


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def _visible_lines(store: Store, path: Path, rules: Access) -> Iterator[bytes]:
    """Each line whose resource the client may see now and whose own content concerns only
    people it serves (judged as a version is, so a record since moved to a resident does not
    carry its earlier owner's data out; a line of the current version by that version whole,
    since ``_elements`` may have cut the line's references out).  Whom it serves is read once per file; the current
    versions once per :data:`_CHECKED_AT_ONCE` lines, a statement per type (a statement per
    line before: a file of 100,000 readings was 100,000 statements)."""
    with store.reading() as tx:
        people = rules.served_people(tx)
    serves = people.__contains__
    with path.open("rb") as handle:
        while batch := list(itertools.islice(handle, _CHECKED_AT_ONCE)):
            judged = [(line, orjson.loads(line)) for line in batch]
            with store.reading() as tx:
                current = tx.resources.read_many([(found["resourceType"], found["id"]) for _, found in judged])
                holder = rules.holder(tx)
                kept = [
                    line
                    for line, found in judged
                    if _still_visible(
                        rules.personal, serves, holder, now := current.get((found["resourceType"], found["id"]))
                    )
                    and (_same_version(found, now) or rules.personal.concerns_only(found, serves, holder))
                ]
            yield from kept


def _same_version(line: dict[str, Any], current: Stored | None) -> bool:
    """Whether a line is of the current version, which :func:`_still_visible` has judged whole:
    a line cut by ``_elements`` may have lost the references that say whose it is (a reading
    cut to its ``code`` names no one, and was dropped from its own resident's file)."""
    meta = line.get("meta")
    return current is not None and isinstance(meta, dict) and meta.get("versionId") == str(current.version)


def _still_visible(
    personal: PersonalData, serves: Callable[[str], bool], holder: Callable[[str], str | None], current: Stored | None
) -> bool:
    """The rule of a vread, of a version that concerns only people the client serves: the
    resource is visible now, judged by the current version's content against the people read
    once per file (its content is what its index rows, and so the SQL rule, are made of)."""
    return (
        current is not None
        and current.resource is not None
        and personal.concerns_only(current.resource, serves, holder)
    )


def manifest(job: Job, base_url: str) -> dict[str, Any]:
    """The completion manifest of a job (IG v2): its files are fetched with the same bearer
    token as the kick-off (``requiresAccessToken``).

    The files of an elderly-care client's job carry no ``count`` (the IG makes it optional):
    each download judges every line again at its own moment (:func:`_visible_lines`: a
    Consent withdrawn, a reading moved to someone else since), so the lines a download will
    serve are known only as it serves them, and may differ from one download to the next.
    The count the job wrote promised lines the platform never received; counting them at
    each status request would read every file through and still not bind the download.  Its
    deletions file, served as written, keeps its count."""
    return {
        "transactionTime": job.created,
        "request": job.request,
        "requiresAccessToken": True,
        "output": [_file(job, entry, base_url) for entry in job.output if not entry.get("deleted")],
        "deleted": [_file(job, entry, base_url) for entry in job.output if entry.get("deleted")],
        "error": [],
    }


def _file(job: Job, entry: dict[str, Any], base_url: str) -> dict[str, Any]:
    found = {"type": entry["type"], "url": f"{base_url}/$export-file/{job.id}/{entry['file']}"}
    return found if job.served_by and not entry.get("deleted") else {**found, "count": entry["count"]}


def _parameters(
    parameters: Sequence[tuple[str, str]], lenient: bool, where: Sequence[str] | None = None
) -> tuple[list[str] | None, str | None]:
    """``_type`` (comma lists, repeatable) and ``_since`` of a kick-off; ``_outputFormat``
    must be NDJSON.  The parameters the IG's operations take (:func:`kick_off_parts`) are
    those honoured; besides them, a kick-off may carry the controls every answer takes (R4
    http.html: ``_format``, the format of its errors, and ``_pretty``).  Those of one value
    (``_since``, ``_outputFormat``) are refused given twice: of two ``_since``, taking either
    would silently drop the other, and the later one loses the changes in between.  Any other
    parameter is refused as every endpoint refuses one, unless ``lenient``.  A refusal names
    where the parameter was given (``where``, by default its name)."""
    honoured = kick_off_parts()
    types: list[str] = []
    since = None
    given: set[str] = set()
    for (name, value), at in zip(parameters, where if where is not None else _names(parameters), strict=True):
        if not lenient:
            refuse_unsupported_parameters([name], "$export", honoured.types, at)
        if name in honoured.single:
            if name in given:
                raise FhirError(400, "http.repeated-parameter", at, name=name)
            given.add(name)
        if name == "_type":
            types += [kind for kind in listed_types(value) if kind not in types]
        elif name == "_since":
            since = instant({name: value}, name, at)
        elif name == "_outputFormat":
            if value.replace(" ", "+") not in OUTPUT_FORMATS:  # an unescaped "+" reads as a space
                raise FhirError(400, "http.export-output-format", at, format=value)
    return types or None, since


def _names(parameters: Sequence[tuple[str, str]]) -> list[str]:
    """Where a query string's parameters were given: at their names."""
    return [name for name, _ in parameters]


@contextmanager
def _located(where: str) -> Iterator[None]:
    """Refusals of one given parameter's value name ``where`` it was given: the checks that
    raise them (a ``_typeFilter`` search's, an ``_elements`` name's) know only its name."""
    try:
        yield
    except FhirError as refused:
        refused.expression = where
        raise


def _patient_id(reference: str, scope: str) -> str:
    """The id a ``patient`` parameter names: a Patient by a relative reference (one on this
    server's base arrives relative), for a Patient or Group export alone."""
    if scope == "system":
        raise FhirError(400, "http.export-patient-system")
    found = PATIENT_REFERENCE.fullmatch(reference)
    if found is None:
        raise FhirError(400, "http.export-patient-reference", value=reference)
    return found.group(1)


def _check_visible(tx: Transaction, kind: str, resource_id: str, access: Access, where: str | None = None) -> None:
    """The Group, or a Patient named by ``patient``, exists and the principal may see it: a
    hidden one is absent (404), as on read, so that an elderly-care client cannot tell
    someone it does not serve from no one."""
    found = tx.resources.read(kind, resource_id)
    if found is None or access.hides(tx, found):
        raise not_found(kind, resource_id, where)
    if found.deleted:
        raise FhirError(410, "http.gone", where, reference=found.reference, when=found.last_updated)


def _check_members(tx: Transaction, scope: str, patients: dict[str, str]) -> None:
    """Each Patient ``patient`` names (by where it was named) is one of the Group's active
    members: one who is not SHOULD be answered with an error (IG v2).  Left out in silence, a
    resident who had left the home, or was marked inactive, came back as an empty export, as
    if the archive held nothing of them."""
    members = set(_members(tx, scope))
    for patient_id, at in patients.items():
        if patient_id not in members:
            raise FhirError(400, "http.export-patient-not-member", at, reference=f"Patient/{patient_id}", group=scope)


def _people(tx: Transaction, job: Job, served: frozenset[str] | None = None) -> Iterator[Stored]:
    """The Patients of a Patient export (all of them, or those its ``patient`` parameter
    named) or of a Group export: those its active members name as ``Patient/<id>`` (not a
    resident who left the home or has not moved in yet: see :func:`_outside`), and of them
    only those ``patient`` named, if it did; with ``served``, only those people.  One at a time, as the
    archive is read: a province's archive holds millions of people."""
    people = _all_people(tx, job)
    return people if served is None else (patient for patient in people if patient.id in served)


def _names_any(stored: Stored, people: Callable[[str], bool]) -> bool:
    """Whether a version's text names one of ``people`` as a Patient as the search index reads
    a reference (:func:`_patients_named`): a version that does not is in none of their
    compartments.  Asked before :meth:`PersonalData.in_compartment_of`, which indexes the
    whole version (~1 ms): a Group's export judged every record changed since in the archive
    so, whoever's it was."""
    return any(people(found) for found in _patients_named(stored))


#: how a version's text (as orjson or JSONB wrote it) may name a person by number alone: a
#: Reference's ``identifier`` is an object (a resource's own are an array), or a reference
#: to a contained resource; a few single identifiers of a resource (Composition's) match too
_BY_NUMBER = re.compile(rb'"identifier"\s*:\s*\{|"reference"\s*:\s*"#')


def _may_name_by_number(stored: Stored) -> bool:
    """Whether a version's text may name a person by number alone (an index row of
    :data:`IDENTIFIED_PEOPLE`), which places it in that person's compartment: a text test, so
    that the usual record, which names its resident by id, is not indexed to learn so."""
    return _BY_NUMBER.search(stored.json()) is not None


def _patients_named(stored: Stored) -> Iterator[str]:
    """The ids of the Patients a version's text names, as the search index reads a reference
    (:func:`referenced_id`), wherever it sits: its compartments are among theirs.  Only the
    strings holding the word ``Patient`` are asked, found in the text orjson stored (which
    escapes no letter): the index takes a reference's type from its text."""
    text = stored.json()
    at = text.find(b"Patient")
    while at >= 0:
        opening, closing = _unescaped_quote(text, at, -1), _unescaped_quote(text, at, 1)
        found = referenced_id(orjson.loads(text[opening : closing + 1]), "Patient")
        if found is not None:
            yield found
        at = text.find(b"Patient", closing)


def _unescaped_quote(text: bytes, at: int, step: int) -> int:
    """Where the JSON string holding byte ``at`` of ``text`` opens (``step`` -1) or closes
    (``step`` 1): the nearest quote that way that no backslash escapes."""
    quote = at
    while True:
        quote = text.rfind(b'"', 0, quote) if step < 0 else text.find(b'"', quote + 1)
        escapes = quote
        while text[escapes - 1 : escapes] == b"\\":
            escapes -= 1
        if (quote - escapes) % 2 == 0:
            return quote


def _outside(period: Any, now: str) -> bool:
    """Whether ``now`` falls outside a Group membership's period: it ended before (a resident
    who left the home is a member no longer, whether the Group says inactive or gives the day
    they left) or begins after (a resident booked to move in is not the home's yet, and their
    archive is not the home's to receive)."""
    if not isinstance(period, dict):
        return False
    start, end = period.get("start"), period.get("end")
    try:
        begins_later = isinstance(start, str) and date_range(start)[0] > now
        ended = isinstance(end, str) and date_range(end)[1] < now
    except ValueError:
        return False  # the profile judges a malformed date; membership stays as written
    return begins_later or ended


def _all_people(tx: Transaction, job: Job) -> Iterator[Stored]:
    chosen = _person_ids(tx, job)
    if chosen is None:
        return tx.resources.current(["Patient"])
    return _chosen_people(tx, chosen)


def _chosen_people(tx: Transaction, chosen: list[str]) -> Iterator[Stored]:
    """The current Patients of ``chosen``, in its order, read :data:`BATCH` at a time in one
    statement (a statement each before: a Group of 5,000 residents was 5,000 reads)."""
    for start in range(0, len(chosen), BATCH):
        ids = chosen[start : start + BATCH]
        found = tx.resources.read_many([("Patient", patient_id) for patient_id in ids])
        for patient_id in ids:
            patient = found.get(("Patient", patient_id))
            if patient is not None and not patient.deleted:
                yield patient


def _person_ids(tx: Transaction, job: Job) -> list[str] | None:
    """The ids of the Patients a Patient or Group export is of (None: every Patient): those
    its ``patient`` parameter named, and of a Group export, only those of them who are the
    Group's active members."""
    if job.scope == "Patient":
        return job.patients
    members = _members(tx, job.scope)
    return members if job.patients is None else [person for person in members if person in job.patients]


def _among(chosen: list[str] | None, served: frozenset[str] | None) -> Callable[[str], bool]:
    """Whether a person is one of ``chosen`` (None: anyone) and, given ``served``, one of them."""
    if chosen is None:
        return served.__contains__ if served is not None else _anyone
    return frozenset(_listed_people(chosen, served) or ()).__contains__


def _listed_people(chosen: list[str] | None, served: frozenset[str] | None) -> list[str] | None:
    """The people of ``chosen`` (None: anyone) who are, given ``served``, among them; None:
    anyone.  A list for the store to look records up by (:class:`Referrers`)."""
    if chosen is None:
        return list(served) if served is not None else None
    return [person for person in chosen if served is None or person in served]


def _joined(tx: Transaction, scope: str, since: str) -> frozenset[str]:
    """The people a Group export's Group names now but did not at ``since`` (its version
    then, from the history): every one of them if the Group did not exist yet."""
    if not scope.startswith("Group/"):
        return frozenset()
    then = tx.resources.as_of("Group", scope.removeprefix("Group/"), since)
    before = set(_active_members(then.resource, since)) if then is not None and then.resource else set()
    return frozenset(person for person in _members(tx, scope) if person not in before)


def _anyone(_person: str) -> bool:
    return True


def _members(tx: Transaction, scope: str) -> list[str]:
    """The Patient ids a Group export's active members name, in the Group's order."""
    group = tx.resources.read("Group", scope.removeprefix("Group/"))
    return _active_members(group.resource, now_instant()) if group is not None and group.resource else []


def _active_members(group: dict[str, Any], moment: str) -> list[str]:
    """The Patient ids of a Group's members active at ``moment``, in the Group's order."""
    return list(
        dict.fromkeys(
            member["entity"]["reference"].removeprefix("Patient/")
            for member in group.get("member", [])
            if not member.get("inactive")
            and not _outside(member.get("period"), moment)
            and re.fullmatch(r"Patient/[^/]+", member.get("entity", {}).get("reference", ""))
        )
    )


def _load(store: Store, job_id: str) -> Job | None:
    with store.reading() as tx:
        row = tx.sql.one(f"SELECT {_COLUMNS} FROM export_job WHERE id = ?", (job_id,))
        if row is None:
            return None
        json_out = tx.sql.dialect.json_out
    return Job(
        id=row[0],
        request=row[1],
        scope=row[2],
        types=json_out(row[3]) if row[3] is not None else None,
        since=row[4],
        status=row[5],
        created=row[6],
        heartbeat=row[7],
        progress=int(row[8]),
        finished=row[9],
        error=json_out(row[10]) if row[10] is not None else None,
        output=json_out(row[11]) if row[11] is not None else [],
        client=row[12],
        served_by=row[13],
        type_filters=[TypeFilter(kind, criteria) for kind, criteria in json_out(row[14])] if row[14] else [],
        elements=json_out(row[15]) if row[15] else [],
        patients=json_out(row[16]) if row[16] else None,
    )


def _end(
    store: Store,
    job_id: str,
    status: str,
    output: list[dict[str, Any]] | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """Record how a job ended, unless it was cancelled or failed meanwhile; whether it was."""
    with store.transaction() as tx:
        json_in = tx.sql.dialect.json_in
        tx.sql.execute(
            "UPDATE export_job SET status = ?, finished = ?, output = ?, error = ? WHERE id = ? AND status = ?",
            (
                status,
                now_instant(),
                json_in(output) if output is not None else None,
                json_in(error) if error is not None else None,
                job_id,
                IN_PROGRESS,
            ),
        )
        row = tx.sql.one("SELECT status FROM export_job WHERE id = ?", (job_id,))
    return row is not None and row[0] == status


@dataclass
class _NdjsonFiles:
    """One owner-only NDJSON file per type, opened when its first resource arrives; each
    resource written once (a resource in two residents' compartments appears once)."""

    folder: Path
    #: whether a written resource's key is kept (``seen``): one the job may meet again or
    #: asks about afterwards (:meth:`BulkExports._remembers`), not each of millions
    remembers: Callable[[Stored], bool]
    handles: dict[str, IO[bytes]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    #: the Bundles (lines) of the deletions file: the manifest's ``count`` is the resources a
    #: file holds (IG v2), and each of its resources is one Bundle of up to 500 deletions
    deletions: int = 0

    def __enter__(self) -> _NdjsonFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles.values():
            handle.close()

    def add(self, stored: Stored, resource: dict[str, Any]) -> bool:
        """Write ``resource`` (the stored one, or cut by ``_elements``) unless already written."""
        if (stored.type, stored.id) in self.seen:
            return False
        if self.remembers(stored):
            self.seen.add((stored.type, stored.id))
        handle = self.handles.get(stored.type)
        if handle is None:
            path = self.folder / f"{stored.type}.ndjson"
            descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            handle = self.handles[stored.type] = os.fdopen(descriptor, "wb")
        handle.write(orjson.dumps(resource) + b"\n")
        self.counts[stored.type] = self.counts.get(stored.type, 0) + 1
        return True

    def add_deletions(self, references: Iterable[str]) -> None:
        """The deletions file (the IG's ``deleted`` output, :func:`deletion_bundles`)."""
        for bundle in deletion_bundles(references):
            handle = self.handles.get(DELETED)
            if handle is None:
                descriptor = os.open(self.folder / DELETED_FILE, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
                handle = self.handles[DELETED] = os.fdopen(descriptor, "wb")
            handle.write(orjson.dumps(bundle) + b"\n")
            self.deletions += 1

    def output(self) -> list[dict[str, Any]]:
        for handle in self.handles.values():
            handle.flush()
            os.fsync(handle.fileno())
        files = [
            {"type": kind, "file": f"{kind}.ndjson", "count": count} for kind, count in sorted(self.counts.items())
        ]
        if self.deletions:
            files.append({"type": "Bundle", "file": DELETED_FILE, "count": self.deletions, "deleted": True})
        return files


def _provenances(run: _JobRun, written: Sequence[Stored]) -> list[Stored]:
    """The Provenances targeting records a Patient or Group export has just written, that it
    holds (its client may read them, ``_typeFilter`` keeps them): one statement on the
    ``target`` index rows of the batch.  The IG (v2) has such an export hold every Provenance
    whose target is in the Patient compartment; the compartment's own parameter finds only
    those targeting a Patient, which the export's people bring along already (and which are
    not asked again here)."""
    records = [stored for stored in written if stored.type not in ("Patient", PROVENANCE)]
    return run.kept(run.tx.resources.included(_PROVENANCE_OF, records)) if records else []


def _targets(resource: dict[str, Any] | None) -> list[tuple[str, str]]:
    """What a Provenance (a version of it: ``None`` once deleted) targets, as (type, id), read
    as the index reads its ``target`` references."""
    targets = resource.get("target", []) if resource else []
    return [key for target in targets if isinstance(target, dict) and (key := referenced_key(target)) is not None]


def _batches(found: Iterable[Stored]) -> Iterator[list[Stored]]:
    """What a job writes, :data:`BATCH` resources at a time (``itertools.batched`` is 3.12's)."""
    iterator = iter(found)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch
