"""Slicing discriminators: the values a discriminator path selects in an instance, with their
FHIR types, and the element of a slice that constrains them (profiling.html#discriminator).

A discriminator path is restricted FHIRPath: child names (a choice element by its name without
``[x]``, ``value`` for ``valueQuantity``), ``$this``, ``extension('url')``, ``ofType(Type)`` and
``resolve()``.  The FHIR type of every selected value is known from the base model (a resource
answers with its ``resourceType``), so a ``type`` discriminator compares FHIR types, never
Python classes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from conformance.fhirpath_scope import Scope
from conformance.profile_compiler import Rule
from conformance.structure import BaseModel, NodeModel


@dataclass(frozen=True, slots=True)
class Typed:
    """One value selected by a discriminator path, with its FHIR type and its model."""

    value: Any
    type: str
    node: NodeModel | None


@functools.cache
def split_path(path: str) -> tuple[str, ...]:
    """``extension('http://a.b/c').value`` → (``extension('http://a.b/c')``, ``value``)."""
    steps, depth, start = [], 0, 0
    for index, char in enumerate(path):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "." and depth == 0:
            steps.append(path[start:index])
            start = index + 1
    steps.append(path[start:])
    return tuple(step.strip() for step in steps if step.strip() and step.strip() != "$this")


def _argument(step: str) -> str:
    return step[step.index("(") + 1 : -1].strip().strip("'\"")


def typed_values(model: BaseModel, start: Typed, path: str, scope: Scope) -> list[Typed]:
    """The values ``path`` selects from ``start``, each with its FHIR type."""
    current = [start]
    for step in split_path(path):
        following: list[Typed] = []
        for typed in current:
            following.extend(_step(model, typed, step, scope))
        current = following
    return current


def _step(model: BaseModel, typed: Typed, step: str, scope: Scope) -> list[Typed]:
    value = typed.value
    if step == "resolve()":
        reference = value.get("reference") if isinstance(value, dict) else value
        target = scope.resolve(reference) if isinstance(reference, str) else None
        return [of_resource(model, target)] if target is not None else []
    if step.startswith("ofType("):
        wanted = _argument(step)
        return [typed] if typed.type == wanted else []
    if not isinstance(value, dict):
        return []
    if step.startswith("extension("):
        url = _argument(step)
        extensions = value.get("extension")
        return [
            Typed(e, "Extension", model.nodes.get("Extension"))
            for e in (extensions if isinstance(extensions, list) else [])
            if isinstance(e, dict) and e.get("url") == url
        ]
    stem = step[:-3] if step.endswith("[x]") else step
    keys = [step] if step in value and not step.endswith("[x]") else _choice_keys(value, stem, typed.node)
    found: list[Typed] = []
    for key in keys:
        slot = typed.node.slots.get(key) if typed.node is not None else None
        children = value[key]
        for child in children if isinstance(children, list) else [children]:
            if isinstance(child, dict) and isinstance(child.get("resourceType"), str):
                found.append(of_resource(model, child))
            elif slot is not None:
                found.append(Typed(child, slot.type, slot.child))
            else:
                found.append(Typed(child, "", None))
    return found


def _choice_keys(value: dict[str, Any], stem: str, node: NodeModel | None) -> list[str]:
    """The keys of a choice element present in ``value`` (``valueQuantity`` for ``value``)."""
    element = stem + "[x]"
    return [
        key
        for key in value
        if key.startswith(stem)
        and len(key) > len(stem)
        and key[len(stem)].isupper()
        and (node is None or (key in node.slots and node.slots[key].element == element))
    ]


def of_resource(model: BaseModel, resource: dict[str, Any]) -> Typed:
    rtype = resource.get("resourceType")
    rtype = rtype if isinstance(rtype, str) else ""
    return Typed(resource, rtype, model.nodes.get(rtype))


def criteria(slice_rule: Rule, path: str) -> Rule | None:
    """The element of a slice that constrains the values at a discriminator path, if the slice
    says anything about them (the reference validator's ``getCriteriaForDiscriminator``)."""
    rule: Rule | None = slice_rule
    for step in split_path(path):
        if rule is None or step == "resolve()":
            return rule
        if step.startswith("ofType("):
            wanted = _argument(step)
            stem = rule.name[:-3] if rule.name.endswith("[x]") else rule.name
            rule = rule.slices.get(stem + wanted[:1].upper() + wanted[1:], rule)
        elif step.startswith("extension("):
            rule = _extension_slice(rule.children.get("extension"), _argument(step))
        else:
            name = step[:-3] if step.endswith("[x]") else step
            rule = rule.children.get(name) or rule.children.get(name + "[x]")
            if rule is not None and rule.slicing is not None and rule.slices and not rule.children:
                # a path through a sliced element that says nothing else reads its first slice:
                # core bp's component discriminator code.coding.code is fixed only in the
                # slice coding:SBPCode, and the reference validator tells bp's components apart
                rule = next(iter(rule.slices.values()))
    return rule


def _extension_slice(extensions: Rule | None, url: str) -> Rule | None:
    if extensions is None:
        return None
    for candidate in extensions.slices.values():
        fixed_url = candidate.children.get("url")
        if any(url in t.profiles for t in candidate.types) or (fixed_url is not None and fixed_url.fixed == url):
            return candidate
    return None


def slice_constraint(slice_rule: Rule, kind: str, path: str) -> Any:
    """What a slice says about one discriminator: "absent" (max 0), the expected value for
    value/pattern (fixed, pattern, an extension's profile url, or ("binding", url) for a
    required binding), True for type/profile/exists rules it sets, or None when it says nothing."""
    target = criteria(slice_rule, path)
    if target is not None and target.max == 0:
        return "absent"
    if kind in ("value", "pattern"):
        if target is not None and target.fixed is not None:
            return target.fixed
        if target is not None and target.pattern is not None:
            return target.pattern
        if path == "url":
            profile = next((p for t in slice_rule.types for p in t.profiles), None)
            if profile is not None:
                return profile
        if target is not None and target.binding is not None and target.binding[0] == "required":
            return ("binding", target.binding[1])
        return None
    if kind == "exists":
        return True if target is not None and (target.min or 0) >= 1 else None
    if kind == "type":
        return True if target is not None and target.types else None
    if kind == "profile":
        rule = target or slice_rule
        referenced = path == "resolve()" or path.endswith(".resolve()")
        return True if any(t.targets if referenced else t.profiles for t in rule.types) else None
    return None


@dataclass(frozen=True, slots=True)
class SliceTest:
    """One discriminator as one slice constrains it, worked out once per slice."""

    kind: str
    path: str
    #: the slice's element at the discriminator path (None: the slice does not reach it)
    target: Rule | None
    #: what slice_constraint() says the slice requires there
    constraint: Any
    #: FHIR type names a ``type`` discriminator accepts
    type_codes: frozenset[str] = frozenset()
    #: the path's steps when they are all plain child names (``coding.system``): such a test
    #: compares values only and can skip the typed walk (see plain_values)
    plain: tuple[str, ...] | None = None


def slice_tests(slice_rule: Rule, discriminators: tuple[tuple[str, str], ...]) -> tuple[SliceTest, ...]:
    """The discriminators the slice constrains, as tests; () when it constrains none (the
    reference validator refuses such a profile: the slice cannot be told apart)."""
    tests = []
    for kind, path in discriminators:
        constraint = slice_constraint(slice_rule, kind, path)
        if constraint is None:
            continue
        target = criteria(slice_rule, path)
        if target is None and kind == "profile":
            target = slice_rule  # the profile sits on the slice itself (slice_constraint does the same)
        codes = frozenset(t.code.rsplit("/", 1)[-1] for t in (target.types if target else ()))
        steps = split_path(path)
        simple = kind in ("value", "pattern") and not isinstance(constraint, tuple) and constraint != "absent"
        plain = steps if simple and all(step.isidentifier() for step in steps) else None
        tests.append(SliceTest(kind, path, target, constraint, codes, plain))
    return tuple(tests)


def plain_values(value: Any, steps: tuple[str, ...]) -> list[Any] | None:
    """The values at plain child names, read straight from the JSON; None when some step is
    absent somewhere (it may be a choice element, ``value`` for ``valueQuantity``), so the
    typed walk must answer.  Slicing is on the hot path: most discriminators are a name or two."""
    current = [value]
    for step in steps:
        following: list[Any] = []
        for node in current:
            if type(node) is not dict or step not in node:
                return None
            child = node[step]
            if type(child) is list:
                following.extend(child)
            else:
                following.append(child)
        current = following
    return current


@dataclass(frozen=True, slots=True)
class SlicePlan:
    """How a sliced element's items are told apart, worked out once per rule: the slices'
    order, their discriminator tests and, when each is told by one string at the same plain
    path (extensions by ``url``, identifiers by ``system``: most slicing), a table from that
    string to the slice.  Why: a Patient's five sliced elements listed, tested and ordered
    their slices anew for each instance."""

    #: the slice names in definition order, and each one's position in it
    names: tuple[str, ...]
    order: dict[str, int]
    #: each slice's discriminator tests (:func:`slice_tests`)
    tests: dict[str, tuple[SliceTest, ...]]
    #: the slices that constrain none of the discriminators: no value can be assigned to them
    unconstrained: tuple[str, ...]
    #: (the plain path, string → slice name), or None when the slices are not told so
    index: tuple[tuple[str, ...], dict[str, str]] | None

    @staticmethod
    def of(rule: Rule) -> SlicePlan:
        discriminators = rule.slicing.discriminators if rule.slicing else ()
        names = tuple(rule.slices)
        tests = {name: slice_tests(part, discriminators) for name, part in rule.slices.items()}
        singles = [tests[name] for name in names if len(tests[name]) == 1]
        paths = {plan[0].plain for plan in singles}
        constraints = [plan[0].constraint for plan in singles]
        usable = (
            len(paths) == 1
            and None not in paths
            and len(constraints) == len(names)
            and all(type(c) is str for c in constraints)
            and len(set(constraints)) == len(constraints)
        )
        return SlicePlan(
            names,
            {name: position for position, name in enumerate(names)},
            tests,
            tuple(name for name in names if not tests[name]),
            (paths.pop(), dict(zip(constraints, names, strict=True))) if usable else None,
        )

    def indexed(self, value: Any) -> tuple[bool, str | None]:
        """(decided, the first slice in definition order whose string ``value`` carries, or
        None), by the table.  Undecided when there is no table, or the value does not reach
        the path plainly (a choice element may): the full tests answer then."""
        if self.index is None:
            return False, None
        path, table = self.index
        if len(path) == 1 and type(value) is dict:  # a url or a system, as most slicing: at once
            single = value.get(path[0])
            if type(single) is str:
                return True, table.get(single)
        found = plain_values(value, path)
        if found is None:
            return False, None
        matched = [table[v] for v in found if type(v) is str and v in table]
        if not matched:
            return True, None
        return True, matched[0] if len(matched) == 1 else min(matched, key=self.order.__getitem__)
