-- Bulk Data export jobs (gateway/fhir/bulk_export.py).  The row is the job's source of truth:
-- any worker answers a status request from it, whichever worker runs the job.  The worker
-- running a job moves heartbeat forward every few seconds; a job whose heartbeat stopped
-- (its worker was killed) is marked failed by the next status request.

CREATE TABLE export_job (
    id TEXT PRIMARY KEY,
    -- the kick-off URL, echoed in the manifest as request
    request TEXT NOT NULL,
    -- system, Patient or Group/ID
    scope TEXT NOT NULL,
    -- the _type list as a JSON array; NULL exports every type
    types {json},
    -- _since in the store's instant form; NULL exports everything
    since TEXT,
    -- in-progress, completed or failed
    status TEXT NOT NULL,
    -- the store's time at kick-off: the manifest's transactionTime, the client's next _since
    created TEXT NOT NULL,
    heartbeat TEXT NOT NULL,
    -- resources written so far (X-Progress)
    progress INTEGER NOT NULL,
    finished TEXT,
    -- a failed job's message id and parameters, worded in the language of each status request
    error {json},
    -- a completed job's files: type, file name and line count of each
    output {json},
    -- the client that asked (only it may see the job and its files)
    client TEXT,
    -- the organisation an elderly-care client acts for: only the people it serves are exported
    served_by TEXT
);
CREATE INDEX export_job_status ON export_job (status, heartbeat);
