"""``yiyang conformance check``: exported files (a platform's bulk export, a Bundle saved to
disk) validated resource by resource, for the same reports as the recorded exchanges.

Each NDJSON line, JSON resource or Bundle entry is one resource checked, held to the profiles
it claims and — as a write to the gateway would be — to the provincial profile of its type.
A Bundle is validated whole (its references are checked across entries) and each issue is
attributed to the entry its FHIRPath points into.  Input that is not JSON or not FHIR is a
resource that fails with a fatal issue, never a traceback; lines are read with the same length
limit as ``yiyang validate``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from conformance.issues import Issue
from conformance.report.aggregate import CheckedResource
from conformance.report.model import Finding
from conformance.validator import Validator
from gateway.exchanges import BASE_PROFILE, RECORDED, claimed_profiles, type_name
from gateway.export import CONFLICTS_FILE, QUARANTINE_FILE, RESOLVED_FILE
from gateway.masking import mask_text
from gateway.validation_io import BOM, NDJSON_SUFFIXES, _lines, describe_encoding

SUFFIXES = (".json", *NDJSON_SUFFIXES)
_ENTRY = re.compile(r"Bundle\.entry\[(\d+)\]")


#: what an export folder holds beside its resources (``gateway/export.py``): not resources
NOT_RESOURCES = frozenset({QUARANTINE_FILE, RESOLVED_FILE, CONFLICTS_FILE})


def files_in(paths: Sequence[Path]) -> list[Path]:
    """The files named, and the .json/.ndjson/.jsonl files under the folders named, in order
    (an ingest's or ``yiyang export``'s quarantine and conflicts files left out)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in SUFFIXES and p.name not in NOT_RESOURCES
            )
        else:
            found.append(path)
    return found


class FileChecker:
    """Validates documents with the one validator; ``defaults`` is the provincial profile per
    resource type (``gateway.fhir.repository.default_profiles``)."""

    def __init__(
        self, validator: Validator, defaults: Mapping[str, str], max_bytes: int, lang: str, profiles: Sequence[str] = ()
    ) -> None:
        self.validator = validator
        self.defaults = defaults
        self.max_bytes = max_bytes
        self.lang = lang
        self.profiles = tuple(profiles)

    def check(self, path: Path, name: str | None = None) -> Iterator[CheckedResource]:
        """Every resource of one file; ``name`` is how the report names the file (masked: an
        export may name a file after a person's 身份证号)."""
        name = mask_text(name or str(path))
        with path.open("rb") as handle:
            if path.suffix.lower() in NDJSON_SUFFIXES:
                for number, line in _lines(handle, self.max_bytes):
                    where = f"line {number}"
                    if line is None:
                        yield self._refused(name, where, "input.line-too-long", line=number, limit=self.max_bytes)
                    else:
                        yield from self._document(name, where, line)
                return
            size = path.stat().st_size
            if size > self.max_bytes:
                yield self._refused(name, "", "input.too-large", size=size, limit=self.max_bytes)
                return
            yield from self._document(name, "", handle.read())

    def _document(self, name: str, where: str, raw: bytes) -> Iterator[CheckedResource]:
        try:
            document = orjson.loads(raw.removeprefix(BOM))
        except orjson.JSONDecodeError as exc:
            yield self._refused(name, where, "input.not-json", detail=describe_encoding(raw) or str(exc)[:160])
            return
        if not isinstance(document, dict) or "resourceType" not in document:
            yield self._refused(name, where, "input.not-resource")
            return
        wanted = self._wanted(document)
        issues = self.validator.validate(document, wanted)
        entries = document.get("entry") if document.get("resourceType") == "Bundle" else None
        if not isinstance(entries, list) or not entries:
            yield self._checked(name, where, document, wanted, issues)
            return
        by_entry: dict[int | None, list[Issue]] = {}
        for issue in issues:
            found = _ENTRY.match(issue.expression or "")
            index = int(found.group(1)) if found and int(found.group(1)) < len(entries) else None
            by_entry.setdefault(index, []).append(issue)
        yield self._checked(name, where, document, wanted, by_entry.get(None, []))
        for index, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            position = f"{where} entry {index}".strip()
            resource = resource if isinstance(resource, dict) else {"resourceType": "?"}
            yield self._checked(name, position, resource, claimed_profiles(resource), by_entry.get(index, []))

    def _wanted(self, document: dict[str, Any]) -> list[str]:
        wanted = [*claimed_profiles(document), *self.profiles]
        default = self.defaults.get(str(document.get("resourceType")))
        if default:
            wanted.append(default)
        return list(dict.fromkeys(wanted))

    def _checked(
        self, name: str, where: str, resource: Mapping[str, Any], profiles: Sequence[str], issues: Sequence[Issue]
    ) -> CheckedResource:
        kind = type_name(resource.get("resourceType"))
        resource_id = mask_text(str(resource.get("id") or ""))
        subject = f"{kind}/{resource_id}" if resource_id else kind
        findings = tuple(
            Finding(
                issue.severity,
                issue.message_id,
                mask_text(issue.expression or issue.location or ""),
                mask_text(issue.text(self.lang)),
                subject,
            )
            for issue in issues
            if issue.severity in RECORDED
        )
        held_to = tuple(mask_text(profile) for profile in profiles) or (BASE_PROFILE + kind,)
        return CheckedResource(name, where, kind, resource_id, held_to, findings)

    def _refused(self, name: str, where: str, message_id: str, **params: Any) -> CheckedResource:
        issue = Issue("fatal", message_id, "", params)
        return CheckedResource(
            name, where, "?", "", (), (Finding("fatal", message_id, "", mask_text(issue.text(self.lang))),)
        )
