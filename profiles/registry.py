"""Registry of conformance resources, looked up by canonical URL.

Definitions come from an ordered chain of sources — the built-in provincial package first,
then the Bulk Data Access IG's $export operations as the gateway implements them
(``profiles/bulkdata``), then whatever the caller adds (``--ig`` folders, packages, bundles, single resources) — and
the first source that knows a URL answers; after them, the R4 core constraint profiles
(vital signs…, ``profiles/base/r4-core-profiles.json``).  The registry holds data only; compiling and
applying definitions is the validator's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from profiles.canonical import DEFAULT_BASE

PACKAGE_DIR = Path(__file__).parent / "package"
#: the Bulk Data Access IG's $export OperationDefinitions as the gateway implements them: no
#: provincial artefacts (their canonicals are the IG's), built in beside the package
BULK_DATA_DIR = Path(__file__).parent / "bulkdata"
BASE_DIR = Path(__file__).parent / "base"
#: which of the package's NamingSystems are national identity documents, and their match keys' kinds
IDENTITY_DOCUMENTS = Path(__file__).parent / "identity-documents.json"

#: Resource types that carry definitions; anything else met while loading is not ours to index.
DEFINITIONAL_TYPES = frozenset(
    {
        "StructureDefinition",
        "ValueSet",
        "CodeSystem",
        "ConceptMap",
        "NamingSystem",
        "ImplementationGuide",
        "CapabilityStatement",
        "SearchParameter",
        "OperationDefinition",
    }
)

Resource = dict[str, Any]


class DefinitionError(ValueError):
    """A definitions file or folder could not be loaded.  ``path`` names it and ``problem``
    says why by a stable word (``missing``, ``unreadable``, ``not-json``, ``too-deep``,
    ``not-a-resource``), which a command line words in its reader's language; ``str()`` is
    the English, for logs and callers that word nothing."""

    def __init__(self, path: object, problem: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path, self.problem = str(path), problem


#: JSON nesting a definition may have (the deepest R4 definition is about 12); deeper input is
#: refused before anything recursive (json, the compiler, FHIRPath) can overflow the stack
MAX_DEFINITION_DEPTH = 100


def _too_deep(document: Any, limit: int) -> bool:
    """Whether ``document`` nests deeper than ``limit`` (iterative: safe on any depth)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class DefinitionSource:
    """One named set of definitions (a package, an ``--ig`` argument)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_url: dict[str, Resource] = {}
        #: R4 NamingSystems have no url; they are found by the identifier systems they declare
        self.naming: dict[str, Resource] = {}

    def add(self, resource: Resource) -> None:
        """Index one resource; shapes that cannot be looked up (a url that is no string) are skipped."""
        if resource.get("resourceType") == "NamingSystem":
            uniques = resource.get("uniqueId")
            for unique in uniques if isinstance(uniques, list) else []:
                value = unique.get("value") if isinstance(unique, dict) else None
                if isinstance(value, str) and value:
                    self.naming.setdefault(f"urn:oid:{value}" if unique.get("type") == "oid" else value, resource)
            return
        url = resource.get("url")
        if not isinstance(url, str) or not url:
            return
        self.by_url.setdefault(url, resource)
        version = resource.get("version")
        if isinstance(version, str) and version:
            self.by_url.setdefault(f"{url}|{version}", resource)

    def __len__(self) -> int:
        return sum(1 for key in self.by_url if "|" not in key) + len({id(r) for r in self.naming.values()})


class Registry:
    """Lookup of conformance resources by canonical URL across a chain of sources."""

    def __init__(self, canonical_base: str = DEFAULT_BASE, *, builtin: bool = True) -> None:
        self.canonical_base = canonical_base.rstrip("/")
        self.sources: list[DefinitionSource] = []
        #: bumped whenever definitions are added, so compiled forms of them can be dropped
        self.generation = 0
        if builtin:
            self.sources += [_builtin(self.canonical_base), _bulk_data()]
        self._builtins = len(self.sources)

    @property
    def added(self) -> list[DefinitionSource]:
        """The sources the caller added (``--ig`` …), after the built-in ones."""
        return self.sources[self._builtins :]

    # -- loading -------------------------------------------------------------------------
    def add_path(self, path: str | Path) -> int:
        """Load a JSON resource, a Bundle of them, a folder or a FHIR package folder."""
        path = Path(path)
        source = DefinitionSource(str(path))
        if path.is_dir():
            resources = self._read_folder(path, rebase=False)
        elif path.is_file():
            resources = self._expand(self._read_json(path, rebase=False), path)
        else:
            raise DefinitionError(path, "missing", "no such file or folder")
        for resource in resources:
            rtype = resource.get("resourceType")
            if isinstance(rtype, str) and rtype in DEFINITIONAL_TYPES:
                source.add(resource)
        self.sources.append(source)
        self.generation += 1
        return len(source)

    def add_resource(self, resource: Resource, source_name: str = "runtime") -> None:
        """Add one definition; raises :class:`DefinitionError` when it cannot be one."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise DefinitionError(source_name, "not-a-resource", "not a FHIR resource")
        if _too_deep(resource, MAX_DEFINITION_DEPTH):
            raise DefinitionError(source_name, "too-deep", f"nested more than {MAX_DEFINITION_DEPTH} levels deep")
        source = DefinitionSource(source_name)
        source.add(resource)
        self.sources.append(source)
        self.generation += 1

    def _read_folder(self, folder: Path, rebase: bool) -> Iterator[Resource]:
        # A FHIR package tarball unpacks to package/; its examples/ and other/ are not definitions.
        if (folder / "package" / "package.json").is_file():
            folder = folder / "package"
        for file in sorted(folder.glob("*.json")):
            if file.name in ("package.json", ".index.json"):
                continue
            yield from self._expand(self._read_json(file, rebase), file)

    def _read_json(self, file: Path, rebase: bool) -> Any:
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionError(file, "unreadable", f"cannot read ({exc})") from exc
        if rebase and self.canonical_base != DEFAULT_BASE:
            text = text.replace(DEFAULT_BASE, self.canonical_base)
        try:
            document = json.loads(text)
        except ValueError as exc:  # JSONDecodeError, or an integer of more than 4,300 digits
            raise DefinitionError(file, "not-json", f"not JSON ({str(exc)[:200]})") from exc
        except RecursionError as exc:
            raise DefinitionError(file, "too-deep", "JSON nested too deeply") from exc
        if _too_deep(document, MAX_DEFINITION_DEPTH):
            raise DefinitionError(file, "too-deep", f"nested more than {MAX_DEFINITION_DEPTH} levels deep")
        return document

    @staticmethod
    def _expand(document: Any, file: Path) -> Iterable[Resource]:
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise DefinitionError(file, "not-a-resource", "not a FHIR resource")
        if document["resourceType"] == "Bundle":
            entries = document.get("entry")
            if not isinstance(entries, list):
                return []
            return [e["resource"] for e in entries if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
        return [document]

    # -- lookup --------------------------------------------------------------------------
    def get(self, url: str) -> Resource | None:
        if not isinstance(url, str):
            return None
        for source in self.sources:
            if (found := source.by_url.get(url)) is not None:
                return found
        if "|" in url:
            return self.get(url.split("|", 1)[0])
        return _core_profiles().get(url)

    def naming_system(self, system: str) -> Resource | None:
        """The NamingSystem declaring an identifier system (a uri or urn:oid)."""
        if not isinstance(system, str):
            return None
        for source in self.sources:
            if (found := source.naming.get(system)) is not None:
                return found
        return None

    def all(self, resource_type: str) -> list[Resource]:
        seen: dict[str, Resource] = {}
        if resource_type == "NamingSystem":
            for source in self.sources:
                for resource in source.naming.values():
                    seen.setdefault(str(resource.get("id", id(resource))), resource)
            return list(seen.values())
        for source in self.sources:
            for key, resource in source.by_url.items():
                if "|" not in key and resource["resourceType"] == resource_type:
                    seen.setdefault(key, resource)
        return list(seen.values())

    def url(self, kind: str, slug: str) -> str:
        """Canonical URL of a provincial artefact under this registry's base."""
        return f"{self.canonical_base}/{kind}/{slug}"

    # -- the FHIR R4 base model (derived data, see tools/derive_r4_base.py) ----------------
    @property
    def base_types(self) -> dict[str, Any]:
        return r4_base_types()

    @cached_property
    def base_valuesets(self) -> dict[str, list[list[str]] | None]:
        return _load_base("r4-valuesets.json")["valuesets"]

    @cached_property
    def core_valuesets(self) -> dict[str, Any]:
        """The other enumerable hl7.fhir.r4.core value sets (tools/derive_core_valuesets.py):
        ``{"valuesets": {url: {system: [codes] | "*"}}, "codesystems": {system: [codes]}}``,
        ``"*"`` standing for the whole code system."""
        derived = _load_base("r4-core-valuesets.json")
        return {"valuesets": derived["valuesets"], "codesystems": derived["codesystems"]}

    @cached_property
    def base_extensions(self) -> dict[str, dict[str, Any]]:
        """R4 core extensions by URL: contexts, value types, slices (tools/derive_core_extensions.py)."""
        return _load_base("r4-extensions.json")["extensions"]

    @cached_property
    def vital_signs_codes(self) -> dict[str, dict[str, str]]:
        """System → code → the R4 vital-signs profile an Observation with that code must meet
        (observation-vitalsigns.html; derived by tools/derive_core_profiles.py)."""
        return _load_base("r4-core-profiles.json")["observationCodes"]

    @cached_property
    def base_search_parameters(self) -> dict[str, dict[str, dict[str, Any]]]:
        return _load_base("r4-search-params.json")["params"]

    @cached_property
    def patient_compartment(self) -> dict[str, list[str]]:
        """Resource type → the search parameters that put it in a Patient's compartment."""
        return _load_base("r4-patient-compartment.json")["params"]

    def search_parameters(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Search parameters of a type: code → {"type", "expression", "target", "url"}.

        The R4 base (the type's own and the ``Resource`` ones) is overlaid with the
        SearchParameter resources the registry knows, so a provincial definition of a
        code replaces the base one.
        """
        merged: dict[str, dict[str, Any]] = {}
        for scope in ("Resource", resource_type):
            for code, spec in self.base_search_parameters.get(scope, {}).items():
                merged[code] = {"target": [], **spec}
        for sp in self.all("SearchParameter"):
            if resource_type in sp.get("base", []) and "expression" in sp:
                merged[sp["code"]] = {
                    "type": sp["type"],
                    "expression": sp["expression"],
                    "target": list(sp.get("target", [])),
                    "url": sp["url"],
                }
        return merged


@cache
def _builtin(canonical_base: str) -> DefinitionSource:
    """The provincial package under a canonical base, read once per process and shared by
    every Registry (a source is never changed after loading; additions are new sources)."""
    source = DefinitionSource("built-in provincial package")
    for resource in Registry(canonical_base, builtin=False)._read_folder(PACKAGE_DIR, rebase=True):
        source.add(resource)
    return source


@cache
def _bulk_data() -> DefinitionSource:
    """The $export operations the gateway serves, read once per process: they answer before
    any ``--ig`` source, since what the gateway takes is what it implements, not what a
    loaded copy of the IG allows."""
    source = DefinitionSource("Bulk Data Access IG operations")
    for resource in Registry(builtin=False)._read_folder(BULK_DATA_DIR, rebase=False):
        source.add(resource)
    return source


def bulk_data_operation(url: str) -> Resource | None:
    """One of the built-in ``$export`` operations by canonical, as every Registry answers it
    (before any ``--ig`` source), for readers that need only them (a kick-off's parameters):
    building a Registry reads the provincial package, about a second under another base."""
    return _bulk_data().by_url.get(url)


@dataclass(frozen=True)
class IdentityDocuments:
    """The national identity documents' identifier systems (``identity-documents.json``), one
    definition for every reader: the match keys, the search index that stores their numbers
    upper-cased, and the SQL that finds them so."""

    #: a system matched exactly (the 身份证's two OIDs) → its document's match-key kind
    exact: Mapping[str, str]
    #: a system's path after any canonical base (``/sid/hmt-residence-permit``) → kind
    suffixes: Mapping[str, str]

    #: the suffixes as one tuple, for ``str.endswith``: the index reads every identifier so
    ends: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ends", tuple(self.suffixes))

    def kind(self, system: str) -> str | None:
        """The match-key kind of a document's system (``idcard``), None for any other system."""
        found = self.exact.get(system)
        if found is None and system.endswith(self.ends):
            found = next(kind for end, kind in self.suffixes.items() if system.endswith(end))
        return found


@cache
def identity_documents() -> IdentityDocuments:
    """The identity documents, read once per process from their data file and the package's
    NamingSystems under the default base (a suffix holds under any base, so a province's
    registry answers alike), without reading the whole package (about 2 s)."""
    listed = json.loads(IDENTITY_DOCUMENTS.read_text(encoding="utf-8"))["documents"]
    reader = Registry(builtin=False)
    naming: dict[str, Resource] = {}
    for file in sorted(PACKAGE_DIR.glob("NamingSystem-*.json")):
        resource = reader._read_json(file, rebase=False)
        naming[resource["id"]] = resource
    exact: dict[str, str] = {}
    suffixes: dict[str, str] = {}
    for document in listed:
        systems = frozenset(
            f"urn:oid:{unique['value']}" if unique["type"] == "oid" else unique["value"]
            for unique in naming[document["namingSystem"]]["uniqueId"]
            if unique["type"] in ("uri", "oid")
        )
        for system in systems:
            if system.startswith(DEFAULT_BASE + "/"):
                suffixes[system.removeprefix(DEFAULT_BASE)] = document["kind"]
            else:
                exact[system] = document["kind"]
    return IdentityDocuments(exact, suffixes)


@cache
def _core_profiles() -> dict[str, Resource]:
    """The R4 core constraint profiles (vital signs…) by URL, answering after every source: a
    package or ``--ig`` may publish its own version of one (tools/derive_core_profiles.py)."""
    return {sd["url"]: sd for sd in _load_base("r4-core-profiles.json")["profiles"]}


@cache
def _load_base(name: str) -> dict[str, Any]:
    """A derived base-model file, read once per process; callers must not change it."""
    with (BASE_DIR / name).open(encoding="utf-8") as handle:
        return json.load(handle)


def r4_base_types() -> dict[str, Any]:
    """The R4 base model's types: static data, the same for every registry, so readers that
    need only it (the XML codec, ``_elements``) take it from here without building one."""
    return _load_base("r4-types.json")["types"]


@cache
def r4_resource_types() -> frozenset[str]:
    """The concrete R4 resource types (no datatype, no abstract Resource or DomainResource)."""
    return frozenset(
        name
        for name, definition in r4_base_types().items()
        if definition["kind"] == "resource" and not definition.get("abstract")
    )


def examples_dir() -> Path:
    return PACKAGE_DIR / "examples"


def example_manifest() -> list[dict[str, Any]]:
    """Every example's expected verdict (invalid ones list the message ids and FHIRPath they
    must raise), from one ``<folder>.manifest.json`` per example folder so that adding a
    profile's examples never edits another profile's file."""
    entries: list[dict[str, Any]] = []
    for path in sorted(examples_dir().glob("*.manifest.json")):
        entries += json.loads(path.read_text(encoding="utf-8"))["examples"]
    return entries
