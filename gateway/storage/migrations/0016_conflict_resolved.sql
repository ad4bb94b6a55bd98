-- An identity conflict the 主索引 staff settled by merging the two records it names
-- (Patient/$merge) is resolved, not removed: it stays for the audit of what was reported, but
-- says when it was resolved and by which merge (source and target), so the staff's list in
-- identity-conflicts.ndjson tells the open ones from the settled.
ALTER TABLE identity_conflict ADD COLUMN resolved TEXT;
ALTER TABLE identity_conflict ADD COLUMN resolved_by {json};
