-- The open quarantine entries, apart from the resolved: a source's corrected exports resolve
-- one entry after another, and the resolved stay for the audit, so an archive gathers far
-- more resolved entries than open ones.  Each write transaction of an ingest reads its
-- source's open identities once (gateway/storage/ingest_tables.py, Quarantine._may_name), and
-- a replay, quarantine.ndjson and the run's summary read and count the open entries; each
-- read every entry, resolved or not (at 200,000 resolved and 1,000 open, 60–90 ms a read on
-- either database; with this index 0.1 ms, and 2–5 ms for the entries themselves).  Partial:
-- it holds the open entries alone, so a resolved one costs it nothing.
CREATE INDEX quarantine_open ON quarantine (source, identity) WHERE resolved IS NULL;
