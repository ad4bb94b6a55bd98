"""Search parameters compiled into value extractors, once per resource type.

Why: every write indexes the resource against every parameter of its type, so extraction is
on the hot path.  fhirpathpy is general but slow (it wraps every node), while most R4
expressions are plain dotted paths (``Patient.identifier``, ``Coverage.beneficiary``); those,
``extension('url')`` steps and filters on a string child (``telecom.where(system='phone')``,
``relatedArtifact.where(type='composed-of')``) are walked over the JSON dicts directly, with
choice elements (``Observation.effective``) resolved from the R4 base model.  The rest goes
through fhirpathpy.  Measured on the Patient example: 0.14 ms for all 33 parameters against 0.41 ms
with fhirpathpy alone.  (fhirpathpy 2.2 also returns only the first of several repeats of
one extension, which the walk does not.)

R4 narrows polymorphic references with ``.where(resolve() is Patient)``; nothing here can
resolve a reference, so the clause is cut off and replaced by a filter on the reference's
type.  A parameter whose expression still fails (an unimplemented function, a syntax
fhirpathpy does not know) is left out and reported by :meth:`SearchParameters.unsupported`,
so the CapabilityStatement advertises only what really works; so is one that reaches a
resource held inline (Bundle's ``composition``), which has no value to index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, NamedTuple

import fhirpathpy
import orjson
from fhirpathpy.models import models

from conformance.invariants import KeyFilter, key_pattern, referenced_children
from conformance.terminology import Terminology
from gateway.match_keys import match_keys
from profiles.registry import Registry, r4_resource_types

Extractor = Callable[[dict[str, Any]], list[Any]]
#: the index name of a resource's literal references that no reference parameter's rows hold
#: (one in an extension, a primitive's too): what a delete's referrer check and a merge's
#: search for what names the retired record must see besides the parameters' rows.  A
#: SearchParameter of this code is refused (:meth:`SearchParameters.unsupported`), so no
#: search ever reads or writes these rows as its own.
UNINDEXED_REFERENCES = "_reference"
#: the index name of the people a resource names by number alone (a Reference carrying only an
#: ``identifier`` that is a person's, or one to a contained Patient: :func:`identified_person`)
#: through a parameter that may point at a Patient: each row holds the person's match key
#: (``ingest.identity``) as its value and the code of the parameter naming them as its system,
#: for the read rule to ask the identity index who holds it (``storage/access_sql.py``), and
#: for a compartment parameter's, to place the resource in that person's Patient compartment
#: (``$everything``, a Patient export: ``storage.resources.Referrers``).  Reserved as
#: :data:`UNINDEXED_REFERENCES` is, so no search reads or writes these rows as its own.
IDENTIFIED_PEOPLE = "_person"
#: what a reference parameter's ``:identifier`` rows are named after its code (``subject`` →
#: ``subject:identifier``): a token row (system, value) of each of its References'
#: ``identifier`` (R4 search.html: the modifier searches Reference.identifier as a token), with
#: or without a ``reference`` beside it.  A name of its own, not the parameter's: a reference
#: row's system is a type, read so by deletes, includes and compartments; and a search reads a
#: code up to its first colon, so no parameter's own rows can bear the name.
BY_IDENTIFIER = ":identifier"
#: what a parameter's presence row is named after its code (``subject`` → ``subject:present``):
#: one row, all its cells empty, for a resource holding the parameter's element with no value
#: the parameter's own rows can hold (a Reference naming a person by ``identifier`` alone or by
#: ``display``, a CodeableConcept of ``text`` alone, a date that does not parse).  R4's
#: ``:missing`` asks whether the element is there, not whether a value of it was indexed, so
#: ``:missing`` reads these rows beside the parameter's own.  Named as :data:`BY_IDENTIFIER`'s
#: are, so no parameter's own rows can bear the name.
PRESENT = ":present"
#: distinct values remembered per memoised expression before the memo starts over
MEMO_LIMIT = 10_000

_RESOLVE = re.compile(r"^\(?(?P<path>.+?)\.where\(resolve\(\) is (?P<type>[A-Za-z]+)\)\)?$")
#: one step of a plain path: an extension('url'), a filter on a string child
#: (where(system='phone')) or a child's name
_STEP = re.compile(
    r"\.(?:extension\('(?P<url>[^']+)'\)"
    r"|where\((?P<key>[a-z][A-Za-z0-9]*) ?= ?'(?P<literal>[^'\\]*)'\)"
    r"|(?P<name>[a-z][A-Za-z0-9]*))"
)
_PATH = re.compile(r"[A-Z][A-Za-z]*(?:" + _STEP.pattern + ")+")
_AS_OPERATOR = re.compile(r"^\((?P<path>[^()]+) as (?P<type>[A-Za-z]+)\)$")
_AS_FUNCTION = re.compile(r"\.as\((?P<type>[A-Za-z]+)\)")
_OF_TYPE = re.compile(r"(?P<path>.+)\.ofType\((?P<type>[A-Za-z]+)\)")

#: one step of a direct walk: element name, whether it is a choice ([x]), extension url
#: filter, (child, literal) filter of a where() step (the name is empty then)
Step = tuple[str, bool, str | None, tuple[str, str] | None]


class Extraction(NamedTuple):
    """How a parameter's values are found in a resource, and the resource's one top-level
    element without which they are none (``subject``), or None when that is not known (a
    FHIRPath branch, a choice, a union): :attr:`Parameter.element`."""

    extract: Extractor
    element: str | None


@dataclass(frozen=True)
class Parameter:
    """One search parameter of one resource type, ready to extract values."""

    code: str
    type: str
    expression: str
    targets: tuple[str, ...]
    url: str
    extract: Extractor
    #: the name its index rows are stored under: its own code, or that of the parameter of its
    #: type whose rows it reads (:func:`_sharing_rows`)
    rows: str
    #: the code systems a token parameter's ``code`` elements take their values from, which a
    #: resource never writes (Patient.gender: administrative-gender); see :func:`_implicit_system`
    implicit_systems: frozenset[str] = frozenset()
    #: the resource's one top-level element (``subject``) without which :attr:`extract` finds
    #: nothing, or None when that is not known (a FHIRPath branch, a choice, a union)
    element: str | None = None
    #: (a reference parameter's) every branch ends at a ``canonical`` element: a bare URL, with
    #: no ``identifier`` for the ``:identifier`` modifier to search (:meth:`SearchParameters._canonical`)
    canonical: bool = False


class SearchParameters:
    """The compiled search parameters of every resource type, built lazily and cached."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._compiled: dict[str, dict[str, Parameter]] = {}
        self._failed: dict[str, dict[str, str]] = {}
        self._referring: dict[str, list[tuple[str, str]]] = {}
        self._pointing: dict[str, tuple[tuple[str, str], ...]] = {}

    @cached_property
    def terminology(self) -> Terminology:
        """The code systems' hierarchies a token's ``:below`` and ``:above`` read, built on
        the first such search (most workers never serve one)."""
        return Terminology(self.registry)

    def for_type(self, resource_type: str) -> dict[str, Parameter]:
        """Supported parameters of a type by code (``Resource`` ones included)."""
        if resource_type not in self._compiled:
            self._compile(resource_type)
        return self._compiled[resource_type]

    def get(self, resource_type: str, code: str) -> Parameter | None:
        return self.for_type(resource_type).get(code)

    def targets(self, resource_type: str, code: str) -> tuple[str, ...]:
        """The types a reference parameter may point at (none for an unknown parameter or type:
        a type named in a request is not compiled and cached unless it exists)."""
        parameter = self.get(resource_type, code) if resource_type in self.registry.base_types else None
        return parameter.targets if parameter is not None and parameter.type == "reference" else ()

    def referring(self, target: str) -> list[tuple[str, str]]:
        """(type, code) of every reference parameter, of any type, that may point at ``target``:
        where a resource pointing at one of ``target`` says so in the index."""
        if target not in self._referring:
            self._referring[target] = [
                (kind, code)
                for kind in sorted(r4_resource_types())
                for code, parameter in self.for_type(kind).items()
                if parameter.type == "reference" and target in parameter.targets
            ]
        return self._referring[target]

    def pointing(self, target: str) -> tuple[tuple[str, str], ...]:
        """(type, name) of every index row that may say a resource points at ``target``: the
        :meth:`referring` parameters' and every type's :data:`UNINDEXED_REFERENCES` ones.  For
        a delete, which must leave no reference dangling, and a merge, which must leave none
        naming the retired record; a search or an export asks :meth:`referring`, the
        parameters a client can name.  Made once per target, as :meth:`referring` is (and
        kept as long): every delete asks, and made anew it was about 146 pairs, the types
        sorted again each time.  A tuple, so no caller can change what the next delete reads."""
        if target not in self._pointing:
            unindexed = ((kind, UNINDEXED_REFERENCES) for kind in sorted(r4_resource_types()))
            self._pointing[target] = (*self.referring(target), *unindexed)
        return self._pointing[target]

    def unsupported(self, resource_type: str) -> dict[str, str]:
        """Defined parameters that could not be compiled, code → why."""
        self.for_type(resource_type)
        return self._failed[resource_type]

    def _compile(self, resource_type: str) -> None:
        compiled: dict[str, Parameter] = {}
        failed: dict[str, str] = {}
        for code, spec in self.registry.search_parameters(resource_type).items():
            if code == UNINDEXED_REFERENCES:
                failed[code] = "reserved for the references no other parameter indexes"
                continue
            if code == IDENTIFIED_PEOPLE:
                failed[code] = "reserved for the people named by number alone"
                continue
            try:
                extraction = self._extractor(spec["expression"], resource_type)
            except Exception as exc:  # fhirpathpy raises bare Exception for unknown functions
                failed[code] = str(exc)
                continue
            implicit = self._implicit_systems(spec["expression"], resource_type) if spec["type"] == "token" else ()
            compiled[code] = Parameter(
                code,
                spec["type"],
                spec["expression"],
                tuple(spec.get("target", [])),
                spec["url"],
                extraction.extract,
                code,
                frozenset(implicit),
                extraction.element,
                spec["type"] == "reference" and self._canonical(spec["expression"], resource_type),
            )
        self._compiled[resource_type] = _sharing_rows(compiled)
        self._failed[resource_type] = failed

    def _implicit_systems(self, expression: str, resource_type: str) -> list[str]:
        """The code systems of the expression's branches (on this type) that are ``code``
        elements bound to a value set drawing on one system alone."""
        found = []
        for part in split_union(expression):
            path = part.strip("()")
            if path.startswith(f"{resource_type}.") and _PLAIN_PATH.fullmatch(path):
                system = _implicit_system(self.registry, path)
                if system is not None:
                    found.append(system)
        return found

    def _canonical(self, expression: str, resource_type: str) -> bool:
        """Whether every branch of a reference parameter's expression on this type is a plain
        path (its filters aside) to a ``canonical`` element of the R4 model
        (``QuestionnaireResponse.questionnaire``, ``PlanDefinition.relatedArtifact.where(…).resource``).
        R4 takes ``:identifier`` on a Reference alone: on a canonical it would match nothing,
        silently, so the query parser refuses it.  A branch whose element is not known (a
        FHIRPath function) counts as no canonical: the modifier stays allowed."""
        starts = (f"{resource_type}.", f"({resource_type}.")
        paths = [
            _INDEX.sub("", _FILTER.sub("", part.strip("()")))
            for part in split_union(expression)
            if part.startswith(starts)
        ]
        return bool(paths) and all(
            _PLAIN_PATH.fullmatch(path) and _element_types(self.registry.base_types, path) == ["canonical"]
            for path in paths
        )

    def _extractor(self, expression: str, resource_type: str) -> Extraction:
        """One extractor for the branches of a (possibly shared) expression that apply to the
        type, and the top-level element it needs: one branch's own, none of a union."""
        starts = tuple(f"{prefix}{root}." for prefix in ("", "(") for root in (resource_type, "Resource"))
        parts = [part for part in split_union(expression) if part.startswith(starts)]
        if not parts:
            raise ValueError(f"no part of the expression applies to {resource_type}")
        parts = [part for part in parts if not self._holds_a_resource(part)]
        if not parts:
            raise ValueError("the expression reaches a resource held inline, which has no value to index")
        found = [self._branch(part, resource_type) for part in parts]
        branches = [branch.extract for branch in found]
        # most expressions have one branch: its values are copied in C, not gathered value by
        # value (a fifth of extracting a Patient's), and copied still, so no caller's change
        # reaches a memoised result (:func:`_memoised`)
        only = branches[0] if len(branches) == 1 else None

        def extract(resource: dict[str, Any]) -> list[Any]:
            # An expression can still fail on odd data (fhirpathpy raises on type clashes);
            # like a malformed value, that yields nothing to index rather than refusing the write.
            try:
                if only is not None:
                    return list(only(resource))
                return [value for branch in branches for value in branch(resource)]
            except Exception:
                return []

        return Extraction(extract, found[0].element if len(found) == 1 else None)

    def _holds_a_resource(self, path: str) -> bool:
        """Whether a plain path (its ``[n]`` indexes aside) ends at an element that holds a
        resource inline: R4's Bundle ``composition`` and ``message`` (``Bundle.entry[0].resource``)
        are reference parameters meant for chaining into the Bundle's own first entry, where no
        index row of a reference can lead, so they would be advertised and never match."""
        plain = _INDEX.sub("", path)
        return bool(_PLAIN_PATH.fullmatch(plain)) and _element_types(self.registry.base_types, plain) == ["Resource"]

    def _branch(self, expression: str, resource_type: str) -> Extraction:
        """A branch's extractor, and the top-level element it needs, when it is a plain path."""
        target = None
        if match := _RESOLVE.match(expression):
            expression, target = match["path"], match["type"]
        if "resolve()" in expression:
            raise ValueError("resolve() is not supported")
        # Resource-level parameters are written on "Resource." but apply to every type.
        if expression.startswith("Resource."):
            expression = resource_type + expression[len("Resource") :]
        # R4 writes "(X as T)" where X repeats (Observation.component.value); FHIRPath's "as"
        # wants a singleton, "ofType" filters a collection, which is what R4 means.
        if match := _AS_OPERATOR.match(expression):
            expression = f"{match['path']}.ofType({match['type']})"
        expression = _AS_FUNCTION.sub(r".ofType(\g<type>)", expression)
        dotted = self._dotted(expression)
        found = dotted if dotted is not None else Extraction(self._fhirpath(expression, resource_type), None)
        if target is None:
            return found
        extract = found.extract
        return Extraction(
            lambda resource: [v for v in extract(resource) if _refers_to(v, target, resource)], found.element
        )

    def _dotted(self, expression: str) -> Extraction | None:
        """A direct dict walk for a plain path (optionally ending in a choice's ``ofType``), and
        the top-level element its first step reads, when that is one name."""
        of_type = _OF_TYPE.fullmatch(expression)
        path = of_type["path"] if of_type else expression
        if not _PATH.fullmatch(path):
            return None
        root = path.split(".", 1)[0]
        steps = _model_steps(self.registry.base_types, root, _STEP.finditer(path, len(root)))
        if steps is None:
            return None
        if of_type:
            name, choice, _, _ = steps[-1]
            if not choice:
                return None
            kind = of_type["type"]
            steps[-1] = (name + kind[0].upper() + kind[1:], False, None, None)  # value[x] as Quantity: valueQuantity
        # a first step by name (an extension's url walks ``extension``) finds nothing without
        # it; a choice's may be any of its typed names, a where() step filters the resource
        first = steps[0] if steps else ("", True, None, None)
        element = None if first[1] or first[3] else first[0]
        return Extraction(lambda resource: _walk([resource], steps), element)

    @staticmethod
    def _fhirpath(expression: str, resource_type: str) -> Extractor:
        compiled = fhirpathpy.compile(expression, models["r4"])
        compiled({"resourceType": resource_type})  # unknown functions only fail when evaluated
        relative = re.sub(rf"(?<![.\w`%$]){resource_type}\.", "", expression)
        names = referenced_children(relative)
        return compiled if names is None else _memoised(compiled, names, resource_type)


#: where R4's own search parameters are defined: the only ones that share index rows
R4_SEARCH_PARAMETERS = "http://hl7.org/fhir/SearchParameter/"


def _sharing_rows(compiled: dict[str, Parameter]) -> dict[str, Parameter]:
    """The parameters, each string parameter of R4 defined by the same expression as another
    of its type reading that one's index rows instead of writing its own: R4's ``phonetic``
    is ``Patient.name`` as ``name`` is, and wrote the same rows again under its own name, 3
    of a Patient's 24, each a B-tree entry at a random place that every create pays for.  The
    rows are kept under the first code in code order.  R4's definitions alone, which never
    change: were a package's or an ``--ig``'s among them, which name holds the rows would
    depend on what is loaded, and a gateway restarted with a parameter of ``name``'s
    expression (``full-name``) would look for its Patients' rows under that name, where none
    were written.

    Strings alone: a string parameter's name reaches SQL only through a criterion and a
    sort key, which the query parser builds from :attr:`Parameter.rows`; a reference's
    reaches it through includes, compartments and referrer probes too, and R4's shared
    references (``Coverage.beneficiary`` as ``beneficiary`` and ``patient``) keep their rows."""
    owners: dict[str, str] = {}
    for code in sorted(compiled):
        parameter = compiled[code]
        if parameter.type == "string" and parameter.url.startswith(R4_SEARCH_PARAMETERS):
            owner = owners.setdefault(parameter.expression, code)
            if owner != code:
                compiled[code] = replace(parameter, rows=owner)
    return compiled


def _memoised(evaluate: Extractor, names: frozenset[str], resource_type: str) -> Extractor:
    """``evaluate``, remembered by the values of the children it reads.

    Why: fhirpathpy wraps every node it visits, so an expression it must evaluate costs tens
    of microseconds, on every write of the type (R4's ``Patient.deceased.exists() and
    Patient.deceased != false`` was a quarter of indexing a Patient), while the children such
    an expression reads take a handful of values across a whole archive.  An expression that
    may read anything else (``resolve()``, ``%resource``, a type name) is not memoised."""
    keys = KeyFilter(key_pattern(names))
    memo: dict[bytes, list[Any]] = {}

    def extract(resource: dict[str, Any]) -> list[Any]:
        admitted = keys.admitted(resource)
        projection = {key: value for key, value in resource.items() if key in admitted}
        try:
            key = orjson.dumps(projection, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON (never from the wire): evaluate directly
            return evaluate(resource)
        found = memo.get(key)
        if found is None:
            found = evaluate({"resourceType": resource_type, **projection})
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[key] = found
        return found

    return extract


def split_union(expression: str) -> list[str]:
    """Split at top-level ``|``: a union inside parentheses belongs to one branch."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(expression):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(expression[start:index].strip())
            start = index + 1
    parts.append(expression[start:].strip())
    return [p for p in parts if p]


_PLAIN_PATH = re.compile(r"[A-Z][A-Za-z]+(?:\.[a-z][A-Za-z]*)+")
#: an index into a collection (``entry[0]``)
_INDEX = re.compile(r"\[\d+\]")
#: a filter step of no nested call (``.where(type='composed-of')``), which keeps its element's type
_FILTER = re.compile(r"\.where\([^()]*\)")


def _element_spec(types: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The R4 base model's entry for the element a plain path names (None if it names none,
    or names only a resource type)."""
    root, *names = path.split(".")
    node_path, spec = root, None
    for name in names:
        node = types.get(node_path.split(".")[0], {}).get("nodes", {}).get(node_path) if node_path else None
        spec = node.get(name) if node else None
        if spec is None:
            return None
        codes = [t["code"] for t in spec.get("types", [])]
        node_path = spec.get("node") or (codes[0] if len(codes) == 1 and codes[0] in types else "")
    return spec


def _element_types(types: dict[str, Any], path: str) -> list[str]:
    """The type codes of the element a plain path names in the R4 base model (none if it
    names no element)."""
    spec = _element_spec(types, path)
    return [] if spec is None else [t["code"] for t in spec.get("types", [])]


def _implicit_system(registry: Registry, path: str) -> str | None:
    """The system a ``code`` element's values belong to: R4 search lets a token name it
    (``gender=http://hl7.org/fhir/administrative-gender|female``, search.html#token), though
    the element holds the bare code.  Known when the element's value set draws on one code
    system alone; None for any other element."""
    spec = _element_spec(registry.base_types, path)
    if spec is None or [t["code"] for t in spec.get("types", [])] != ["code"] or "binding" not in spec:
        return None
    systems = {system for system, _ in registry.base_valuesets.get(spec["binding"]) or []}
    return systems.pop() if len(systems) == 1 else None


def _model_steps(types: dict[str, Any], root: str, matches: Iterator[re.Match[str]]) -> list[Step] | None:
    """The walk's steps, or None if the path leaves the R4 model."""
    if root not in types:
        return None
    node_path, steps = root, []
    for match in matches:
        if match["url"]:
            steps.append(("extension", False, match["url"], None))
            node_path = "Extension"
            continue
        node = types[node_path.split(".")[0]]["nodes"].get(node_path, {}) if node_path else {}
        if match["key"]:
            codes = [t["code"] for t in node.get(match["key"], {}).get("types", [])]
            if len(codes) != 1 or not _is_string(types, codes[0]):
                return None  # not a string child of this element: fhirpathpy decides
            steps.append(("", False, None, (match["key"], match["literal"])))
            continue
        name = match["name"]
        spec, choice = node.get(name), False
        if spec is None:
            spec, choice = node.get(f"{name}[x]"), True
        if spec is None:
            return None
        steps.append((name, choice, None, None))
        if "node" in spec:
            node_path = spec["node"]
        elif len(spec.get("types", [])) == 1 and spec["types"][0]["code"] in types:
            node_path = spec["types"][0]["code"]
        else:
            node_path = ""  # a choice or a primitive: only valid as the last step
    return steps


def _is_string(types: dict[str, Any], code: str) -> bool:
    """Whether a primitive type is string or uri, or derives from one (code, id, url …): a
    value a where() step may compare with a string literal as it stands in the JSON."""
    while code not in ("string", "uri"):
        base = types.get(code, {}).get("base")
        if not base or base == code or base not in types:
            return False
        code = base
    return True


def _walk(values: list[Any], steps: list[Step]) -> list[Any]:
    """The values the steps reach from ``values``, in document order: one level at a time (a
    generator per level and value cost more than the walk itself)."""
    for name, choice, url, where in steps:
        reached: list[Any] = []
        for value in values:
            if not isinstance(value, dict):
                continue
            if where is not None:
                if value.get(where[0]) == where[1]:
                    reached.append(value)
                continue
            if url:
                found = [e for e in value.get("extension", ()) if isinstance(e, dict) and e.get("url") == url]
            elif choice:
                found = [v for k, v in value.items() if k.startswith(name) and k[len(name) : len(name) + 1].isupper()]
            elif name in value:
                found = [value[name]]
            else:
                continue
            for item in found:
                if isinstance(item, list):
                    reached.extend(item)
                else:
                    reached.append(item)
        if not reached:
            return reached
        values = reached
    return values


def _refers_to(value: Any, resource_type: str, resource: dict[str, Any]) -> bool:
    """Whether a Reference of ``resource`` points at a resource of the type (relative or
    absolute URL) or, of a Patient, names a person by number alone (:func:`identified_person`):
    the person is a Patient of the archive, whom the identity index tells.  Such a Reference
    has no search row (no id to match), only its :data:`IDENTIFIED_PEOPLE` row, so the
    parameters R4 narrows to Patients (Condition's ``patient``, a compartment parameter) place
    it in the person's compartment as ``subject`` names them."""
    reference = value.get("reference", "") if isinstance(value, dict) else ""
    if not isinstance(reference, str):
        return False
    return (
        reference.startswith(f"{resource_type}/")
        or f"/{resource_type}/" in reference
        or (resource_type == "Patient" and bool(identified_person(value, resource)))
    )


def identified_person(value: Any, resource: dict[str, Any]) -> list[str]:
    """The match keys of the person a Reference names other than by the id of their record, as
    the read rule counts them: one carrying only an ``identifier`` that is a person's (typed
    Patient, or a 身份证号, 健康档案编号 or 医保人员编号 the identity index knows people by), or
    one to a contained Patient (by its numbers).  A person no key identifies (typed Patient
    with a number of another system, a contained Patient without numbers) is the key "", which
    no one holds: the reader cannot be shown to serve them.  None for a literal reference (the
    parameter's own row counts it)."""
    if not isinstance(value, dict) or value.get("type") not in (None, "Patient"):
        return []
    reference, identifier = value.get("reference"), value.get("identifier")
    if isinstance(reference, str) and reference.startswith("#"):
        contained = [c for c in resource.get("contained") or [] if isinstance(c, dict) and c.get("id") == reference[1:]]
        if not contained or contained[0].get("resourceType") != "Patient":
            return []
        return _person_keys(contained[0].get("identifier")) or [""]
    if reference is not None or not isinstance(identifier, dict):
        return []
    return _person_keys([identifier]) or ([""] if value.get("type") == "Patient" else [])


def _person_keys(identifiers: Any) -> list[str]:
    """The match keys of well-formed identifiers (a stored resource need not be valid)."""
    if not isinstance(identifiers, list):
        return []
    usable = [
        i for i in identifiers if isinstance(i, dict) and all(isinstance(i.get(k), str) for k in ("system", "value"))
    ]
    return match_keys({"identifier": usable})
