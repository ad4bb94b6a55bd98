"""Fuzz the validator and the definition loader: ``python -m bench.fuzz_validator [--inputs N]``.

Targets beside the readers' in ``bench/fuzz.py`` (whose runner reads files with the legacy
readers, so these have their own runner with the same report):

- ``validator``: mutations of the package examples (``profiles/package/examples``) — byte-level
  edits with ``bench.fuzz``'s hostile tokens half the time, structural edits of the parsed JSON
  otherwise — validated as ``yiyang validate`` does (parse, then ``Validator.validate``);
- ``definitions``: mutations of the package's StructureDefinitions, ValueSets and CodeSystems,
  loaded with ``Registry.add_path``, compiled, and applied to a package example.

The promise (issue 12): only issues or a ``DefinitionError``; anything else counts as a
traceback.  Exits 1 when any target saw one.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.fuzz import HOSTILE, Result, mutate
from conformance.validator import Validator
from gateway.validation_io import _validate_document
from profiles.registry import PACKAGE_DIR, DefinitionError, Registry, examples_dir

EXAMPLES = [path.read_bytes() for path in sorted(examples_dir().glob("*/*.json"))]
DEFINITIONS = [
    path.read_bytes()
    for pattern in ("StructureDefinition-*.json", "ValueSet-*.json", "CodeSystem-*.json")
    for path in sorted(PACKAGE_DIR.glob(pattern))
]
VALUES: list[Any] = [
    None,
    "",
    "\u0000",
    "many",
    "*",
    "-1",
    1e308,
    -(2**70),
    [],
    {},
    "(a+)+b",
    "(?=x)",
    "name.where(",
    "#x",
    "urn:uuid:1",
    [[[[]]]],
    {"extension": [{"url": "x"}]},
]


def restructure(document: Any, rng: random.Random) -> Any:
    """A few edits of a parsed document: replace, delete, wrap in a list, duplicate, nest deep."""
    document = copy.deepcopy(document)
    for _ in range(rng.randint(1, 5)):
        parent, key, node = None, None, document
        for _ in range(rng.randint(0, 7)):
            if isinstance(node, dict) and node:
                parent, key = node, rng.choice(sorted(node))
            elif isinstance(node, list) and node:
                parent, key = node, rng.randrange(len(node))
            else:
                break
            node = parent[key]
        if parent is None:
            continue
        choice = rng.random()
        if choice < 0.4:
            parent[key] = copy.deepcopy(rng.choice(VALUES))
        elif choice < 0.55 and isinstance(parent, dict):
            del parent[key]
        elif choice < 0.7:
            parent[key] = [node]
        elif choice < 0.85:
            parent[key] = node + node if isinstance(node, list) else {"a": node, "b": node}  # shared, not copied
        else:
            for _ in range(rng.choice((10, 100, 300))):
                node = {"extension": [node]}
            parent[key] = node
    return document


def _restructured(sample: bytes, rng: random.Random) -> Any:
    """A structural mutation; the generator's own deepcopy may not survive what it built."""
    try:
        return restructure(json.loads(sample), rng)
    except RecursionError:
        return json.loads(sample)


def _mutated(corpus: list[bytes], rng: random.Random) -> bytes:
    sample = rng.choice(corpus)
    if rng.random() < 0.5:
        return mutate(sample, rng)
    try:
        return json.dumps(_restructured(sample, rng), ensure_ascii=False).encode()
    except RecursionError:  # the generator's own json cannot write it; the parsed form is tried below
        return mutate(sample, rng)


class Targets:
    """One shared validator (as the server has); each definitions input gets a fresh registry."""

    def __init__(self) -> None:
        self.validator = Validator(Registry())
        #: the definitions target shares one compiled R4 base model (0.5 s to build) and resets
        #: every cache that depends on the definitions between inputs
        self.loader = Validator(Registry())

    def validator_input(self, rng: random.Random, folder: Path) -> None:
        if rng.random() < 0.25:  # parsed documents straight in, as the server hands them over
            self.validator.validate(_restructured(rng.choice(EXAMPLES), rng))
            return
        raw = _mutated(EXAMPLES, rng)
        _validate_document(self.validator, raw, (), None, 64 << 20)

    def definitions_input(self, rng: random.Random, folder: Path) -> None:
        path = folder / "definition.json"
        path.write_bytes(_mutated(DEFINITIONS, rng))
        validator = self.loader
        registry = validator.registry
        del registry.sources[1:]
        for cache in (validator.compiler._cache, validator.profiles._memo, validator.terminology._systems):
            cache.clear()
        for cache in (validator.terminology._expansions, validator.terminology._complete):
            cache.clear()
        validator.terminology._children.clear()
        validator.terminology._closure.clear()
        try:
            registry.add_path(path)
        except DefinitionError:
            return
        try:
            document = json.loads(path.read_bytes())
        except (ValueError, RecursionError):
            return
        url = document.get("url") if isinstance(document, dict) else None
        if isinstance(url, str):
            validator.compiler.get(url)
            example = json.loads(rng.choice(EXAMPLES))
            validator.validate(example, profiles=[url])


def run(name: str, make: Callable[[random.Random, Path], None], inputs: int, seed: int, folder: Path) -> Result:
    rng = random.Random(f"{name}:{seed}")
    result = Result()
    for index in range(inputs):
        started = time.perf_counter()
        try:
            make(rng, folder)
        except Exception:  # noqa: BLE001 - what the fuzzer is looking for
            result.tracebacks += 1
            if not result.first:
                result.first = f"input {index}\n{traceback.format_exc(limit=-12)}"
        elapsed = time.perf_counter() - started
        if elapsed > 2.0 and (folder / "definition.json").exists():  # keep slow inputs to look at
            (folder.parent / f"fuzz-slow-{name}-{index}.json").write_bytes((folder / "definition.json").read_bytes())
        result.slowest = max(result.slowest, elapsed)
        result.inputs += 1
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", action="append", choices=["validator", "definitions"])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    targets = Targets()
    table = {"validator": targets.validator_input, "definitions": targets.definitions_input}
    failed = False
    print(f"{'target':<12} {'inputs':>7} {'tracebacks':>10} {'slowest s':>9} {'peak RSS MB':>11}")
    for name in options.target or list(table):
        with tempfile.TemporaryDirectory() as folder:
            result = run(name, table[name], options.inputs, options.seed, Path(folder))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name:<12} {result.inputs:>7} {result.tracebacks:>10} {result.slowest:>9.3f} {peak:>11.0f}", flush=True)
        if result.tracebacks:
            failed = True
            print(result.first, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    assert HOSTILE  # the byte-level tokens come from bench.fuzz
    sys.exit(main())
