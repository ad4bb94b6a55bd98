"""The ingest pipeline: read legacy files → map → validate → merge keyed resources and people → write or quarantine."""
