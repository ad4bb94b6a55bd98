"""FHIR interactions on the store, without HTTP: read, write, search, history, Bundles and
operations as the REST API, ``$ingest`` and the MLLP listener share them.

Nothing here imports Flask; answers are data (stored versions, Bundles, OperationOutcomes)
and refusals are :class:`~gateway.fhir.errors.FhirError` with a status and a message id.
"""
