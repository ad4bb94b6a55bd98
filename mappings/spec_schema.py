"""The mapping language is checkable: every spec and rule set is validated against
``mappings/spec.schema.json`` when it loads, and every FHIRPath ``key`` must parse.

A misspelt key (``tranform``, ``requird``, ``whenn``) used to be silently ignored — the rule ran
without its transform, an empty field passed as if optional — and a rule without ``path`` ended
in a bare ``KeyError`` on the first record.  Now loading fails with :class:`SpecError`, which
lists every problem of every file at once, each naming the file, the spec, the resource and
rule, and the key (with the nearest valid key when one is close).
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from mappings.fhirpath_syntax import syntax_error

SCHEMA_FILE = Path(__file__).parent / "spec.schema.json"


class SpecError(ValueError):
    """A mapping spec or rule set is malformed; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@cache
def _validator(definition: str) -> Draft202012Validator:
    with SCHEMA_FILE.open(encoding="utf-8") as handle:
        schema = json.load(handle)
    return Draft202012Validator({"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"})


def schema_problems(data: Any, file: str, kind: str = "spec") -> list[str]:
    """Every way ``data`` (a spec, or with ``kind="ruleset"`` a rule set) breaks the schema or
    has a FHIRPath key that does not parse, one line each; [] when it is well formed."""
    name = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else "?"
    label = f"{file} ({'rule set' if kind == 'ruleset' else 'spec'} {name})"
    validator = _validator(kind)
    problems = [
        f"{label}: {_where(data, list(error.absolute_path))}: {_what(error)}" for error in _leaf_errors(validator, data)
    ]
    if not problems and kind == "spec":
        problems = [f"{label}: {problem}" for problem in _key_problems(data)]
    return problems


def _leaf_errors(validator: Draft202012Validator, data: Any) -> list[ValidationError]:
    """The most specific errors: a oneOf/anyOf/if failure is replaced by what failed inside it
    (the misspelt key in a leaf, not "is not valid under any of the given schemas")."""
    found: list[ValidationError] = []
    for error in validator.iter_errors(data):
        found.extend(_deepest(error))
    unique = {(tuple(e.absolute_path), e.message): e for e in found}
    return sorted(unique.values(), key=lambda e: [str(p) for p in e.absolute_path])


def _deepest(error: ValidationError) -> list[ValidationError]:
    if not error.context:
        return [error]
    deepest = max(len(e.absolute_path) for e in error.context)
    if deepest <= len(error.absolute_path) and error.validator in ("oneOf", "anyOf"):
        return [error]
    return [leaf for e in error.context if len(e.absolute_path) == deepest for leaf in _deepest(e)]


def _where(data: Any, path: list[Any]) -> str:
    """``resources[0] (patient) rules[3] (path identifier[+])`` from a JSON path."""
    parts, node = [], data
    for step in path:
        node = node[step] if isinstance(node, (dict, list)) else None
        if isinstance(step, int):
            label = ""
            if isinstance(node, dict):
                label = node.get("name") or (f"path {node['path']}" if "path" in node else "")
                label = label or (f"insert {node['insert']}" if "insert" in node else "")
            parts[-1] += f"[{step}]" + (f" ({label})" if isinstance(label, str) and label else "")
        else:
            parts.append(str(step))
    return " ".join(parts) or "top level"


def _what(error: ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in allowed]
        return "; ".join(f"unknown key {key!r}{_suggestion(key, allowed)}" for key in unknown)
    if error.validator == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        return "; ".join(f"missing key {key!r}" for key in missing)
    if error.validator == "not" and isinstance(error.instance, dict):
        if "insert" in error.instance:
            return "a rule with 'insert' takes only 'with' beside it"
        return "'with' belongs to a rule with 'insert'"
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return "a leaf takes exactly one of 'from', 'const' and 'ref'"
    return error.message[:200]


def _suggestion(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _key_problems(data: dict[str, Any]) -> list[str]:
    """FHIRPath ``key`` expressions that do not parse (fhirpathpy would quietly evaluate
    whatever part of them it recovered)."""
    problems = []
    for index, resource in enumerate(data["resources"]):
        for position, expression in enumerate(resource.get("key", [])):
            error = syntax_error(expression)
            if error is not None:
                where = f"resources[{index}] ({resource['name']}) key[{position}]"
                problems.append(f"{where}: FHIRPath {expression!r} does not parse ({error})")
    return problems
