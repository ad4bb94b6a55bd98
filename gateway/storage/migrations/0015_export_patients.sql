-- The Patients a bulk export's `patient` parameter named (gateway/fhir/bulk_export.py): a
-- JSON array of Patient ids the job exports alone (of a Group export, those of them who are
-- its active members); NULL exports everyone in the job's scope.
ALTER TABLE export_job ADD COLUMN patients {json};
