"""FHIR search: parameter definitions compiled to extractors, the indexer and the query parser (pure, no I/O)."""
