"""The ``export_job`` row of a job: what the kick-off checked, how far the run got, how it
ended.  The row is the source of truth: any worker answers a status request from it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gateway.fhir.errors import FhirError
from gateway.fhir.export_filters import TypeFilter
from gateway.storage.resources import now_instant
from gateway.storage.store import Store

IN_PROGRESS, COMPLETED, FAILED = "in-progress", "completed", "failed"
JOB_ID = re.compile(r"[0-9a-f]{32}")
_COLUMNS = (
    "id, request, scope, types, since, status, created, heartbeat, progress, finished, error, output, client, "
    "served_by, type_filters, elements, patients, ignored"
)


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
    #: the kick-off's parameters ``Prefer: handling=lenient`` ignored, as catalogued messages
    #: ({message_id, params, expression}: :mod:`.ignored`)
    ignored: list[dict[str, Any]] = field(default_factory=list)

    def failure(self) -> FhirError:
        """Why a failed job failed, as the status request's answer: 500 unless the job
        recorded a refusal of its own (a Group deleted after the kick-off: 404)."""
        error = self.error or {"message_id": "http.export-internal", "params": {"incident": "?"}}
        return FhirError(error.get("status", 500), error["message_id"], **error["params"])


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
        ignored=json_out(row[17]) if row[17] else [],
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
