"""The provincial package: every example's verdict, and the package's own integrity."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from conformance.bundle_index import BundleIndex, split_version
from conformance.validator import Validator
from profiles.registry import DEFAULT_BASE, PACKAGE_DIR, Registry, example_manifest, examples_dir

MANIFEST = example_manifest()


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", MANIFEST, ids=[c["file"] for c in MANIFEST])
def test_example_verdict_matches_the_manifest(validator: Validator, case: dict[str, Any]) -> None:
    """An expectation may also name the invariant ``key`` an ``invariant.failed`` must carry."""
    issues = validator.validate(_load(examples_dir() / case["file"]))
    reported = {(i.message_id, i.expression, None) for i in issues}
    reported |= {(i.message_id, i.expression, i.params["key"]) for i in issues if "key" in i.params}
    has_errors = any(i.is_error for i in issues)
    expected = {(e["id"], e["expression"], e.get("key")) for e in case.get("expect", [])}
    assert (has_errors, expected - reported) == (not case["valid"], set())


def test_every_example_file_is_in_the_manifest() -> None:
    on_disk = {str(p.relative_to(examples_dir())) for p in examples_dir().glob("*/*.json")}
    assert on_disk == {c["file"] for c in MANIFEST}


VALID = [c["file"] for c in MANIFEST if c["valid"]]


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every ``reference`` under ``node`` (contained resources included), with its FHIRPath."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value, f"{path}.reference"
            else:
                yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, f"{path}[{index}]")


def _dangling(
    resource: dict[str, Any], path: str, stored: set[str], bundle: BundleIndex | None, at: str | None
) -> list[str]:
    """The references of ``resource`` (read from the Bundle entry whose fullUrl is ``at``) that
    resolve to nothing: not a contained resource, not an entry of the enclosing Bundle, not an
    absolute http(s) URL and not a standalone valid example."""
    contained = {c.get("id") for c in resource.get("contained", []) if isinstance(c, dict)}
    dangling = []
    for reference, where in _references(resource, path):
        if reference.startswith("#"):
            resolved = reference == "#" or reference[1:] in contained
        elif bundle is not None and "?" in reference:
            resolved = bundle.conditional(reference) == ("count", 1)
        elif bundle is not None and bundle.find(reference, at) is not None:
            resolved = True
        else:
            resolved = reference.startswith(("http://", "https://")) or split_version(reference)[0] in stored
        if not resolved:
            dangling.append(f"{where} → {reference}")
    return dangling


@cache
def _standalone_valid_examples() -> set[str]:
    """``Type/id`` of every valid example the demo archive holds (all but the Bundles)."""
    resources = [_load(examples_dir() / file) for file in VALID]
    return {f"{r['resourceType']}/{r['id']}" for r in resources if r["resourceType"] != "Bundle"}


@pytest.mark.parametrize("file", VALID)
def test_every_reference_of_a_valid_example_resolves_to_another_valid_example(file: str) -> None:
    """``serve --demo`` loads the valid examples (not the Bundles) into one archive: a reference
    that names no valid example is dangling there from the start.  A reference resolves to a
    standalone valid example, to a contained resource, inside its own Bundle (a document's or
    a transaction's entries), or is an absolute URL outside the package."""
    stored = _standalone_valid_examples()
    resource = _load(examples_dir() / file)
    if resource["resourceType"] != "Bundle":
        dangling = _dangling(resource, resource["resourceType"], stored, None, None)
    else:
        index = BundleIndex(resource)
        dangling = [
            found
            for position, entry in enumerate(resource.get("entry", []))
            for found in _dangling(
                entry["resource"], f"Bundle.entry[{position}].resource", stored, index, entry.get("fullUrl")
            )
        ]
    assert dangling == []


def test_every_profile_has_a_valid_and_an_invalid_example() -> None:
    profiles = {r["id"] for r in Registry().all("StructureDefinition") if r["kind"] == "resource"}
    folders = {c["file"].split("/")[0] for c in MANIFEST if c["valid"]} & {
        c["file"].split("/")[0] for c in MANIFEST if not c["valid"]
    }
    assert profiles - folders == set()


@pytest.mark.parametrize("path", sorted(PACKAGE_DIR.glob("*-*.json")), ids=lambda p: p.name)
def test_conformance_resource_is_valid_fhir(path: Path) -> None:
    resource = _load(path)
    assert get_fhir_model_class(resource["resourceType"]).model_validate(resource).id == resource["id"]


def test_implementation_guide_lists_every_resource_of_the_package() -> None:
    guide = _load(PACKAGE_DIR / "ImplementationGuide-cn.yiyang.provincial.json")
    listed = {r["reference"]["reference"] for r in guide["definition"]["resource"]}
    in_folder = {
        f"{r['resourceType']}/{r['id']}"
        for r in map(_load, PACKAGE_DIR.glob("*-*.json"))
        if r["resourceType"] != "ImplementationGuide"
    }
    assert in_folder - listed == set()


def test_the_package_defines_its_operations_under_its_own_canonical_base() -> None:
    """Two were published under HL7's URLs (Patient-merge, Measure-evaluate-measure) with the
    gateway's changes, so a client resolving the URL /metadata named read HL7's definition,
    which takes what the gateway refuses; one derived from HL7's names it as its ``base``."""
    foreign = [
        definition["url"]
        for definition in map(_load, PACKAGE_DIR.glob("OperationDefinition-*.json"))
        if not definition["url"].startswith(f"{DEFAULT_BASE}/OperationDefinition/")
    ]
    assert foreign == []


def test_package_manifest_names_fhir_4_0_1() -> None:
    assert _load(PACKAGE_DIR / "package.json")["fhirVersions"] == ["4.0.1"]


def test_every_binding_points_to_a_value_set_the_registry_knows() -> None:
    """The package's own value sets by URL, R4's by their derived expansions (resource-types
    and the other R4 value sets are no resources the registry holds)."""
    registry = Registry()
    r4 = registry.base_valuesets.keys() | registry.core_valuesets["valuesets"].keys()
    missing = set()
    for sd in registry.all("StructureDefinition"):
        for element in sd["differential"]["element"]:
            url = element.get("binding", {}).get("valueSet")
            if url and registry.get(url) is None and url not in r4:
                missing.add(url)
    assert missing == set()


def test_canonical_base_is_rewritten_for_another_province() -> None:
    registry = Registry("https://fhir.example-province.cn")
    assert registry.get("https://fhir.example-province.cn/StructureDefinition/yy-patient")["type"] == "Patient"


def test_rebased_package_still_validates_its_examples() -> None:
    base = "https://fhir.example-province.cn"
    text = (examples_dir() / "yy-patient/valid-zhang-xiuying.json").read_text(encoding="utf-8")
    resource = json.loads(text.replace("http://fhir.yiyang.cn", base))
    assert not any(i.is_error for i in Validator(Registry(base)).validate(resource))


def test_installed_distribution_carries_the_profile_data() -> None:
    files = {str(f) for f in metadata.files("yiyang-gateway") or []}
    assert {
        "profiles/package/StructureDefinition-yy-patient.json",
        "profiles/base/r4-types.json",
        "conformance/messages.json",
    } <= files


def test_every_constraint_of_the_package_is_chinese_with_an_english_translation() -> None:
    """The English of an invariant.failed message is the translation, never "中文 / English"."""
    from conformance.profile_compiler import translation

    untranslated = [
        constraint["key"]
        for path in sorted(PACKAGE_DIR.glob("StructureDefinition-*.json"))
        for element in _load(path).get("differential", {}).get("element", [])
        for constraint in element.get("constraint", [])
        if " / " in constraint["human"] or not translation(constraint.get("_human"), "en")
    ]
    assert untranslated == []
