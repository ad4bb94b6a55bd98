"""Structural validation against the FHIR R4 base model.

The derived base model (``profiles/base/r4-types.json``) is compiled once into one
:class:`NodeModel` per resource, datatype and backbone element: a table from JSON key to
:class:`Slot`.  Walking an instance is then a dict lookup per key — unknown elements, array
shape, primitive formats, required elements, choice types, ele-1/ext-1 emptiness, required
bindings, codes of loaded code systems and the core FHIRPath invariants.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from conformance.attachments import check_attachment
from conformance.bindings import check_binding
from conformance.core_extensions import ExtensionChecker
from conformance.external_codes import check_quantity_code
from conformance.fhirpath_scope import Scope
from conformance.invariants import OVER_BUDGET, Invariant, compile_invariant, current_budget
from conformance.issues import Issue, IssueList
from conformance.languages import language_checker
from conformance.narrative import check_narrative
from conformance.periods import check_period
from conformance.primitives import ADVISORY, Checker, make_checker
from conformance.reference_targets import check_target_type
from conformance.terminology import Terminology
from profiles.registry import Registry

# Invariants enforced natively: ele-1/ext-1 by the walk itself, per-1 by check_period, which
# also compares partial dates that FHIRPath leaves undecided, txt-1/txt-2 by check_narrative.
# ref-1 and dom-3 are native too: in FHIRPath each local reference lists every contained id and
# each contained resource scans every descendant, so 2,000 contained resources took 38 s; here the
# contained ids and the local references of a resource are collected once (see _Container).
NATIVE_INVARIANTS = frozenset({"per-1", "txt-1", "txt-2", "ref-1", "dom-3"})
# An invariant of the form "X.not() or …" holds whenever X is false; these guards say when X
# can be true, so the FHIRPath engine only runs on the rare values that need it.
GUARDS = {
    "ref-1": lambda node: isinstance(node, dict) and str(node.get("reference", "")).startswith("#"),
    "dom-3": lambda node: isinstance(node, dict) and "contained" in node,
}
#: Invariants that apply to some resources only.  dom-6 (narrative) is about the resource a
#: reader receives, not the resources contained in it: the reference validator evaluates it as
#: ``(%rootResource != $this) or text.`div`.exists()``; here that is a check of identity.
SCOPE_GUARDS = {"dom-6": lambda node, scope: node is scope.root}
#: the keys of either kind of guard: any other invariant applies everywhere, without asking
GUARDED = frozenset(GUARDS) | frozenset(SCOPE_GUARDS)


@dataclass(slots=True)
class Slot:
    name: str
    key: str
    type: str
    is_list: bool
    primitive: bool
    underscore: bool
    node: str | None = None
    #: the element's name in StructureDefinitions: "value[x]" for valueQuantity, else the key
    element: str = ""
    min: int = 0
    binding: str | None = None
    constraints: tuple[Invariant, ...] = ()
    # resolved once the whole model is compiled, so the walk does no lookups per value
    checker: Checker | None = None
    child: NodeModel | None = None
    is_resource: bool = False
    #: for a Reference: the resource types it may name (None: any)
    targets: frozenset[str] | None = None
    #: an ``extension`` / ``modifierExtension`` list, whose items are looked up by URL
    is_extension: bool = False
    #: a primitive whose format is all there is to check (no binding, no invariant): the walk
    #: checks it inline and puts its FHIRPath together only for a problem.  Why: most values
    #: of an instance are such, and the call and the path of each were a twentieth of the walk
    bare: bool = False
    #: a complex element whose node walk is all there is to check (no resource, extension,
    #: binding, invariant or reference target): the walk goes straight into its node
    plain: bool = False


@dataclass(slots=True)
class NodeModel:
    name: str
    is_resource: bool = False
    abstract: bool = False
    slots: dict[str, Slot] = field(default_factory=dict)
    required: list[tuple[str, int, frozenset[str]]] = field(default_factory=list)
    choices: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    constraints: tuple[Invariant, ...] = ()
    #: checks particular to a datatype (Period order, Narrative XHTML, Coding codes, ext-1)
    special: str | None = None


with (Path(__file__).parent / "invariants.zh-CN.json").open(encoding="utf-8") as _handle:
    CORE_INVARIANTS_ZH: dict[str, str] = json.load(_handle)

#: datatype → the check particular to it (R4's specialisations of Quantity are checked as it is)
SPECIAL_TYPES = {
    **{name: name for name in ("Extension", "Period", "Narrative", "Coding", "Reference", "Attachment")},
    **dict.fromkeys(("Quantity", "Age", "Count", "Distance", "Duration"), "Quantity"),
}
NATIVE_HUMAN = {
    "ref-1": "SHALL have a contained resource if a local reference is provided",
    "dom-3": "If the resource is contained in another resource, it SHALL be referred to from elsewhere in the "
    "resource or SHALL refer to the containing resource",
}


class _Container:
    """A resource that may hold contained resources, with its local-reference facts computed once."""

    __slots__ = ("resource", "_ids")

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self._ids: frozenset[str] | None = None

    @property
    def contained_ids(self) -> frozenset[str]:
        if self._ids is None:
            contained = self.resource.get("contained")
            items = contained if isinstance(contained, list) else []
            self._ids = frozenset(c["id"] for c in items if isinstance(c, dict) and isinstance(c.get("id"), str))
        return self._ids


def _unique_contained_ids(resource: dict[str, Any], path: str, issues: IssueList) -> None:
    """Each contained resource's id is unique in its container: "#o" must name one resource
    (the reference validator reports the second of two as a duplicate id)."""
    contained = resource.get("contained")
    seen: set[str] = set()
    for index, item in enumerate(contained if isinstance(contained, list) else ()):
        local_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(local_id, str):
            if local_id in seen:
                issues.error("structure.duplicate-contained-id", f"{path}.contained[{index}].id", id=local_id)
            seen.add(local_id)


def _local_strings(node: Any) -> set[str]:
    """Every string starting with '#' below ``node`` (references, canonicals, uris), iteratively."""
    found: set[str] = set()
    stack = [node]
    while stack:
        value = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, str):
                if child.startswith("#"):
                    found.add(child)
            elif isinstance(child, (dict, list)):
                stack.append(child)
    return found


def _targets(type_entry: dict[str, Any]) -> frozenset[str] | None:
    """The resource types a Reference may name; None for any (no list, or Resource)."""
    targets = type_entry.get("targets")
    if type_entry["code"] != "Reference" or not targets or "Resource" in targets:
        return None
    return frozenset(targets)


def _invariants(raw: list[list[str]]) -> tuple[Invariant, ...]:
    return tuple(compile_invariant(*item) for item in raw if item[0] not in NATIVE_INVARIANTS)


#: datatypes whose ``language`` code, as every resource's, is bound to BCP-47 (all-languages)
LANGUAGE_TAGGED = frozenset({"Attachment"})
#: the types whose values may be URNs of the uuid and oid types, held to those types' regexes
URI_TYPES = frozenset({"uri", "url", "canonical"})


class BaseModel:
    """The compiled R4 base model; one per registry, shared by every validation."""

    def __init__(self, registry: Registry) -> None:
        types = registry.base_types
        self.kinds = {name: t["kind"] for name, t in types.items()}
        self.resource_types = frozenset(n for n, k in self.kinds.items() if k == "resource")
        urns = {"urn:uuid:": ("uuid", types["uuid"]["regex"]), "urn:oid:": ("oid", types["oid"]["regex"])}
        self.checkers: dict[str, Checker] = {
            name: make_checker(name, t.get("regex"), urns if name in URI_TYPES else None)
            for name, t in types.items()
            if t["kind"] == "primitive-type"
        }
        self.nodes: dict[str, NodeModel] = {}
        for type_name, definition in types.items():
            for path, children in definition["nodes"].items():
                model = self._compile_node(path, children)
                if path == type_name:
                    model.is_resource = definition["kind"] == "resource"
                    model.abstract = definition["abstract"]
                    model.constraints = _invariants(definition.get("constraints", []))
                    if model.is_resource:
                        # Resource.id is a plain string in R4 (System.String): it takes no
                        # extensions, so "_id" on a resource is refused with its own message
                        model.slots.pop("_id", None)
                self.nodes[path] = model
        language = language_checker(self.checkers["code"])
        for model in self.nodes.values():
            model.special = SPECIAL_TYPES.get(model.name)
            tagged = model.is_resource or model.name in LANGUAGE_TAGGED
            for slot in model.slots.values():
                slot.checker = None if slot.underscore else self.checkers.get(slot.type)
                if tagged and slot.key == "language":
                    slot.checker = language
                slot.is_resource = slot.type == "Resource" or slot.type in self.resource_types
                slot.child = self.nodes.get(slot.node or slot.type)
                slot.is_extension = slot.type == "Extension" and slot.key in ("extension", "modifierExtension")
                slot.bare = slot.checker is not None and slot.binding is None and not slot.constraints
                slot.plain = (
                    slot.checker is None
                    and slot.child is not None
                    and not (slot.underscore or slot.is_resource or slot.is_extension)
                    and slot.binding is None
                    and not slot.constraints
                    and slot.targets is None
                )

    def _compile_node(self, path: str, children: dict[str, Any]) -> NodeModel:
        model = NodeModel(path)
        for name, spec in children.items():
            types = spec.get("types", [])
            is_list = spec["max"] != "1"
            choice = name.endswith("[x]")
            stem = name[:-3] if choice else name
            keys = []
            for t in types or [{"code": "Element"}]:
                code = t["code"]
                key = stem + code[0].upper() + code[1:] if choice else stem
                primitive = self.kinds.get(code) == "primitive-type"
                node = spec.get("node") if not choice and "node" in spec else (None if primitive else code)
                slot = Slot(
                    name=key,
                    key=key,
                    type=code,
                    is_list=is_list,
                    primitive=primitive,
                    underscore=False,
                    node=node,
                    element=name,
                    min=spec["min"],
                    binding=spec.get("binding"),
                    constraints=_invariants(spec.get("constraints", [])),
                    targets=_targets(t),
                )
                model.slots[key] = slot
                keys.append(key)
                if primitive:
                    model.slots["_" + key] = Slot(
                        key, "_" + key, code, is_list, False, True, node="Element", element=name
                    )
                    keys.append("_" + key)
            if spec["min"] > 0:
                model.required.append((stem, spec["min"], frozenset(keys)))
            if choice and len(keys) > 1:
                # the `_valueCode` of a primitive type names its type as surely as `valueCode`
                # does, so both forms count when telling how many types a choice holds
                model.choices.append((stem, frozenset(keys)))
        return model


#: the value types of an extension whose walk reads the value alone (no reference to resolve,
#: no FHIRPath), besides the primitive types
SELF_CONTAINED_VALUES = frozenset({"Coding", "CodeableConcept"})
#: extensions whose findings are remembered (a bound: extensions come from instances), and the
#: longest one remembered (a 1 MiB valueString is judged each time, not kept)
EXTENSIONS_KEPT = 4096
EXTENSION_KEY_BYTES = 512

#: Called for every resource the walk meets (nested ones included) once its structure is checked,
#: with the scope its FHIRPath runs in.
ResourceVisitor = Callable[[dict[str, Any], str, IssueList, Scope], None]


class _Walk(threading.local):
    """Where the walk is, per thread: one validator serves every thread of a worker (gthread
    workers, MLLP connections, export jobs), and a walk kept on the walker itself took the
    frame of another thread's resource (a Patient's extensions judged as sitting on a Bundle
    entry: a false extension.context error)."""

    def __init__(self) -> None:
        #: (path, type) of every resource being walked, innermost last: where extensions sit
        self.frames: list[tuple[str, str]] = []
        #: the resources being walked that own contained resources (innermost last)
        self.containers: list[_Container] = []
        #: > 0 while walking a contained resource (where '#' refers to the container)
        self.in_contained = 0


class StructureWalker:
    """Walks one resource against the base model, appending issues; never raises on input."""

    def __init__(
        self,
        model: BaseModel,
        terminology: Terminology,
        visit: ResourceVisitor | None = None,
        extension_domains: tuple[str, ...] = (),
    ) -> None:
        self.model = model
        self.terminology = terminology
        self.visit = visit
        self.extensions = ExtensionChecker(model, terminology, extension_domains)
        self._walk = _Walk()
        #: an extension's memo key (see :meth:`_extension_key`) → its findings, each located
        #: by what follows the extension's path
        self._extension_memo: dict[tuple[Any, ...], list[tuple[str, str, str, dict[str, Any]]]] = {}

    def resource(self, resource: Any, path: str, issues: IssueList, scope: Scope | None = None) -> bool:
        """Validate a resource; returns False when its type is unknown (nothing more to check).

        ``scope`` is the resource's own FHIRPath scope when the walk reached it inside another
        resource (see :meth:`_nested`); a resource validated on its own starts one.
        """
        if not isinstance(resource, dict):
            issues.error("structure.expected-object", path, type="Resource")
            return False
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):  # "Unknown resource type 'None'" named no type at all
            issues.error("structure.missing-resource-type", path)
            return False
        if rtype not in self.model.resource_types:
            issues.error("structure.unknown-resource-type", path, type=rtype)
            return False
        model = self.model.nodes[rtype]
        if model.abstract:
            issues.error("structure.abstract-type", path, type=rtype)
            return False
        path = path or rtype
        scope = scope or Scope.of(resource)
        walk = self._walk
        walk.frames.append((path, rtype))
        if scope.root is not resource and walk.containers:
            walk.in_contained += 1
            try:
                self._node(resource, model, path, scope, issues)
            finally:
                walk.in_contained -= 1
                walk.frames.pop()
        else:
            walk.containers.append(_Container(resource))
            try:
                self._node(resource, model, path, scope, issues)
                if "contained" in resource:
                    _unique_contained_ids(resource, path, issues)
                    self._dom_3(resource, path, issues)
            finally:
                walk.containers.pop()
                walk.frames.pop()
        if self.visit is not None:
            self.visit(resource, path, issues, scope)
        return True

    @staticmethod
    def _nested(item: Any, key: str, parent: dict[str, Any], model: NodeModel, scope: Scope) -> Scope | None:
        """The scope of a resource found inside another: a contained resource keeps its
        container as %rootResource, a Bundle entry's resource resolves in that Bundle, and any
        other (Parameters.parameter.resource, Bundle.entry.response.outcome) stands alone."""
        if not isinstance(item, dict):
            return None
        if key == "contained":
            return scope.contained(item)
        if key == "resource" and model.name == "Bundle.entry":
            return scope.entry(item, parent.get("fullUrl"))
        return Scope.of(item)

    def _node(
        self, node: dict[str, Any], model: NodeModel, path: str, scope: Scope, issues: IssueList, valued: bool = False
    ) -> None:
        """``valued``: the node is a primitive's ``_element`` whose value is present, so an id
        alone does not leave it empty (ele-1: ``hasValue() or children().count() > id.count()``)."""
        slots = model.slots
        for key, value in node.items():
            slot = slots.get(key)
            if slot is None:
                if key == "_id" and model.is_resource:
                    issues.error("structure.resource-id-extension", f"{path}.id")
                elif not (key == "resourceType" and model.is_resource):
                    issues.error("structure.unknown-element", f"{path}.{key}", name=key, type=model.name)
                continue
            if value is None:
                issues.error("structure.null-value", f"{path}.{slot.name}")
                continue
            if slot.is_list:
                if type(value) is not list:
                    issues.error("structure.expected-array", f"{path}.{slot.name}", name=key)
                    continue
                if not value:
                    issues.error("structure.empty-array", f"{path}.{slot.name}", name=key)
                    continue
                partner = None
                if slot.primitive or slot.underscore:
                    partner = node.get(("_" + key) if not slot.underscore else key[1:])
                # a partner that is no array, or an empty one, has its own error where it is walked
                if not slot.underscore and type(partner) is list and partner and len(partner) != len(value):
                    issues.error("primitive.underscore-mismatch", f"{path}.{slot.name}", name=key)
                for index, item in enumerate(value):
                    if item is None:
                        if (
                            partner is None
                            or type(partner) is not list
                            or index >= len(partner)
                            or partner[index] is None
                        ):
                            issues.error("structure.null-value", f"{path}.{slot.name}[{index}]")
                        continue
                    if slot.bare:
                        problem = slot.checker(item)  # type: ignore[misc] # bare: it has one
                        if problem is not None:
                            _format_problem(problem, f"{path}.{slot.name}[{index}]", issues)
                        continue
                    if slot.plain and type(item) is dict:
                        self._node(item, slot.child, f"{path}.{slot.name}[{index}]", scope, issues)  # type: ignore[arg-type] # plain: it has one
                        continue
                    shadows_value = (
                        slot.underscore
                        and type(partner) is list
                        and index < len(partner)
                        and partner[index] is not None
                    )
                    self._item(slot, item, f"{path}.{slot.name}[{index}]", scope, issues, node, model, shadows_value)
            elif type(value) is list:
                issues.error("structure.unexpected-array", f"{path}.{slot.name}", name=key)
            elif slot.bare:
                problem = slot.checker(value)  # type: ignore[misc] # bare: it has one
                if problem is not None:
                    _format_problem(problem, f"{path}.{slot.name}", issues)
            elif slot.plain and type(value) is dict:
                self._node(value, slot.child, f"{path}.{slot.name}", scope, issues)  # type: ignore[arg-type] # plain: it has one
            else:
                shadows_value = slot.underscore and node.get(key[1:]) is not None
                self._item(slot, value, f"{path}.{slot.name}", scope, issues, node, model, shadows_value)

        for name, minimum, keys in model.required:
            if keys.isdisjoint(node):
                issues.error("structure.missing-required", f"{path}.{name}", name=name, min=minimum)
        for stem, keys in model.choices:
            if len(keys.intersection(node)) > 1:
                present = dict.fromkeys(k.removeprefix("_") for k in node if k in keys)
                if len(present) > 1:
                    issues.error("structure.multiple-choice", f"{path}.{stem}[x]", name=stem, keys=", ".join(present))
        if not model.is_resource and not valued and (not node or (len(node) == 1 and "id" in node)):
            issues.error("structure.empty-element", path)
        special = model.special
        if special is None:
            pass
        elif special == "Coding":
            self.terminology.check_coding(node.get("system"), node.get("code"), path, issues)
        elif special == "Extension":
            if ("extension" in node) == any(k.startswith("value") for k in node):
                issues.error("structure.extension-value-and-children", path)
        elif special == "Period":
            check_period(node, path, issues)
        elif special == "Reference":
            self._ref_1(node, path, issues)
        elif special == "Attachment":
            check_attachment(node, path, issues)
        elif special == "Quantity":
            check_quantity_code(node, path, issues)
        else:
            check_narrative(node, path, issues)
        if model.constraints:
            self._invariants(model.constraints, node, model.name, path, scope, issues)

    def _item(
        self,
        slot: Slot,
        item: Any,
        path: str,
        scope: Scope,
        issues: IssueList,
        parent: dict[str, Any],
        model: NodeModel,
        valued: bool = False,
    ) -> None:
        if slot.checker is not None:
            problem = slot.checker(item)
            if problem is not None and _format_problem(problem, path, issues):
                return
        elif slot.is_resource:
            self.resource(item, path, issues, self._nested(item, slot.key, parent, model, scope))
            return
        elif type(item) is not dict:
            issues.error("structure.expected-object", path, type=slot.type)
            return
        elif slot.is_extension and slot.child is not None:
            self._extension(item, slot.child, slot.key, path, scope, issues, parent, model)
        elif slot.child is not None:
            self._node(item, slot.child, path, scope, issues, valued)
            if slot.targets is not None:
                check_target_type(item, slot.targets, path, scope, issues, self.model.resource_types)
        if slot.binding is not None and not slot.underscore:
            check_binding(self.terminology, item, slot.type, slot.binding, "required", path, issues)
        if slot.constraints:
            self._invariants(slot.constraints, item, slot.node or slot.type, path, scope, issues)

    def _extension(
        self,
        ext: dict[str, Any],
        child: NodeModel,
        key: str,
        path: str,
        scope: Scope,
        issues: IssueList,
        parent: dict[str, Any],
        model: NodeModel,
    ) -> None:
        """An extension's own walk and its check against its definition, remembered for the
        extensions that read nothing but themselves.  Why: the same 民族, 参保状态 or 行政区划
        extension arrives on every record, and its two checks cost as much as a memo key
        several times over (a Coverage's two extensions were a fifth of its base walk)."""
        frames = self._walk.frames
        frame = frames[-1] if frames else None
        memo_key = self._extension_key(ext, key, path, parent, model, frame)
        if memo_key is not None:
            found = self._extension_memo.get(memo_key)
            if found is not None:
                if found:
                    issues.extend(Issue(s, m, path + suffix, dict(params)) for s, m, suffix, params in found)
                return
        start = len(issues)
        self._node(ext, child, path, scope, issues)
        self.extensions.check(ext, path, parent, model, key, frame, scope, issues)
        if memo_key is None:
            return
        new = issues[start:]
        if all(issue.expression.startswith(path) for issue in new):
            if len(self._extension_memo) >= EXTENSIONS_KEPT:
                self._extension_memo.clear()
            cut = len(path)
            self._extension_memo[memo_key] = [
                (i.severity, i.message_id, i.expression[cut:], dict(i.params)) for i in new
            ]

    def _extension_key(
        self,
        ext: dict[str, Any],
        key: str,
        path: str,
        parent: dict[str, Any],
        model: NodeModel,
        frame: tuple[str, str] | None,
    ) -> tuple[Any, ...] | None:
        """What an extension's findings depend on, when that is the extension alone besides
        where it sits: a ``url`` and a value of a type that refers to nothing (a code, a
        Coding, a CodeableConcept), no nested extensions or primitive extensions, and a
        definition without context invariants (FHIRPath on the element it sits on).  None
        for any other: it is walked every time."""
        url = ext.get("url")
        if len(ext) != 2 or type(url) is not str or not self.extensions.reads_only_itself(url):
            return None
        first, second = ext
        slot = self.extensions.extension_model.slots.get(second if first == "url" else first)
        if slot is None or slot.underscore or not (slot.primitive or slot.type in SELF_CONTAINED_VALUES):
            return None
        try:
            raw = orjson.dumps(ext, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # orjson refuses e.g. integers over 64 bits: just do not remember
            return None
        if len(raw) > EXTENSION_KEY_BYTES or b'"_' in raw or b'"extension"' in raw or b'"modifierExtension"' in raw:
            return None
        where = self.extensions.where(path, frame)
        parent_url = parent.get("url") if model.name == "Extension" else None
        if parent_url is not None and type(parent_url) is not str:  # no key of a list: walked
            return None
        return (self.extensions.registry.generation, key, model.name, where, parent_url, raw)

    def _ref_1(self, node: dict[str, Any], path: str, issues: IssueList) -> None:
        """ref-1: a local reference names a contained resource of the resource that holds it."""
        reference = node.get("reference")
        walk = self._walk
        if not isinstance(reference, str) or not reference.startswith("#") or not walk.containers:
            return
        container = walk.containers[-1]
        if reference == "#":  # a contained resource referring to its container
            if walk.in_contained:
                return
        elif reference[1:] in container.contained_ids:
            return
        _native_failed("ref-1", "error", path, issues)

    def _dom_3(self, resource: dict[str, Any], path: str, issues: IssueList) -> None:
        """dom-3: every contained resource is referenced from elsewhere, or refers to its
        container.  One without an id can be referenced by nothing (the published FHIRPath,
        empty for it, let it pass)."""
        contained = resource.get("contained")
        if not isinstance(contained, list):
            return
        anywhere = _local_strings(resource)
        for item in contained:
            if not isinstance(item, dict):
                continue
            named = isinstance(item.get("id"), str) and "#" + item["id"] in anywhere
            if named or "#" in _local_strings(item):
                continue
            _native_failed("dom-3", "error", path, issues)
            return

    @staticmethod
    def _invariants(
        invariants: tuple[Invariant, ...], node: Any, base: str, path: str, scope: Scope, issues: IssueList
    ) -> None:
        for invariant in invariants:
            if invariant.key not in GUARDED or applies(invariant.key, node, scope):
                verdict = invariant.check(node, scope, base)
                if verdict is not True:  # a verdict that holds reports nothing
                    report_invariant(invariant, verdict, path, issues)


def _format_problem(problem: tuple[str, dict[str, Any]], path: str, issues: IssueList) -> bool:
    """Report a primitive's format problem; True when it is an error (nothing more is checked
    on the value), False for an advisory warning."""
    message_id, params = problem
    if message_id in ADVISORY:
        issues.add("warning", message_id, path, **params)
        return False
    issues.error(message_id, path, **params)
    return True


def applies(key: str, node: Any, scope: Scope) -> bool:
    """Whether an invariant needs evaluating on this value at all (see GUARDS, SCOPE_GUARDS)."""
    guard = GUARDS.get(key)
    if guard is not None and not guard(node):
        return False
    scoped = SCOPE_GUARDS.get(key)
    return scoped is None or scoped(node, scope)


def _native_failed(key: str, severity: str, path: str, issues: IssueList) -> None:
    human = NATIVE_HUMAN[key]
    issues.add(severity, "invariant.failed", path, key=key, human=human, human_zh=CORE_INVARIANTS_ZH.get(key, human))


def report_invariant(invariant: Invariant, verdict: bool | str, path: str, issues: IssueList) -> None:
    if verdict is OVER_BUDGET:
        budget = current_budget()
        if budget is None or budget.reported is None:
            params = {
                "key": invariant.key,
                "steps": budget.steps if budget is not None else 0,
                "seconds": round(budget.seconds, 2) if budget is not None else 0,
                "skipped": 0,
            }
            issue = Issue("error", "invariant.budget-exceeded", path, params)
            issues.append(issue)
            if budget is not None:
                budget.reported = issue
        else:
            budget.skipped += 1
            budget.reported.params["skipped"] = budget.skipped
        return
    if verdict is False:
        human_zh = invariant.human_zh or CORE_INVARIANTS_ZH.get(invariant.key, invariant.human)
        issues.add(
            invariant.severity, "invariant.failed", path, key=invariant.key, human=invariant.human, human_zh=human_zh
        )
    elif verdict is not True and not _malformed_within(path, issues):
        # as the reference validator does: what cannot be shown to hold is reported with the
        # constraint's own severity, never passed over as a mere warning
        issues.add(invariant.severity, "invariant.not-evaluable", path, key=invariant.key, detail=verdict)


#: the message ids of a value of the wrong shape or format, which FHIRPath cannot read either
_MALFORMED = ("structure.", "primitive.")


def _malformed_within(path: str, issues: IssueList) -> bool:
    """Whether a malformed value at or below ``path`` was reported already: rng-2 cannot compare
    a low.value sent as "1.5" with a high.value of 2, and saying so, with the engine's Python
    exception as the reason, only repeated the type error.  Runs only when an invariant could not
    be evaluated, which a well-formed instance never meets; newest first, since the value's own
    walk (the base walk, then each profile's, per resource) has just reported its errors."""
    below = (path + ".", path + "[")
    return any(
        issue.is_error
        and issue.message_id.startswith(_MALFORMED)
        and (issue.expression == path or issue.expression.startswith(below))
        for issue in reversed(issues)
    )
