"""Mapping specs: one YAML file per kind of legacy record, grouped by source system.

A spec says which records it applies to (``match``: the columns, keys or message types the
record must have) and which resources it produces.  Rules that several specs share (the
demographics every Patient carries, the PID segment of every ADT message) live once in a rule
set (``mappings/rulesets/``) that a spec inserts with parameters, the way FHIR Shorthand inserts
a RuleSet.  Adding a source or a province variant is adding a spec file here; see
docs/mappings.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mappings.spec_schema import SpecError, schema_problems

FOLDER = Path(__file__).parent
RULESETS = FOLDER.parent / "rulesets"
# libyaml's safe loader when PyYAML was built with it (10× faster start-up), else the pure one
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SOURCES = ("community-health", "elderly-care", "insurance", "hl7v2")
_PARAM = re.compile(r"\$\{(\w+)\}")


@dataclass(slots=True)
class Spec:
    id: str
    title: str
    source: str
    #: the record must have all of these (CSV header columns, JSON keys, HL7 message types …)
    match: frozenset[str]
    resources: list[dict[str, Any]]
    #: fields deliberately not mapped (so they are not reported as unused)
    ignore: frozenset[str] = field(default_factory=frozenset)
    version: str = "1"
    file: str = ""
    #: the fields that identify a record in its source system (体检编号, 入住编号 + 机构, MSH-4 +
    #: MSH-10): the ids of what the record yields come from them, never from a file name or row
    record_key: tuple[str, ...] = ()
    #: the fields that name the system that sent the record (an HL7 message's MSH-3 sending
    #: application and MSH-4 sending facility): a person's contacts are that sender's
    #: (gateway/ingest/identity.py), so two hospitals' HIS, both of source hl7v2, keep each
    #: their own; none for an export that names no sender, whose contacts are its source's
    sender: tuple[str, ...] = ()

    def matches(self, shape: frozenset[str]) -> bool:
        return self.match <= shape


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules written once and inserted into many resource definitions.

    ``params`` maps each parameter to its default (``None``: the inserting spec must give it);
    ``${name}`` in the rules stands for the value given.  ``ignore`` lists fields the rule set
    deliberately leaves unmapped, added to the ignore list of every spec that inserts it.
    """

    id: str
    params: dict[str, Any]
    rules: list[dict[str, Any]]
    ignore: frozenset[str] = frozenset()


def load(folder: Path = FOLDER, rulesets_folder: Path = RULESETS) -> list[Spec]:
    """Every spec under ``folder``, rule sets inserted.  A malformed spec or rule set raises
    :class:`SpecError` listing every problem of every file (see ``mappings/spec.schema.json``)."""
    rulesets = load_rulesets(rulesets_folder)
    documents = [(path, _read(path)) for path in sorted(folder.glob("*/*.yaml"))]
    problems = [line for path, data in documents for line in schema_problems(data, _shown(path))]
    if problems:
        raise SpecError(problems)
    specs = []
    for path, data in documents:
        ignored = set(data.get("ignore", []))
        resources = []
        for definition in data["resources"]:
            rules = _expand(definition.get("rules", []), rulesets, ignored, f"{data['id']} {definition['name']}")
            resources.append({**definition, "rules": rules})
        specs.append(
            Spec(
                id=data["id"],
                title=data.get("title", data["id"]),
                source=data["source"],
                match=frozenset(data.get("match", [])),
                resources=resources,
                ignore=frozenset(ignored),
                version=str(data.get("version", "1")),
                file=str(path.relative_to(folder)),
                record_key=tuple(data.get("record_key", [])),
                sender=tuple(data.get("sender", [])),
            )
        )
    # the most specific spec wins when several match the same record
    return sorted(specs, key=lambda s: -len(s.match))


def load_rulesets(folder: Path = RULESETS) -> dict[str, RuleSet]:
    documents = [(path, _read(path)) for path in sorted(folder.glob("*.yaml"))]
    problems = [line for path, data in documents for line in schema_problems(data, _shown(path), "ruleset")]
    if problems:
        raise SpecError(problems)
    found = {}
    for _path, data in documents:
        params = dict(data.get("params") or {})
        undeclared = _placeholders(data["rules"]) - set(params)
        if undeclared:
            raise ValueError(f"rule set {data['id']}: ${{{', '.join(sorted(undeclared))}}} is not a declared parameter")
        found[data["id"]] = RuleSet(data["id"], params, data["rules"], frozenset(data.get("ignore", [])))
    return found


def _placeholders(node: Any) -> set[str]:
    if isinstance(node, str):
        return set(_PARAM.findall(node))
    if isinstance(node, dict):
        return set().union(*(_placeholders(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_placeholders(v) for v in node)) if node else set()
    return set()


def _shown(path: Path) -> str:
    """The file as people know it: relative to the repository when it is a shipped one."""
    try:
        return str(path.relative_to(FOLDER.parent.parent))
    except ValueError:
        return str(path)


def _read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_LOADER)


def _expand(rules: list[dict[str, Any]], rulesets: dict[str, RuleSet], ignored: set[str], where: str) -> list[Any]:
    """Replace every ``insert`` by the rule set's rules, bound to the given parameters; rule
    sets may insert rule sets.  A wrong insert fails at load time, naming the spec."""
    expanded: list[Any] = []
    for rule in rules:
        if "insert" not in rule:
            expanded.append(rule)
            continue
        ruleset = rulesets.get(rule["insert"])
        if ruleset is None:
            raise ValueError(f"{where}: unknown rule set {rule['insert']!r}")
        given = rule.get("with") or {}
        unknown = set(given) - set(ruleset.params)
        if unknown:
            raise ValueError(f"{where}: rule set {ruleset.id} has no parameter {', '.join(sorted(unknown))}")
        values = {**ruleset.params, **given}
        missing = [name for name, value in values.items() if value is None]
        if missing:
            raise ValueError(f"{where}: rule set {ruleset.id} needs {', '.join(missing)}")
        ignored.update(ruleset.ignore)
        bound = [_bind(r, values) for r in ruleset.rules]
        expanded.extend(_expand(bound, rulesets, ignored, f"{where} → {ruleset.id}"))
    return expanded


def _bind(node: Any, values: dict[str, Any]) -> Any:
    """The rule with ``${param}`` replaced: a string that is only a placeholder takes the value
    as it is (a list of fallback fields stays a list), else the value is spliced into the text."""
    if isinstance(node, str):
        whole = _PARAM.fullmatch(node)
        if whole:
            return values[whole.group(1)]
        return _PARAM.sub(lambda m: str(values[m.group(1)]), node)
    if isinstance(node, dict):
        return {key: _bind(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [_bind(item, values) for item in node]
    return node
