"""Fuzz targets for the validator and the definition loader.

- ``validator``: mutations of the package examples (``profiles/package/examples``) — byte-level
  edits with hostile tokens half the time, structural edits of the parsed JSON otherwise —
  validated as ``yiyang validate`` does (parse, then ``Validator.validate``); a quarter go in as
  parsed documents, as the server hands them over;
- ``definitions``: mutations of the package's StructureDefinitions, ValueSets and CodeSystems,
  loaded with ``Registry.add_path``, compiled, and applied to a package example.

The promise (issue 12): only issues or a ``DefinitionError``; anything else escapes the target
and is a traceback.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.fuzz_mutations import mutate
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
        (folder / "instance.json").write_bytes(raw)  # kept by the runner if it breaks or is slow
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


def targets() -> dict[str, Callable[[random.Random, Path], None]]:
    """The two targets, sharing the validators built here (about a second)."""
    made = Targets()
    return {"validator": made.validator_input, "definitions": made.definitions_input}
