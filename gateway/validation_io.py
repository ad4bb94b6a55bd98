"""Reading FHIR files for validation and writing their OperationOutcomes as a stream.

Issues are written as they are found, so a 100 MB NDJSON file is validated line by line in
bounded memory; the JSON output is still one well-formed OperationOutcome per file.  Input
that is not JSON, not FHIR, truncated or too large becomes a fatal issue, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import orjson

from conformance.issues import Issue, operation_outcome, render_text
from conformance.validator import Validator
from gateway.masking import mask_id_cards

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 20
#: byte-order marks of encodings FHIR JSON must not use, longest first (UTF-32 LE starts like UTF-16 LE)
FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 little-endian"),
    (b"\x00\x00\xfe\xff", "UTF-32 big-endian"),
    (b"\xff\xfe", "UTF-16 little-endian"),
    (b"\xfe\xff", "UTF-16 big-endian"),
)


#: 居民身份证号, 18 characters (or the 15-digit 1989 form), not inside a longer number or word
def describe_encoding(raw: bytes) -> str | None:
    """What a document that is not UTF-8 JSON appears to be, or None when it is UTF-8."""
    for bom, name in FOREIGN_BOMS:
        if raw.startswith(bom):
            return f"the file is {name} (byte-order mark {bom.hex(' ').upper()}); FHIR JSON must be UTF-8"
    body = raw.removeprefix(BOM)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        sample = body[:4096]
        if sample.count(0) * 4 > len(sample):
            order = "little" if sample[1:2] == b"\x00" else "big"
            return f"the file looks like UTF-16 {order}-endian without a byte-order mark; FHIR JSON must be UTF-8"
        offset = exc.start
        byte = body[offset : offset + 1].hex().upper()
        try:
            body.decode("gb18030")
            guess = "; it decodes as GB18030/GBK — re-save it as UTF-8"
        except UnicodeDecodeError:
            guess = ""
        return f"not UTF-8: byte 0x{byte} at offset {offset}{guess}"
    return None


@dataclass
class FileReport:
    """Counts for one file, and the sink its issues are written to."""

    path: Path
    lang: str
    errors: int = 0
    warnings: int = 0
    issues_written: int = 0
    out: IO[str] | None = None
    fmt: str = "text"
    #: print 身份证号 in full (``--reveal``); masked otherwise
    reveal: bool = False

    def start(self) -> None:
        if self.out is None:
            return
        if self.fmt == "json":
            self.out.write('{"resourceType":"OperationOutcome","issue":[')
        else:
            self.out.write(f"== {self.path}\n")

    def emit(self, issue: Issue) -> None:
        if issue.is_error:
            self.errors += 1
        elif issue.severity == "warning":
            self.warnings += 1
        if self.out is None:
            return
        if self.fmt == "json":
            text = orjson.dumps(issue.to_fhir(self.lang)).decode()
            self.out.write(("," if self.issues_written else "") + (text if self.reveal else mask_id_cards(text)))
        else:
            text = render_text([issue], self.lang)
            self.out.write((text if self.reveal else mask_id_cards(text)) + "\n")
        self.issues_written += 1

    def finish(self) -> None:
        if self.out is None:
            return
        if self.fmt == "json":
            if not self.issues_written:
                self.out.write(orjson.dumps(operation_outcome([], self.lang)["issue"][0]).decode())
            self.out.write("]}\n")
        else:
            zh = self.lang == "zh-CN"
            summary = (
                f"错误 {self.errors}，警告 {self.warnings}" if zh else f"{self.errors} errors, {self.warnings} warnings"
            )
            self.out.write(f"-- {summary}\n")


def validate_file(
    validator: Validator,
    report: FileReport,
    profiles: Sequence[str],
    max_bytes: int,
    out: IO[str] | None,
    fmt: str,
) -> None:
    report.out, report.fmt = out, fmt
    report.start()
    with report.path.open("rb") as handle:
        if report.path.suffix.lower() in NDJSON_SUFFIXES:
            for line_number, line in _lines(handle, max_bytes):
                for issue in _validate_document(validator, line, profiles, line_number, max_bytes):
                    issue.location = f"line {line_number}"
                    report.emit(issue)
        else:
            size = report.path.stat().st_size
            if size > max_bytes:
                report.emit(Issue("fatal", "input.too-large", "", {"size": size, "limit": max_bytes}))
            else:
                for issue in _validate_document(validator, handle.read(), profiles, None, max_bytes):
                    report.emit(issue)
    report.finish()


def _lines(handle: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """Non-blank lines, each read with a length limit; None stands for a line over the limit."""
    number = 0
    while True:
        line = handle.readline(max_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of the oversized line
                line = handle.readline(_CHUNK)
            yield number, None
            continue
        if line.strip():
            yield number, line


def _validate_document(
    validator: Validator, raw: bytes | None, profiles: Sequence[str], line: int | None, max_bytes: int
) -> list[Issue]:
    if raw is None:
        return [Issue("fatal", "input.line-too-long", "", {"line": line, "limit": max_bytes})]
    try:
        document = orjson.loads(raw.removeprefix(BOM))
    except orjson.JSONDecodeError as exc:
        encoding = describe_encoding(raw)
        if encoding is not None:
            return [Issue("fatal", "input.not-json", "", {"detail": encoding})]
        return [Issue("fatal", "input.not-json", "", {"detail": str(exc)[:160]})]
    if not isinstance(document, dict) or "resourceType" not in document:
        return [Issue("fatal", "input.not-resource", "")]
    return validator.validate(document, profiles)
