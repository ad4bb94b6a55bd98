-- Every text column compares byte by byte (COLLATE "C"), whatever collation the database was
-- created with.  A database made with a language's collation (en_US.utf8, the default of the
-- official Docker image, or an ICU locale) sorted ids and types by that language's rules:
-- `_sort=_id`, includes, exports and history listed resources in another order than SQLite
-- (B1 after a1 there, before it here), and the pages of a walk over the archive were cut
-- elsewhere.  Code point order is also what the search index's values had already (0001), so
-- a comparison between two columns never meets two collations.  Indexes on these columns are
-- rebuilt; the tables are not rewritten (the type stays TEXT).  schema_migration, the
-- runner's own table, holds only a time of application.
ALTER TABLE audit_event
    ALTER COLUMN recorded TYPE TEXT COLLATE "C",
    ALTER COLUMN agent TYPE TEXT COLLATE "C",
    ALTER COLUMN outcome TYPE TEXT COLLATE "C",
    ALTER COLUMN entity_types TYPE TEXT COLLATE "C",
    ALTER COLUMN entities TYPE TEXT COLLATE "C",
    ALTER COLUMN prev_hash TYPE TEXT COLLATE "C",
    ALTER COLUMN hash TYPE TEXT COLLATE "C",
    ALTER COLUMN event TYPE TEXT COLLATE "C";
ALTER TABLE client
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN organization TYPE TEXT COLLATE "C",
    ALTER COLUMN role TYPE TEXT COLLATE "C",
    ALTER COLUMN scopes TYPE TEXT COLLATE "C",
    ALTER COLUMN secret_hash TYPE TEXT COLLATE "C",
    ALTER COLUMN status TYPE TEXT COLLATE "C",
    ALTER COLUMN created TYPE TEXT COLLATE "C",
    ALTER COLUMN rotated TYPE TEXT COLLATE "C";
ALTER TABLE client_assertion
    ALTER COLUMN client_id TYPE TEXT COLLATE "C",
    ALTER COLUMN jti TYPE TEXT COLLATE "C",
    ALTER COLUMN expires TYPE TEXT COLLATE "C";
ALTER TABLE exchange
    ALTER COLUMN recorded TYPE TEXT COLLATE "C",
    ALTER COLUMN day TYPE TEXT COLLATE "C",
    ALTER COLUMN client TYPE TEXT COLLATE "C",
    ALTER COLUMN organization TYPE TEXT COLLATE "C",
    ALTER COLUMN source TYPE TEXT COLLATE "C",
    ALTER COLUMN channel TYPE TEXT COLLATE "C",
    ALTER COLUMN interaction TYPE TEXT COLLATE "C",
    ALTER COLUMN verdict TYPE TEXT COLLATE "C",
    ALTER COLUMN resource_types TYPE TEXT COLLATE "C";
ALTER TABLE exchange_issue
    ALTER COLUMN exchange_verdict TYPE TEXT COLLATE "C",
    ALTER COLUMN severity TYPE TEXT COLLATE "C",
    ALTER COLUMN rule TYPE TEXT COLLATE "C",
    ALTER COLUMN location TYPE TEXT COLLATE "C",
    ALTER COLUMN text_zh TYPE TEXT COLLATE "C",
    ALTER COLUMN text_en TYPE TEXT COLLATE "C";
ALTER TABLE exchange_purge
    ALTER COLUMN purged_before TYPE TEXT COLLATE "C";
ALTER TABLE exchange_verdict
    ALTER COLUMN resource_type TYPE TEXT COLLATE "C",
    ALTER COLUMN resource_id TYPE TEXT COLLATE "C",
    ALTER COLUMN profile TYPE TEXT COLLATE "C";
ALTER TABLE export_job
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN request TYPE TEXT COLLATE "C",
    ALTER COLUMN scope TYPE TEXT COLLATE "C",
    ALTER COLUMN since TYPE TEXT COLLATE "C",
    ALTER COLUMN status TYPE TEXT COLLATE "C",
    ALTER COLUMN created TYPE TEXT COLLATE "C",
    ALTER COLUMN heartbeat TYPE TEXT COLLATE "C",
    ALTER COLUMN finished TYPE TEXT COLLATE "C",
    ALTER COLUMN client TYPE TEXT COLLATE "C",
    ALTER COLUMN served_by TYPE TEXT COLLATE "C";
ALTER TABLE identity_conflict
    ALTER COLUMN person_id TYPE TEXT COLLATE "C",
    ALTER COLUMN element TYPE TEXT COLLATE "C",
    ALTER COLUMN file TYPE TEXT COLLATE "C",
    ALTER COLUMN location TYPE TEXT COLLATE "C";
ALTER TABLE keyed
    ALTER COLUMN type TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN as_of TYPE TEXT COLLATE "C";
ALTER TABLE ledger
    ALTER COLUMN scope TYPE TEXT COLLATE "C",
    ALTER COLUMN digest TYPE TEXT COLLATE "C",
    ALTER COLUMN location TYPE TEXT COLLATE "C",
    ALTER COLUMN run TYPE TEXT COLLATE "C",
    ALTER COLUMN identity TYPE TEXT COLLATE "C";
ALTER TABLE person_key
    ALTER COLUMN key TYPE TEXT COLLATE "C",
    ALTER COLUMN person_id TYPE TEXT COLLATE "C";
ALTER TABLE quarantine
    ALTER COLUMN source TYPE TEXT COLLATE "C",
    ALTER COLUMN identity TYPE TEXT COLLATE "C",
    ALTER COLUMN digest TYPE TEXT COLLATE "C",
    ALTER COLUMN file TYPE TEXT COLLATE "C",
    ALTER COLUMN location TYPE TEXT COLLATE "C",
    ALTER COLUMN recorded TYPE TEXT COLLATE "C";
ALTER TABLE resource
    ALTER COLUMN type TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN last_updated TYPE TEXT COLLATE "C",
    ALTER COLUMN owner TYPE TEXT COLLATE "C";
ALTER TABLE resource_version
    ALTER COLUMN type TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN last_updated TYPE TEXT COLLATE "C",
    ALTER COLUMN method TYPE TEXT COLLATE "C";
ALTER TABLE search_index
    ALTER COLUMN type TYPE TEXT COLLATE "C",
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN name TYPE TEXT COLLATE "C",
    ALTER COLUMN system TYPE TEXT COLLATE "C",
    ALTER COLUMN low TYPE TEXT COLLATE "C",
    ALTER COLUMN high TYPE TEXT COLLATE "C";
ALTER TABLE server_key
    ALTER COLUMN name TYPE TEXT COLLATE "C",
    ALTER COLUMN secret TYPE TEXT COLLATE "C",
    ALTER COLUMN created TYPE TEXT COLLATE "C"
