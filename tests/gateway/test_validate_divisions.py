"""$validate over REST words an unknown division code as the ingest does: one error, the
business rule's, at the Coding's FHIRPath (the code system's verdict on the same Coding is
not repeated)."""

from __future__ import annotations

from pathlib import Path

from gateway import create_app
from gateway.config import Config
from tests.conftest import load_example

EXTENSION = "http://fhir.yiyang.cn/StructureDefinition/yy-ext-admin-division"
GB_T_2260 = "http://fhir.yiyang.cn/CodeSystem/gb-t-2260"


def test_validate_reports_an_unknown_county_code_once_at_its_coding(tmp_path: Path) -> None:
    patient = load_example("yy-patient/valid-li-jianguo-minimal.json")
    coding = {"system": GB_T_2260, "code": "419999"}
    patient["address"] = [{"text": "某地", "extension": [{"url": EXTENSION, "valueCoding": coding}]}]
    app = create_app(Config(database_url=f"sqlite:///{tmp_path / 'archive.sqlite'}"), secure=False)
    answer = app.test_client().post(
        "/fhir/Patient/$validate", json=patient, headers={"Content-Type": "application/fhir+json"}
    )
    about_address = [
        (issue["severity"], issue["details"]["coding"][0]["code"], issue["expression"])
        for issue in answer.get_json()["issue"]
        if "address" in issue["expression"][0]
    ]
    assert about_address == [("error", "rule.division-unknown", ["Patient.address[0].extension[0].value"])]
