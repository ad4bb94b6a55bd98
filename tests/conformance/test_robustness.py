"""Whatever JSON arrives, the validator answers with issues and never raises."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.validator import Validator
from tests.conftest import load_example

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
EXAMPLE = load_example("yy-patient/valid-zhang-xiuying.json")
KEYS = sorted(k for k in EXAMPLE if k != "resourceType")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(KEYS + ["foo", "_gender", "contained"]), json_values, max_size=6))
def test_random_patient_content_never_raises(validator: Validator, content: dict[str, Any]) -> None:
    assert isinstance(validator.validate({"resourceType": "Patient", **content}), list)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(KEYS), json_values)
def test_profiled_patient_with_one_element_replaced_never_raises(validator: Validator, key: str, value: Any) -> None:
    resource = copy.deepcopy(EXAMPLE)
    resource[key] = value
    assert isinstance(validator.validate(resource), list)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values)
def test_any_json_value_never_raises(validator: Validator, value: Any) -> None:
    assert isinstance(validator.validate(value), list)
