"""--ig sources: a single resource, a Bundle, a folder and a FHIR package folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from profiles.registry import BULK_DATA_DIR, DefinitionError, Registry, identity_documents

SD = {
    "resourceType": "StructureDefinition",
    "url": "http://example.org/sd/x",
    "version": "1.0",
    "name": "X",
    "status": "active",
    "kind": "resource",
    "abstract": False,
    "type": "Patient",
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
    "derivation": "constraint",
    "differential": {"element": [{"id": "Patient", "path": "Patient"}]},
}


def write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_single_resource_file_is_loaded(tmp_path: Path) -> None:
    registry = Registry(builtin=False)
    registry.add_path(write(tmp_path / "sd.json", SD))
    assert registry.get("http://example.org/sd/x") is not None


def test_versioned_canonical_resolves(tmp_path: Path) -> None:
    registry = Registry(builtin=False)
    registry.add_path(write(tmp_path / "sd.json", SD))
    assert registry.get("http://example.org/sd/x|1.0") is not None


def test_bundle_of_definitions_is_loaded(tmp_path: Path) -> None:
    registry = Registry(builtin=False)
    registry.add_path(
        write(tmp_path / "b.json", {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": SD}]})
    )
    assert registry.get("http://example.org/sd/x") is not None


def test_fhir_package_folder_is_loaded_without_its_examples(tmp_path: Path) -> None:
    write(tmp_path / "package" / "package.json", {"name": "x", "version": "1.0"})
    write(tmp_path / "package" / "StructureDefinition-x.json", SD)
    write(tmp_path / "package" / "examples" / "Patient-1.json", {"resourceType": "Patient"})
    registry = Registry(builtin=False)
    assert registry.add_path(tmp_path) == 1


def test_first_source_wins(tmp_path: Path) -> None:
    registry = Registry(builtin=False)
    registry.add_path(write(tmp_path / "a.json", {**SD, "name": "First"}))
    registry.add_path(write(tmp_path / "b.json", {**SD, "name": "Second"}))
    assert registry.get("http://example.org/sd/x")["name"] == "First"


def test_naming_systems_are_found_by_identifier_system() -> None:
    assert Registry().naming_system("urn:oid:2.16.156.10011.1.3")["id"] == "id-card"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_bad_definition_file_raises_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DefinitionError, match="bad.json"):
        Registry(builtin=False).add_path(path)


BULK_DATA_OPERATIONS = [
    f"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/{code}"
    for code in ("export", "patient-export", "group-export")
]


@pytest.mark.parametrize("url", BULK_DATA_OPERATIONS)
def test_the_bulk_data_export_operations_are_built_in(url: str) -> None:
    assert (Registry().get(url) or {}).get("code") == "export"


def test_the_export_operations_the_gateway_ships_answer_before_an_ig_loaded_after() -> None:
    """What a kick-off takes is what the gateway implements: a loaded copy of the IG, which
    takes includeAssociatedData, does not widen it."""
    registry = Registry()
    ours = registry.get(BULK_DATA_OPERATIONS[0])
    registry.add_resource({**(ours or {}), "parameter": [{"name": "includeAssociatedData", "use": "in"}]})
    assert registry.get(BULK_DATA_OPERATIONS[0]) is ours


def test_the_built_in_sources_are_not_among_those_added() -> None:
    """``validate --ig`` reports the broken definitions of what it loaded, not of what is built in."""
    registry = Registry()
    registry.add_resource(SD)
    assert [source.by_url.get(SD["url"]) for source in registry.added] == [SD]


@pytest.mark.parametrize("path", sorted(BULK_DATA_DIR.glob("*.json")), ids=lambda p: p.name)
def test_a_bulk_data_operation_is_valid_fhir(path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    assert get_fhir_model_class(resource["resourceType"]).model_validate(resource).id == resource["id"]


def test_identity_documents_are_the_systems_their_naming_systems_declare() -> None:
    id_card = Registry().naming_system("urn:oid:2.16.156.10011.1.3")
    declared = {f"urn:oid:{u['value']}" if u["type"] == "oid" else u["value"] for u in id_card["uniqueId"]}
    assert identity_documents().exact == dict.fromkeys(declared, "idcard")


def test_a_document_under_the_canonical_base_is_matched_under_any_base() -> None:
    assert identity_documents().kind("https://fhir.henan.gov.cn/sid/hmt-residence-permit") == "hmt"
