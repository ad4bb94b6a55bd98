-- Resources are kept as the JSON text they were written as (type JSON), not as JSONB: JSONB
-- keeps its own key order (shortest key first, resourceType last), so a read, a search, a
-- history or an export from PostgreSQL listed the elements in another order than the same
-- request to SQLite, and than FHIR's JSON form (resourceType first, elements in definition
-- order).  No statement of the store looks inside a document, so nothing needs JSONB; the text
-- is also what a read sends on without converting.  Documents already stored keep the order
-- JSONB gave them until they are written again.
ALTER TABLE resource ALTER COLUMN content TYPE JSON USING content::text::json;
ALTER TABLE resource_version ALTER COLUMN content TYPE JSON USING content::text::json
