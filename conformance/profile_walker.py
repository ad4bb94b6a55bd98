"""Apply compiled profiles to instances.

The walk follows the rule tree, not the instance: only elements a profile says something
about are visited, so a profile costs in proportion to its size.  Every failed check appends
an issue with the FHIRPath of the offending element and the walk carries on.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import orjson

from conformance.bindings import check_binding, codings_of
from conformance.discriminators import SlicePlan, SliceTest, Typed, plain_values, typed_values
from conformance.fhirpath_scope import Scope
from conformance.issues import Issue, IssueList
from conformance.profile_compiler import CompiledProfile, ProfileCompiler, Rule, Targets, TypeProfiles
from conformance.structure import GUARDED, BaseModel, NodeModel, Slot, applies, report_invariant
from conformance.terminology import Terminology
from conformance.value_bounds import check_bounds, check_length


class Item:
    """One value of an element, with its primitive extensions and where it sits.  Its FHIRPath
    is put together only when something asks for it (an issue): most values of a valid instance
    never need theirs, and building each was a tenth of the profile walk.  A nested value sits
    within its parent :class:`Item`, whose path is then put together only if the child's is."""

    __slots__ = ("value", "underscore", "slot", "_within", "_label", "_index", "_path")

    def __init__(
        self,
        value: Any,
        underscore: dict[str, Any] | None,
        slot: Slot | None,
        within: str | Item,
        label: str | None = None,
        index: int | None = None,
    ) -> None:
        self.value = value
        self.underscore = underscore
        self.slot = slot
        self._within, self._label, self._index = within, label, index
        self._path: str | None = within if label is None and type(within) is str else None

    @property
    def path(self) -> str:
        if self._path is None:
            within = self._within
            label = f"{within if type(within) is str else within.path}.{self._label}"
            self._path = label if self._index is None else f"{label}[{self._index}]"
        return self._path

    @property
    def type(self) -> str:
        if isinstance(self.value, dict) and "resourceType" in self.value:
            return self.value["resourceType"]
        return self.slot.type if self.slot else ""


MEMO_LIMIT = 50_000
#: verdicts of referenced resources on a target profile, kept for the next reference to the same
#: object (ProfileWalker._check_target_profile).  Each holds its resource, so this bounds memory:
#: at 50,000 a worker taking Encounters for ever new Patients kept as many Patient dicts alive.
#: The same object comes back only from the instance being validated (a Bundle's entries, alive
#: anyway meanwhile) or from the gateway's archive resolver, which hands out the same object for
#: the 4,096 versions it keeps (``gateway/fhir/archive_references.KEPT``): a verdict beyond as
#: many names a resource no lookup returns again.  The oldest goes first
VERDICT_LIMIT = 4_096
#: verdicts of resources on a profile they were validated against themselves, kept for the
#: references that name them next (see ProfileWalker.validate); few, as each holds its resource
OWN_VERDICT_LIMIT = 256
#: value types a rule keeps a type plan for (values name their own resourceType: a hostile
#: instance may bring any number)
TYPE_PLAN_LIMIT = 64
#: the types every value is an instance of, as far as a rule's type list is concerned
GENERIC_TYPES = ("Resource", "DomainResource", "Element", "BackboneElement")
#: the version part of a versioned reference (``…/_history/2``)
_VERSION = re.compile(r"/_history/[^/]*$")
#: target types that admit a reference to any resource
_ANY_TYPE = frozenset({"Resource", "DomainResource"})


def matches_pattern(pattern: Any, value: Any) -> bool:
    """FHIR pattern semantics: every property of the pattern is present and matches; arrays in
    the pattern need each of their items matched by some item of the instance array."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches_pattern(v, value[k]) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(matches_pattern(p, v) for v in value) for p in pattern)
    return (
        pattern == value
        and type(pattern) is type(value)
        or (isinstance(pattern, (int, float)) and isinstance(value, (int, float)) and pattern == value)
    )


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


class ProfileWalker:
    def __init__(self, model: BaseModel, compiler: ProfileCompiler, terminology: Terminology) -> None:
        self.model = model
        self.compiler = compiler
        self.terminology = terminology
        #: (registry generation, profile, value) → the issues the value met: a definition added
        #: since (a value set a binding names) may judge the same value otherwise
        self._memo: dict[tuple[int, str, bytes], list[tuple[str, str, str, dict[str, Any]]]] = {}
        #: (registry generation, target, profile) → whether a referenced resource the instance
        #: holds meets it: a definition added since may judge the same resource otherwise
        self._verdicts: OrderedDict[tuple[int, int, str], tuple[dict[str, Any], bool]] = OrderedDict()
        #: (registry generation, resource, profile) → whether the resource met the profile when
        #: validated itself
        self._own_verdicts: dict[tuple[int, int, str], tuple[dict[str, Any], bool]] = {}
        #: (profile, value) pairs being applied: a profile whose element types name the profile
        #: itself would otherwise recurse on the same value forever
        self._active: set[tuple[str, int]] = set()

    # -- entry -------------------------------------------------------------------------
    def validate(self, url: str, value: Any, path: str, issues: IssueList, scope: Scope) -> None:
        """Apply a profile to a resource standing in its own scope (not a contained one, whose
        %rootResource is its container).  The verdict is kept for a while, as a reference
        naming that very resource with this target profile would ask it again: a transaction's
        Patient entry is the subject of the Encounters after it, and applying ``yy-patient``
        to it once more for the first of them was a twentieth of the Bundle's validation."""
        profile = self.compiler.get(url)
        if profile is None:
            issues.add("warning", "profile.unknown", path, url=url)
            return
        if profile.kind != "resource" or scope.root is not value or not isinstance(value, dict):
            self._apply_profile(profile, value, None, path, issues, scope)
            return
        trial = IssueList()
        self._apply_profile(profile, value, None, path, trial, scope)
        issues.extend(trial)
        if not any(issue.message_id == "invariant.budget-exceeded" for issue in trial):
            if len(self._own_verdicts) >= OWN_VERDICT_LIMIT:
                self._own_verdicts.clear()
            self._own_verdicts[(self.compiler.registry.generation, id(value), url)] = (value, not trial.has_errors)

    def _apply_profile(
        self,
        profile: CompiledProfile,
        value: Any,
        underscore: dict[str, Any] | None,
        path: str,
        issues: IssueList,
        scope: Scope,
    ) -> None:
        for message_id, params in profile.problems:
            issues.error(message_id, path, **params)
        actual = value.get("resourceType") if isinstance(value, dict) else None
        if profile.kind == "resource" and actual != profile.type:
            issues.error("profile.wrong-type", path, url=profile.url, expected=profile.type, actual=actual)
            return
        active = (profile.url, id(value))
        if active in self._active:
            return  # already being applied to this very value further up
        self._active.add(active)
        try:
            model = self.model.nodes.get(profile.type)
            item = Item(value, underscore, None, path)
            self._check_item(profile.root, item, model, issues, scope, profile.url)
            if profile.parent:
                parent = self.compiler.get(profile.parent)
                if parent is None:
                    issues.add("warning", "profile.unknown", path, url=profile.parent)
                else:
                    self._apply_profile(parent, value, underscore, path, issues, scope)
        finally:
            self._active.discard(active)

    # -- element values ----------------------------------------------------------------
    def _items(self, container: dict[str, Any], model: NodeModel | None, rule: Rule, within: Item) -> list[Item]:
        """Values of the element a rule names (a choice element's collect every typed key)."""
        stem = rule.choice_stem
        if stem is None and rule.underscored not in container:
            # the common case, quickly: a plain element without primitive extensions
            values = container.get(rule.name)
            if values is None:
                return []
            slot = model.slots.get(rule.name) if model else None
            if type(values) is list:
                return [Item(value, None, slot, within, rule.name, index) for index, value in enumerate(values)]
            return [Item(values, None, slot, within, rule.name)]
        if stem is None:
            keys = [rule.name]  # its primitive extensions are there, the value perhaps
        else:
            keys = [k for k in container if k.startswith(stem) and len(k) > len(stem) and k[len(stem)].isupper()]
        items: list[Item] = []
        for key in keys:
            slot = model.slots.get(key) if model else None
            values = container.get(key)
            extras = container.get("_" + key)
            if isinstance(values, list) or isinstance(extras, list):
                values = values if isinstance(values, list) else [None] * len(extras or [])
                extras_list = extras if isinstance(extras, list) else []
                for index, value in enumerate(values):
                    extra = extras_list[index] if index < len(extras_list) else None
                    extra = extra if isinstance(extra, dict) else None
                    items.append(Item(value, extra, slot, within, key, index))
            else:
                underscore = extras if isinstance(extras, dict) else None
                items.append(Item(values, underscore, slot, within, key))
        return items

    def _element(
        self,
        rule: Rule,
        items: list[Item],
        parent: Item,
        issues: IssueList,
        scope: Scope,
        profile_url: str,
    ) -> None:
        count = len(items)
        # only a finding needs the path: a must-support element that is present has none
        if (
            (rule.min and count < rule.min)
            or (rule.max is not None and count > rule.max)
            or (rule.must_support and not count)
        ):
            self._cardinality(rule, count, f"{parent.path}.{rule.name}", issues, profile_url)
        if rule.checks_value or rule.children:  # else the items were counted, and that is all
            for item in items:
                model = self._model_of(item) if rule.children or rule.invariants else None
                self._check_item(rule, item, model, issues, scope, profile_url)
        if rule.slicing is not None and rule.slices:
            self._slices(rule, items, parent, issues, scope, profile_url)

    @staticmethod
    def _cardinality(rule: Rule, count: int, where: str, issues: IssueList, profile_url: str) -> None:
        if rule.slice_name is None:
            if rule.min and count < rule.min:
                issues.error(
                    "profile.cardinality-min", where, path=rule.path, min=rule.min, count=count, profile=profile_url
                )
            if rule.max is not None and count > rule.max:
                issues.error(
                    "profile.cardinality-max", where, path=rule.path, max=rule.max, count=count, profile=profile_url
                )
            if rule.must_support and count == 0:
                issues.add("information", "profile.must-support-missing", where, path=rule.path)
        else:
            label = f"{rule.path}:{rule.slice_name}"
            if rule.min and count < rule.min:
                issues.error(
                    "profile.slice-cardinality-min",
                    where,
                    slice=rule.slice_name,
                    path=rule.path,
                    min=rule.min,
                    count=count,
                )
            if rule.max is not None and count > rule.max:
                issues.error(
                    "profile.slice-cardinality-max",
                    where,
                    slice=rule.slice_name,
                    path=rule.path,
                    max=rule.max,
                    count=count,
                )
            if rule.must_support and count == 0:
                issues.add("information", "profile.must-support-missing", where, path=label)

    def _model_of(self, item: Item) -> NodeModel | None:
        if isinstance(item.value, dict) and "resourceType" in item.value:
            return self.model.nodes.get(item.value["resourceType"])
        if item.slot is None:
            return None
        if item.slot.primitive:
            return self.model.nodes.get("Element")
        return self.model.nodes.get(item.slot.node or item.slot.type)

    def _check_item(
        self,
        rule: Rule,
        item: Item,
        model: NodeModel | None,
        issues: IssueList,
        scope: Scope,
        profile_url: str = "",
    ) -> None:
        value = item.value
        if model is not None and model.is_resource and value is not scope.resource and isinstance(value, dict):
            scope = _nested_scope(rule, value, scope)
        if rule.checks_value and not self._check_value(rule, item, model, issues, scope):
            return  # a value of a type the profile does not allow: its other rules are for other types
        if rule.children:
            # Malformed shapes were reported by the base walk; here they simply hold nothing.
            container = value if isinstance(value, dict) else item.underscore
            if not isinstance(container, dict):
                container = {}
            url = profile_url or rule.path
            for child in rule.children.values():
                if child.quiet_when_absent and not _has(container, child):
                    continue
                self._element(child, self._items(container, model, child, item), item, issues, scope, url)

    def _check_value(self, rule: Rule, item: Item, model: NodeModel | None, issues: IssueList, scope: Scope) -> bool:
        """The rule's constraints on the value itself (its children are the caller's); False when
        the value's type is not one the rule allows, and nothing else was checked: a valueString
        where bp demands a Quantity was also told of a Quantity pattern, a UCUM binding and four
        missing children at Observation.component[0].valueString.value and the like.  The value's
        path is put together only for a finding, or for a check that takes one."""
        value = item.value
        if rule.types and not self._check_types(rule, item, issues, scope):
            return False
        if rule.fixed is not None and value != rule.fixed:
            issues.error("profile.fixed-mismatch", item.path, expected=_short(rule.fixed), actual=_short(value))
        if rule.pattern is not None and not matches_pattern(rule.pattern, value):
            issues.error("profile.pattern-mismatch", item.path, expected=_short(rule.pattern), actual=_short(value))
        if rule.min_value is not None or rule.max_value is not None:
            check_bounds(value, rule.min_value, rule.max_value, item.path, issues)
        if rule.max_length is not None:
            check_length(value, rule.max_length, item.path, issues)
        if rule.regex is not None and isinstance(value, str):
            try:
                matched = rule.regex.fullmatch(value) is not None
            except UnicodeError:  # RE2 cannot encode a lone surrogate: it does not match
                matched = False
            if not matched:
                issues.error("profile.regex-mismatch", item.path, value=_short(value), regex=rule.regex_source)
        if rule.binding is not None and value is not None:
            strength, value_set = rule.binding
            check_binding(self.terminology, value, item.type, value_set, strength, item.path, issues)
        for invariant in rule.invariants:
            if invariant.key in GUARDED and not applies(invariant.key, value, scope):
                continue
            base = (item.slot.node or item.slot.type) if item.slot else rule.path
            verdict = invariant.check(value, scope, item.type if model and model.is_resource else base)
            if verdict is not True:  # a verdict that holds reports nothing, and needs no path
                report_invariant(invariant, verdict, item.path, issues)
        return True

    def _check_types(self, rule: Rule, item: Item, issues: IssueList, scope: Scope) -> bool:
        """Type, type profiles and target profiles; False when the type itself is not allowed."""
        actual = item.type
        allowed, profiles, targets = self._type_plan(rule, actual)
        if not allowed:
            codes = ", ".join(t.code for t in rule.types)
            issues.error("profile.type-not-allowed", item.path, actual=actual, allowed=codes)
            return False
        if profiles:
            self._conforms_to_one(profiles, item, issues, scope)
        if targets is not None and isinstance(item.value, dict):
            self._check_target(targets, item, issues, scope)
        return True

    def _conforms_to_one(self, profiles: TypeProfiles, item: Item, issues: IssueList, scope: Scope) -> None:
        attempts: list[IssueList] = []
        for url, profile in profiles:
            if profile is None:
                trial = IssueList()
                trial.add("warning", "profile.unknown", item.path, url=url)
            else:
                trial = self._datatype_verdict(profile, item, scope)
            if not trial.has_errors:
                issues.extend(trial)
                return
            attempts.append(trial)
        issues.extend(min(attempts, key=len))

    def _datatype_verdict(self, profile: CompiledProfile, item: Item, scope: Scope) -> IssueList:
        """Issues of a value against a datatype profile (an extension, say), memoised by value:
        the same ethnicity or sex code arrives on thousands of records."""
        trial = IssueList()
        memoisable = profile.kind != "resource" and profile.pure and profile.parent is None
        key = None
        if memoisable and isinstance(item.value, dict) and item.underscore is None:
            try:
                value = orjson.dumps(item.value, option=orjson.OPT_SORT_KEYS)
                key = (self.compiler.registry.generation, profile.url, value)
            except TypeError:  # orjson refuses e.g. integers over 64 bits: just do not memoise
                key = None
            found = self._memo.get(key) if key is not None else None
            if found is not None:
                if found:
                    trial.extend(Issue(s, m, item.path + suffix, params) for s, m, suffix, params in found)
                return trial
        self._apply_profile(profile, item.value, item.underscore, item.path, trial, scope)
        if key is not None and not any(i.message_id == "invariant.budget-exceeded" for i in trial):
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            cut = len(item.path)
            self._memo[key] = [(i.severity, i.message_id, i.expression[cut:], i.params) for i in trial]
        return trial

    def _check_target(self, targets: Targets, item: Item, issues: IssueList, scope: Scope) -> None:
        reference = item.value.get("reference")
        target_type = item.value.get("type")
        resolved = scope.resolve(reference) if isinstance(reference, str) else None
        if resolved is not None:
            target_type = resolved.get("resourceType")
        elif isinstance(reference, str) and not target_type:
            # Type/id, or a version of it (Type/id/_history/2, references.html): the type is
            # the segment before the id either way
            if reference.startswith(("urn:", "#")):
                return  # unresolved: the business rules report it
            written = reference.split("?", 1)[0]
            if "/_history/" in written:  # the pattern cannot match otherwise, and costs more than the rest
                written = _VERSION.sub("", written)
            head = written.split("/")
            target_type = head[-2] if len(head) >= 2 else None
        if not isinstance(target_type, str) or not target_type:
            return  # none, or not a type name (a resourceType the structure walk refused)
        allowed = targets.types
        if target_type not in allowed and not allowed & _ANY_TYPE:
            issues.error("profile.reference-target", item.path, actual=target_type, allowed=", ".join(sorted(allowed)))
            return
        if isinstance(resolved, dict):
            self._check_target_profile(targets, resolved, item, issues, scope)

    def _check_target_profile(
        self, targets: Targets, target: dict[str, Any], item: Item, issues: IssueList, scope: Scope
    ) -> None:
        """A target the instance itself holds (a Bundle entry, a contained resource) must meet one
        of the reference's target profiles, as the reference validator requires; only its
        verdict counts here (its own issues are reported where it stands)."""
        kind = target.get("resourceType")
        if kind in targets.plain or "Resource" in targets.plain:
            return  # the plain resource type is allowed too: any such resource will do
        constraining = [
            (url, profile) for url, profile in targets.profiles if profile is not None and profile.type == kind
        ]
        if not constraining:
            return
        for url, profile in constraining:
            key = (self.compiler.registry.generation, id(target), url)
            remembered = self._verdicts.get(key) or self._own_verdicts.get(key)
            if remembered is not None and remembered[0] is target:
                if remembered[1]:
                    return
                continue
            if len(self._verdicts) >= VERDICT_LIMIT:  # the oldest goes: its target is likeliest gone
                _forget_oldest(self._verdicts)
            self._verdicts[key] = (target, True)  # a reference cycle assumes conformance
            trial = IssueList()
            self._apply_profile(profile, target, None, item.path, trial, Scope(target, target, scope.bundle))
            self._verdicts[key] = (target, not trial.has_errors)
            if not trial.has_errors:
                return
        urls = ", ".join(url for url, _ in constraining)
        issues.error("profile.reference-target-profile", item.path, type=kind, profiles=urls)

    def _type_plan(self, rule: Rule, actual: str) -> tuple[bool, TypeProfiles, Targets | None]:
        """(whether a value of type ``actual`` is allowed, the type profiles, compiled, and the
        target profiles its allowed types name), worked out once per rule and type: every value
        a rule constrains meets its types, and three lists were built anew for each.  The
        compiled profiles are held as :class:`Targets` holds its own: new definitions make
        every profile compiled anew, this rule and its plans with it."""
        plans = rule.type_plans
        if plans is None:
            plans = rule.type_plans = {}
        plan = plans.get(actual)
        if plan is None:
            allowed = [t for t in rule.types if t.code == actual or t.code in GENERIC_TYPES]
            targets = tuple(p for t in allowed for p in t.targets)
            plan = (
                bool(allowed) or not actual,
                tuple((p, self.compiler.get(p)) for t in allowed for p in t.profiles),
                Targets.of(targets, self.compiler) if targets else None,
            )
            if len(plans) < TYPE_PLAN_LIMIT:
                plans[actual] = plan
        return plan

    # -- slicing -----------------------------------------------------------------------
    def _slices(
        self,
        rule: Rule,
        items: list[Item],
        parent: Item,
        issues: IssueList,
        scope: Scope,
        profile_url: str,
    ) -> None:
        slicing = rule.slicing
        plan = rule.slice_plan
        if plan is None:
            plan = rule.slice_plan = SlicePlan.of(rule)
        for name in plan.unconstrained if items else ():
            detail = "constrains none of the slicing discriminators, so no value can be assigned to it"
            where = f"{parent.path}.{rule.name}"
            issues.error("definition.invalid", where, profile=profile_url, path=f"{rule.path}:{name}", detail=detail)
        #: the items of each slice that has any
        assigned: dict[str, list[Item]] = {}
        last_slice = -1
        seen_unmatched = False
        for item in items:
            decided, match = plan.indexed(item.value)
            if not decided:
                match = next((n for n in plan.names if self._matches(plan.tests[n], item, scope)), None)
            if match is None:
                seen_unmatched = True
                if slicing.rules == "closed":
                    issues.error("profile.slice-unmatched-closed", item.path, path=rule.path)
                continue
            if seen_unmatched and slicing.rules == "openAtEnd":
                issues.error("profile.slice-unmatched-open-at-end", item.path, path=rule.path)
            position = plan.order[match]
            if slicing.ordered and position < last_slice:
                issues.error("profile.slice-order", item.path, slice=match, path=rule.path)
            last_slice = max(last_slice, position)
            assigned.setdefault(match, []).append(item)
        for name, part in rule.slices.items():
            if name in assigned or not part.quiet_when_absent:
                self._element(part, assigned.get(name, []), parent, issues, scope, profile_url)

    def _matches(self, plan: tuple[SliceTest, ...], item: Item, scope: Scope) -> bool:
        """Whether an item belongs to a slice.  As in the reference validator, a discriminator
        the slice does not constrain (no fixed value, pattern, binding, type, profile or
        existence rule at its path) is left out of ``plan``; a slice must constrain one."""
        if not plan:
            return False
        start: Typed | None = None
        for test in plan:
            found = plain_values(item.value, test.plain) if test.plain is not None else None
            if found is not None:
                if not any(matches_pattern(test.constraint, v) for v in found):
                    return False
                continue
            if start is None:
                start = Typed(item.value, item.type, self._model_of(item))
            if not self._passes(test, start, scope):
                return False
        return True

    def _passes(self, test: SliceTest, start: Typed, scope: Scope) -> bool:
        values = typed_values(self.model, start, test.path, scope)
        constraint = test.constraint
        if constraint == "absent":
            return not values
        if test.kind == "exists":
            return bool(values)
        if test.kind == "type":
            return any(v.type in test.type_codes for v in values)
        if test.kind == "profile":
            return self._conforms_to_any(test, values, scope)
        if isinstance(constraint, tuple):  # a required binding: membership of the value set
            expansion = self.terminology.expand(constraint[1])
            return expansion is not None and any(
                self.terminology.contains(expansion, s, c) for v in values for s, c in codings_of(v.value, v.type)
            )
        return any(matches_pattern(constraint, v.value) for v in values)

    def _conforms_to_any(self, test: SliceTest, values: list[Typed], scope: Scope) -> bool:
        referenced = test.path == "resolve()" or test.path.endswith(".resolve()")
        urls = [
            p for t in (test.target.types if test.target else ()) for p in (t.targets if referenced else t.profiles)
        ]
        for url in urls:
            profile = self.compiler.get(url)
            if profile is None:
                continue
            for value in values:
                trial = IssueList()
                self._apply_profile(profile, value.value, None, "", trial, scope)
                if not trial.has_errors:
                    return True
        return False


def _nested_scope(rule: Rule, resource: dict[str, Any], scope: Scope) -> Scope:
    """The FHIRPath scope of a resource a profile rule reaches inside the one it is applied to
    (a Bundle profile's ``entry.resource``, a ``contained`` rule), as the base walk gives it."""
    if rule.name == "contained":
        return scope.contained(resource)
    if rule.path == "Bundle.entry.resource":
        return scope.entry(resource, None)
    return Scope.of(resource)


def _has(container: dict[str, Any], rule: Rule) -> bool:
    stem = rule.choice_stem
    if stem is not None:
        return any(k.startswith(stem) for k in container)
    return rule.name in container or rule.underscored in container


def _forget_oldest(memo: OrderedDict[Any, Any]) -> None:
    """Drop the entry put in first, at once.  Why an OrderedDict: a dict finds its first entry
    by scanning past the slots its earlier removals left, a scan that grew with every eviction
    until the next resize (5.6 against 0.8 µs an eviction of 4,096 kept, on each reference to a
    Patient not met before once a worker had met as many).  The validator is shared by a
    worker's threads: another may have emptied it meanwhile (harmless here)."""
    try:
        memo.popitem(last=False)
    except KeyError:  # emptied meanwhile
        pass
