"""Fuzz every parser of hostile input: ``python -m bench.fuzz [--target NAME] [--inputs N] [--seed S]``.

One runner, one table of targets: the legacy readers (``bench/fuzz_readers.py``), the validator
and the definition loader (``bench/fuzz_validator.py``).  A target makes one input from a random
generator, writes it into a scratch folder and feeds it to its parser, catching the refusals that
parser promises (``ReaderError``, ``DefinitionError``, issues); anything that escapes is a
traceback — what issue 12 forbids.  Per target it prints inputs, tracebacks, the slowest input's
time and the peak RSS; an input that broke a target or took over 2 s is kept next to the scratch
folder to look at.  Exits 1 when any target saw a traceback.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from random import Random

from bench import fuzz_readers, fuzz_validator

Target = Callable[[Random, Path], None]
NAMES = [*fuzz_readers.TARGETS, "validator", "definitions"]
SLOW_SECONDS = 2.0


@dataclass
class Result:
    inputs: int = 0
    tracebacks: int = 0
    slowest: float = 0.0
    first: str = ""


def run(name: str, target: Target, inputs: int, seed: int, folder: Path) -> Result:
    rng = Random(f"{name}:{seed}")
    result = Result()
    for index in range(inputs):
        for stale in folder.iterdir():
            stale.unlink()
        started = time.perf_counter()
        try:
            target(rng, folder)
        except Exception:  # noqa: BLE001 - what the fuzzer is looking for
            result.tracebacks += 1
            if not result.first:
                kept = _keep(folder, f"fuzz-{name}-{index}")
                result.first = f"input {index} ({kept})\n{traceback.format_exc(limit=-12)}"
        elapsed = time.perf_counter() - started
        if elapsed > SLOW_SECONDS:
            _keep(folder, f"fuzz-slow-{name}-{index}")
        result.slowest = max(result.slowest, elapsed)
        result.inputs += 1
    return result


def _keep(folder: Path, prefix: str) -> str:
    """Copy the input files out of the scratch folder; the names say where they went."""
    kept = []
    for path in folder.iterdir():
        copy = folder.parent / f"{prefix}-{path.name}"
        shutil.copyfile(path, copy)
        kept.append(str(copy))
    return ", ".join(kept) or "not written"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", action="append", choices=NAMES, help="default: every target")
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    chosen = options.target or NAMES
    table: dict[str, Target] = dict(fuzz_readers.TARGETS)
    if {"validator", "definitions"} & set(chosen):
        table.update(fuzz_validator.targets())
    failed = False
    print(f"{'target':<12} {'inputs':>7} {'tracebacks':>10} {'slowest s':>9} {'peak RSS MB':>11}")
    for name in chosen:
        with tempfile.TemporaryDirectory() as folder:
            result = run(name, table[name], options.inputs, options.seed, Path(folder))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name:<12} {result.inputs:>7} {result.tracebacks:>10} {result.slowest:>9.3f} {peak:>11.0f}", flush=True)
        if result.tracebacks:
            failed = True
            print(result.first, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
