"""``yiyang conformance check``: exported files validated resource by resource into the
report formats — JUnit with one testcase per resource, failing when it has an error; JSON
meeting the schema; every line of any file accounted for, never a traceback.

The command line is run twice (it compiles its own validator, ~2 s); the rest goes through
the same checker and renderers with the session's validator."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.report.aggregate import file_report
from conformance.report.model import Report
from conformance.report.render_json import schema
from conformance.validator import Validator
from gateway.cli import main
from gateway.fhir.repository import default_profiles
from gateway.file_check import FileChecker, files_in
from gateway.reporting import Rendering, render
from tests.conftest import load_example

VALID = load_example("yy-patient/valid-zhang-xiuying.json")
INVALID = load_example("yy-patient/invalid-id-card-checksum.json")


def ndjson(path: Path, *resources: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in resources), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bulk export folder: two valid Patients and, between them, one with a wrong check
    character."""
    folder = tmp_path_factory.mktemp("check") / "export"
    ndjson(folder / "Patient.ndjson", VALID, INVALID, {**VALID, "id": "again"})
    return folder


@pytest.fixture(scope="module")
def junit_run(export: Path) -> tuple[int, ET.Element]:
    """``yiyang conformance check EXPORT --format junit --out FILE --lang en``."""
    out = export.parent / "check.xml"
    code = main(["conformance", "check", str(export), "--format", "junit", "--out", str(out), "--lang", "en"])
    return code, ET.fromstring(out.read_text(encoding="utf-8"))


def report_of(validator: Validator, *paths: Path, lang: str = "en") -> Report:
    checker = FileChecker(validator, default_profiles(validator.registry), 1 << 20, lang)
    checked = [resource for path in files_in(list(paths)) for resource in checker.check(path)]
    return file_report(checked, [("report.scope.files", "export")], "now")


# -- the command line ------------------------------------------------------------------------------
def test_junit_has_one_testcase_per_resource_failing_the_invalid_one(junit_run: tuple[int, ET.Element]) -> None:
    suite = next(s for s in junit_run[1] if s.get("id", "").startswith("file:"))
    assert [case.find("failure") is not None for case in suite] == [False, True, False]


def test_a_failing_testcase_names_the_rule_and_where(junit_run: tuple[int, ET.Element]) -> None:
    failure = next(junit_run[1].iter("failure"))
    assert failure.get("message", "").startswith("rule.id-card-checksum Patient.identifier[0].value")


def test_check_exits_one_when_a_resource_has_an_error(junit_run: tuple[int, ET.Element]) -> None:
    assert junit_run[0] == 1


def test_check_exits_zero_when_every_resource_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "check", str(ndjson(tmp_path / "ok.ndjson", VALID))]) == 0


def test_check_of_a_missing_path_is_a_usage_error() -> None:
    assert main(["conformance", "check", "/no/such/export"]) == 2


def test_check_against_a_profile_no_one_has_is_a_usage_error(tmp_path: Path) -> None:
    """Every resource "passed" http://nope/x, exit 0: a profile unknown is no check at all."""
    export = ndjson(tmp_path / "ok.ndjson", VALID)
    assert main(["conformance", "check", "--profile", "http://nope/x", str(export)]) == 2


# -- what the report holds -----------------------------------------------------------------------------
def test_check_json_meets_the_schema(validator: Validator, export: Path) -> None:
    jsonschema.validate(json.loads(render(report_of(validator, export), Rendering("json", "en"))), schema())


def test_check_masks_id_card_numbers_in_its_report(validator: Validator, export: Path) -> None:
    assert b"410105194912310021" not in render(report_of(validator, export, lang="zh-CN"), Rendering("html", "zh-CN"))


def test_the_workbook_lists_the_failing_resource_with_its_position(validator: Validator, export: Path) -> None:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(render(report_of(validator, export), Rendering("xlsx", "en"))))
    assert [c.value for c in book["Failing"][2]][:3] == [
        str(export / "Patient.ndjson"),
        "Patient/zhang-xiuying",
        "line 2",
    ]


def test_a_bundles_issues_go_to_the_entry_they_point_into(validator: Validator, tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{n}", "resource": r}
            for n, r in ((1, VALID), (2, INVALID))
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    section = report_of(validator, path).sections[0]
    assert [(r.note, r.verdict) for r in section.results] == [("", "pass"), ("entry 0", "pass"), ("entry 1", "fail")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b), min_size=1, max_size=5))
def test_every_line_of_any_file_is_one_resource_checked(
    validator: Validator, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "any.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    checker = FileChecker(validator, {}, 1 << 20, "en")
    assert len(list(checker.check(path))) == sum(1 for line in lines if line.strip())


def test_a_folder_is_checked_without_its_quarantine_and_conflicts_files(tmp_path: Path) -> None:
    """An ingest's or `yiyang export`'s folder, as it is: those two files hold no resources."""
    for name in ("Patient.ndjson", "quarantine.ndjson", "identity-conflicts.ndjson"):
        (tmp_path / name).write_text("{}\n", encoding="utf-8")
    assert [path.name for path in files_in([tmp_path])] == ["Patient.ndjson"]
