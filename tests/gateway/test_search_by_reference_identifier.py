"""A reference parameter's ``:identifier`` modifier (R4 search.html, "identifier" modifier on
references: the value is a token matched against ``Reference.identifier``), over HTTP on both
databases: a hospital's reading whose subject is 张秀英's 身份证号 alone is found by
``subject:identifier``, as the FHIR example ``Observation?subject:identifier=…|…`` asks, and
only by what a client may see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Api, Served
from tests.gateway.test_access_by_identifier import ID_CARD, LI, ZHANG, by_number, ids
from tests.gateway.test_access_http import example, home  # noqa: F401 - the centre's session

PRACTITIONER_NUMBER = {"system": "http://fhir.yiyang.cn/sid/practitioner-certificate", "value": "110410100000123"}


def reading(reading_id: str, **elements: Any) -> dict[str, Any]:
    """A blood pressure (张秀英's by reference, as the example has it), changed by ``elements``."""
    return {**example("yy-observation-blood-pressure/valid-blood-pressure.json"), "id": reading_id, **elements}


@pytest.fixture(scope="module")
def written(served: Served, api: Api, home: Api) -> Iterator[None]:  # noqa: F811 - the imported fixture
    """Readings naming 张秀英 by number alone, by reference and number, by reference alone
    (the example's), 李建国 by number alone, and one performed by a doctor named by number."""
    for resource in [
        reading("bp-zhang-number", subject=by_number(ZHANG, "张秀英")),
        reading("bp-zhang-both", subject={"reference": "Patient/zhang-xiuying", **by_number(ZHANG)}),
        reading("bp-li-number", subject=by_number(LI, "李建国")),
        reading("bp-by-doctor", performer=[{"identifier": PRACTITIONER_NUMBER, "display": "王医生"}]),
    ]:
        answer = api.put(f"{served.base}/Observation/{resource['id']}", json=resource)
        assert answer.status_code in (200, 201), answer.text
    yield


def found(session: Api, served: Served, query: str) -> set[str]:
    answer = session.get(f"{served.base}/Observation?{query}")
    assert answer.status_code == 200, answer.text
    return ids(answer.json())


def test_a_subject_given_by_number_is_found_by_that_number(served: Served, api: Api, written: None) -> None:
    """Each reading whose ``subject.identifier`` is her 身份证号, with a reference or without;
    not the one naming her by reference alone, nor 李建国's."""
    assert found(api, served, f"subject:identifier={ID_CARD}|{ZHANG}") == {"bp-zhang-number", "bp-zhang-both"}


def test_any_reference_parameter_takes_the_modifier(served: Served, api: Api, written: None) -> None:
    number = PRACTITIONER_NUMBER
    assert found(api, served, f"performer:identifier={number['system']}|{number['value']}") == {"bp-by-doctor"}


def test_the_number_alone_matches_any_system(served: Served, api: Api, written: None) -> None:
    """A token without a system: R4's ``[code]`` form."""
    assert found(api, served, f"subject:identifier={LI}") == {"bp-li-number"}


def test_the_modifier_on_a_canonical_parameter_is_refused_at_the_parameter(
    served: Served, api: Api, written: None
) -> None:
    """R4 takes ``:identifier`` on a Reference alone: a CarePlan's ``instantiatesCanonical`` is a
    bare URL with no identifier, so the search would match nothing, whatever was stored."""
    answer = api.get(f"{served.base}/CarePlan?instantiates-canonical:identifier={ID_CARD}|{ZHANG}")
    issue = answer.json()["issue"][0]
    refusal = (answer.status_code, issue["details"]["coding"][0]["code"], issue["expression"])
    assert refusal == (400, "search.identifier-on-canonical", ["instantiates-canonical:identifier"])


def test_a_subject_given_by_number_alone_is_not_missing(served: Served, api: Api, written: None) -> None:
    """R4: ``:missing`` asks whether the element is there, and a subject naming the person by
    number is, though it names no resource."""
    assert found(api, served, "subject:missing=true") & {"bp-zhang-number", "bp-li-number"} == set()


def test_the_centre_finds_nothing_by_the_number_of_someone_it_does_not_serve(
    served: Served,
    home: Api,  # noqa: F811
    written: None,
) -> None:
    assert found(home, served, f"subject:identifier={ID_CARD}|{LI}") == set()


def test_a_chain_after_the_modifier_is_refused_at_the_parameter(served: Served, api: Api, written: None) -> None:
    """R4: chaining is not supported with ``:identifier``."""
    answer = api.get(f"{served.base}/Observation?subject:identifier.name=张")
    issue = answer.json()["issue"][0]
    refusal = (answer.status_code, issue["details"]["coding"][0]["code"], issue["expression"])
    assert refusal == (400, "search.chain-after-identifier", ["subject:identifier.name"])
