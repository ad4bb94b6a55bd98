"""The mapping language is checkable: specs and rule sets are validated against
mappings/spec.schema.json at load, and FHIRPath keys must parse.  A misspelt key or a rule
without ``path`` is an error naming the file, the spec, the rule and the key — never silently
ignored, never a bare KeyError on the first record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from mappings.fhirpath_syntax import syntax_error
from mappings.spec_schema import SCHEMA_FILE, SpecError, schema_problems
from mappings.specs import FOLDER, RULESETS, load, load_rulesets

SHIPPED_SPECS = sorted(FOLDER.glob("*/*.yaml"))
SHIPPED_RULESETS = sorted(RULESETS.glob("*.yaml"))


def write(folder: Path, name: str, data: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def spec(rules: list[dict[str, Any]], **resource: Any) -> dict[str, Any]:
    return {
        "id": "demo/person",
        "source": "demo",
        "resources": [{"name": "patient", "type": "Patient", "rules": rules, **resource}],
    }


def load_problems(tmp_path: Path, *specs: dict[str, Any]) -> list[str]:
    for index, data in enumerate(specs):
        write(tmp_path / "specs" / "demo", f"s{index}", data)
    (tmp_path / "rulesets").mkdir(exist_ok=True)
    with pytest.raises(SpecError) as raised:
        load(tmp_path / "specs", tmp_path / "rulesets")
    return raised.value.problems


def test_the_schema_is_a_valid_json_schema() -> None:
    Draft202012Validator.check_schema(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_spec_meets_the_schema(path: Path) -> None:
    assert schema_problems(yaml.safe_load(path.read_text(encoding="utf-8")), str(path)) == []


@pytest.mark.parametrize("path", SHIPPED_RULESETS, ids=lambda p: p.stem)
def test_every_shipped_rule_set_meets_the_schema(path: Path) -> None:
    assert schema_problems(yaml.safe_load(path.read_text(encoding="utf-8")), str(path), "ruleset") == []


def test_a_misspelt_rule_key_names_spec_rule_and_key(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, spec([{"path": "gender", "whenn": "性别", "value": "male"}]))
    assert problems == [
        f"{tmp_path / 'specs/demo/s0.yaml'} (spec demo/person): resources[0] (patient) rules[0] (path gender): "
        "unknown key 'whenn' (did you mean 'when'?)"
    ]


@pytest.mark.parametrize("misspelt", ["tranform", "requird"])
def test_a_misspelt_leaf_key_is_an_error(tmp_path: Path, misspelt: str) -> None:
    problems = load_problems(tmp_path, spec([{"path": "gender", "value": {"from": "性别", misspelt: True}}]))
    assert f"unknown key {misspelt!r}" in problems[0]


def test_a_rule_without_path_is_an_error(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, spec([{"value": {"from": "姓名"}}]))
    assert problems[0].endswith("resources[0] (patient) rules[0]: missing key 'path'")


def test_a_misspelt_resource_key_is_an_error(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, spec([], profil="yy-patient"))
    assert problems[0].endswith("resources[0] (patient): unknown key 'profil' (did you mean 'profile'?)")


def test_a_key_that_does_not_parse_is_an_error(tmp_path: Path) -> None:
    problems = load_problems(tmp_path, spec([], key=["identifier.first(.value"]))
    assert "key[0]: FHIRPath 'identifier.first(.value' does not parse" in problems[0]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    broken = spec([{"path": "a", "whenn": "x", "value": 1}, {"value": 1}])
    problems = load_problems(tmp_path, broken, {**broken, "id": "demo/other"})
    assert len(problems) == 4


def test_a_malformed_rule_set_is_an_error_naming_it(tmp_path: Path) -> None:
    write(tmp_path, "broken", {"id": "broken", "rules": [{"path": "name", "vaule": {"from": "姓名"}}]})
    with pytest.raises(SpecError, match=r"\(rule set broken\): rules\[0\] \(path name\): missing key 'value'"):
        load_rulesets(tmp_path)


# -- property-based: any misspelling of any shipped rule's key is caught ----------------------
RULE_KEYS = {"path", "value", "when", "each", "skip", "insert", "with"}
SHIPPED = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in SHIPPED_SPECS]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(data=st.data(), misspelt=st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(lambda k: k not in RULE_KEYS))
def test_any_misspelt_key_of_any_shipped_rule_is_named(data: st.DataObject, misspelt: str) -> None:
    document = json.loads(json.dumps(data.draw(st.sampled_from(SHIPPED))))
    resource = data.draw(st.sampled_from(document["resources"]))
    rule = data.draw(st.sampled_from(resource["rules"]))
    key = data.draw(st.sampled_from(sorted(rule)))
    rule[misspelt] = rule.pop(key)
    problems = schema_problems(document, "spec.yaml")
    assert any(f"unknown key {misspelt!r}" in problem for problem in problems)


@SETTINGS
@given(st.text(max_size=40))
def test_the_key_syntax_check_answers_any_text(text: str) -> None:
    assert syntax_error(text) is None or syntax_error(text).startswith("column ")
