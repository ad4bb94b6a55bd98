"""Fuzz targets for the legacy readers: mutations of the shipped samples (``mappings/samples``),
read through ``mappings.readers.read``.  A reader may yield records or raise ``ReaderError``;
anything else escapes the target and is a traceback."""

from __future__ import annotations

import io
import random
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

from bench.fuzz_mutations import mutate
from mappings.readers import ReaderError, read

SAMPLES = Path(__file__).resolve().parent.parent / "mappings" / "samples"


def _samples(suffix: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted(SAMPLES.rglob(f"*{suffix}"))]


def _text_input(suffix: str) -> Callable[[random.Random], tuple[str, bytes]]:
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


#: reader name → one input (suffix, bytes) from a random generator; the suite's short fuzz
#: draws from these too
INPUTS: dict[str, Callable[[random.Random], tuple[str, bytes]]] = {
    "csv": _text_input(".csv"),
    "xlsx": _xlsx,
    "json": _text_input(".json"),
    "ndjson": _text_input(".ndjson"),
    "cda": _text_input(".xml"),
    "hl7": _text_input(".hl7"),
}


def _reader_target(make: Callable[[random.Random], tuple[str, bytes]]) -> Callable[[random.Random, Path], None]:
    def run(rng: random.Random, folder: Path) -> None:
        suffix, data = make(rng)
        path = folder / f"input{suffix}"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about damaged parts; only tracebacks count
            try:
                for _ in read(path, "fuzz"):
                    pass
            except ReaderError:
                pass

    return run


TARGETS: dict[str, Callable[[random.Random, Path], None]] = {
    name: _reader_target(make) for name, make in INPUTS.items()
}
