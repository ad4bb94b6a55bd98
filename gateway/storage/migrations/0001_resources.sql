-- Resources, every version of them, and the search index written with them.
-- {json} is JSONB on PostgreSQL and TEXT on SQLite; {bool} BOOLEAN / INTEGER;
-- {serial} an auto-numbered primary key; {real} DOUBLE PRECISION / REAL; {bytewise} text that
-- sorts by code point (COLLATE "C" on PostgreSQL; SQLite's default), so prefix ranges use the index.

-- The current version of every resource (a deleted one keeps its row, content NULL).
CREATE TABLE resource (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted {bool} NOT NULL,
    content {json},
    PRIMARY KEY (type, id)
);
CREATE INDEX resource_last_updated ON resource (last_updated);

-- Every version ever written, for vread and history; seq orders the whole store's history.
CREATE TABLE resource_version (
    seq {serial},
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted {bool} NOT NULL,
    method TEXT NOT NULL,
    content {json},
    UNIQUE (type, id, version)
);
CREATE INDEX resource_version_last_updated ON resource_version (last_updated);

-- One row per value a search parameter takes on the current version of a resource:
--   token      system, value (code / identifier value / "true" / "false")
--   string     value (normalised: NFKD without combining marks, case-folded), system = the raw text (for :exact)
--   uri        value
--   reference  system = target type, value = target id (value = the URL when not local)
--   date       low, high (UTC instants, 'YYYY-MM-DDTHH:MM:SS.ffffffZ')
--   number     number
--   quantity   number, system, value = code (or unit)
CREATE TABLE search_index (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    system TEXT,
    value {bytewise},
    low TEXT,
    high TEXT,
    number {real}
);
CREATE INDEX search_index_value ON search_index (type, name, value);
CREATE INDEX search_index_range ON search_index (type, name, low, high);
CREATE INDEX search_index_owner ON search_index (type, id);
CREATE INDEX search_index_target ON search_index (name, system, value);
