"""The mapping engine: applies a declarative spec to one legacy record.

A spec (YAML in ``mappings/specs/<source>/``) lists the resources a record yields and, for each,
rules of the form ``{path, value}`` where ``value`` is a template whose leaves say where a value
comes from (``from`` a field, a ``const``, a ``ref`` to another resource of the record) and how
it is cleaned (``transform`` normalisers, ``map`` through a ConceptMap).  The engine records,
for every element it sets, the legacy field it came from (lineage), every problem it meets
(never stopping at the first), and every step it took (the trace behind ``mappings explain``).

A resource definition with a ``key`` (FHIRPath expressions over the mapped resource: an
institution's 统一社会信用代码, a hospital stay's 住院号 and admission time) takes its id from that
business identity, so every record that names the same thing names the same resource.  Its
``as_of`` (a value template, e.g. the HL7 event time EVN-2) says when the record's statement about
it was true, so the archive can merge statements in the order they happened, not arrived.

A rule with ``first_only`` writes its first item only (one birth place of several birth
addresses): each later item is left out and noted (``Mapped.omitted``, ``mapping.item-dropped``).

A leaf with ``unmatched: omit`` reads an optional qualifier (an HL7 address type, a phone's use):
a code its ConceptMap lists as ``unmatched`` leaves the element out instead of refusing the
record, whose other elements matter more than the qualifier, and the code is noted
(``Mapped.omitted``) with the map's reason, unless another element of the record carries it.
``{first_of: [template, …]}`` is the value of the first alternative that gives one (a phone's
use from its equipment type when that is CP, else from XTN.2).
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import fhirpathpy
import orjson

from mappings.conceptmaps import ConceptMaps, UnmatchedCode
from mappings.normalise import NORMALISERS, SPLITTERS, MappingError, Normaliser, Splitter, ascii_digits
from mappings.paths import parse, set_path
from mappings.records import UNPARSEABLE, FieldRef, SourceRecord
from mappings.specs import Spec
from profiles.canonical import DEFAULT_BASE

ID_NAMESPACE = uuid.UUID("6f1d6a52-5c1e-4c47-9a57-0c5d1e2b7a10")
#: in a rule's ``each``, a step that stands for every occurrence of a repeated element
EVERY = "[*]"
#: the part of an element occurrence (``$item.text()``) that is the element's own text
OWN_TEXT = "text()"
#: a leaf's ``unmatched`` choice: a code its map leaves without a target omits the element
OMIT = "omit"
#: the template node whose value is that of its first alternative giving one
FIRST_OF = "first_of"
#: an item a ``first_only`` rule left out, its first item having given the element its value
ITEM_DROPPED = "mapping.item-dropped"
#: a code a ConceptMap does not list (told once per field and resource: :func:`_told`)
UNKNOWN_CODE = "mapping.unknown-code"


@dataclass(slots=True)
class Problem:
    message_id: str
    params: dict[str, Any]
    ref: FieldRef | None = None
    #: the resource (its name in the record) the problem belongs to; None: the whole record
    resource: str | None = None
    #: the FHIRPath of the element the field was to fill, when the problem is about one
    expression: str | None = None


@dataclass(slots=True)
class Step:
    """One line of ``mappings explain``: field and raw value → rule → FHIR element."""

    field: str
    raw: Any
    rule: str
    target: str
    result: Any


@dataclass(slots=True)
class Mapped:
    record: SourceRecord
    spec: Spec
    #: keep the step-by-step trace (for ``mappings explain``); off on the ingest hot path
    trace: bool = False
    #: what the record is in its source system (see :func:`record_identity`)
    identity: str = ""
    #: the system that sent the record, as it names itself (see :func:`record_sender`)
    sender: str | None = None
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (resource name, FHIRPath inside the resource) → legacy origin
    lineage: dict[tuple[str, str], FieldRef] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: codes an ``unmatched: omit`` leaf left out and no other element carries: reported with
    #: the ConceptMap's reason (``mapping.unmatched-omitted``), and the items a ``first_only``
    #: rule left out (``mapping.item-dropped``): warnings, never refusing the record
    omitted: list[Problem] = field(default_factory=list)
    #: (resource name, element path without indices) → origin of values that failed to map,
    #: so a "missing element" found by validation still names the legacy field to fix
    attempted: dict[tuple[str, str], FieldRef] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    #: resources whose id comes from their business key (many records may name the same one),
    #: each with the time the record speaks for (``as_of``) when its spec says where to find it
    keyed: dict[str, str | None] = field(default_factory=dict)
    #: resources the spec marks ``optional``: independent parts (an IN1's Coverage) that may
    #: fail alone, leaving the rest of the record to land
    optional: set[str] = field(default_factory=set)
    #: Patients the spec marks ``updates``: the person's current demographics as the sender now
    #: holds them (an ADT^A08), replacing the archive's elements rather than filling gaps, each
    #: with the time the record speaks for (``as_of``), so that an older update arriving late
    #: does not replace a newer one
    updates: dict[str, str | None] = field(default_factory=dict)
    #: Patients the spec says ``states`` lists of: those lists as the sender now holds them in
    #: full (an ADT's PID-11 addresses, PID-13 phones), which replace what it gave before
    states: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def unused_fields(self) -> list[str]:
        """The record's values no rule read and the spec does not ignore (see :func:`unread`)."""
        return unread(self.record.valued_fields(), self.used, self.record.views)


def unread(fields: Iterable[str], used: Iterable[str], views: Mapping[str, str]) -> list[str]:
    """The fields, in their order, that no rule read, each named once: a field counts as read
    when it, a part of it (``PID-11.1`` of ``PID-11``) or the whole it belongs to was read,
    under any of its names (``views``: ``SourceRecord.views``); of an unread field and its
    unread parts only the field is named."""

    def canonical(name: str) -> str:
        while name in views:
            name = views[name]
        return name

    read = {canonical(name) for name in used}
    found: list[str] = []
    for name in fields:
        if name in views or name in read:
            continue
        if any(other.startswith(name + ".") or name.startswith(other + ".") for other in read):
            continue
        if not any(name.startswith(outer + ".") for outer in found):
            found.append(name)
    return found


class _Empty:
    """Marker: the template produced nothing (empty source field) and sets nothing."""


EMPTY = _Empty()


class MappingEngine:
    def __init__(
        self,
        specs: list[Spec],
        conceptmaps: ConceptMaps,
        canonical_base: str = DEFAULT_BASE,
        normalisers: dict[str, Normaliser] | None = None,
    ) -> None:
        self.specs = specs
        self.conceptmaps = conceptmaps
        self.base = canonical_base
        self.normalisers = {**NORMALISERS, **(normalisers or {})}
        #: every rule's path parsed and value template compiled, by the rule's identity
        self._rules: dict[int, _CompiledRule] = {}
        self._keys: dict[int, list[Any]] = {}
        self._as_of: dict[int, Build] = {}
        for spec in specs:
            self._check_spec(spec)

    def _check_spec(self, spec: Spec) -> None:
        """Fail at load time, not on row 80,000: every normaliser and ConceptMap must exist.
        Rules and keys are compiled here, once, and applied to every record."""
        for resource in spec.resources:
            for part in [resource, *resource["rules"]]:
                if part.get("split", "list") not in SPLITTERS:
                    raise ValueError(f"{spec.id}: unknown split {part['split']!r}")
            if EVERY in resource.get("each", ""):
                # one resource per occurrence would need the occurrence's field as its label too
                raise ValueError(f"{spec.id}: {resource['name']}: {EVERY} is for a rule's each, not a resource's")
            if "key" in resource:
                self._keys[id(resource)] = [
                    fhirpathpy.compile(expression.replace("{base}", self.base)) for expression in resource["key"]
                ]
            if "as_of" in resource:
                if "key" not in resource and not resource.get("updates"):
                    raise ValueError(f"{spec.id}: {resource['name']} has an as_of but no key to merge by nor updates")
                if not {"date", "datetime"} & set(resource["as_of"].get("transform", [])):
                    # merges compare as_of as moments: only these normalisers promise ISO form
                    raise ValueError(
                        f"{spec.id}: {resource['name']} as_of must read a time (transform date or datetime)"
                    )
                self._as_of[id(resource)] = self._compile(resource["as_of"], ())
            for rule in resource["rules"]:
                if "spread" in rule and not str(rule.get("each", "")).endswith(EVERY):
                    # only an element occurrence has other parts to keep beside each value
                    raise ValueError(f"{spec.id}: {resource['name']}: spread needs an each ending in {EVERY}")
                for leaf in _leaves(rule["value"]):
                    for name in leaf.get("transform", []):
                        if name not in self.normalisers:
                            raise ValueError(f"{spec.id}: unknown transform {name!r}")
                    if "map" in leaf and not self.conceptmaps.has(leaf["map"]):
                        raise ValueError(f"{spec.id}: unknown ConceptMap {leaf['map']!r}")
                self._rules[id(rule)] = _CompiledRule(
                    parse(rule["path"]), f"{resource['type']}.{rule['path']}", self._compile(rule["value"], ())
                )

    def select(self, record: SourceRecord) -> Spec | None:
        """The spec for this record: its source's spec whose required shape the record has."""
        for spec in self.specs:
            if spec.source == record.source and spec.matches(record.shape):
                return spec
        return None

    def nearest(self, record: SourceRecord) -> tuple[Spec, list[str]] | None:
        """For a record no spec matches: its source's spec whose required shape it comes
        closest to (most of it present, at least half), and what of that shape it lacks — a
        column named otherwise (身份证号码 for 身份证号) says so instead of a bare "no spec"."""
        best: tuple[int, Spec] | None = None
        for spec in self.specs:
            if spec.source != record.source or not spec.match:
                continue
            present = len(spec.match & record.shape)
            if present * 2 >= len(spec.match) and (best is None or present > best[0]):
                best = (present, spec)
        if best is None:
            return None
        return best[1], sorted(best[1].match - record.shape)

    def map(self, record: SourceRecord, spec: Spec | None = None, trace: bool = False) -> Mapped | None:
        spec = spec or self.select(record)
        if spec is None:
            return None
        mapped = Mapped(record, spec, trace, identity=record_identity(spec, record), sender=record_sender(spec, record))
        planned: list[tuple[str, dict[str, Any], Any, str | None]] = []
        for definition in spec.resources:
            for name, item in self._instances(mapped, definition):
                # the item's label names the legacy field it came from: 既往疾病[1], 服务项目[0]
                label = f"{definition['each']}[{name.rsplit('[', 1)[1]}" if "each" in definition else None
                resource: dict[str, Any] = {"resourceType": definition["type"], "id": record_id(mapped, name)}
                if "profile" in definition:
                    resource["meta"] = {"profile": [f"{self.base}/StructureDefinition/{definition['profile']}"]}
                mapped.resources[name] = resource
                if definition.get("optional"):
                    mapped.optional.add(name)
                planned.append((name, definition, item, label))
        for name, definition, item, label in planned:
            for rule in definition["rules"]:
                self._rule(mapped, name, mapped.resources[name], rule, item, label)
        self._apply_keys(mapped, planned)
        for name, definition, item, label in planned:
            if definition.get("updates"):
                mapped.updates[name] = self._time_of(mapped, name, definition, item, label)
            if definition.get("states"):
                mapped.states[name] = tuple(definition["states"])
        mapped.used.update(_ignored(spec.ignore, record.fields))
        mapped.omitted = _lost(mapped.omitted, mapped.lineage.values())
        return mapped

    def _apply_keys(self, mapped: Mapped, planned: list[tuple[str, dict[str, Any], Any, str | None]]) -> None:
        """Give keyed resources the id of their business identity and point the record's
        references at it; a resource whose key is incomplete keeps its per-record id."""
        for name, definition, item, label in planned:
            compiled = self._keys.get(id(definition))
            if compiled is None:
                continue
            resource = mapped.resources[name]
            parts = [",".join(str(v) for v in evaluate(resource)) for evaluate in compiled]
            if not all(parts):
                continue
            keyed_id = str(uuid.uuid5(ID_NAMESPACE, "|".join([resource["resourceType"], *parts])))
            renamed = {f"{resource['resourceType']}/{resource['id']}": f"{resource['resourceType']}/{keyed_id}"}
            resource["id"] = keyed_id
            mapped.keyed[name] = self._time_of(mapped, name, definition, item, label)
            # at once, so a later key may name this resource (a stay keyed by its institution)
            for other in mapped.resources.values():
                rewrite_references(other, renamed)

    def _time_of(
        self, mapped: Mapped, name: str, definition: dict[str, Any], item: Any, label: str | None
    ) -> str | None:
        """The record's ``as_of`` for a keyed resource; a time that cannot be read is a problem
        of the record like any other (an archive merged out of order would be silently wrong)."""
        build = self._as_of.get(id(definition))
        if build is None:
            return None
        value = build(_Context(mapped, name, item, label, f"{definition['type']} as_of"))
        return None if value is EMPTY else str(value)

    @staticmethod
    def _instances(mapped: Mapped, definition: dict[str, Any]) -> list[tuple[str, Any]]:
        """The resources one definition yields for this record: none when its ``when`` field
        is empty (no glucose measured this year), one per item with ``each`` (既往疾病:
        高血压,糖尿病), else one."""
        if "when" in definition and not _holds(mapped, None, definition["when"]):
            return []
        if "each" in definition:
            split = SPLITTERS[definition.get("split", "list")]
            items = _items(mapped, None, definition["each"], definition.get("skip", []), split)
            return [(f"{definition['name']}[{i}]", item) for i, item in enumerate(items)]
        return [(definition["name"], None)]

    def _rule(
        self, mapped: Mapped, name: str, resource: dict[str, Any], rule: dict[str, Any], item: Any, each: str | None
    ) -> None:
        # a rule with each judges a when (or unless) about $item for each of its items, as its
        # values read them; each condition is paired with what it must be for the rule to apply
        conditions = [(rule[key], key == "when") for key in ("when", "unless") if key in rule]
        per_item = [c for c in conditions if "each" in rule and _names_item(c[0])]
        if not _all_hold(mapped, item, [c for c in conditions if c not in per_item]):
            return
        compiled = self._rules[id(rule)]
        items: list[tuple[Any, str | None]] = [(item, each)]
        if "each" in rule:
            # repeat the rule for every item of a list field, within this one resource
            field = _first_valued(mapped, item, rule["each"])
            skip, split = rule.get("skip", []), SPLITTERS[rule.get("split", "list")]
            if EVERY in field:
                items = _occurrence_items(mapped, field, skip, split)
                if "spread" in rule:
                    items = _spread(mapped, items, rule["spread"], split)
            else:
                kept = _items(mapped, item, field, skip, split)
                items = [(value, f"{field}[{index}]") for index, value in enumerate(kept)]
        kept: tuple[str, str] | None = None  # (label, element) of the value a first_only rule wrote
        for current, label in items:
            if not _all_hold(mapped, current, per_item):
                continue
            if kept is not None:
                _drop(mapped, name, label or "", kept, compiled.target)
                continue
            context = _Context(mapped, name, current, label, compiled.target)
            value = compiled.build(context)
            if value is EMPTY:
                continue
            written = set_path(resource, compiled.segments, value)
            prefix = f"{resource['resourceType']}.{_fhirpath(written)}"
            for suffix, ref in context.origins:
                mapped.lineage[(name, _join(prefix, suffix))] = ref
            if rule.get("first_only"):
                kept = (label or "", prefix)

    def _compile(self, template: Any, suffix: tuple[str, ...]) -> Build:
        """A value template as a function of the rule's context, built once per template so the
        walk of a record does no dispatch: constants are serialised once (orjson copies JSON
        several times faster than deepcopy), a leaf knows its normalisers, a structure its parts
        and where each sits (``suffix``, the path below the rule's element, for lineage)."""
        if not _reads_record(template, ("from", "ref")):
            frozen = orjson.dumps(self._constant(template))
            return lambda context: orjson.loads(frozen)
        if isinstance(template, dict) and FIRST_OF in template:
            alternatives = [self._compile(t, suffix) for t in template[FIRST_OF]]

            def build_first(context: _Context) -> Any:
                for alternative in alternatives:
                    value = alternative(context)
                    if value is not EMPTY:
                        return value
                return EMPTY

            return build_first
        if isinstance(template, list):
            items = [self._compile(t, (*suffix, f"[{i}]")) for i, t in enumerate(template)]

            def build_list(context: _Context) -> Any:
                kept: list[Any] = []
                for index, item in enumerate(items):
                    found, traced = len(context.origins), len(context.mapped.steps)
                    value = item(context)
                    if value is EMPTY:
                        continue
                    if index != len(kept):
                        # an empty item before it is left out: its lineage follows it to its place
                        context.origins[found:] = [
                            ((*where[: len(suffix)], f"[{len(kept)}]", *where[len(suffix) + 1 :]), ref)
                            for where, ref in context.origins[found:]
                        ]
                        was = _join(context.target, (*suffix, f"[{index}]"))
                        now = _join(context.target, (*suffix, f"[{len(kept)}]"))
                        for step in context.mapped.steps[traced:]:
                            step.target = now + step.target[len(was) :]
                    kept.append(value)
                return kept or EMPTY

            return build_list
        if _is_leaf(template):
            if "ref" in template:
                return lambda context: _reference(context.mapped, template["ref"])
            normalisers = [(n, self.normalisers[n]) for n in template.get("transform", ["text"])]
            return lambda context: self._leaf(context, template, suffix, normalisers)
        parts = [(key, self._compile(sub, (*suffix, key))) for key, sub in template.items()]
        reads_fields = _reads_record(template, ("from",))

        def build_structure(context: _Context) -> Any:
            found = len(context.origins)
            built = {}
            for key, part in parts:
                value = part(context)
                if value is not EMPTY:
                    built[key] = value
            # A structure made only of constants (a system with no value) means the source had nothing.
            if reads_fields and len(context.origins) == found:
                return EMPTY
            return built or EMPTY

        return build_structure

    def _constant(self, template: Any) -> Any:
        """A template without sourced leaves as the value it stands for."""
        if isinstance(template, str):
            return template.replace("{base}", self.base)
        if isinstance(template, list):
            return [self._constant(t) for t in template]
        if isinstance(template, dict):
            if _is_leaf(template):
                return self._constant(template["const"])
            return {key: self._constant(sub) for key, sub in template.items()}
        return template

    def _leaf(
        self,
        context: _Context,
        leaf: dict[str, Any],
        suffix: tuple[str, ...],
        normalisers: list[tuple[str, Normaliser]],
    ) -> Any:
        mapped = context.mapped
        record = mapped.record
        source = leaf["from"]
        if isinstance(source, str) and source.startswith("$item"):
            # the current item of an "each" resource, or a field inside it ($item.insutype)
            inner = source[len("$item.") :] if source.startswith("$item.") else ""
            field_name = _member(context.each or "", inner)
            raw = lookup(context.item, inner) if inner else context.item
        elif isinstance(source, str):
            field_name = source
            raw = record.fields[source] if source in record.fields else lookup(record.fields, source)
            mapped.used.add(_field_root(record.fields, source))
        else:
            present = [f for f in source if _field_or_item(record.fields, context.item, f) not in (None, "")]
            chosen = present[0] if present else source[0]
            if "join" in leaf and present:
                # parts of one value sent in fields of their own (an HL7 XPN's family and given name)
                raw = leaf["join"].join(str(_field_or_item(record.fields, context.item, f)) for f in present)
            else:
                raw = _field_or_item(record.fields, context.item, chosen)
            # a fallback among the parts of the current item (XTN.1, else XTN.12) names the part
            inner = chosen[len("$item.") :] if chosen.startswith("$item.") else None
            field_name = chosen if inner is None else _member(context.each or "", inner)
            mapped.used.update(_field_root(record.fields, name) for name in source if not name.startswith("$item"))
        ref = record.ref(field_name)
        element = _unindexed(_join(context.target, suffix))
        if (raw is None or raw == "") and "default" in leaf:
            # what an empty field means by the source's own convention (HL7 XTN.3 unsaid: a telephone)
            return self._constant(leaf["default"])
        if raw is None or raw == "":
            if leaf.get("required"):
                missing = Problem("mapping.missing-required", {"field": field_name}, ref, context.name, element)
                mapped.problems.append(missing)
                mapped.attempted[(context.name, element)] = ref
            return EMPTY
        value = raw
        rule_text = []
        try:
            if "contradicts" in leaf:
                # any value here contradicts what the other field says (the rule's when picks it)
                other = leaf["contradicts"]
                mapped.used.add(_field_root(record.fields, other))
                raise MappingError(
                    "mapping.contradiction", value=raw, other=other, otherValue=lookup(record.fields, other)
                )
            for label, normaliser in normalisers:
                value = normaliser(value)
                if mapped.trace:
                    rule_text.append(label)
                if value is None:
                    return EMPTY
            if "map" in leaf:
                value = self.conceptmaps.translate(leaf["map"], value, leaf.get("as", "code"))
                rule_text.append(f"ConceptMap {leaf['map']}")
            if "not_after" in leaf:
                _check_not_after(mapped, value, leaf["not_after"], normalisers)
        except MappingError as error:
            params = {"field": field_name, **error.params}
            if isinstance(error, UnmatchedCode) and leaf.get("unmatched") == OMIT:
                omitted = Problem("mapping.unmatched-omitted", params, ref, context.name, element)
                mapped.omitted.append(omitted)
                if mapped.trace:
                    where = _join(context.target, suffix)
                    mapped.steps.append(
                        Step(field_name, raw, " → ".join([*rule_text, f"∅ {omitted.message_id}"]), where, None)
                    )
                return EMPTY
            problem = Problem(error.message_id, params, ref, context.name, element)
            if not _told(mapped.problems, problem):
                mapped.problems.append(problem)
            where = _join(context.target, suffix)
            mapped.attempted[(context.name, element)] = ref
            if mapped.trace:
                mapped.steps.append(
                    Step(field_name, raw, " → ".join([*rule_text, f"✗ {error.message_id}"]), where, None)
                )
            return EMPTY
        if mapped.trace:
            where = _join(context.target, suffix)
            mapped.steps.append(Step(field_name, raw, " → ".join(rule_text) or "as is", where, value))
        context.origins.append((suffix, ref))
        return value


Build = Callable[["_Context"], Any]


def _check_not_after(mapped: Mapped, value: Any, others: list[str], normalisers: list[tuple[str, Normaliser]]) -> None:
    """Refuse a date later than the first of the ``others`` fields with a value, read by the
    same normalisers (a 解约日期 after the agreed 协议结束日期: the contract cannot end after its
    term).  ISO dates compare as text at their common precision (2027 against 2027-03-01 is
    no contradiction); an other field that cannot be read is its own rule's problem."""
    fields = mapped.record.fields
    mapped.used.update(_field_root(fields, name) for name in others)
    other = next((name for name in others if lookup(fields, name) not in (None, "")), None)
    if other is None:
        return
    bound: Any = lookup(fields, other)
    try:
        for _, normaliser in normalisers:
            bound = normaliser(bound)
    except MappingError:
        return
    if bound is None:
        return
    shared = min(len(str(value)), len(str(bound)))
    if str(value)[:shared] > str(bound)[:shared]:
        raise MappingError("mapping.after", value=value, other=other, otherValue=bound)


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    segments: list[tuple[str, str | None]]
    #: the rule's element as FHIRPath (``Patient.identifier[+]``), for problems and explain
    target: str
    build: Build


def _reference(mapped: Mapped, name: str) -> Any:
    other = mapped.resources.get(name)
    return {"reference": f"{other['resourceType']}/{other['id']}"} if other else EMPTY


@dataclass(slots=True)
class _Context:
    """What the template walk of one rule needs to know."""

    mapped: Mapped
    name: str
    item: Any
    each: str | None
    target: str
    origins: list[tuple[tuple[str, ...], FieldRef]] = field(default_factory=list)


def record_identity(spec: Spec, record: SourceRecord) -> str:
    """What a record is, independent of the file it came in and its row: its source system's
    key (the spec's ``record_key`` fields) or, when the spec declares none or the record lacks
    it, a digest of its content.  Two clinics' exports with the same file name no longer share
    ids, and a re-export with rows in another order keeps every record's ids."""
    values = [lookup(record.fields, name) for name in spec.record_key]
    if values and all(isinstance(v, (str, int)) and str(v).strip() for v in values):
        return "key|" + "|".join(str(v).strip() for v in values)
    return "content|" + content_digest(record)


def record_sender(spec: Spec, record: SourceRecord) -> str | None:
    """The system that sent the record: the values of the spec's ``sender`` fields joined as
    HL7 joins components (``HIS^H41010500012``: MSH-3, then MSH-4), an empty one kept in its
    place; None when the spec names no such field or the record fills none of them (an export
    file, which names no sender: its source alone is known)."""
    values = [lookup(record.fields, name) for name in spec.sender]
    said = [str(value).strip() if isinstance(value, (str, int)) else "" for value in values]
    return "^".join(said) if any(said) else None


def content_digest(record: SourceRecord) -> str:
    """The record's content: its parsed fields, so a row re-saved with other line endings or
    quoting is still the same row; for a record its reader could not parse, its bytes (its
    one field is the reader's reason, whose wording may change between versions, and the
    same bytes quarantined again must stay one entry)."""
    if UNPARSEABLE in record.fields:
        return hashlib.blake2b(record.raw, digest_size=16).hexdigest()
    content = orjson.dumps(record.fields, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def record_id(mapped: Mapped, name: str) -> str:
    """The id of the resource ``name`` a record yields (before any key or identity merge)."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{mapped.spec.id}|{mapped.record.source}|{mapped.identity}|{name}"))


def reference_nodes(node: Any) -> list[dict[str, Any]]:
    """Every Reference object (a dict with a string ``reference``) inside a resource, found
    iteratively so no nesting depth can exhaust the stack."""
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            if isinstance(current.get("reference"), str):
                found.append(current)
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return found


def rewrite_references(node: Any, renamed: dict[str, str]) -> None:
    """Point every link found in ``renamed`` at its new target, in place: any string that is
    exactly such a link, not only a Reference's ``reference`` (an extension's ``valueUri``, an
    Attachment's ``url``, the narrative's ``href`` and ``src``).  For the ``Type/id`` links a
    mapping makes itself (a keyed id, a person merged), which no other string of its
    resources repeats; a transaction's links are told by their types instead
    (``gateway/fhir/bundle_links.py``).  An Identifier's (or a ContactPoint's) ``value``
    beside its ``system`` is a string, not a link.  Found iteratively, so no nesting depth
    can exhaust the stack."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            slots: Any = current.items()
        elif isinstance(current, list):
            slots = enumerate(current)
        else:
            continue
        for key, value in list(slots):
            if not isinstance(value, str):
                stack.append(value)
            elif key == "div":
                current[key] = relinked_narrative(value, renamed)
            elif value in renamed and not (key == "value" and "system" in current):
                current[key] = renamed[value]


#: a start tag of the narrative's XHTML: its attribute values may hold ">" but never "<"
_START_TAG = re.compile(r"<[A-Za-z][^<>\"']*(?:(?:\"[^\"]*\"|'[^']*')[^<>\"']*)*>")
#: one attribute of a start tag, its value whole, so text inside another value is never taken
_ATTRIBUTE = re.compile(r"""([^\s=<>"'/]+)(\s*=\s*)("[^"]*"|'[^']*')""")


def relinked_narrative(div: str, renamed: Mapping[str, str]) -> str:
    """The narrative with each ``href`` or ``src`` whose whole value is a renamed link
    pointing at its new target, and not one other character changed.  The attribute values
    are replaced in the text rather than the XHTML parsed and written again: a rewritten
    tree would come back with its quoting, namespace declarations and character references
    respelt, and a div that does not parse (which validation reports) would fail here
    instead.  Only start tags are looked into, one attribute at a time, so neither element
    text nor another attribute's value that reads like ``href="…"`` is touched."""

    def attribute(found: re.Match[str]) -> str:
        name, equals, quoted = found.groups()
        target = renamed.get(html.unescape(quoted[1:-1]))
        if name not in ("href", "src") or target is None:
            return found.group()
        return f"{name}{equals}{quoted[0]}{html.escape(target)}{quoted[0]}"

    return _START_TAG.sub(lambda tag: _ATTRIBUTE.sub(attribute, tag.group()), div)


def _drop(mapped: Mapped, name: str, label: str, kept: tuple[str, str], target: str) -> None:
    """Leave out an item of a ``first_only`` rule after the first (a second birth address where
    the profile allows one birth place): noted with the record (``Mapped.omitted``), never
    refusing it, naming the item and the one kept."""
    params = {"field": label, "kept": kept[0], "element": kept[1]}
    mapped.omitted.append(Problem(ITEM_DROPPED, params, mapped.record.ref(label), name, _unindexed(target)))


def _told(problems: list[Problem], problem: Problem) -> bool:
    """Whether ``problem`` is a code some other map of the same field already refused as
    unknown in the same resource: an XAD.7 feeds Address.use, type and category through three
    maps, and a code none of them lists is one mistake to fix, told once, by the first map
    (whose reason lists the codes it accepts)."""
    if problem.message_id != UNKNOWN_CODE:
        return False
    return any(
        told.message_id == UNKNOWN_CODE
        and (told.resource, told.ref, told.params.get("value"))
        == (problem.resource, problem.ref, problem.params.get("value"))
        for told in problems
    )


def _lost(omitted: list[Problem], landed: Iterable[FieldRef]) -> list[Problem]:
    """The omitted codes that landed nowhere, one note per field: a code one leaf left out that
    another element carries (XAD.7 M, no Address.use but type postal; XTN.3 PH, no use but the
    system phone) is not lost, and a code two leaves left out is told once, by the first."""
    carried = set(landed)
    kept: dict[FieldRef | None, Problem] = {}
    for problem in omitted:
        if problem.ref not in carried:
            kept.setdefault(problem.ref, problem)
    return list(kept.values())


def _join(prefix: str, suffix: tuple[str, ...]) -> str:
    return ".".join([prefix, *suffix]).replace(".[", "[")


def _unindexed(path: str) -> str:
    """``Patient._gender.extension[+].valueCoding`` → ``Patient.gender.extension.valueCoding``."""
    return ".".join(part.split("[")[0].lstrip("_") for part in path.split("."))


def lookup(fields: Any, name: str) -> Any:
    """A field by name; dotted names reach into nested JSON (``baseinfo.psn_no``,
    ``insuinfo.0.insutype``) when no field carries the dotted name itself."""
    if not isinstance(fields, dict):
        return None
    if name in fields or "." not in name:
        return fields.get(name)
    node: Any = fields
    for step in name.split("."):
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and ascii_digits(step) and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
    return node


def _first_valued(mapped: Mapped, item: Any, names: str | list[str]) -> str:
    """Of an ``each`` naming fallback fields (XTN.1, else XTN.12), the first with a value; every
    one of them counts as read, as with a leaf's fallback ``from``."""
    if isinstance(names, str):
        return names
    for name in names:
        if not name.startswith("$item."):
            mapped.used.add(_field_root(mapped.record.fields, name))
    valued = (n for n in names if _field_or_item(mapped.record.fields, item, n) not in (None, "", [], {}))
    return next(valued, names[0])


def _items(mapped: Mapped, item: Any, name: str, skip: list[Any], split: Splitter) -> list[Any]:
    """The items of a list field (see :func:`_kept`)."""
    if not name.startswith("$item."):
        mapped.used.add(_field_root(mapped.record.fields, name))
    return _kept(mapped, name, _field_or_item(mapped.record.fields, item, name), skip, split)


def _occurrence_items(mapped: Mapped, pattern: str, skip: list[Any], split: Splitter) -> list[tuple[Any, str]]:
    """The items of every field an ``each`` with ``[*]`` names (``telecom[*]/@value``: the
    ``telecom/@value`` and ``telecom[2]/@value`` … of a CDA document), in the record's order,
    each labelled with the field it came from, and with its index there when that field's value
    divides into several items (``telecom[2]/@value[1]``): a spec reads every occurrence of a
    repeated element, not only the first its plain name means.  An ``each`` ending in the
    ``[*]`` step names the element itself (``addr[*]``): see :func:`_element_items`."""
    every = _occurrences(pattern)
    if pattern.endswith(EVERY):
        return _element_items(mapped, every)
    found: list[tuple[Any, str]] = []
    for name, value in mapped.record.fields.items():
        if not every.fullmatch(name):
            continue
        mapped.used.add(name)
        kept = _kept(mapped, name, value, skip, split)
        found.extend((part, name if len(kept) == 1 else f"{name}[{index}]") for index, part in enumerate(kept))
    return found


def _ignored(ignore: Iterable[str], fields: Mapping[str, Any]) -> set[str]:
    """The fields a spec's ``ignore`` list names: each name as written, and for a name with a
    ``[*]`` step every field of the record it stands for, as in a rule's ``each``
    (``addr[*]/@use``: ``addr/@use``, ``addr[2]/@use`` …), so a repeated element's second
    occurrence is not reported unread when its first is deliberately left out."""
    names = {name for name in ignore if EVERY not in name}
    patterns = [_occurrences(name) for name in ignore if EVERY in name]
    if patterns:
        names.update(name for name in fields if any(pattern.fullmatch(name) for pattern in patterns))
    return names


#: what follows an element occurrence's name in the name of one of its parts: a step of an XML
#: path (``addr[2]/township``), an HL7 v2 component (``PID-11~2.3``), or nothing (the whole)
_PART_SEPARATORS = ("/", ".", "")


def _element_items(mapped: Mapped, every: re.Pattern[str]) -> list[tuple[Any, str]]:
    """Each occurrence of a repeated element with parts (a CDA patient's ``addr``: ``township``,
    ``county``, ``@use`` …; an HL7 PID-11 repetition's components) as one item, the fields below
    it by their path from it, labelled with the occurrence (``recordTarget/patientRole/addr[2]``,
    ``PID-11~2``), in document order: a rule reads ``$item.township`` of every address, where the
    plain ``addr/township`` is the first's alone.
    The element's own text (an ``addr`` written as one line) is its part ``text()``.  Every
    field of every occurrence counts as read, as the parts of a JSON list item do."""
    items: dict[str, dict[str, Any]] = {}
    for name, value in mapped.record.fields.items():
        found = every.match(name)
        if found is None or name[found.end() : found.end() + 1] not in _PART_SEPARATORS:
            continue
        mapped.used.add(name)
        part = name[found.end() + 1 :] or OWN_TEXT
        items.setdefault(found.group(), {})[part] = value
    return [(parts, occurrence) for occurrence, parts in items.items()]


def _spread(
    mapped: Mapped, occurrences: list[tuple[Any, str]], parts: list[str], split: Splitter
) -> list[tuple[Any, str]]:
    """The element occurrences with the first of ``parts`` that has a value divided by
    ``split``: each value an item of its own, beside the occurrence's other parts (an HL7
    phone repetition whose XTN.1 lists 66668888 77779999 is two items, each with its XTN.2 use
    and XTN.3 equipment type).  An occurrence with none of ``parts`` yields nothing."""
    found: list[tuple[Any, str]] = []
    for occurrence, label in occurrences:
        part = next((p for p in parts if occurrence.get(p) not in (None, "")), None)
        if part is None:
            continue
        pieces = _kept(mapped, _member(label, part), occurrence[part], [], split)
        found.extend(({**occurrence, part: piece}, label) for piece in pieces)
    return found


def _member(item: str, inner: str) -> str:
    """The field a ``$item.…`` leaf reads, for lineage and reasons: a member of a JSON item
    (``insuinfo[0].insutype``), or, below an element occurrence of an XML document, the path
    on from it (``recordTarget/patientRole/addr[2]/township``), the field as the reader names it."""
    if not inner or inner == OWN_TEXT:
        return item
    return f"{item}/{inner}" if "/" in item else f"{item}.{inner}"


@functools.lru_cache(maxsize=256)
def _occurrences(pattern: str) -> re.Pattern[str]:
    """``telecom[*]/@value`` as a pattern of the fields it names: each ``[*]`` step as the
    readers write its occurrences, plain for the first and numbered from the second on, by
    the XML readers in brackets (``telecom``, ``telecom[2]``), by the HL7 v2 reader after
    its repetition separator (``PID-13``, ``PID-13~2``)."""
    return re.compile(r"(?:\[\d+\]|~\d+)?".join(re.escape(part) for part in pattern.split(EVERY)))


def _kept(mapped: Mapped, name: str, listed: Any, skip: list[Any], split: Splitter) -> list[Any]:
    """The items of the value of field ``name`` (a JSON list, or a cell such as 高血压,糖尿病,
    divided by the spec's ``split``) but those ``skip`` lists; a cell that cannot be split
    (garbled text) is a problem of the record, not a crash of the run."""
    if isinstance(listed, dict):
        listed = [listed]  # an export that gives the one item instead of a list of one
    if not isinstance(listed, list):
        try:
            listed = split(listed)
        except MappingError as error:
            ref = mapped.record.ref(name)
            mapped.problems.append(Problem(error.message_id, {"field": name, **error.params}, ref))
            return []
    unwanted = {str(v) for v in skip}
    return [value for value in listed if str(value) not in unwanted]


def _names_item(when: str | dict[str, Any]) -> bool:
    """Whether a ``when`` is about the item (``$item.field``) rather than the record."""
    return (when if isinstance(when, str) else str(when["field"])).startswith("$item.")


def _all_hold(mapped: Mapped, item: Any, conditions: list[tuple[str | dict[str, Any], bool]]) -> bool:
    """Whether each condition (a ``when``, or an ``unless``) is as the rule needs it: a ``when``
    holding, an ``unless`` not."""
    return all(_holds(mapped, item, condition) == wanted for condition, wanted in conditions)


def _holds(mapped: Mapped, item: Any, when: str | dict[str, Any]) -> bool:
    """A ``when``: a field (or ``$item.field``) that has a value, or ``{field, in}`` — a field
    whose text is one of the values (a 家庭病床 row of a visits export, and no other), or
    ``{field, not_in}`` — a field with a value other than these (文化程度 10 不详 says nothing)."""
    field = when if isinstance(when, str) else str(when["field"])
    if field.startswith("$item."):
        value = lookup(item, field[len("$item.") :])
    else:
        mapped.used.add(_field_root(mapped.record.fields, field))
        value = lookup(mapped.record.fields, field)
    if value in (None, "", [], {}):
        return False
    if isinstance(when, str):
        return True
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a spreadsheet's 10.0 is the code 10
    written = unicodedata.normalize("NFKC", str(value)).strip()
    return written in when["in"] if "in" in when else written not in when["not_in"]


def _field_root(fields: dict[str, Any], name: str) -> str:
    """The record field a (possibly dotted) name reads: itself when the record has that key
    (CDA XPath keys contain dots) or when it names a member of a JSON object (baseinfo.psn_no),
    so reading one member does not count its siblings as read (see :func:`unread`); else its
    first segment."""
    if name in fields or isinstance(fields.get(name.split(".")[0]), dict):
        return name
    return name.split(".")[0]


def _field_or_item(fields: dict[str, Any], item: Any, name: str | None) -> Any:
    """A record field, or with ``$item.`` a field of the current item."""
    if not name:
        return None
    if name.startswith("$item."):
        return lookup(item, name[len("$item.") :])
    return lookup(fields, name)


def _is_leaf(template: dict[str, Any]) -> bool:
    return any(key in template for key in ("from", "const", "ref"))


def _reads_record(template: Any, kinds: tuple[str, ...]) -> bool:
    if isinstance(template, dict):
        return any(k in template for k in kinds) or any(_reads_record(v, kinds) for v in template.values())
    if isinstance(template, list):
        return any(_reads_record(v, kinds) for v in template)
    return False


def _leaves(template: Any) -> list[dict[str, Any]]:
    if isinstance(template, dict):
        return [template] if _is_leaf(template) else [leaf for v in template.values() for leaf in _leaves(v)]
    if isinstance(template, list):
        return [leaf for v in template for leaf in _leaves(v)]
    return []


def _fhirpath(written: str) -> str:
    """``_gender.extension[0]`` is ``gender.extension[0]`` in FHIRPath."""
    if "_" not in written:
        return written
    return ".".join(part.lstrip("_") for part in written.split("."))
