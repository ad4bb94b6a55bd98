-- A bulk export's _typeFilter searches and _elements names (gateway/fhir/export_filters.py),
-- checked at kick-off and applied by the job: type_filters a JSON array of [type, query]
-- pairs, elements a JSON array of names; NULL filters or cuts nothing.
ALTER TABLE export_job ADD COLUMN type_filters {json};
ALTER TABLE export_job ADD COLUMN elements {json};
