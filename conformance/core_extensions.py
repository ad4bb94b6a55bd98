"""Extensions in instances, looked up by URL: the registry's definitions, then R4 core's.

The base walk calls :meth:`ExtensionChecker.check` for every ``extension`` and
``modifierExtension`` it meets.  The URL is looked up in this order:

1. a StructureDefinition the registry holds (the provincial package, ``--ig``);
2. the R4 core extensions (``profiles/base/r4-extensions.json``, derived by
   ``tools/derive_core_extensions.py``);
3. nothing: an error (``extension.unknown-core`` under ``http://hl7.org/fhir/StructureDefinition/``,
   the core namespace where every R4 extension is known; ``extension.unknown-not-allowed``
   elsewhere), unless the URL starts with one of the domains the caller allows, where it is
   information that it cannot be checked — as the reference validator decides
   (``Extension_EXT_Unknown_NotHere`` unless ``-extension`` names the domain).

A known extension's value must be of a type its definition allows and, where the definition
binds it required or extensible, in its value set; the element it sits on must be one of its
contexts, a modifier extension must be in ``modifierExtension`` (and only it), and a
sub-extension of a complex extension — or of a complex sub-extension, at any depth — must be
one of its holder's slices, with a value of an allowed type in the value set its slice binds —
whether or not a profile slices it, as the reference validator judges every extension it
resolves by its definition.  Where a profile does, the
profile layer also validates it against the whole definition (cardinality, invariants); the
same binding finding from both is reported once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from conformance.bindings import check_binding
from conformance.extension_definitions import summarise
from conformance.fhirpath_scope import Scope
from conformance.invariants import compile_invariant
from conformance.issues import IssueList

if TYPE_CHECKING:
    from conformance.structure import BaseModel, NodeModel, Slot
    from conformance.terminology import Terminology

CORE_NAMESPACE = "http://hl7.org/fhir/StructureDefinition/"
_INDEX = re.compile(r"\[\d+\]")
#: element paths whose context names are kept (a bound: paths come from instances)
_ELEMENTS_KEPT = 4096


class ExtensionChecker:
    def __init__(self, model: BaseModel, terminology: Terminology, allowed_domains: tuple[str, ...] = ()) -> None:
        self.model = model
        self.terminology = terminology
        self.registry = registry = terminology.registry
        #: URL prefixes whose unknown extensions are let through unchecked (a hospital's own)
        self.allowed_domains = tuple(d for d in allowed_domains if d)
        self.core: dict[str, dict[str, Any]] = registry.base_extensions
        self.extension_model = model.nodes["Extension"]
        types = registry.base_types
        self._ancestors: dict[str, tuple[str, ...]] = {}
        for name in types:
            chain = []
            base = types[name].get("base")
            while base and base not in chain and len(chain) < 16:
                chain.append(base)
                base = types.get(base, {}).get("base")
            self._ancestors[name] = tuple(chain)
        self._summaries: tuple[int, dict[str, dict[str, Any] | None]] = (registry.generation, {})
        self._elements: dict[tuple[str, str], tuple[str, set[str]] | None] = {}
        self._contexts: dict[tuple[str, Any, Any], tuple[bool, str]] = {}

    def _definition(self, url: str) -> dict[str, Any] | None:
        """The summary of the extension ``url`` names: the registry's definition first (kept
        until definitions are added), else the core one; None when neither knows it, and then
        nothing is kept: instances name any URL, and a worker keeping each was one that grew
        with every new one a client sent."""
        generation, summaries = self._summaries
        if generation != self.registry.generation:
            summaries = {}
            self._summaries = (self.registry.generation, summaries)
        summary = summaries.get(url)
        if summary is None:
            found = self.registry.get(url)
            if found is not None and found.get("resourceType") == "StructureDefinition":
                differential = found.get("differential")
                elements = differential.get("element") if isinstance(differential, dict) else None
                summary = summarise(found, elements if isinstance(elements, list) else [])
            else:
                summary = self.core.get(url)
            if summary is not None:
                summaries[url] = summary
        return summary

    def reads_only_itself(self, url: str) -> bool:
        """Whether the findings on an extension of ``url`` depend on the extension alone and on
        where it sits (not on the element's content): false for a definition with context
        invariants, FHIRPath evaluated on that element."""
        definition = self._definition(url) if ":" in url else None
        return definition is None or not definition.get("contextInvariants")

    def check(
        self,
        ext: dict[str, Any],
        path: str,
        parent: dict[str, Any],
        parent_model: NodeModel,
        key: str,
        frame: tuple[str, str] | None,
        scope: Scope,
        issues: IssueList,
    ) -> None:
        """One extension at ``path`` (``….extension[i]``) on ``parent``; ``frame`` is the
        (path, type) of the resource being walked, None when walking a bare datatype."""
        url = ext.get("url")
        if not isinstance(url, str) or not url:
            return  # Extension.url is required: the walk reports its absence
        if ":" not in url:
            # a part of a complex extension: judged with the extension holding it (_parts)
            if parent_model.name != "Extension":
                issues.error("extension.relative-url", path, url=url)  # the reference: Extension_EXT_URL_Absolute
            return
        definition = self._definition(url)
        if definition is None:
            if url.startswith(CORE_NAMESPACE):
                issues.error("extension.unknown-core", path, url=url)
            elif url.startswith(self.allowed_domains):
                issues.add("information", "extension.unknown", path, url=url)
            else:
                issues.error("extension.unknown-not-allowed", path, url=url)
            return
        if definition.get("modifier", False) != (key == "modifierExtension"):
            expected = "modifierExtension" if definition.get("modifier") else "extension"
            issues.error("extension.modifier-mismatch", path, url=url, expected=expected)
        self._value(ext, url, definition["types"], definition.get("binding"), path, issues)
        self._parts(ext, url, definition, path, issues)
        if self._context(url, definition["contexts"], path, parent, parent_model, frame, issues):
            self._context_invariants(
                ext, url, definition.get("contextInvariants", ()), path, parent, frame, scope, issues
            )

    def _parts(self, ext: dict[str, Any], url: str, definition: dict[str, Any], path: str, issues: IssueList) -> None:
        """The cardinalities of a known extension, and its parts and their parts at any depth:
        each part must be one of the slices its holder defines, with a value of an allowed type
        in the value set the slice binds.  They are judged from the extension down, as a part's
        own URL is relative and names nothing without its holders."""
        holders = [(ext, url, definition, path, "Extension")]
        while holders:
            holder, holder_url, summary, holder_path, element = holders.pop()
            parts = holder.get("extension")
            self._counts(holder, parts, url, summary, holder_path, element, issues)
            slices = summary.get("slices")
            if not slices or not isinstance(parts, list):
                continue
            for index, part in enumerate(parts):
                name = part.get("url") if isinstance(part, dict) else None
                if not isinstance(name, str) or not name or ":" in name:
                    continue  # no url (the walk reports it), or an extension known by its own
                where = f"{holder_path}.extension[{index}]"
                if name not in slices:
                    issues.error("extension.unknown-slice", where, url=holder_url, name=name)
                    continue
                binding = summary.get("sliceBindings", {}).get(name)
                self._value(part, f"{holder_url}#{name}", slices[name], binding, where, issues)
                own = summary.get("sliceParts", {}).get(name)
                if own is not None:
                    holders.append((part, f"{holder_url}#{name}", own, where, f"{element}.extension"))

    @staticmethod
    def _counts(
        holder: dict[str, Any],
        parts: Any,
        url: str,
        summary: dict[str, Any],
        path: str,
        element: str,
        issues: IssueList,
    ) -> None:
        """The cardinalities the definition gives the extension or part ``holder`` (its element
        ``element`` in the definition, ``Extension.extension`` for a part): a value where
        ``value[x]`` is required, the number of parts, of each slice.  Each is reported with the
        id, location and parameters a profile applying the definition gives it, so where a
        profile slices the extension the one finding is reported once."""
        minimum = summary.get("valueMin")
        if minimum is not None:
            count = sum(1 for key in holder if key.startswith("value") and key[5:6].isupper())
            _counted(
                issues,
                "profile.cardinality",
                f"{path}.value[x]",
                f"{element}.value[x]",
                (minimum, None),
                count,
                profile=url,
            )
        bounds = summary.get("extensionCount")
        slice_counts = summary.get("sliceCounts")
        if bounds is None and slice_counts is None:
            return
        where, element_path = f"{path}.extension", f"{element}.extension"
        items = parts if isinstance(parts, list) else [] if parts is None else [parts]
        if bounds is not None:
            _counted(issues, "profile.cardinality", where, element_path, bounds, len(items), profile=url)
        for name, bounds in (slice_counts or {}).items():
            count = sum(1 for part in items if isinstance(part, dict) and part.get("url") == name)
            _counted(issues, "profile.slice-cardinality", where, element_path, bounds, count, slice=name)

    def _value(
        self,
        ext: dict[str, Any],
        url: str,
        allowed: list[str] | None,
        binding: list[str] | None,
        path: str,
        issues: IssueList,
    ) -> None:
        """The value's type against the types allowed (None: as the base Extension has it) and,
        when that holds, the value against the binding (``[strength, value set]``), by the
        check a profile's binding gets: a part of a complex extension as its whole."""
        if allowed is None and binding is None:
            return  # value[x] as the base Extension has it, bound to nothing
        found = self._value_slot(ext)
        if found is None:
            return
        stem, slot = found
        if allowed is not None and slot.type not in allowed:
            shown = ", ".join(allowed) if allowed else "-"
            issues.error("extension.value-type", f"{path}.{stem}", url=url, type=slot.type, allowed=shown)
            return
        if binding is not None and stem in ext:
            strength, value_set = binding
            check_binding(self.terminology, ext[stem], slot.type, value_set, strength, f"{path}.{stem}", issues)

    def _value_slot(self, ext: dict[str, Any]) -> tuple[str, Slot] | None:
        """(key, Extension slot) of the extension's value, None without one or when the key is
        no Extension element (the walk reports that)."""
        for key in ext:
            stem = key[1:] if key.startswith("_value") else key
            if stem.startswith("value"):
                slot = self.extension_model.slots.get(stem)
                return (stem, slot) if slot is not None else None
        return None

    def _context(
        self,
        url: str,
        contexts: list[list[str]],
        path: str,
        parent: dict[str, Any],
        parent_model: NodeModel,
        frame: tuple[str, str] | None,
        issues: IssueList,
    ) -> bool:
        """Whether the element the extension sits on is one of its contexts (reported if not;
        true where it cannot be told).  The verdict depends on the extension, the element's
        path in its resource type and, for an extension context, the enclosing extension:
        it is worked out once for each."""
        where = self.where(path, frame)
        key = (url, where, parent.get("url") if parent_model.name == "Extension" else None)
        verdict = self._contexts.get(key)
        if verdict is None:
            if len(self._contexts) >= _ELEMENTS_KEPT:
                self._contexts.clear()
            verdict = self._contexts[key] = self._context_verdict(contexts, key[2], where)
        if verdict[0]:
            return True
        shown = ", ".join(expr for _, expr in contexts)
        issues.error("extension.context", path, url=url, element=verdict[1], contexts=shown)
        return False

    def _context_verdict(
        self, contexts: list[list[str]], parent_url: Any, where: tuple[str, str] | None
    ) -> tuple[bool, str]:
        if not contexts or any(kind == "element" and expr == "Element" for kind, expr in contexts):
            return True, ""
        if any(kind == "fhirpath" for kind, _ in contexts):
            return True, ""  # a FHIRPath context is not evaluated here (none in R4 core)
        if parent_url is not None and any(kind == "extension" and expr == parent_url for kind, expr in contexts):
            return True, ""
        element = self._element(where)
        if element is None:
            return True, ""  # walked outside a resource (a bare datatype): the context is not known
        logical, candidates = element
        return any(kind == "element" and expr in candidates for kind, expr in contexts), logical

    def _context_invariants(
        self,
        ext: dict[str, Any],
        url: str,
        expressions: Any,
        path: str,
        parent: dict[str, Any],
        frame: tuple[str, str] | None,
        scope: Scope,
        issues: IssueList,
    ) -> None:
        """``StructureDefinition.contextInvariant``: FHIRPath that must hold on the element the
        extension sits on (``type='integer'`` for a slider step), with %extension the extension;
        an error when it does not, as in the reference validator."""
        if not isinstance(expressions, list) or not expressions:
            return
        element = self._element(self.where(path, frame))
        base = element[0] if element is not None else "Element"
        on = path.rsplit(".", 1)[0]
        for index, expression in enumerate(expressions):
            if not isinstance(expression, str):
                continue
            invariant = compile_invariant(f"{url}#context-{index}", "error", expression, expression)
            verdict = invariant.check(parent, scope, base, extension=ext)
            if verdict is False:
                issues.error("extension.context-invariant", on, url=url, rule=expression)
            elif verdict is not True:
                issues.error("invariant.not-evaluable", on, key=invariant.key, detail=verdict)

    @staticmethod
    def where(path: str, frame: tuple[str, str] | None) -> tuple[str, str] | None:
        """(resource type, path inside it without indices) of the element an extension at
        ``path`` sits on; None outside a resource (a bare datatype) or outside its frame."""
        if frame is None:
            return None
        frame_path, rtype = frame
        parent_path = path.rsplit(".", 1)[0]
        if not parent_path.startswith(frame_path):
            return None
        rest = parent_path[len(frame_path) :]
        return rtype, _INDEX.sub("", rest) if "[" in rest else rest

    def _element(self, where: tuple[str, str] | None) -> tuple[str, set[str]] | None:
        """The element an extension sits on: its logical path, and every name a context may
        give it (that path, its path in the type declaring it, its type and the type's
        ancestors)."""
        if where is None:
            return None
        if where not in self._elements:
            if len(self._elements) >= _ELEMENTS_KEPT:
                self._elements.clear()
            self._elements[where] = self._walk_to(*where)
        return self._elements[where]

    def _walk_to(self, rtype: str, rest: str) -> tuple[str, set[str]] | None:
        node: Any = self.model.nodes.get(rtype)
        logical = declared = etype = rtype
        for segment in rest.split(".")[1:] if rest else ():
            slot = node.slots.get(segment.split("[", 1)[0]) if node is not None else None
            if slot is None:
                return None
            logical = f"{logical}.{slot.element}"
            declared = f"{node.name}.{slot.element}"
            etype = slot.type
            node = slot.child
        candidates = {logical, declared, etype, *self._ancestors.get(etype, ())}
        if node is not None:
            candidates.add(node.name)
            candidates.update(self._ancestors.get(node.name, ()))
        return logical, candidates


def _counted(
    issues: IssueList,
    rule: str,
    where: str,
    element_path: str,
    bounds: tuple[int, int | None] | list[int | None],
    count: int,
    **named: str,
) -> None:
    """``count`` against ``[min, max]`` (max None: ``*``), reported as ``rule``'s ``-min`` or
    ``-max`` with the parameters a profile's cardinality finding has."""
    low, high = bounds
    if low is not None and count < low:
        issues.error(f"{rule}-min", where, path=element_path, min=low, count=count, **named)
    if high is not None and count > high:
        issues.error(f"{rule}-max", where, path=element_path, max=high, count=count, **named)
