"""Compile StructureDefinitions into rule trees, once per canonical URL.

A profile can only narrow its base, so a rule tree needs only what the profile says: the
differential when there is one, otherwise the snapshot minus what it inherited.  The base
model walk already enforces everything R4 itself says; the rule tree adds the profile's
cardinalities, types and target profiles, fixed and pattern values, bindings, invariants,
must-support flags and slicing.  Trees are keyed by element name and slice name, mirroring
the element ids (``Patient.identifier:idCard.system``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from conformance.invariants import Invariant, compile_invariant
from conformance.structure import NATIVE_INVARIANTS
from profiles.registry import Registry

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
REGEX_EXTENSION = "http://hl7.org/fhir/StructureDefinition/regex"


@dataclass(slots=True)
class TypeRule:
    code: str
    profiles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()


@dataclass(slots=True)
class Slicing:
    discriminators: tuple[tuple[str, str], ...]
    rules: str = "open"
    ordered: bool = False


@dataclass(slots=True)
class Rule:
    path: str
    name: str
    slice_name: str | None = None
    min: int | None = None
    max: int | None = None
    types: tuple[TypeRule, ...] = ()
    fixed: Any = None
    pattern: Any = None
    binding: tuple[str, str] | None = None
    invariants: tuple[Invariant, ...] = ()
    must_support: bool = False
    children: dict[str, Rule] = field(default_factory=dict)
    slicing: Slicing | None = None
    slices: dict[str, Rule] = field(default_factory=dict)

    #: the ElementDefinition regex extension, applied to primitive values
    regex: re.Pattern[str] | None = None
    #: nothing to report when the element is absent (no minimum, no must-support, no slice
    #: with either); set once compiled, lets the walk skip absent elements
    quiet_when_absent: bool = False

    def child(self, name: str) -> Rule:
        found = self.children.get(name)
        if found is None:
            found = self.children[name] = Rule(path=f"{self.path}.{name}", name=name)
        return found

    def slice(self, name: str) -> Rule:
        found = self.slices.get(name)
        if found is None:
            found = self.slices[name] = Rule(path=self.path, name=self.name, slice_name=name)
        return found

    def find(self, dotted: str) -> Rule | None:
        """The descendant rule at a relative path such as ``coding.system``."""
        rule: Rule | None = self
        for step in dotted.split("."):
            if rule is None:
                return None
            rule = rule.children.get(step)
        return rule


@dataclass(slots=True)
class CompiledProfile:
    url: str
    type: str
    kind: str
    root: Rule
    parent: str | None
    #: no invariant reads %resource & co., so a datatype's verdict depends on its value alone
    pure: bool = True


def _steps(element: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Split an element id into (name, slice) steps; older SDs without ids use path+sliceName."""
    element_id = element.get("id")
    if not element_id:
        names = element["path"].split(".")
        steps: list[tuple[str, str | None]] = [(n, None) for n in names]
        if element.get("sliceName"):
            steps[-1] = (names[-1], element["sliceName"])
        return steps
    steps = []
    for part in element_id.split("."):
        name, _, slice_name = part.partition(":")
        steps.append((name, slice_name or None))
    return steps


def _rules(rule: Rule) -> list[Rule]:
    found = [rule]
    for child in [*rule.children.values(), *rule.slices.values()]:
        found.extend(_rules(child))
    return found


def _typed_value(element: dict[str, Any], prefix: str) -> Any:
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return value
    return None


class ProfileCompiler:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[str, CompiledProfile | None] = {}

    def get(self, url: str) -> CompiledProfile | None:
        if url not in self._cache:
            sd = self.registry.get(url)
            ok = sd is not None and sd.get("resourceType") == "StructureDefinition"
            self._cache[url] = self.compile(sd) if ok else None
        return self._cache[url]

    def compile(self, sd: dict[str, Any]) -> CompiledProfile:
        type_name = sd["type"]
        root = Rule(path=type_name, name=type_name)
        from_snapshot = "differential" not in sd
        elements = (sd.get("snapshot") if from_snapshot else sd["differential"]).get("element", [])
        for element in elements:
            rule = root
            for name, slice_name in _steps(element)[1:]:
                rule = rule.child(name)
                if slice_name:
                    rule = rule.slice(slice_name)
            self._apply(rule, element, sd["url"], from_snapshot)
        base = sd.get("baseDefinition") or ""
        parent = None if base.startswith(CORE_PREFIX) and base[len(CORE_PREFIX) :] in self.registry.base_types else base
        rules = _rules(root)
        for rule in rules:
            rule.quiet_when_absent = not (
                rule.min or rule.must_support or any(s.min or s.must_support for s in rule.slices.values())
            )
        pure = all("%" not in i.expression for rule in rules for i in rule.invariants)
        return CompiledProfile(sd["url"], type_name, sd.get("kind", "resource"), root, parent or None, pure)

    @staticmethod
    def _apply(rule: Rule, element: dict[str, Any], url: str, from_snapshot: bool) -> None:
        if "min" in element and not (from_snapshot and element["min"] == element.get("base", {}).get("min")):
            rule.min = element["min"]
        if "max" in element and not (from_snapshot and element["max"] == element.get("base", {}).get("max")):
            rule.max = None if element["max"] == "*" else int(element["max"])
        if "type" in element:
            rule.types = tuple(
                TypeRule(t["code"], tuple(t.get("profile", [])), tuple(t.get("targetProfile", [])))
                for t in element["type"]
            )
        rule.fixed = _typed_value(element, "fixed")
        rule.pattern = _typed_value(element, "pattern")
        binding = element.get("binding")
        if binding and binding.get("valueSet"):
            rule.binding = (binding["strength"], binding["valueSet"])
        rule.invariants = tuple(
            compile_invariant(c["key"], c["severity"], c["expression"], c.get("human", c["key"]))
            for c in element.get("constraint", [])
            if "expression" in c
            and c["key"] not in NATIVE_INVARIANTS
            and c.get("source", url) == url
            and not c["key"].startswith(("ele-", "ext-"))
        )
        rule.must_support = bool(element.get("mustSupport"))
        for extension in element.get("extension", []):
            if extension.get("url") == REGEX_EXTENSION and isinstance(extension.get("valueString"), str):
                rule.regex = re.compile(extension["valueString"])
        if "slicing" in element:
            slicing = element["slicing"]
            rule.slicing = Slicing(
                tuple((d["type"], d["path"]) for d in slicing.get("discriminator", [])),
                slicing.get("rules", "open"),
                bool(slicing.get("ordered", False)),
            )
