-- A bulk export's _typeFilter searches (gateway/fhir/export_filters.py): a JSON array of
-- [type, query] pairs, checked at kick-off and run again by the job; NULL filters nothing.
ALTER TABLE export_job ADD COLUMN type_filters {json};
