"""``_summary`` and ``_elements`` cut a resource down (gateway/fhir/search.py ``shaped``), never
below what its type requires."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.fhir.search import shaped

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "bp",
    "meta": {"versionId": "1"},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">血压</div>'},
    "status": "final",
    "code": {"text": "血压"},
    "subject": {"reference": "Patient/zhang-xiuying"},
    "valueQuantity": {"value": 132, "unit": "mmHg"},
    "note": [{"text": "晨起测量"}],
}


@pytest.mark.parametrize(
    ("summary", "elements", "expected"),
    [
        ("text", [], ["code", "id", "meta", "resourceType", "status", "text"]),
        (None, ["subject"], ["code", "id", "meta", "resourceType", "status", "subject"]),
    ],
)
def test_a_subset_keeps_the_types_mandatory_elements(
    summary: str | None, elements: list[str], expected: list[str]
) -> None:
    assert sorted(shaped(OBSERVATION, summary, elements)) == expected


def test_a_subset_is_marked_subsetted() -> None:
    assert shaped(OBSERVATION, "text", [])["meta"]["tag"][-1]["code"] == "SUBSETTED"
