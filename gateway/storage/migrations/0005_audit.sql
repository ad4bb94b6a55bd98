-- The audit trail (gateway/security/audit.py): one row per request, append-only and chained.
-- Each row's hash is SHA-256 over the previous row's hash followed by the event's canonical
-- JSON, so editing, deleting or inserting a row breaks every link after it (`yiyang audit
-- verify`).  The event is kept as the exact canonical text that was hashed (not JSONB, which
-- would normalise it), and the columns beside it are copies of its fields for searching.
CREATE TABLE audit_event (
    -- position in the chain: 1, 2, 3 … with no gaps (appends are serialised); also the
    -- AuditEvent's id, as /fhir/AuditEvent/<seq> serves it (assigned under the chain lock)
    seq INTEGER PRIMARY KEY,
    -- AuditEvent.recorded in the store's fixed-width instant form (text order is time order)
    recorded TEXT NOT NULL,
    -- the acting client id, or "anonymous"
    agent TEXT NOT NULL,
    -- AuditEvent.outcome: 0, 4, 8 or 12
    outcome TEXT NOT NULL,
    -- " Patient Observation ": the resource types the request touched, space-delimited
    entity_types TEXT NOT NULL,
    -- " Patient/1 Encounter/7 ": the references it named, space-delimited
    entities TEXT NOT NULL,
    -- hex SHA-256 of the previous row ("" before the first)
    prev_hash TEXT NOT NULL,
    -- hex SHA-256 of prev_hash || event
    hash TEXT NOT NULL,
    -- canonical JSON (keys sorted, compact, UTF-8) of the FHIR AuditEvent
    event TEXT NOT NULL
);
CREATE INDEX audit_event_recorded ON audit_event (recorded);
CREATE INDEX audit_event_agent ON audit_event (agent, recorded);
