"""The provincial platform standard as FHIR conformance resources, plus the registry that
loads them by canonical URL.  Data and lookup only: no validation logic lives here."""
