"""Compile StructureDefinitions into rule trees, once per canonical URL.

A profile can only narrow its base, so a rule tree needs only what the profile says: the
differential when there is one, otherwise the snapshot minus what it inherited.  The base
model walk already enforces everything R4 itself says; the rule tree adds the profile's
cardinalities, types and target profiles, fixed and pattern values, bindings, invariants,
must-support flags and slicing.  Trees are keyed by element name and slice name, mirroring
the element ids (``Patient.identifier:idCard.system``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conformance.element_paths import unknown_step
from conformance.invariants import Invariant, compile_invariant
from conformance.limits import DEFAULT_LIMITS, Limits
from conformance.regexes import Pattern, RegexError, compile_linear
from conformance.structure import NATIVE_INVARIANTS, BaseModel
from profiles.registry import Registry

if TYPE_CHECKING:  # discriminators imports Rule
    from conformance.discriminators import SlicePlan

#: (message id, params) of something wrong in a definition, reported wherever it is applied
Problem = tuple[str, dict[str, Any]]

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
REGEX_EXTENSION = "http://hl7.org/fhir/StructureDefinition/regex"
#: the value set R4 binds ElementDefinition.slicing.discriminator.type to (required)
DISCRIMINATOR_TYPES = "http://hl7.org/fhir/ValueSet/discriminator-type"


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

    #: minValue[x] / maxValue[x] as (type, value), e.g. ("Date", "1900-01-01"); maxLength
    min_value: tuple[str, Any] | None = None
    max_value: tuple[str, Any] | None = None
    max_length: int | None = None
    #: the ElementDefinition regex extension (compiled with RE2), applied to primitive values
    regex: Pattern | None = None
    regex_source: str = ""
    #: for a sliced element: how its items are told apart (discriminators.SlicePlan), worked
    #: out on first use (see ProfileWalker._slices)
    slice_plan: SlicePlan | None = None
    #: value type → (whether the rule's types allow it, their type profiles, their target
    #: profiles), worked out on first use (see ProfileWalker._type_plan)
    type_plans: dict[str, tuple[bool, TypeProfiles, Targets | None]] | None = None
    #: nothing to report when the element is absent (no minimum, no must-support, no slice
    #: with either); set once compiled, lets the walk skip absent elements
    quiet_when_absent: bool = False
    #: the value itself is constrained (types, fixed, pattern, bounds, length, regex, binding
    #: or invariants), not only its children; set once compiled
    checks_value: bool = True
    #: the key of the element's primitive extensions (``_birthDate``), and for a choice element
    #: (``value[x]``) the stem its typed keys start with (``value``), None for any other: worked
    #: out once here, as the walk asks both for every element of every value it visits
    underscored: str = field(init=False)
    choice_stem: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.underscored = "_" + self.name
        self.choice_stem = self.name[:-3] if self.name.endswith("[x]") else None

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
    #: nothing reads %resource & co. or resolves a reference (an invariant's resolve(), a target
    #: profile, a resolve() discriminator), so a datatype's verdict depends on its value alone
    pure: bool = True
    #: what is wrong with the definition itself; each is reported as an error where it applies
    problems: tuple[Problem, ...] = ()


#: a rule's type profiles for one value type: (url, its compiled profile, or None when the
#: registry has no such definition)
TypeProfiles = tuple[tuple[str, CompiledProfile | None], ...]


@dataclass(frozen=True, slots=True)
class Targets:
    """The target profiles a rule allows a reference of, looked up once: each of the
    benchmark's Encounters has three references, and each looked its profiles up twice."""

    #: (url, its compiled profile, or None when the registry has no such definition)
    profiles: tuple[tuple[str, CompiledProfile | None], ...]
    #: the resource types they allow: each profile's type, else the URL's last segment
    types: frozenset[str]
    #: the last segments of the URLs without a definition (``Resource``, a core type's URL)
    plain: frozenset[str]

    @staticmethod
    def of(urls: tuple[str, ...], compiler: ProfileCompiler) -> Targets:
        profiles = tuple((url, compiler.get(url)) for url in urls)
        plain = frozenset(url.rsplit("/", 1)[-1] for url, profile in profiles if profile is None)
        return Targets(profiles, plain | {profile.type for _, profile in profiles if profile is not None}, plain)


def _version_held(url: str, sd: dict[str, Any]) -> bool:
    """Whether ``sd`` is the version a ``url|version`` canonical names.  The registry answers
    such a URL with the version it holds, so ``meta.profile`` ``yy-patient|9.9`` was judged by
    0.1.0's rules without a word; a definition that states no version (R4's own constraint
    profiles) is taken as the one named."""
    _, bar, version = url.partition("|")
    held = sd.get("version")
    return not bar or not isinstance(held, str) or held == version


def _steps(element: dict[str, Any]) -> list[tuple[str, str | None]]:
    """Split an element id into (name, slice) steps; older SDs without ids use path+sliceName."""
    element_id = element.get("id")
    if not isinstance(element_id, str) or not element_id:
        path = element.get("path")
        if not isinstance(path, str) or not path:
            raise _Bad("element", "has neither id nor path")
        names = path.split(".")
        steps: list[tuple[str, str | None]] = [(n, None) for n in names]
        if isinstance(element.get("sliceName"), str) and element["sliceName"]:
            steps[-1] = (names[-1], element["sliceName"])
        return steps
    steps = []
    for part in element_id.split("."):
        name, _, slice_name = part.partition(":")
        steps.append((name, slice_name or None))
    return steps


class _Bad(Exception):  # noqa: N818 - internal signal, always turned into a Problem
    """One part of one element is wrong; the rest of the definition still applies."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(detail)
        self.path, self.detail = path, detail


def _rules(rule: Rule) -> list[Rule]:
    found = [rule]
    for child in [*rule.children.values(), *rule.slices.values()]:
        found.extend(_rules(child))
    return found


def _typed_value(element: dict[str, Any], prefix: str) -> Any:
    found = _typed_item(element, prefix)
    return found[1] if found is not None else None


def _typed_item(element: dict[str, Any], prefix: str) -> tuple[str, Any] | None:
    """(type, value) of a choice element such as ``minValueDate``: ("Date", "1900-01-01")."""
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return key[len(prefix) :], value
    return None


#: compiled profiles kept per compiler (the package has a few dozen; --ig folders a few hundred)
MAX_COMPILED = 1024


class ProfileCompiler:
    """Compiles StructureDefinitions once; a wrong definition yields problems, never a traceback."""

    def __init__(self, registry: Registry, limits: Limits = DEFAULT_LIMITS, model: BaseModel | None = None) -> None:
        self.registry = registry
        self.limits = limits
        #: the R4 base model every element path is checked against
        self.model = model or BaseModel(registry)
        self._cache: OrderedDict[str, CompiledProfile | None] = OrderedDict()
        self._generation = registry.generation
        #: the discriminator types a slicing may name, read from the R4 base value set
        self._discriminator_types = tuple(code for _, code in registry.base_valuesets[DISCRIMINATOR_TYPES] or ())

    def get(self, url: str) -> CompiledProfile | None:
        """The compiled profile (None if the registry has no such StructureDefinition).

        The cache holds the :data:`MAX_COMPILED` most recently used profiles, so instances
        naming ever new profile URLs cannot grow it without bound, and starts afresh when
        definitions are added to the registry (``--ig``, a runtime addition): a profile
        compiled before may resolve its base or extensions differently now."""
        if not isinstance(url, str):
            return None
        if self._generation != self.registry.generation:
            self._cache.clear()
            self._generation = self.registry.generation
        if url in self._cache:
            self._cache.move_to_end(url)
            return self._cache[url]
        sd = self.registry.get(url)
        ok = isinstance(sd, dict) and sd.get("resourceType") == "StructureDefinition" and _version_held(url, sd)
        compiled = self.compile(sd) if ok else None
        self._cache[url] = compiled
        if len(self._cache) > MAX_COMPILED:
            self._cache.popitem(last=False)
        return compiled

    def compile(self, sd: dict[str, Any]) -> CompiledProfile:
        url = sd.get("url") if isinstance(sd.get("url"), str) else "(no url)"
        problems: list[Problem] = []
        type_name = sd.get("type")
        if not isinstance(type_name, str) or not type_name:
            problems.append(_invalid(url, "StructureDefinition.type", "is missing"))
            type_name = "Resource"
        root = Rule(path=type_name, name=type_name)
        from_snapshot = "differential" not in sd
        container = sd.get("snapshot") if from_snapshot else sd.get("differential")
        elements = container.get("element") if isinstance(container, dict) else None
        if not isinstance(elements, list):
            if container is not None or not from_snapshot:
                problems.append(_invalid(url, "differential" if not from_snapshot else "snapshot", "has no elements"))
            elements = []
        for index, element in enumerate(elements):
            where = f"element[{index}]"
            try:
                if not isinstance(element, dict):
                    raise _Bad(where, "is not an object")
                steps = _steps(element)
                where = str(element.get("id") or element.get("path"))
                missing = steps[0][0] if steps[0][0] != type_name else self._unknown(type_name, steps[1:])
                if missing is not None:
                    params = {"profile": url, "path": where, "type": type_name, "step": missing}
                    problems.append(("definition.unknown-path", params))
                    continue  # a phantom rule would constrain what no instance can contain
                rule = root
                for name, slice_name in steps[1:]:
                    rule = rule.child(name)
                    if slice_name:
                        rule = rule.slice(slice_name)
                self._apply(rule, element, url, from_snapshot, problems)
            except _Bad as bad:
                problems.append(_invalid(url, bad.path if bad.path != "element" else where, bad.detail))
        base = sd.get("baseDefinition") if isinstance(sd.get("baseDefinition"), str) else ""
        parent = None if base.startswith(CORE_PREFIX) and base[len(CORE_PREFIX) :] in self.registry.base_types else base
        if parent:
            cycle = self._cycle(url, parent)
            if cycle:
                problems.append(("definition.base-cycle", {"profile": url, "chain": " → ".join(cycle)}))
                parent = None
        rules = _rules(root)
        for rule in rules:
            rule.quiet_when_absent = not (
                rule.min or rule.must_support or any(s.min or s.must_support for s in rule.slices.values())
            )
            rule.checks_value = bool(
                rule.types
                or rule.fixed is not None
                or rule.pattern is not None
                or rule.min_value is not None
                or rule.max_value is not None
                or rule.max_length is not None
                or rule.regex is not None
                or rule.binding is not None
                or rule.invariants
            )
        pure = all(_context_free(rule) for rule in rules)
        kind = sd.get("kind") if isinstance(sd.get("kind"), str) else "resource"
        return CompiledProfile(url, type_name, kind, root, parent or None, pure, tuple(problems))

    def _unknown(self, type_name: str, steps: list[tuple[str, str | None]]) -> str | None:
        return unknown_step(self.model, type_name, [name for name, _ in steps])

    def _cycle(self, url: str, parent: str) -> list[str]:
        """The baseDefinition chain from ``url`` when it comes back to a profile already on it."""
        chain = [url]
        current: str | None = parent
        while current:
            if current in chain:
                return [*chain, current]
            chain.append(current)
            sd = self.registry.get(current)
            base = sd.get("baseDefinition") if isinstance(sd, dict) else None
            current = base if isinstance(base, str) and not base.startswith(CORE_PREFIX) else None
        return []

    def _apply(
        self, rule: Rule, element: dict[str, Any], url: str, from_snapshot: bool, problems: list[Problem]
    ) -> None:
        where = str(element.get("id") or element.get("path"))
        inherited = element.get("base") if isinstance(element.get("base"), dict) else {}
        if "min" in element and not (from_snapshot and element["min"] == inherited.get("min")):
            minimum = element["min"]
            if type(minimum) is int and minimum >= 0:
                rule.min = minimum
            else:
                problems.append(_invalid(url, f"{where}.min", f"{_show(minimum)} is not a non-negative integer"))
        if "max" in element and not (from_snapshot and element["max"] == inherited.get("max")):
            maximum = element["max"]
            if maximum == "*":
                rule.max = None
            elif isinstance(maximum, str) and maximum.isascii() and maximum.isdigit() and len(maximum) < 10:
                rule.max = int(maximum)
            else:
                problems.append(_invalid(url, f"{where}.max", f"{_show(maximum)} is neither an integer nor *"))
        if "type" in element:
            types = element["type"]
            if isinstance(types, list) and all(isinstance(t, dict) and isinstance(t.get("code"), str) for t in types):
                rule.types = tuple(
                    TypeRule(t["code"], _strings(t.get("profile")), _strings(t.get("targetProfile"))) for t in types
                )
            else:
                problems.append(_invalid(url, f"{where}.type", "must be a list of types, each with a code"))
        rule.min_value = _typed_item(element, "minValue")
        rule.max_value = _typed_item(element, "maxValue")
        if "maxLength" in element:
            length = element["maxLength"]
            if type(length) is int and length > 0:
                rule.max_length = length
            else:
                problems.append(_invalid(url, f"{where}.maxLength", f"{_show(length)} is not a positive integer"))
        rule.fixed = _typed_value(element, "fixed")
        rule.pattern = _typed_value(element, "pattern")
        binding = element.get("binding")
        if isinstance(binding, dict) and binding.get("valueSet"):
            strength = binding.get("strength")
            if strength in ("required", "extensible", "preferred", "example") and isinstance(binding["valueSet"], str):
                rule.binding = (strength, binding["valueSet"])
            else:
                problems.append(
                    _invalid(url, f"{where}.binding", f"strength {_show(strength)} is not a binding strength")
                )
        elif binding is not None and not isinstance(binding, dict):
            problems.append(_invalid(url, f"{where}.binding", "is not an object"))
        rule.invariants = self._invariants(element, url, where, problems)
        rule.must_support = element.get("mustSupport") is True
        for extension in _list(element.get("extension")):
            if isinstance(extension, dict) and extension.get("url") == REGEX_EXTENSION:
                source = extension.get("valueString")
                try:
                    rule.regex = compile_linear(source, max_length=self.limits.max_regex_length)
                    rule.regex_source = source
                except RegexError as exc:
                    params = {"profile": url, "path": where, "detail": str(exc)[:200]}
                    problems.append(("definition.regex-invalid", params))
        if "slicing" in element:
            slicing = element["slicing"]
            discriminators = _list(slicing.get("discriminator")) if isinstance(slicing, dict) else None
            if discriminators is None or not all(
                isinstance(d, dict) and isinstance(d.get("type"), str) and isinstance(d.get("path"), str)
                for d in discriminators
            ):
                problems.append(_invalid(url, f"{where}.slicing", "discriminators need a type and a path"))
            elif unknown := [d["type"] for d in discriminators if d["type"] not in self._discriminator_types]:
                # a misspelt type told nothing apart: every slice then failed as constraining
                # none of the discriminators, with no word of the typo
                detail = f"has discriminator type '{unknown[0]}', not one of {', '.join(self._discriminator_types)}"
                problems.append(_invalid(url, f"{where}.slicing", detail))
            else:
                rules = slicing.get("rules", "open")
                rule.slicing = Slicing(
                    tuple((d["type"], d["path"]) for d in discriminators),
                    rules if rules in ("open", "closed", "openAtEnd") else "open",
                    slicing.get("ordered") is True,
                )

    @staticmethod
    def _invariants(element: dict[str, Any], url: str, where: str, problems: list[Problem]) -> tuple[Invariant, ...]:
        found = []
        for constraint in _list(element.get("constraint")):
            if not isinstance(constraint, dict) or "expression" not in constraint:
                continue
            key = constraint.get("key")
            if not isinstance(key, str) or key in NATIVE_INVARIANTS or key.startswith(("ele-", "ext-")):
                if not isinstance(key, str):
                    problems.append(_invalid(url, f"{where}.constraint", "has no key"))
                continue
            if constraint.get("source", url) != url:
                continue
            severity, expression = constraint.get("severity"), constraint.get("expression")
            if severity not in ("error", "warning") or not isinstance(expression, str):
                detail = f"severity {_show(severity)} / expression must be error|warning and a string"
                problems.append(_invalid(url, f"{where}.constraint {key}", detail))
                continue
            human = constraint.get("human") if isinstance(constraint.get("human"), str) else key
            english, chinese = (translation(constraint.get("_human"), lang) for lang in ("en", "zh-CN"))
            invariant = compile_invariant(
                key, severity, expression, english or human, empty_fails=True, human_zh=chinese or human
            )
            problem = invariant.definition_problem()
            if problem is not None:
                # an error on the definition wherever it is applied, and, kept in the rule, a
                # not-evaluable warning on each element it could not check
                problems.append((problem[0], {"profile": url, "key": key, "path": where, "detail": problem[1]}))
            found.append(invariant)
        return tuple(found)


def _invalid(url: str, path: str, detail: str) -> Problem:
    return ("definition.invalid", {"profile": url, "path": path, "detail": detail})


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: the core extension a string's translations are given by (on its ``_element``)
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def translation(element: Any, lang: str) -> str | None:
    """The ``lang`` translation of a string, from the translation extensions of its
    ``_element`` (a package written in Chinese gives its constraints' English this way);
    ``zh-CN`` is found under ``zh`` too."""
    for extension in _list(element.get("extension")) if isinstance(element, dict) else ():
        if not isinstance(extension, dict) or extension.get("url") != TRANSLATION:
            continue
        parts = {part.get("url"): part for part in _list(extension.get("extension")) if isinstance(part, dict)}
        code = parts.get("lang", {}).get("valueCode")
        content = parts.get("content", {}).get("valueString")
        if isinstance(code, str) and isinstance(content, str) and (code == lang or code == lang.split("-")[0]):
            return content
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in _list(value) if isinstance(v, str))


def _context_free(rule: Rule) -> bool:
    """Whether the rule's verdict on a value depends on that value alone."""
    return (
        all("%" not in i.expression and "resolve(" not in i.expression for i in rule.invariants)
        and not any(t.targets for t in rule.types)
        and not (rule.slicing and any("resolve()" in path for _, path in rule.slicing.discriminators))
    )
