-- A request that wrote more resources than one event names (an $ingest of a large file) is
-- recorded as its event followed by part events naming the rest (gateway/security/audit.py,
-- ENTITIES_PER_EVENT), so that no row grows to megabytes.  `part` is 0 for a request's own
-- event and 1, 2 … for its parts: a search counts a request once, by its own event, unless it
-- asks for an entity, which the part naming it answers.
ALTER TABLE audit_event ADD COLUMN part INTEGER NOT NULL DEFAULT 0;
