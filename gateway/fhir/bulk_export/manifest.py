"""The completion manifest of a job (IG v2)."""

from __future__ import annotations

from typing import Any

from gateway.fhir.bulk_export.ignored import message_files
from gateway.fhir.bulk_export.job import Job


def manifest(job: Job, base_url: str) -> dict[str, Any]:
    """The completion manifest of a job (IG v2): its files are fetched with the same bearer
    token as the kick-off (``requiresAccessToken``).

    The files of an elderly-care client's job carry no ``count`` (the IG makes it optional):
    each download judges every line again at its own moment (:func:`_visible_lines`: a
    Consent withdrawn, a reading moved to someone else since), so the lines a download will
    serve are known only as it serves them, and may differ from one download to the next.
    The count the job wrote promised lines the platform never received; counting them at
    each status request would read every file through and still not bind the download.  Its
    deletions file, served as written, keeps its count."""
    return {
        "transactionTime": job.created,
        "request": job.request,
        "requiresAccessToken": True,
        "output": [_file(job, entry, base_url) for entry in job.output if not entry.get("deleted")],
        "deleted": [_file(job, entry, base_url) for entry in job.output if entry.get("deleted")],
        "error": message_files(job, base_url),
    }


def _file(job: Job, entry: dict[str, Any], base_url: str) -> dict[str, Any]:
    found = {"type": entry["type"], "url": f"{base_url}/$export-file/{job.id}/{entry['file']}"}
    return found if job.served_by and not entry.get("deleted") else {**found, "count": entry["count"]}
