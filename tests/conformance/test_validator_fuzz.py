"""Bounded fuzzing of the validator and the definition loader (issue 12).

Arbitrary JSON-ish documents into ``Validator.validate`` and arbitrary definitions into
``Registry.add_resource`` plus compiling and applying a profile: the only outcomes allowed are
issues or a :class:`DefinitionError`.  The longer runs live in ``bench/fuzz.py``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.issues import Issue
from conformance.validator import Validator
from profiles.registry import PACKAGE_DIR, DefinitionError, Registry, examples_dir

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
TEXT = st.text(st.characters(codec="utf-8"), max_size=10) | st.sampled_from(
    ["*", "1", "0", "many", "#", "#o1", "(a+)+b", "(?=x)", "name.where(", "Patient", "urn:uuid:1", "\u0000"]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=15
)
EXAMPLES = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(examples_dir().glob("*/*.json"))]
DEFINITIONS = [
    json.loads(p.read_text(encoding="utf-8")) for p in sorted(PACKAGE_DIR.glob("StructureDefinition-*.json"))
]


def mutate(document: Any, data: st.DataObject) -> Any:
    """Replace, delete or wrap a few values anywhere in a copy of ``document``."""
    document = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 4))):
        node, parent, key = document, None, None
        for _ in range(data.draw(st.integers(0, 6))):
            if isinstance(node, dict) and node:
                parent, key = node, data.draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                parent, key = node, data.draw(st.integers(0, len(node) - 1))
            else:
                break
            node = parent[key]
        if parent is None:
            continue
        action = data.draw(st.sampled_from(["replace", "delete", "wrap", "dup"]))
        if action == "replace":
            parent[key] = data.draw(JSON)
        elif action == "delete" and isinstance(parent, dict):
            del parent[key]
        elif action == "wrap":
            parent[key] = [node]
        else:
            parent[key] = copy.deepcopy(node) if not isinstance(node, list) else node + node
    return document


def only_issues(result: Any) -> None:
    assert isinstance(result, list) and all(isinstance(i, Issue) for i in result)
    for issue in result:  # every issue can be worded in both languages
        issue.text("zh-CN")
        issue.text("en")


@SETTINGS
@given(JSON)
def test_any_json_document(validator: Validator, document: Any) -> None:
    only_issues(validator.validate(document))


@SETTINGS
@given(st.sampled_from(EXAMPLES), st.data())
def test_mutated_package_examples(validator: Validator, example: dict[str, Any], data: st.DataObject) -> None:
    only_issues(validator.validate(mutate(example, data)))


@SETTINGS
@given(st.sampled_from(DEFINITIONS), st.data())
def test_mutated_definitions_compile_and_apply(definition: dict[str, Any], data: st.DataObject) -> None:
    registry = Registry()
    mutated = mutate(definition, data)
    try:
        registry.add_resource(mutated, "fuzz")
    except DefinitionError:
        return
    validator = Validator(registry)
    url = mutated.get("url") if isinstance(mutated, dict) else None
    if isinstance(url, str):
        validator.compiler.get(url)
        example = data.draw(st.sampled_from(EXAMPLES))
        only_issues(validator.validate(example, profiles=[url]))


@SETTINGS
@given(JSON)
def test_arbitrary_definition_documents(document: Any) -> None:
    registry = Registry(builtin=False)
    try:
        registry.add_resource(document)
    except DefinitionError:
        return
