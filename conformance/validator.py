"""The validator: base structure, then every claimed or requested profile, then business rules.

Build one :class:`Validator` per set of definitions and reuse it: profiles, value sets and
invariants are compiled on first use and cached, so validating many instances costs only
the walks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from conformance.after_birth import AfterBirth
from conformance.bundle_index import BundleIndex
from conformance.bundle_references import check_bundle
from conformance.bundle_rules import check_bundle_rules
from conformance.business_rules import BusinessRules
from conformance.definition_checks import DefinitionChecks
from conformance.fhirpath_scope import Resolver, Scope, resolving_elsewhere
from conformance.invariants import Budget, reset_budget, set_budget
from conformance.issues import Issue, IssueList, supersessions
from conformance.limits import DEFAULT_LIMITS, Limits
from conformance.preflight import preflight
from conformance.profile_compiler import ProfileCompiler
from conformance.profile_walker import ProfileWalker
from conformance.questionnaire_response import QuestionnaireResponses
from conformance.structure import BaseModel, StructureWalker
from conformance.terminology import Terminology
from profiles.registry import Registry


class Validator:
    """Validates instances against R4, their profiles and the business rules.

    ``limits`` bounds every instance (depth, size, FHIRPath work) and every definition the
    validator compiles (regexes, expansions); see :class:`conformance.limits.Limits`.
    ``extension_domains`` are URL prefixes whose extensions may be used without a definition
    (information instead of an error), as the reference validator's ``-extension``.
    """

    def __init__(
        self, registry: Registry | None = None, limits: Limits = DEFAULT_LIMITS, extension_domains: Iterable[str] = ()
    ) -> None:
        self.registry = registry or Registry()
        self.limits = limits
        self.model = BaseModel(self.registry)
        self.terminology = Terminology(self.registry, limits)
        self.compiler = ProfileCompiler(self.registry, limits, self.model)
        self.structure = StructureWalker(
            self.model, self.terminology, visit=self._after_structure, extension_domains=tuple(extension_domains)
        )
        self.profiles = ProfileWalker(self.model, self.compiler, self.terminology)
        self.rules = BusinessRules(self.registry, self.terminology)
        self.after_birth = AfterBirth(self.registry)
        self.questionnaire_responses = QuestionnaireResponses(self.registry, self.terminology)
        self.definitions = DefinitionChecks(self.compiler, frozenset(self.model.resource_types))
        self._globals: tuple[int, dict[str, list[str]]] | None = None

    def validate(
        self, resource: Any, profiles: Iterable[str] = (), path: str = "", elsewhere: Resolver | None = None
    ) -> list[Issue]:
        """All issues for one resource (or Bundle), each located by FHIRPath.

        Input over a limit gets one fatal issue and is not walked; FHIRPath runs under a
        per-instance budget (``invariant.budget-exceeded``).  ``elsewhere`` resolves the
        references the instance does not hold (the gateway's archive), for target profiles,
        ``resolve()`` and resolving discriminators.
        """
        refused, size = preflight(resource, path, self.limits)
        if refused is not None:
            return [refused]
        issues = IssueList()
        token = set_budget(Budget(self.limits, size))
        try:
            with resolving_elsewhere(elsewhere):
                if self.structure.resource(resource, path, issues):
                    top = path or resource["resourceType"]
                    for url in profiles:
                        if url not in _claimed(resource):
                            self.profiles.validate(url, resource, top, issues, Scope.of(resource))
        finally:
            reset_budget(token)
        kept = _without_superseded(_unique(issues))
        if len(kept) > self.limits.max_issues:
            more = len(kept) - self.limits.max_issues
            kept = kept[: self.limits.max_issues]
            kept.append(Issue("error", "input.too-many-issues", path, {"limit": self.limits.max_issues, "more": more}))
        return kept

    def _after_structure(self, resource: dict[str, Any], path: str, issues: IssueList, scope: Scope) -> None:
        claimed = _claimed(resource)
        for url in claimed:
            self.profiles.validate(url, resource, path, issues, scope)
        for url in self._global_profiles().get(resource["resourceType"], ()):
            if url not in claimed:
                self.profiles.validate(url, resource, path, issues, scope)
        if resource["resourceType"] == "Observation":
            for url in self._vital_signs(resource, claimed):
                self.profiles.validate(url, resource, path, issues, scope)
        self.rules.check(resource, path, issues)
        self.questionnaire_responses.check(resource, path, issues)
        self.definitions.check(resource, path, issues)
        if resource["resourceType"] == "Bundle":
            check_bundle(resource, path, issues, scope.entries)
            self.after_birth.check_bundle_entries(resource, path, scope.entries or BundleIndex(resource), issues)
            check_bundle_rules(resource, path, issues, self.model.resource_types)

    def _vital_signs(self, resource: dict[str, Any], claimed: list[str]) -> list[str]:
        """The R4 vital-signs profiles an Observation's codes call for: observation-vitalsigns.html
        says one with such a code SHALL conform to its profile, claimed or not.  A claimed profile
        that is it, or derives from it, applies it already."""
        code = resource.get("code")
        codings = code.get("coding") if isinstance(code, dict) else None
        if not isinstance(codings, list):
            return []
        table = self.registry.vital_signs_codes
        found: list[str] = []
        for coding in codings:
            if isinstance(coding, dict) and isinstance(system := coding.get("system"), str):
                url = table.get(system, {}).get(coding.get("code")) if isinstance(coding.get("code"), str) else None
                if url is not None and url not in found and not any(self._derives(c, url) for c in claimed):
                    found.append(url)
        return found

    def _derives(self, url: str, ancestor: str) -> bool:
        """Whether profile ``url`` is ``ancestor`` or has it in its baseDefinition chain."""
        seen: set[str] = set()
        current: str | None = url
        while current is not None and current not in seen:
            if current == ancestor:
                return True
            seen.add(current)
            compiled = self.compiler.get(current)
            current = compiled.parent if compiled is not None else None
        return False

    def _global_profiles(self) -> dict[str, list[str]]:
        """Type → the profiles an ImplementationGuide's ``global`` applies to every instance of
        it (an ``--ig`` package may say every Patient is its Patient), read again when
        definitions are added."""
        if self._globals is None or self._globals[0] != self.registry.generation:
            found: dict[str, list[str]] = {}
            for guide in self.registry.all("ImplementationGuide"):
                for entry in guide.get("global") or []:
                    if (
                        isinstance(entry, dict)
                        and isinstance(entry.get("type"), str)
                        and isinstance(entry.get("profile"), str)
                    ):
                        found.setdefault(entry["type"], []).append(entry["profile"])
            self._globals = (self.registry.generation, found)
        return self._globals[1]


def _claimed(resource: dict[str, Any]) -> list[str]:
    meta = resource.get("meta")
    claimed = meta.get("profile") if isinstance(meta, dict) else None
    return [url for url in claimed if isinstance(url, str)] if isinstance(claimed, list) else []


def _unique(issues: IssueList) -> list[Issue]:
    """A snapshot profile restates its base; the same finding is reported once."""
    seen: set[tuple[str, str, object]] = set()
    kept = []
    for issue in issues:
        try:
            key: tuple[str, str, object] = (issue.message_id, issue.expression, frozenset(issue.params.items()))
        except TypeError:  # a list among the parameters
            key = (issue.message_id, issue.expression, repr(sorted(issue.params.items())))
        if key not in seen:
            seen.add(key)
            kept.append(issue)
    return kept


#: a last step naming a choice element by its type (``valueCoding``): the type's part
_TYPED_CHOICE = re.compile(r"(?<=[.a-z])[A-Z][A-Za-z]*$")


def _without_superseded(issues: list[Issue]) -> list[Issue]:
    """One fault, one reason: a finding that a rule's finding on the same element supersedes
    (the catalog's ``supersedes``, :func:`conformance.issues.supersessions`) is dropped.  The element is the same when the paths are, or
    when one names the choice by its typed name (the code system's ``….valueCoding``, the rule's
    ``….value``)."""
    table = supersessions()
    superseded = {(message_id, issue.expression) for issue in issues for message_id in table.get(issue.message_id, ())}
    if not superseded:
        return issues
    return [
        issue
        for issue in issues
        if (issue.message_id, issue.expression) not in superseded
        and (issue.message_id, _TYPED_CHOICE.sub("", issue.expression)) not in superseded
    ]
