"""Fuzz the legacy readers: ``python -m bench.fuzz [--target NAME] [--inputs N] [--seed S]``.

Each target turns a random generator into one input file and reads it; the promise under test
(issue 12) is that a reader either yields records or raises ``ReaderError`` — anything else is
a traceback and counts as a failure.  Inputs are mutations of the shipped samples
(``mappings/samples``): byte flips, insertions of hostile tokens (NUL, NaN, ``\\C2842\\``, deep
nesting, DOCTYPEs …), truncations and splices, so most inputs stay close enough to the format
to reach deep into the parser.  Per target it prints inputs, tracebacks, the slowest input's
time and the peak RSS, and exits 1 when any target saw a traceback.

Targets are a table (``TARGETS``: name → function making one input file), so other layers
(the validator, the definition loader) can add theirs beside the readers'.
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mappings.readers import ReaderError, read

SAMPLES = Path(__file__).resolve().parent.parent / "mappings" / "samples"
#: tokens that broke readers before (issue 12) or that a format treats specially
HOSTILE = [
    b"\x00",
    b"\x01",
    b"\x1b",
    b"\r",
    b"\n",
    b'"',
    b",",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"9" * 5000,
    b"[" * 3000,
    b"{" * 3000,
    b'{"a":1,"a":2}',
    b"\\u0000",
    b"\\ud800",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\x80\x81",
    b"\\C2842\\",
    b"\\M2441\\",
    b"\\X00\\",
    b"\\XFF\\",
    b"\\.sp999999999\\",
    b"\\",
    b"^~\\&",
    b"|",
    b"~",
    b"MSH|^~\\&|",
    b"99991231235959-1200",
    b"00000000000000+9999",
    b"<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
    b"&e;",
    b"<![CDATA[",
    b"]]>",
    b"<",
    b">",
    "张三".encode(),
    "张三".encode("gb18030"),
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few random edits of ``data``: flip, insert a hostile token, delete, duplicate, cut."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        position = rng.randint(0, len(buffer)) if buffer else 0
        choice = rng.random()
        if choice < 0.25 and buffer:
            buffer[min(position, len(buffer) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            buffer[position:position] = rng.choice(HOSTILE) * rng.choice((1, 1, 1, 2, 50))
        elif choice < 0.75:
            del buffer[position : position + rng.randint(1, 64)]
        elif choice < 0.9:
            end = min(len(buffer), position + rng.randint(1, 256))
            buffer[position:position] = buffer[position:end] * rng.randint(1, 20)
        else:
            del buffer[position:]
    return bytes(buffer)


def _samples(suffix: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted(SAMPLES.rglob(f"*{suffix}"))]


def _text_target(suffix: str) -> Callable[[random.Random], tuple[str, bytes]]:
    corpus: list[bytes] = []

    def make(rng: random.Random) -> tuple[str, bytes]:
        if not corpus:
            corpus.extend(_samples(suffix))
        return suffix, mutate(rng.choice(corpus), rng)

    return make


def _xlsx(rng: random.Random) -> tuple[str, bytes]:
    """Mostly a valid zip whose XML parts are mutated (to reach openpyxl's parsing), sometimes
    the zip's own bytes mutated (to reach the archive checks)."""
    (sample,) = _samples(".xlsx")
    if rng.random() < 0.2:
        return ".xlsx", mutate(sample, rng)
    source = zipfile.ZipFile(io.BytesIO(sample))
    members = source.namelist()
    victims = set(rng.sample(members, rng.randint(1, 2)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in members:
            data = source.read(name)
            target.writestr(name, mutate(data, rng) if name in victims else data)
    return ".xlsx", out.getvalue()


#: target name → one input (suffix, bytes) from a random generator
TARGETS: dict[str, Callable[[random.Random], tuple[str, bytes]]] = {
    "csv": _text_target(".csv"),
    "xlsx": _xlsx,
    "json": _text_target(".json"),
    "ndjson": _text_target(".ndjson"),
    "cda": _text_target(".xml"),
    "hl7": _text_target(".hl7"),
}


@dataclass
class Result:
    inputs: int = 0
    tracebacks: int = 0
    slowest: float = 0.0
    first: str = ""


def run(name: str, inputs: int, seed: int, folder: Path) -> Result:
    rng = random.Random(f"{name}:{seed}")
    result = Result()
    for index in range(inputs):
        suffix, data = TARGETS[name](rng)
        path = folder / f"input{suffix}"
        path.write_bytes(data)
        started = time.perf_counter()
        try:
            for _ in read(path, "fuzz"):
                pass
        except ReaderError:
            pass
        except Exception:  # noqa: BLE001 - what the fuzzer is looking for
            result.tracebacks += 1
            if not result.first:
                kept = folder.parent / f"fuzz-{name}-{index}{suffix}"
                kept.write_bytes(data)
                result.first = f"{kept}\n{traceback.format_exc()}"
        result.slowest = max(result.slowest, time.perf_counter() - started)
        result.inputs += 1
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="default: every target")
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # openpyxl warns about damaged parts; only tracebacks count
    failed = False
    print(f"{'target':<8} {'inputs':>7} {'tracebacks':>10} {'slowest s':>9} {'peak RSS MB':>11}")
    for name in options.target or list(TARGETS):
        with tempfile.TemporaryDirectory() as folder:
            result = run(name, options.inputs, options.seed, Path(folder))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name:<8} {result.inputs:>7} {result.tracebacks:>10} {result.slowest:>9.3f} {peak:>11.0f}", flush=True)
        if result.tracebacks:
            failed = True
            print(result.first, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
