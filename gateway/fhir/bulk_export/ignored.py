"""The kick-off parameters a job ignored under ``Prefer: handling=lenient``, reported as the IG
asks: "If the request contained invalid or unsupported parameters along with a ``Prefer:
handling=lenient`` header and the server processed the request, the server SHOULD include a
FHIR OperationOutcome resource for each of these parameters" in the manifest's ``error``
array (Bulk Data IG v2, Response - Complete Status).  Ignored in silence, a filter the client
believed applied answered more than it asked for, and nothing said so.

The job keeps what was ignored as catalogued messages; each download words them in the
language its request asks for, as every other answer of the gateway is worded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from gateway.fhir.bulk_export.job import Job
from gateway.fhir.errors import FhirError
from gateway.messages import issue

#: the file of a job's messages (no resource type is called so): an NDJSON of OperationOutcomes
MESSAGES_FILE = "Messages.ndjson"


def kept(refusals: list[FhirError]) -> list[dict[str, Any]]:
    """What the job row keeps of the refusals lenient handling let pass."""
    return [
        {"message_id": found.message_id, "params": found.params, "expression": found.expression} for found in refusals
    ]


def message_files(job: Job, base_url: str) -> list[dict[str, Any]]:
    """The manifest's ``error`` array: the messages file, if the job ignored anything."""
    if not job.ignored:
        return []
    url = f"{base_url}/$export-file/{job.id}/{MESSAGES_FILE}"
    return [{"type": "OperationOutcome", "url": url, "count": len(job.ignored)}]


def message_lines(job: Job, lang: str) -> Iterator[bytes]:
    """One OperationOutcome line per ignored parameter, its warning located at where the
    parameter was given (``includeAssociatedData``, ``Parameters.parameter[1].name``)."""
    for ignored in job.ignored:
        warning = issue("warning", ignored["message_id"], lang, ignored["params"], ignored["expression"])
        yield orjson.dumps({"resourceType": "OperationOutcome", "issue": [warning]}) + b"\n"
