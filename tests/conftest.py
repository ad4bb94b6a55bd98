"""Shared fixtures: one compiled validator per test session (compiling R4 takes ~1 s)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from conformance.issues import Issue
from conformance.validator import Validator
from profiles.canonical import DEFAULT_BASE
from profiles.registry import Registry, examples_dir

SD = f"{DEFAULT_BASE}/StructureDefinition/"
CS = f"{DEFAULT_BASE}/CodeSystem/"


@pytest.fixture(scope="session")
def validator() -> Validator:
    return Validator(Registry())


def load_example(relative: str) -> dict[str, Any]:
    with (examples_dir() / relative).open(encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture
def patient() -> dict[str, Any]:
    return copy.deepcopy(load_example("yy-patient/valid-zhang-xiuying.json"))


def found(issues: list[Issue], message_id: str, expression: str | None = None) -> bool:
    """Whether an issue with this id (and FHIRPath, when given) was reported."""
    return any(i.message_id == message_id and (expression is None or i.expression == expression) for i in issues)


def errors(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.message_id, i.expression) for i in issues if i.is_error]
