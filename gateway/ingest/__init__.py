"""The ingest pipeline: read legacy files → map → merge identities → validate → write or quarantine."""
