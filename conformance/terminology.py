"""Code membership: value sets expanded once from the registry, code systems indexed once.

Four sources answer "is this code allowed": the R4 base expansions derived from the official
definitions (required bindings of the core spec, and every other core value set enumerable from
the FHIR, v3 and v2 code systems alone), value sets and code systems loaded in the
registry (the provincial package, ``--ig`` folders), tests for external code systems bound
whole (media types, currencies: ``external_codes.py``), and nothing at all — an external code
system such as LOINC that is not loaded is reported as unverified, never treated as an error.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from conformance.external_codes import EXTERNAL_VALUE_SETS
from conformance.issues import IssueList
from conformance.limits import DEFAULT_LIMITS, Limits
from profiles.registry import Registry


@dataclass(slots=True)
class Expansion:
    url: str
    pairs: set[tuple[str | None, str]] = field(default_factory=set)
    codes: set[str] = field(default_factory=set)
    #: systems included whole but not loaded here: membership can only be checked by system
    open_systems: set[str] = field(default_factory=set)
    complete: bool = True
    #: over ``Limits.max_expansion`` codes: not expanded, membership cannot be decided
    too_large: bool = False
    #: a value set that is a whole external code system checked by a test (media types,
    #: currencies: ``external_codes.py``): (system, test)
    external: tuple[str, Callable[[str], bool]] | None = None

    def add(self, system: str | None, code: str) -> None:
        self.pairs.add((system, code))
        self.codes.add(code)


class TooLarge(Exception):  # noqa: N818 - a signal inside this module, never raised out of it
    """An expansion or code system is over its size limit."""


def _walk_concepts(concepts: Any, limit: int) -> dict[str, dict[str, Any]]:
    """Index a concept tree (iteratively: a hierarchy 20,000 deep must not overflow the stack).

    Malformed concepts (no code, not an object) are skipped; they are not ours to report here.
    """
    out: dict[str, dict[str, Any]] = {}
    stack: list[tuple[Any, str | None]] = [(c, None) for c in reversed(concepts)] if isinstance(concepts, list) else []
    while stack:
        concept, parent = stack.pop()
        if not isinstance(concept, dict) or not isinstance(concept.get("code"), str):
            continue
        entry = {"display": concept.get("display"), "parents": {parent} if parent else set(), "properties": {}}
        for prop in _as_list(concept.get("property")):
            if not isinstance(prop, dict) or not isinstance(prop.get("code"), str):
                continue
            value = next((v for k, v in prop.items() if k.startswith("value")), None)
            if isinstance(value, (dict, list)):
                value = None  # unhashable: a Coding-valued property is not used by filters here
            entry["properties"].setdefault(prop["code"], set()).add(value)
            if prop["code"] == "parent" and isinstance(value, str):
                entry["parents"].add(value)
        out[concept["code"]] = entry
        if len(out) > limit:
            raise TooLarge
        children = concept.get("concept")
        if isinstance(children, list):
            stack.extend((child, concept["code"]) for child in reversed(children))
    return out


#: code systems whose codes check_coding keeps at hand (instances name them: a bound)
SYSTEMS_KEPT = 4096


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class Terminology:
    """Answers about codes, remembered per definition.  A worker serves for days and clients
    name whatever systems and value sets they like: what it keeps for a name is bounded by
    the definitions (a system or value set no definition knows is looked up again, a few dict
    lookups, and kept nowhere) or, for ``check_coding``'s per-system answer, by ``SYSTEMS_KEPT``."""

    def __init__(self, registry: Registry, limits: Limits = DEFAULT_LIMITS) -> None:
        self.registry = registry
        self.limits = limits
        self._systems: dict[str, dict[str, dict[str, Any]] | None] = {}
        #: code system → code → its direct children, built once for is-a / descendent-of
        self._children: dict[int, dict[str, list[str]]] = {}
        #: (code system, ancestor) → the ancestor and all its descendants (transitive closure)
        self._closure: dict[tuple[int, str], frozenset[str]] = {}
        self._expansions: dict[str, Expansion | None] = {}
        #: R4's own code systems of complete content → their codes
        self._core_systems: dict[str, frozenset[str]] = {}
        #: code system → (the codes a Coding of it must be among, None: any), see check_coding
        self._checked_codes: dict[str, tuple[Container[str] | None]] = {}
        self._generation = registry.generation
        #: bound values found in their value sets, kept by ``bindings.check_binding``
        self.found_in_value_sets: set[tuple[Any, ...]] = set()

    def _current(self) -> None:
        """Forget what was read from the registry once definitions were added to it (an
        ``--ig`` code system may extend or replace one already expanded)."""
        if self._generation != self.registry.generation:
            caches = (
                self._systems,
                self._children,
                self._closure,
                self._expansions,
                self._checked_codes,
            )
            for cache in caches:
                cache.clear()
            self._generation = self.registry.generation

    # -- code systems ----------------------------------------------------------------
    def concepts(self, system: str) -> dict[str, dict[str, Any]] | None:
        """All concepts of a loaded, complete code system, or None if we cannot enumerate it."""
        self._current()
        if system not in self._systems:
            resource = self.registry.get(system)
            if resource is None:
                return None  # no definition: nothing to keep (instances name any system)
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
                try:
                    concepts = _walk_concepts(resource.get("concept"), self.limits.max_expansion)
                except TooLarge:
                    concepts = None  # too large to enumerate: treated like a system not loaded
            self._systems[system] = concepts
        return self._systems[system]

    def is_complete(self, system: str) -> bool:
        if not isinstance(system, str):
            return False
        resource = self.registry.get(system)
        return bool(resource) and resource.get("content") == "complete" and self.concepts(system) is not None

    def code_system_title(self, system: str) -> str:
        resource = self.registry.get(system) or {}
        return resource.get("title") or resource.get("name") or system.rstrip("/").rsplit("/", 1)[-1]

    def check_coding(self, system: str | None, code: Any, path: str, issues: IssueList) -> None:
        """A code claimed to be in a complete code system we hold must exist there: one of the
        package's, or one of R4's own (FHIR, v3 and v2 code systems of complete content, such
        as ``condition-category`` or ``v3-ActCode``) whatever binds the element, as HL7's
        validator holds it: a code that does not exist is no code, bound or not."""
        if not system or not isinstance(system, str) or not isinstance(code, str):
            return
        self._current()
        kept = self._checked_codes.get(system)
        if kept is None:
            # worked out once per system: every Coding of an instance is checked, and asking
            # whether the system is complete, then for its concepts, took five calls each
            kept = (self.concepts(system) if self.is_complete(system) else self._core_codes(system),)
            if len(self._checked_codes) >= SYSTEMS_KEPT:  # systems come from instances: a bound
                self._checked_codes.clear()
            self._checked_codes[system] = kept
        codes = kept[0]
        if codes is not None and code not in codes:
            issues.error("code.unknown-in-system", path, code=code, system=system, title=self.code_system_title(system))

    def _core_codes(self, system: str) -> frozenset[str] | None:
        """The codes of an R4 core code system of complete content, None for any other system."""
        found = self._core_systems.get(system)
        if found is None:
            listed = self.registry.core_valuesets["codesystems"].get(system)
            if listed is None:
                return None
            found = self._core_systems[system] = frozenset(listed)
        return found

    # -- value sets ------------------------------------------------------------------
    def expand(self, url: str) -> Expansion | None:
        """The expansion of a value set; ``too_large`` set when over ``Limits.max_expansion``."""
        if not isinstance(url, str):
            return None
        self._current()
        url = url.split("|", 1)[0]
        if url not in self._expansions:
            self._expansions[url] = None  # guards against value sets that include themselves
            try:
                self._expansions[url] = self._build(url)
            except TooLarge:
                self._expansions[url] = Expansion(url, complete=False, too_large=True)
            except (KeyError, TypeError, AttributeError, ValueError):
                # a malformed compose (not our definitions to crash on): cannot be decided
                self._expansions[url] = Expansion(url, complete=False)
            if self._expansions[url] is None:
                # no definition (a contained Questionnaire's answerValueSet may name any URL):
                # nothing to keep
                return self._expansions.pop(url)
        return self._expansions[url]

    def _build(self, url: str) -> Expansion | None:
        resource = self.registry.get(url)
        if resource is None or resource.get("resourceType") != "ValueSet":
            if url in EXTERNAL_VALUE_SETS:
                return Expansion(url, external=EXTERNAL_VALUE_SETS[url])
            base = self.registry.base_valuesets.get(url)
            if base is None:
                return self._core(url)
            expansion = Expansion(url)
            for system, code in base:
                expansion.add(system, code)
            return expansion
        expansion = Expansion(url)
        if "expansion" in resource and "compose" not in resource:
            contains = _as_list(resource["expansion"].get("contains"))
            self._check_size(len(contains))
            for item in contains:
                if isinstance(item, dict) and isinstance(item.get("code"), str):
                    expansion.add(item.get("system"), item["code"])
            return expansion
        compose = resource.get("compose", {})
        for include in compose.get("include", []):
            self._include(include, expansion, add=True)
        for exclude in compose.get("exclude", []):
            self._include(exclude, expansion, add=False)
        return expansion

    def _core(self, url: str) -> Expansion | None:
        """A core value set beyond the required bindings, expanded by tools/derive_core_valuesets.py."""
        core = self.registry.core_valuesets
        entry = core["valuesets"].get(url)
        if entry is None:
            return None
        expansion = Expansion(url)
        for system, codes in entry.items():
            listed = core["codesystems"][system] if codes == "*" else codes
            self._check_size(len(expansion.pairs) + len(listed))
            for code in listed:
                expansion.add(system, code)
        return expansion

    def _include(self, include: dict[str, Any], expansion: Expansion, add: bool) -> None:
        system = include.get("system")
        selected: list[tuple[str | None, str]] = []
        if "concept" in include:
            listed = _as_list(include["concept"])
            self._check_size(len(listed))
            selected = [(system, c["code"]) for c in listed if isinstance(c, dict) and isinstance(c.get("code"), str)]
        elif system:
            concepts = self.concepts(system)
            if concepts is None:
                if add:
                    expansion.open_systems.add(system)
                    expansion.complete = False
                return
            selected = [(system, code) for code in self._filter(concepts, _as_list(include.get("filter")))]
        for nested in _as_list(include.get("valueSet")):
            sub = self.expand(nested)
            if sub is None:
                expansion.complete = False
                continue
            subset = sub.pairs if not selected else set(selected) & sub.pairs
            selected = list(subset)
        if add:
            self._check_size(len(expansion.pairs) + len(selected))
            for system_code in selected:
                expansion.add(*system_code)
        elif selected:
            expansion.pairs.difference_update(selected)
            expansion.codes = {c for _, c in expansion.pairs}

    def _check_size(self, count: int) -> None:
        if count > self.limits.max_expansion:
            raise TooLarge

    def _filter(self, concepts: dict[str, dict[str, Any]], filters: list[dict[str, Any]]) -> list[str]:
        codes = list(concepts)
        for rule in filters:
            if not isinstance(rule, dict):
                continue
            prop, op, value = rule.get("property"), rule.get("op"), rule.get("value")
            if not isinstance(value, str):
                continue
            if op in ("is-a", "descendent-of"):
                below = self._descendants(concepts, value)
                codes = [c for c in codes if c in below and (op == "is-a" or c != value)]
            elif op == "=":
                codes = [c for c in codes if value in concepts[c]["properties"].get(prop, set())]
            elif op == "in":
                allowed = set(value.split(","))
                codes = [c for c in codes if concepts[c]["properties"].get(prop, set()) & allowed]
        return codes

    def contains(self, expansion: Expansion, system: str | None, code: str) -> bool | None:
        """True/False when decidable; None when the code's system is included whole but not loaded."""
        if not isinstance(code, str) or not (system is None or isinstance(system, str)):
            return False
        if (system, code) in expansion.pairs or (system is None and code in expansion.codes):
            return True
        if expansion.external is not None and system in (None, expansion.external[0]):
            return expansion.external[1](code)
        if system in expansion.open_systems:
            return None
        return False

    def subsumed(self, system: str, code: str, above: bool = False) -> frozenset[str] | None:
        """``code`` and every code below it (``above``: every code it is below) in ``system``'s
        is-a hierarchy, as a token search's ``:below`` (``:above``) reads it (R4
        search.html#token); None when the registry holds no such hierarchy with that code.
        Only ``hierarchyMeaning`` is-a subsumes: a part-of or grouped-by tree (a score's
        items under their section) says nothing of what a code is."""
        resource = self.registry.get(system)
        if not resource or resource.get("resourceType") != "CodeSystem" or resource.get("hierarchyMeaning") != "is-a":
            return None
        concepts = self.concepts(system)
        if concepts is None or code not in concepts:
            return None
        if not above:
            return self._descendants(concepts, code)
        seen, frontier = {code}, [code]
        while frontier:
            for parent in concepts[frontier.pop()]["parents"]:
                if parent not in seen and parent in concepts:
                    seen.add(parent)
                    frontier.append(parent)
        return frozenset(seen)

    def _descendants(self, concepts: dict[str, dict[str, Any]], ancestor: str) -> frozenset[str]:
        """The ancestor and everything below it, computed once per (code system, ancestor).

        The child index is built once per code system (one pass over the parents), so a
        subsumption filter costs one breadth-first walk instead of a walk up from every code:
        a 20,000-concept is-a chain took 144 s the other way.
        """
        key = (id(concepts), ancestor)
        found = self._closure.get(key)
        if found is None:
            children = self._children.get(id(concepts))
            if children is None:
                children = {}
                for code, entry in concepts.items():
                    for parent in entry["parents"]:
                        children.setdefault(parent, []).append(code)
                self._children[id(concepts)] = children
            seen = {ancestor}
            frontier = [ancestor]
            while frontier:
                for child in children.get(frontier.pop(), ()):
                    if child not in seen:
                        seen.add(child)
                        frontier.append(child)
            found = self._closure[key] = frozenset(seen)
        return found
