"""Code membership: value sets expanded once from the registry, code systems indexed once.

Three sources answer "is this code allowed": the R4 base expansions derived from the official
definitions (required bindings of the core spec), value sets and code systems loaded in the
registry (the provincial package, ``--ig`` folders), and nothing at all — an external code
system such as LOINC that is not loaded is reported as unverified, never treated as an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.issues import IssueList
from profiles.registry import Registry


@dataclass(slots=True)
class Expansion:
    url: str
    pairs: set[tuple[str | None, str]] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    #: systems included whole but not loaded here: membership can only be checked by system
    open_systems: set[str] = field(default_factory=set)
    complete: bool = True

    def add(self, system: str | None, code: str) -> None:
        self.pairs.add((system, code))
        self.codes.add(code)


def _walk_concepts(concepts: list[dict[str, Any]], parent: str | None, out: dict[str, dict[str, Any]]) -> None:
    for concept in concepts:
        entry = {"display": concept.get("display"), "parents": {parent} if parent else set(), "properties": {}}
        for prop in concept.get("property", []):
            value = next((v for k, v in prop.items() if k.startswith("value")), None)
            entry["properties"].setdefault(prop["code"], set()).add(value)
            if prop["code"] == "parent":
                entry["parents"].add(value)
        out[concept["code"]] = entry
        _walk_concepts(concept.get("concept", []), concept["code"], out)


class Terminology:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._systems: dict[str, dict[str, dict[str, Any]] | None] = {}
        self._expansions: dict[str, Expansion | None] = {}
        self._complete: dict[str, bool] = {}

    # -- code systems ----------------------------------------------------------------
    def concepts(self, system: str) -> dict[str, dict[str, Any]] | None:
        """All concepts of a loaded, complete code system, or None if we cannot enumerate it."""
        if system not in self._systems:
            resource = self.registry.get(system)
            concepts: dict[str, dict[str, Any]] | None = None
            if (
                resource
                and resource.get("resourceType") == "CodeSystem"
                and resource.get("content")
                in (
                    "complete",
                    "fragment",
                )
            ):
                concepts = {}
                _walk_concepts(resource.get("concept", []), None, concepts)
            self._systems[system] = concepts
        return self._systems[system]

    def is_complete(self, system: str) -> bool:
        found = self._complete.get(system)
        if found is None:
            resource = self.registry.get(system)
            found = self._complete[system] = bool(resource) and resource.get("content") == "complete"
        return found

    def code_system_title(self, system: str) -> str:
        resource = self.registry.get(system) or {}
        return resource.get("title") or resource.get("name") or system

    def check_coding(self, system: str | None, code: Any, path: str, issues: IssueList) -> None:
        """A code claimed to be in a complete code system we hold must exist there."""
        if not system or not isinstance(code, str) or not self.is_complete(system):
            return
        concepts = self.concepts(system)
        if concepts is not None and code not in concepts:
            issues.error("code.unknown-in-system", path, code=code, system=system, title=self.code_system_title(system))

    # -- value sets ------------------------------------------------------------------
    def expand(self, url: str) -> Expansion | None:
        url = url.split("|", 1)[0]
        if url not in self._expansions:
            self._expansions[url] = None  # guards against value sets that include themselves
            self._expansions[url] = self._build(url)
        return self._expansions[url]

    def _build(self, url: str) -> Expansion | None:
        resource = self.registry.get(url)
        if resource is None or resource.get("resourceType") != "ValueSet":
            base = self.registry.base_valuesets.get(url)
            if base is None:
                return None
            expansion = Expansion(url)
            for system, code in base:
                expansion.add(system, code)
            return expansion
        expansion = Expansion(url)
        if "expansion" in resource and "compose" not in resource:
            for item in resource["expansion"].get("contains", []):
                expansion.add(item.get("system"), item["code"])
            return expansion
        compose = resource.get("compose", {})
        for include in compose.get("include", []):
            self._include(include, expansion, add=True)
        for exclude in compose.get("exclude", []):
            self._include(exclude, expansion, add=False)
        return expansion

    def _include(self, include: dict[str, Any], expansion: Expansion, add: bool) -> None:
        system = include.get("system")
        selected: list[tuple[str | None, str]] = []
        if "concept" in include:
            selected = [(system, c["code"]) for c in include["concept"]]
        elif system:
            concepts = self.concepts(system)
            if concepts is None:
                if add:
                    expansion.open_systems.add(system)
                    expansion.complete = False
                return
            selected = [(system, code) for code in self._filter(concepts, include.get("filter", []))]
        for nested in include.get("valueSet", []):
            sub = self.expand(nested)
            if sub is None:
                expansion.complete = False
                continue
            subset = sub.pairs if not selected else set(selected) & sub.pairs
            selected = list(subset)
        for system_code in selected:
            if add:
                expansion.add(*system_code)
            else:
                expansion.pairs.discard(system_code)
                expansion.codes = {c for _, c in expansion.pairs}

    @staticmethod
    def _filter(concepts: dict[str, dict[str, Any]], filters: list[dict[str, Any]]) -> list[str]:
        codes = list(concepts)
        for rule in filters:
            prop, op, value = rule.get("property"), rule.get("op"), rule.get("value")
            if op in ("is-a", "descendent-of"):
                codes = [c for c in codes if _descends(concepts, c, value, op == "is-a")]
            elif op == "=":
                codes = [c for c in codes if value in concepts[c]["properties"].get(prop, set())]
            elif op == "in":
                allowed = set(value.split(","))
                codes = [c for c in codes if concepts[c]["properties"].get(prop, set()) & allowed]
        return codes

    def contains(self, expansion: Expansion, system: str | None, code: str) -> bool | None:
        """True/False when decidable; None when the code's system is included whole but not loaded."""
        if (system, code) in expansion.pairs or (system is None and code in expansion.codes):
            return True
        if system in expansion.open_systems:
            return None
        return False


def _descends(concepts: dict[str, dict[str, Any]], code: str, ancestor: str, inclusive: bool) -> bool:
    if code == ancestor:
        return inclusive
    seen: set[str] = set()
    frontier = set(concepts[code]["parents"])
    while frontier:
        current = frontier.pop()
        if current == ancestor:
            return True
        if current in seen or current not in concepts:
            continue
        seen.add(current)
        frontier |= concepts[current]["parents"]
    return False
