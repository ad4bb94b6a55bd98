-- The open quarantine entries, apart from the resolved: a source's corrected exports resolve
-- one entry after another, and the resolved stay for the audit, so an archive gathers far
-- more resolved entries than open ones.  Each write transaction of an ingest reads its
-- source's open identities once (gateway/storage/ingest_tables.py, Quarantine._may_name), and
-- a replay, quarantine.ndjson and the run's summary read and count the open entries; each
-- read every entry, resolved or not (at 200,000 resolved and 1,000 open, 60–90 ms a read on
-- either database; with this index 0.1 ms, and 2–5 ms for the entries themselves).  Partial:
-- it holds the open entries alone, so a resolved one costs it nothing.
CREATE INDEX quarantine_open ON quarantine (source, identity) WHERE resolved IS NULL;

-- The issues in the order of the auditors' report's groups (rule, severity, verdict, then
-- location), with the exchange they belong to: a report over most of the exchanges
-- (gateway/storage/exchange_tables.py, _WIDE_RANGE) counts the rules broken and where from this
-- index alone, already in its groups' order.  By the exchange id range, each issue was looked
-- up in the table and every one sorted into its group: at a million issues 2.5–2.7 s of CPU
-- for each of the two counts (9–15 s on a busy machine) for every report and every page of
-- /reports; with the index 0.2 s and 0.45 s.  One more index row for each issue written.
CREATE INDEX exchange_issue_groups ON exchange_issue (rule, severity, exchange_verdict, location, exchange_id);
