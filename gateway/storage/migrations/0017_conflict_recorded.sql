-- When each identity conflict was reported: the 主索引 staff's work list ($identity-conflicts)
-- says how long an entry has waited.  Entries listed before this version have none.
ALTER TABLE identity_conflict ADD COLUMN recorded TEXT;
