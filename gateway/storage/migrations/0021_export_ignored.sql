-- The kick-off parameters a bulk export ignored under Prefer: handling=lenient
-- (gateway/fhir/bulk_export/ignored.py): a JSON array of {message_id, params, expression},
-- each reported as an OperationOutcome in the manifest's error array (IG v2); NULL: none.
ALTER TABLE export_job ADD COLUMN ignored {json};
