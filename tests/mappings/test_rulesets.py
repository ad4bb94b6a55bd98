"""Rule sets: shared rules inserted into specs with parameters, checked at load time."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mappings.specs import FOLDER, load, load_rulesets

DEMOGRAPHICS = {
    "id": "demographics",
    "params": {"name": None, "gender_map": "sex-to-administrative-gender"},
    "ignore": ["序号"],
    "rules": [
        {"path": "name[+]", "value": {"text": {"from": "${name}"}}},
        {"path": "gender", "value": {"from": "性别", "map": "${gender_map}"}},
    ],
}


def _write(folder: Path, name: str, data: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _spec(tmp_path: Path, rules: list[dict], rulesets: list[dict]) -> Path:
    for ruleset in rulesets:
        _write(tmp_path / "rulesets", ruleset["id"], ruleset)
    _write(
        tmp_path / "specs" / "demo",
        "person",
        {"id": "demo/person", "source": "demo", "resources": [{"name": "patient", "type": "Patient", "rules": rules}]},
    )
    return tmp_path


def _rules(tmp_path: Path) -> list[dict]:
    return load(tmp_path / "specs", tmp_path / "rulesets")[0].resources[0]["rules"]


def test_insert_binds_parameters_and_keeps_defaults(tmp_path: Path) -> None:
    _spec(tmp_path, [{"insert": "demographics", "with": {"name": "老人姓名"}}], [DEMOGRAPHICS])
    assert _rules(tmp_path) == [
        {"path": "name[+]", "value": {"text": {"from": "老人姓名"}}},
        {"path": "gender", "value": {"from": "性别", "map": "sex-to-administrative-gender"}},
    ]


def test_a_parameter_given_a_list_stays_a_list(tmp_path: Path) -> None:
    _spec(tmp_path, [{"insert": "demographics", "with": {"name": ["PID-5.1", "PID-9.1"]}}], [DEMOGRAPHICS])
    assert _rules(tmp_path)[0]["value"]["text"]["from"] == ["PID-5.1", "PID-9.1"]


def test_rules_around_an_insert_keep_their_place(tmp_path: Path) -> None:
    rules = [
        {"path": "active", "value": True},
        {"insert": "demographics", "with": {"name": "姓名"}},
        {"path": "x", "value": 1},
    ]
    _spec(tmp_path, rules, [DEMOGRAPHICS])
    assert [r["path"] for r in _rules(tmp_path)] == ["active", "name[+]", "gender", "x"]


def test_rule_sets_may_insert_rule_sets(tmp_path: Path) -> None:
    person = {
        "id": "person",
        "rules": [{"path": "active", "value": True}, {"insert": "demographics", "with": {"name": "姓名"}}],
    }
    _spec(tmp_path, [{"insert": "person"}], [DEMOGRAPHICS, person])
    assert [r["path"] for r in _rules(tmp_path)] == ["active", "name[+]", "gender"]


def test_the_rule_sets_ignored_fields_join_the_specs(tmp_path: Path) -> None:
    _spec(tmp_path, [{"insert": "demographics", "with": {"name": "姓名"}}], [DEMOGRAPHICS])
    assert load(tmp_path / "specs", tmp_path / "rulesets")[0].ignore == {"序号"}


@pytest.mark.parametrize(
    ("insert", "complaint"),
    [
        ({"insert": "nowhere"}, "unknown rule set 'nowhere'"),
        ({"insert": "demographics"}, "needs name"),
        ({"insert": "demographics", "with": {"name": "姓名", "nmae": "x"}}, "has no parameter nmae"),
    ],
)
def test_a_wrong_insert_fails_at_load_naming_the_spec(tmp_path: Path, insert: dict, complaint: str) -> None:
    _spec(tmp_path, [insert], [DEMOGRAPHICS])
    with pytest.raises(ValueError, match=f"demo/person patient: .*{complaint}"):
        load(tmp_path / "specs", tmp_path / "rulesets")


def test_a_placeholder_the_rule_set_does_not_declare_fails_at_load(tmp_path: Path) -> None:
    _write(tmp_path, "broken", {"id": "broken", "rules": [{"path": "name", "value": {"from": "${nmae}"}}]})
    with pytest.raises(ValueError, match=r"broken: \$\{nmae\}"):
        load_rulesets(tmp_path)


def test_every_shipped_rule_set_is_used_by_some_spec() -> None:
    inserted = set()

    def walk(rules: list[dict]) -> None:
        for rule in rules:
            if "insert" in rule:
                inserted.add(rule["insert"])

    for path in FOLDER.glob("*/*.yaml"):
        for definition in yaml.safe_load(path.read_text(encoding="utf-8"))["resources"]:
            walk(definition.get("rules", []))
    for ruleset in load_rulesets().values():
        walk(ruleset.rules)
    assert set(load_rulesets()) <= inserted
