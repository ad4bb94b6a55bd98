-- A version's JSON is stored once.  Until now each write put the same document in two rows:
-- the current version (resource) and the history (resource_version, every version).  Now the
-- history holds only the versions a later one superseded; the current one lives in resource
-- alone, with the two columns the history needs of it: the interaction that wrote it (method)
-- and its place in the archive's history (seq).  A read by id, a search and an export read
-- resource as before (one indexed lookup); vread and history read both tables.  A create
-- writes one row instead of two (each about 1.2 kB of JSON), and the history no longer counts
-- its rows through AUTOINCREMENT (a write of sqlite_sequence per version).
--
-- seq is resource's row id (INTEGER PRIMARY KEY): SQLite gives a new row one above the
-- largest, and an update, which sets it anew (excluded.seq), moves its row to the end.  Rows
-- of resource are never deleted (a deleted resource keeps its row), so no number is given
-- twice, without AUTOINCREMENT: a superseded version keeps its number in the history, and the
-- current version of its resource has a larger one.
--
-- SQLite cannot add a primary key to a table: both tables are made anew and filled from the
-- old ones (the whole archive is rewritten once; on a large one, run `yiyang db upgrade` in a
-- quiet hour).  A current row without its version row (none was ever written so) keeps its
-- resource, numbered after the others.
CREATE TABLE resource_current (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    method TEXT NOT NULL,
    content TEXT,
    owner TEXT,
    UNIQUE (type, id)
);
INSERT INTO resource_current (seq, type, id, version, last_updated, deleted, method, content, owner)
SELECT v.seq, r.type, r.id, r.version, r.last_updated, r.deleted, COALESCE(v.method, 'PUT'), r.content, r.owner
FROM resource r LEFT JOIN resource_version v ON v.type = r.type AND v.id = r.id AND v.version = r.version
ORDER BY v.seq IS NULL, v.seq;
CREATE TABLE resource_superseded (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    method TEXT NOT NULL,
    content TEXT,
    UNIQUE (type, id, version)
);
INSERT INTO resource_superseded (seq, type, id, version, last_updated, deleted, method, content)
SELECT v.seq, v.type, v.id, v.version, v.last_updated, v.deleted, v.method, v.content
FROM resource_version v
WHERE NOT EXISTS (SELECT 1 FROM resource_current r WHERE r.type = v.type AND r.id = v.id AND r.version = v.version)
ORDER BY v.seq;
DROP TABLE resource;
DROP TABLE resource_version;
ALTER TABLE resource_current RENAME TO resource;
ALTER TABLE resource_superseded RENAME TO resource_version;
CREATE INDEX resource_last_updated ON resource (last_updated);
CREATE INDEX resource_version_last_updated ON resource_version (last_updated);
