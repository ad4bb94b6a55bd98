"""Conformance resources checked as definitions, not only as instances: a StructureDefinition
whose element paths do not exist, that slices one element twice or an extension that does not
fix its own ``url``; a SearchParameter on an unknown type or with an expression that does not
parse; a CapabilityStatement naming unknown types or interactions; an ImplementationGuide whose
after-birth rule (:mod:`conformance.dated_resources`) names elements its types lack.

The base walk already checks their shape (cardinalities, bindings); these are the rules that
need the base model or a FHIRPath parser, applied when such a resource is validated and when
an ``--ig`` package is loaded, so a broken definition is reported where it is written rather
than where it is first applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.dated_resources import unknown_names
from conformance.invariants import syntax_error
from conformance.issues import IssueList
from conformance.profile_compiler import ProfileCompiler

#: R4 CapabilityStatement.rest.resource.interaction.code and rest.interaction.code
TYPE_INTERACTIONS = frozenset(
    {"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"}
)
SYSTEM_INTERACTIONS = frozenset({"transaction", "batch", "search-system", "history-system"})


class DefinitionChecks:
    def __init__(self, compiler: ProfileCompiler, resource_types: frozenset[str]) -> None:
        self.compiler = compiler
        self.resource_types = resource_types
        self._checks: dict[str, Callable[[dict[str, Any], str, IssueList], None]] = {
            "StructureDefinition": self._structure_definition,
            "SearchParameter": self._search_parameter,
            "CapabilityStatement": self._capability_statement,
            "ImplementationGuide": self._implementation_guide,
        }

    def check(self, resource: dict[str, Any], path: str, issues: IssueList) -> None:
        found = self._checks.get(resource.get("resourceType", ""))
        if found is not None:
            found(resource, path, issues)

    # -- StructureDefinition -------------------------------------------------------------------
    def _structure_definition(self, sd: dict[str, Any], path: str, issues: IssueList) -> None:
        if sd.get("derivation") != "constraint" or not isinstance(sd.get("differential"), dict):
            return
        url = str(sd.get("url", "(no url)"))
        for message_id, params in self.compiler.compile(sd).problems:
            issues.error(message_id, f"{path}.differential", **params)
        elements = sd["differential"].get("element")
        elements = elements if isinstance(elements, list) else []
        sliced: set[str] = set()
        for index, element in enumerate(elements):
            if not isinstance(element, dict) or "slicing" not in element:
                continue
            key = str(element.get("id") or element.get("path"))
            if key in sliced:
                issues.error(
                    "definition.slicing-redefined",
                    f"{path}.differential.element[{index}].slicing",
                    profile=url,
                    element=key,
                )
            sliced.add(key)
        if sd.get("type") == "Extension":
            fixed = [e for e in elements if isinstance(e, dict) and e.get("path") == "Extension.url"]
            if not any(e.get("fixedUri") == url for e in fixed):
                issues.error("definition.extension-url-not-fixed", f"{path}.differential", profile=url)

    # -- SearchParameter -----------------------------------------------------------------------
    def _search_parameter(self, sp: dict[str, Any], path: str, issues: IssueList) -> None:
        for field in ("base", "target"):
            values = sp.get(field)
            for index, kind in enumerate(values if isinstance(values, list) else []):
                if kind != "Resource" and kind not in self.resource_types:
                    issues.error("definition.unknown-type", f"{path}.{field}[{index}]", type=kind)
        expression = sp.get("expression")
        problem = syntax_error(expression) if isinstance(expression, str) and expression else None
        if problem is not None:
            issues.error("definition.expression-invalid", f"{path}.expression", fhirpath=expression, detail=problem)

    # -- ImplementationGuide -------------------------------------------------------------------
    def _implementation_guide(self, guide: dict[str, Any], path: str, issues: IssueList) -> None:
        """The after-birth rule a guide states names R4 types and elements they have."""
        profile = str(guide.get("url", "(no url)"))
        for where, kind, element in unknown_names(guide, self.compiler.registry, path):
            if element is None:
                issues.error("definition.unknown-type", where, type=kind)
            else:
                issues.error(
                    "definition.unknown-path", where, profile=profile, path=f"{kind}.{element}", type=kind, step=element
                )

    # -- CapabilityStatement -------------------------------------------------------------------
    def _capability_statement(self, cs: dict[str, Any], path: str, issues: IssueList) -> None:
        for r, rest in enumerate(_list(cs.get("rest"))):
            where = f"{path}.rest[{r}]"
            for i, interaction in enumerate(_list(rest.get("interaction"))):
                if interaction.get("code") not in SYSTEM_INTERACTIONS:
                    issues.error(
                        "definition.unknown-interaction", f"{where}.interaction[{i}].code", code=interaction.get("code")
                    )
            for k, entry in enumerate(_list(rest.get("resource"))):
                if entry.get("type") not in self.resource_types:
                    issues.error("definition.unknown-type", f"{where}.resource[{k}].type", type=entry.get("type"))
                for i, interaction in enumerate(_list(entry.get("interaction"))):
                    if interaction.get("code") not in TYPE_INTERACTIONS:
                        issues.error(
                            "definition.unknown-interaction",
                            f"{where}.resource[{k}].interaction[{i}].code",
                            code=interaction.get("code"),
                        )


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
