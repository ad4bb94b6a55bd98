"""``yiyang ingest``, ``yiyang quarantine replay`` and ``yiyang mappings explain``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from conformance.issues import DEFAULT_LANGUAGE
from gateway.config import Config
from gateway.export import export_folder, resource_files
from gateway.ingest.pipeline import Counts, Ingest, source_of
from gateway.ingest.quarantine import record_of
from gateway.ingest.transforms import NORMALISERS
from gateway.limits import build_validator, reader_limits
from gateway.masking import is_person_name, mask_name_value
from gateway.messages import text
from gateway.search.indexer import SearchIndexer
from gateway.storage import open_store, sqlite_url
from gateway.storage.store import Store
from mappings import specs
from mappings.conceptmaps import ConceptMaps
from mappings.engine import MappingEngine
from mappings.readers import ReaderError, read
from mappings.readers.xlsx_export import SKIPPED_SHEETS
from mappings.records import UNPARSEABLE, SourceRecord, unparseable_text
from profiles.registry import Registry


def build_engine(registry: Registry) -> MappingEngine:
    base = registry.canonical_base
    return MappingEngine(specs.load(), ConceptMaps.load(base), base, NORMALISERS)


def _progress(records: Iterator[SourceRecord], label: str, lang: str) -> Iterator[SourceRecord]:
    """A progress bar on an interactive terminal, counting records in ``lang``; silent in pipes
    and CI."""
    if not sys.stderr.isatty():
        yield from records
        return
    from tqdm import tqdm

    unit = " " + text("cli.ingest.progress-unit", lang)  # "12 records", not tqdm's "12it"
    yield from tqdm(records, desc=label, unit=unit, file=sys.stderr, leave=False)


def summary(counts: Counts, lang: str) -> str:
    """What a run did, worded in ``lang``: first the line that reconciles (read = mapped +
    quarantined), then what the user may have to act on (files that could not be read, records
    only partly accepted or already ingested, identities the sources disagree on, earlier
    quarantined records a corrected one resolved, columns no rule read, hidden sheets and title
    lines not read as data)."""
    reconciled = {"read": counts.read, "mapped": counts.mapped, "quarantined": counts.quarantined}
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(counts.resources.items())) or "-"
    lines = [
        text("cli.ingest.counts", lang, reconciled | {"check": "✓" if counts.reconciled else "✗"}),
        text("cli.ingest.resources", lang, {"kinds": kinds}),
        *(text("cli.ingest.file-error", lang, {"error": error}) for error in counts.file_errors),
    ]
    noted = (
        ("cli.ingest.partial", counts.partial),
        ("cli.ingest.omitted", counts.omitted),
        ("cli.ingest.unchanged", counts.unchanged),
        ("cli.ingest.conflicts", counts.conflicts),
        ("cli.ingest.organization-names", counts.organization_names),
        ("cli.ingest.resolved", counts.resolved),
    )
    lines += [text(message_id, lang, {"count": count}) for message_id, count in noted if count]
    separator = text("cli.list-separator", lang)
    for file, columns in counts.unread.items():
        lines.append(text("cli.ingest.unread-columns", lang, {"file": file, "columns": separator.join(columns)}))
    for file, skipped in counts.skipped.items():
        sheets = separator.join(part.text(lang) for part in skipped if part.id in SKIPPED_SHEETS)
        titles = separator.join(part.text(lang) for part in skipped if part.id not in SKIPPED_SHEETS)
        if sheets:
            lines.append(text("cli.ingest.hidden-sheets", lang, {"file": file, "sheets": sheets}))
        if titles:
            lines.append(text("cli.ingest.title-lines", lang, {"file": file, "lines": titles}))
    return "\n".join(lines)


ARCHIVE_FILE = "archive.sqlite"


@contextmanager
def archive(out_dir: Path | None, registry: Registry, store: Store | None, config: Config) -> Iterator[Store]:
    """The store to ingest into: the one given, or the embedded store inside ``out_dir``."""
    if store is not None:
        yield store
        return
    if out_dir is None:
        raise ValueError("an ingest needs a store or an output folder")
    own = open_store(
        sqlite_url(out_dir / ARCHIVE_FILE),
        SearchIndexer(registry).rows,
        busy_timeout_s=config.sqlite_busy_timeout_seconds,
    )
    try:
        yield own
    finally:
        own.close()


def ingest(
    source: str,
    files: list[Path],
    out_dir: Path | None,
    registry: Registry,
    bundle: bool = False,
    store: Store | None = None,
    config: Config | None = None,
    lang: str = DEFAULT_LANGUAGE,
) -> Counts:
    """Map the files into the store; with ``out_dir``, also export the archive there as NDJSON
    (and, with ``bundle``, as one transaction Bundle).  ``config`` gives the input limits
    (defaults when absent); ``lang`` words the progress bar shown on a terminal."""
    config = config or Config()
    with archive(out_dir, registry, store, config) as target:
        pipeline = Ingest(target, build_validator(registry, config), build_engine(registry))
        try:
            for path in files:
                read_before = pipeline.counts.read
                try:
                    pipeline.run(_progress(read(path, source, reader_limits(config)), path.name, lang))
                except ReaderError as exc:
                    pipeline.refuse_file(path.name, source, exc.message)
                    continue
                if pipeline.counts.read == read_before:
                    pipeline.empty_file(path.name, source)
        finally:
            # even after Ctrl-C, what was processed reaches the archive in a consistent state
            counts = pipeline.finish()
        target.analyze_after(counts.resources.total())  # many new rows: plan with fresh statistics
        if out_dir is not None:
            export_folder(target, out_dir)
    if bundle and out_dir is not None:
        write_bundle(out_dir)
    return counts


def write_bundle(out_dir: Path) -> Path:
    """A transaction Bundle of everything in the output folder (PUT, so loading is idempotent)."""
    target = out_dir / "bundle.json"
    with target.open("w", encoding="utf-8") as handle:
        handle.write('{"resourceType":"Bundle","type":"transaction","entry":[')
        first = True
        for ndjson in resource_files(out_dir):
            with ndjson.open(encoding="utf-8") as lines:
                for line in lines:
                    resource = json.loads(line)
                    reference = f"{resource['resourceType']}/{resource['id']}"
                    # no fullUrl: it must be absolute, and a PUT's identity is its request.url
                    entry = {"resource": resource, "request": {"method": "PUT", "url": reference}}
                    handle.write(("" if first else ",") + json.dumps(entry, ensure_ascii=False))
                    first = False
        handle.write("]}\n")
    return target


#: what replay says of a record, by its outcome's status (mapped or unchanged: it passes)
REPLAY_VERDICTS = {
    "quarantined": "ingest.replay-quarantined",
    "partial": "ingest.replay-partial",
    "resolved": "ingest.replay-resolved",
}


def replay(
    out_dir: Path | None,
    registry: Registry,
    out: IO[str],
    lang: str,
    store: Store | None = None,
    config: Config | None = None,
) -> Counts:
    """Re-run quarantined records through the current specs, ConceptMaps and profiles.

    Each record is replayed in its own savepoint: it either lands (and leaves the quarantine)
    or its quarantine entry is replaced by the new reasons.  A replay killed at any moment has
    moved some records out of the quarantine and left the rest in it; none is lost.

    Of several entries of one source key (January's copy and February's, both waiting), the
    newest is replayed first: the oldest landed first, and the newer ones were then refused
    as duplicates of it.  When it lands it resolves the older ones, which are not replayed,
    and its copies' entries (a duplicate row, the same row in another file), which are not
    either.  A replay that lands many records refreshes the planner's statistics by the rule
    of every load (``Store.analyze_after``)."""
    config = config or Config()
    with archive(out_dir, registry, store, config) as target:
        with target.reading() as tx:
            entries = newest_first(tx.quarantine.entries())
        pipeline = Ingest(target, build_validator(registry, config), build_engine(registry))
        #: (source, identity) of the keyed records that landed: their older entries are resolved
        landed: set[tuple[str, str]] = set()
        #: (source, identity) of every record that landed: its copies' entries are resolved
        arrived: set[tuple[str, str]] = set()
        try:
            for entry in entries:
                record = record_of(entry)
                where = {"file": record.file, "location": record.location}
                if (entry["source"], entry["identity"]) in landed:
                    out.write(text("ingest.replay-resolved", lang, where) + "\n")
                    continue
                if (entry["source"], copied(entry)) in arrived:
                    out.write(text("ingest.replay-copy-resolved", lang, where) + "\n")
                    continue
                if {r["id"] for r in entry["reasons"]} == {"ingest.duplicate-row"}:
                    # no fix makes a duplicate row new data: it stays where it is
                    pipeline.counts.read += 1
                    pipeline.counts.quarantined += 1
                    status = "quarantined"
                else:
                    outcome = pipeline.process(record, replaces=(entry["identity"], entry["digest"]))
                    status = outcome.status
                    if status in ("mapped", "partial"):
                        arrived.add((record.source, outcome.identity))
                        if outcome.mapped and outcome.mapped.identity.startswith("key|"):
                            landed.add((record.source, outcome.identity))
                    if outcome.superseded_by is not None:
                        status = "resolved"
                verdict = REPLAY_VERDICTS.get(status, "ingest.replay-passes")
                out.write(text(verdict, lang, where) + "\n")
        finally:
            counts = pipeline.finish()
        target.analyze_after(counts.resources.total())  # a fix that lands thousands: as an ingest
        if out_dir is not None:
            export_folder(target, out_dir)
    return counts


def copied(entry: dict[str, Any]) -> str | None:
    """The identity of the record whose copy ``entry`` holds (a duplicate row's, the same row's
    in another file of a run: kept under the identity, its file and its location), or None."""
    suffix = f"|{entry['file']}|{entry['location']}"
    return entry["identity"].removesuffix(suffix) if entry["identity"].endswith(suffix) else None


def newest_first(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Quarantine entries (as stored, oldest first) in the order a replay takes them: grouped
    by what they are (source and identity: one source key), each group where its first entry
    was, newest first within it."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault((entry["source"], entry["identity"]), []).append(entry)
    return [entry for group in groups.values() for entry in reversed(group)]


def explain(
    source: str,
    path: Path,
    registry: Registry,
    location: str | None,
    out: IO[str],
    lang: str,
    config: Config | None = None,
    reveal: bool = False,
) -> int:
    """Show, for one record, each input field, the rule applied and the FHIR element produced;
    a person's name masked unless ``reveal`` (``out`` masks 身份证号 and phone numbers)."""
    engine = build_engine(registry)
    try:
        record = next((r for r in read(path, source) if location is None or r.location == location), None)
    except ReaderError as exc:
        out.write(exc.message.text(lang) + "\n")
        return 1
    if record is None:  # with the file: "row 99" alone does not say where it was looked for
        missing = "cli.explain.empty" if location is None else "cli.explain.no-record"
        out.write(text(missing, lang, {"path": path, "location": location}) + "\n")
        return 1
    mapped = engine.map(record, trace=True)
    out.write(f"{record.file} {record.location}\n")
    if mapped is None and UNPARSEABLE in record.fields:  # say why, as its quarantine entry does
        detail = unparseable_text(record.fields[UNPARSEABLE], lang)
        out.write(text("ingest.unreadable", lang, {"detail": detail}) + "\n")
        return 1
    if mapped is None:
        out.write(text("cli.explain.no-spec", lang, {"fields": ", ".join(record.fields)}) + "\n")
        return 1
    out.write(text("cli.explain.spec", lang, {"spec": mapped.spec.id, "file": mapped.spec.file}) + "\n\n")
    for step in mapped.steps:
        raw, value = step.raw, step.result
        if not reveal and is_person_name(step.target):
            raw, value = mask_name_value(raw), mask_name_value(value)
        result = json.dumps(value, ensure_ascii=False) if value is not None else "—"
        out.write(f"  {step.field} = {raw!r}\n      {step.rule}\n      → {step.target} = {result}\n")
    for problem in mapped.problems:
        out.write(f"  ✗ [{problem.message_id}] {problem.ref}\n")
    for problem in mapped.omitted:
        out.write(f"  ∅ [{problem.message_id}] {problem.ref}\n")
    unused = mapped.unused_fields
    if unused:
        out.write("\n" + text("cli.explain.unused", lang, {"fields": ", ".join(unused)}) + "\n")
    validator = build_validator(registry, config or Config())
    out.write("\n" + text("cli.explain.validation", lang) + "\n")
    for name, resource in mapped.resources.items():
        issues = [i for i in validator.validate(resource) if i.severity in ("fatal", "error", "warning")]
        for issue in issues:
            origin = source_of(mapped, name, issue.expression)
            arrow = f" ← {origin}" if origin else ""
            out.write(f"  {issue.severity} {issue.expression}{arrow}  [{issue.message_id}] {issue.text(lang)}\n")
        if not issues:
            passed = {"resource": f"{resource['resourceType']}/{resource['id']}"}
            out.write(f"  {text('cli.explain.valid', lang, passed)}\n")
    return 0
