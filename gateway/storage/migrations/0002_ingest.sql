-- What the ingest pipeline keeps beside the resources, in the same store so that one record
-- commits as one transaction: the identity index, keyed resources' event times, the ledger
-- of records seen, the quarantine and the demographic disagreements.

-- Match keys (身份证号, 医保人员编号, 健康档案编号) of the Patient each person is.
CREATE TABLE person_key (
    key TEXT PRIMARY KEY,
    person_id TEXT NOT NULL
);

-- The event time the stored version of a keyed resource speaks for (HL7 EVN-6 …).
CREATE TABLE keyed (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    as_of TEXT,
    PRIMARY KEY (type, id)
);

-- Records seen, by content, per file and spec version (see gateway/ingest/ledger.py), with
-- what each record is in its source system (spec id and record key, see
-- mappings.engine.record_identity), so that two different records claiming one key in one run
-- are caught instead of the second silently replacing the first.
CREATE TABLE ledger (
    scope TEXT NOT NULL,
    digest TEXT NOT NULL,
    location TEXT NOT NULL,
    run TEXT NOT NULL,
    landed {bool} NOT NULL,
    identity TEXT,
    PRIMARY KEY (scope, digest)
);
CREATE INDEX ledger_identity ON ledger (identity, run);

-- Records that did not become valid FHIR: one entry per record and content (by what the record
-- is in its source system, not by file name and row: two clinics' exports may share a file
-- name), replaced when the same record fails again with the same content, removed when it lands.
CREATE TABLE quarantine (
    seq {serial},
    source TEXT NOT NULL,
    identity TEXT NOT NULL,
    digest TEXT NOT NULL,
    file TEXT NOT NULL,
    location TEXT NOT NULL,
    recorded TEXT NOT NULL,
    entry {json} NOT NULL,
    UNIQUE (source, identity, digest)
);

-- Demographics a source disagreed on with the archive (kept, reported once per record).
CREATE TABLE identity_conflict (
    seq {serial},
    person_id TEXT NOT NULL,
    element TEXT NOT NULL,
    file TEXT NOT NULL,
    location TEXT NOT NULL,
    entry {json} NOT NULL,
    UNIQUE (person_id, element, file, location)
);
