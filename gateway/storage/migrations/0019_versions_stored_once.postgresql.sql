-- A version's JSON is stored once (see the .sqlite.sql of this version for why): the current
-- version lives in resource alone, with the interaction that wrote it (method) and its place
-- in the archive's history (seq); resource_version keeps the versions a later one superseded.
-- seq comes from the sequence that numbered resource_version, now resource's (a superseded
-- version keeps its number in the history).  The current versions' rows are deleted from
-- resource_version: on a large archive, run `yiyang db upgrade` in a quiet hour; autovacuum
-- makes their room reusable afterwards.
ALTER TABLE resource ADD COLUMN seq BIGINT, ADD COLUMN method TEXT COLLATE "C";
UPDATE resource r SET seq = v.seq, method = v.method
FROM resource_version v WHERE v.type = r.type AND v.id = r.id AND v.version = r.version;
DELETE FROM resource_version v USING resource r WHERE v.type = r.type AND v.id = r.id AND v.version = r.version;
ALTER TABLE resource_version ALTER COLUMN seq DROP DEFAULT;
ALTER SEQUENCE resource_version_seq_seq OWNED BY resource.seq;
ALTER SEQUENCE resource_version_seq_seq RENAME TO resource_seq_seq;
ALTER TABLE resource ALTER COLUMN seq SET DEFAULT nextval('resource_seq_seq');
-- a current row without its version row (none was ever written so) is numbered after the others
UPDATE resource SET seq = nextval('resource_seq_seq'), method = 'PUT' WHERE seq IS NULL;
ALTER TABLE resource ALTER COLUMN seq SET NOT NULL, ALTER COLUMN method SET NOT NULL;
CREATE UNIQUE INDEX resource_seq ON resource (seq)
