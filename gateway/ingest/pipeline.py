"""Read → map → validate → merge identities → write, or quarantine with every reason.

Every record read ends in exactly one of two places: its resources are written (NDJSON per
type, Provenance included) or the record goes to the quarantine.  ``Counts`` checks that
read = mapped + quarantined at the end of every run.  People (the identity index) and keyed
resources (institutions, doctors, hospital stays) are merged in SQLite as records arrive and
written out when the run finishes; everything else streams straight to its NDJSON file.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from conformance.issues import Issue
from conformance.validator import Validator
from gateway.ingest.identity import Conflict, IdentityConflict, IdentityIndex
from gateway.ingest.keyed import KeyedResources
from gateway.ingest.ledger import Ledger
from gateway.ingest.provenance import provenance
from gateway.ingest.quarantine import Entry, QuarantineWriter, Reason
from mappings.engine import Mapped, MappingEngine, Problem, rewrite_references
from mappings.records import SourceRecord

MESSAGES = {
    k: v for k, v in orjson.loads((Path(__file__).parent / "messages.json").read_bytes()).items() if k != "_about"
}


@dataclass(slots=True)
class Counts:
    read: int = 0
    mapped: int = 0
    quarantined: int = 0
    #: demographics a record disagreed on with the archive (kept, and reported)
    conflicts: int = 0
    #: records mapped by an earlier run into the same archive exactly as they are now
    unchanged: int = 0
    resources: Counter[str] = field(default_factory=Counter)
    file_errors: list[str] = field(default_factory=list)

    @property
    def reconciled(self) -> bool:
        return self.read == self.mapped + self.quarantined


@dataclass(slots=True)
class Outcome:
    """What became of one record: its resources, or why it was quarantined."""

    record: SourceRecord
    mapped: Mapped | None
    resources: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    #: an earlier run already wrote this very record (see ledger.py): nothing to write
    unchanged: bool = False
    #: the record's entry in the ledger, marked written once the record lands
    seen_as: tuple[str, str] | None = None


class _Params(dict[str, Any]):
    """Template parameters; a placeholder a problem did not fill stays visible, never raises."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _worded(entry: dict[str, str], params: dict[str, Any]) -> dict[str, str]:
    return {lang: entry[lang].format_map(_Params(params)) for lang in ("zh-CN", "en")}


def _problem_reason(problem: Problem, catalog: dict[str, dict[str, str]]) -> Reason:
    entry = catalog.get(problem.message_id, {"zh-CN": problem.message_id, "en": problem.message_id})
    return Reason(problem.message_id, _worded(entry, problem.params), None, str(problem.ref) if problem.ref else None)


def source_of(mapped: Mapped, name: str, expression: str) -> str | None:
    """The legacy field behind a FHIRPath: the element itself or its nearest mapped ancestor;
    for an element that is missing because its value failed to map, the field that failed."""
    # "Observation.effective[x]" (a profile speaking of a choice) is "effectiveDateTime" in data
    pattern = re.compile(re.escape(expression).replace(r"\[x\]", r"[A-Z]\w*"))
    best: tuple[int, str] | None = None
    for (resource, path), ref in mapped.lineage.items():
        if resource != name:
            continue
        if pattern.fullmatch(path) or _within(expression, path):
            if best is None or len(path) > best[0]:
                best = (len(path), str(ref))
    if best:
        return best[1]
    bare = re.compile(
        ".".join(re.escape(part.split("[")[0]) for part in expression.split(".")).replace(r"\[x\]", "")
        + r"(?:[A-Z]\w*)?(?:\..*)?"
    )
    for (resource, path), ref in mapped.attempted.items():
        if resource == name and bare.fullmatch(path):
            return str(ref)
    return None


def _within(expression: str, path: str) -> bool:
    return expression == path or expression.startswith(path + ".") or expression.startswith(path + "[")


class Ingest:
    def __init__(
        self,
        out_dir: Path,
        validator: Validator,
        engine: MappingEngine,
        catalog: dict[str, dict[str, str]],
        recorded: str | None = None,
    ) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.validator = validator
        self.engine = engine
        self.catalog = {**catalog, **MESSAGES}
        self.recorded = recorded or datetime.now(UTC).isoformat(timespec="seconds")
        self.identity = IdentityIndex(out_dir / "identity.sqlite")
        self.keyed = KeyedResources(out_dir / "keyed.sqlite")
        self.quarantine = QuarantineWriter((out_dir / "quarantine.ndjson").open("a", encoding="utf-8"))
        self._conflicts: IO[bytes] | None = None
        self.counts = Counts()
        self._streams: dict[str, IO[bytes]] = {}
        self.ledger = Ledger(out_dir / "ledger.sqlite")
        #: people and keyed resources this run touched (each counted once however many records name it)
        self._touched: set[tuple[str, str]] = set()

    # -- one record ----------------------------------------------------------------------
    def process(self, record: SourceRecord) -> Outcome:
        self.counts.read += 1
        try:
            outcome = self.evaluate(record)
        except Exception as error:  # noqa: BLE001 - one record's failure must not lose the rest of the run
            outcome = Outcome(record, None)
            outcome.reasons.append(self._reason("ingest.internal-error", error=f"{type(error).__name__}: {error}"))
        if outcome.reasons:
            self.counts.quarantined += 1
            spec = outcome.mapped.spec.id if outcome.mapped else None
            self.quarantine.add(Entry(record, outcome.reasons, spec))
            return outcome
        self.counts.mapped += 1
        if outcome.unchanged:
            self.counts.unchanged += 1
            return outcome
        self._report(outcome)
        keyed = {id(outcome.mapped.resources[name]): as_of for name, as_of in outcome.mapped.keyed.items()}
        for resource in outcome.resources:
            kind = resource["resourceType"]
            if id(resource) in keyed:
                self.keyed.put(resource, keyed[id(resource)])
            elif kind != "Patient":  # people are written from the identity index at the end
                self._write(resource)
                self.counts.resources[kind] += 1
                continue
            touched = (kind, resource["id"])
            if touched not in self._touched:
                self._touched.add(touched)
                self.counts.resources[kind] += 1
        if outcome.seen_as:  # only once written: an interrupted record is not taken for done
            self.ledger.landed(*outcome.seen_as)
        return outcome

    def keep_quarantined(self, record: SourceRecord, entry: dict[str, Any]) -> None:
        """Carry a quarantine line over unchanged (replay of records no fix can release)."""
        self.counts.read += 1
        self.counts.quarantined += 1
        reasons = [
            Reason(r["id"], {"zh-CN": r["zh-CN"], "en": r["en"]}, r.get("fhirpath"), r.get("source"))
            for r in entry["reasons"]
        ]
        self.quarantine.add(Entry(record, reasons, entry.get("spec")))

    def evaluate(self, record: SourceRecord) -> Outcome:
        mapped = self.engine.map(record)
        outcome = Outcome(record, mapped)
        if mapped is None:
            fields = "、".join(list(record.fields)[:8])
            outcome.reasons.append(self._reason("ingest.no-spec", fields=fields))
            return outcome
        scope = f"{record.file}|{mapped.spec.id}|{mapped.spec.version}"
        digest = _digest(record)
        earlier = self.ledger.arrive(scope, digest, record.location)
        if earlier is not None:
            first, this_run = earlier
            if this_run:
                outcome.reasons.append(self._reason("ingest.duplicate-row", first=first))
            else:
                outcome.unchanged = True
            return outcome
        outcome.seen_as = (scope, digest)
        outcome.reasons.extend(_problem_reason(p, self.catalog) for p in mapped.problems)
        for name, resource in mapped.resources.items():
            for issue in self.validator.validate(resource):
                if issue.is_error:
                    outcome.reasons.append(self._issue_reason(issue, mapped, name))
        if outcome.reasons:
            return outcome
        outcome.reasons.extend(self._merge_keyed(mapped))
        if outcome.reasons:
            return outcome
        try:
            outcome.conflicts = self._resolve_people(mapped)
        except IdentityConflict as conflict:
            outcome.reasons.append(self._reason("ingest.identity-conflict", people=", ".join(conflict.person_ids)))
            return outcome
        resources = list(mapped.resources.values())
        resources.append(provenance(mapped, resources, self.recorded, self.engine.base))
        outcome.resources = resources
        return outcome

    def _resolve_people(self, mapped: Mapped) -> list[Conflict]:
        """Merge the record's Patients into the archive (the last step before writing: a record
        quarantined for any other reason never touches the identity index)."""
        renamed: dict[str, str] = {}
        disagreements: list[Conflict] = []
        for resource in mapped.resources.values():
            if resource["resourceType"] == "Patient":
                person_id, found = self.identity.resolve(resource)
                disagreements.extend(found)
                renamed[f"Patient/{resource['id']}"] = f"Patient/{person_id}"
                resource["id"] = person_id
        if any(old != new for old, new in renamed.items()):
            for resource in mapped.resources.values():
                rewrite_references(resource, renamed)
        return disagreements

    def _report(self, outcome: Outcome) -> None:
        """Append the record's disagreements with the archive to identity-conflicts.ndjson."""
        if not outcome.conflicts:
            return
        if self._conflicts is None:
            self._conflicts = (self.out_dir / "identity-conflicts.ndjson").open("ab")
        record = outcome.record
        for conflict in outcome.conflicts:
            self.counts.conflicts += 1
            line = {
                "person": f"Patient/{conflict.person_id}",
                "element": conflict.element,
                "kept": conflict.kept,
                "offered": conflict.offered,
                "source": record.source,
                "file": record.file,
                "location": record.location,
            }
            self._conflicts.write(orjson.dumps(line) + b"\n")

    def _merge_keyed(self, mapped: Mapped) -> list[Reason]:
        """Merge each keyed resource onto the archive's version; a merge that would leave it
        invalid quarantines the record with the merged resource's issues."""
        reasons: list[Reason] = []
        for name, as_of in mapped.keyed.items():
            resource = mapped.resources[name]
            found = self.keyed.merged(resource, as_of)
            if found is None:
                continue
            merged, mapped.keyed[name] = found
            errors = [issue for issue in self.validator.validate(merged) if issue.is_error]
            if errors:
                reference = f"{resource['resourceType']}/{resource['id']}"
                reasons.append(self._reason("ingest.merge-invalid", resource=reference))
                reasons.extend(self._issue_reason(issue, mapped, name) for issue in errors)
            else:
                mapped.resources[name] = merged
        return reasons

    def _reason(self, message_id: str, **params: Any) -> Reason:
        return Reason(message_id, _worded(self.catalog[message_id], params))

    @staticmethod
    def _issue_reason(issue: Issue, mapped: Mapped, name: str) -> Reason:
        return Reason(
            issue.message_id,
            {"zh-CN": issue.text("zh-CN"), "en": issue.text("en")},
            issue.expression,
            source_of(mapped, name, issue.expression),
        )

    # -- output ---------------------------------------------------------------------------
    def _write(self, resource: dict[str, Any]) -> None:
        kind = resource["resourceType"]
        stream = self._streams.get(kind)
        if stream is None:
            stream = self._streams[kind] = (self.out_dir / f"{kind}.ndjson").open("ab")
        stream.write(orjson.dumps(resource) + b"\n")

    def run(self, records: Iterable[SourceRecord]) -> None:
        for record in records:
            self.process(record)

    def finish(self) -> Counts:
        """Write the merged archive of people and keyed resources, and close everything."""
        for stream in self._streams.values():
            stream.close()
        self.identity.commit()
        with (self.out_dir / "Patient.ndjson").open("wb") as handle:
            for person in self.identity.people():
                handle.write(orjson.dumps(person) + b"\n")
        self.identity.close()
        self.ledger.close()
        for kind in self.keyed.types():
            self._rewrite_keyed(kind)
        self.keyed.close()
        self.quarantine.handle.close()
        if self._conflicts is not None:
            self._conflicts.close()
        return self.counts

    def _rewrite_keyed(self, kind: str) -> None:
        """``<kind>.ndjson`` with the stored version of every keyed resource: lines an earlier
        run wrote for them are replaced, resources without a key are kept as they are."""
        path = self.out_dir / f"{kind}.ndjson"
        keyed_ids = self.keyed.ids(kind)
        staging = path.with_suffix(".ndjson.tmp")
        with staging.open("wb") as out:
            if path.exists():
                with path.open("rb") as lines:
                    for line in lines:
                        if orjson.loads(line)["id"] not in keyed_ids:
                            out.write(line)
            for line in self.keyed.of_type(kind):
                out.write(line + b"\n")
        staging.replace(path)


def _digest(record: SourceRecord) -> str:
    """The record's content: its parsed fields, so a row re-saved with other line endings or
    quoting is still the same row."""
    fields = orjson.dumps(record.fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.blake2b(fields, digest_size=16).hexdigest()
