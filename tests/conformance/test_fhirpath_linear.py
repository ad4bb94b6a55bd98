"""The linear children(), descendants() and flatten answer exactly as fhirpathpy's own."""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any

from fhirpathpy.engine.invocations import navigation
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models
from hypothesis import given
from hypothesis import strategies as st

from conformance import fhirpath_linear

CONTEXT = {"model": models["r4"]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["a", "b", "_a", "c"]), inner, max_size=4)
    ),
    max_leaves=30,
)
resources = st.dictionaries(st.sampled_from(["name", "_gender", "gender", "identifier"]), json_values, max_size=4)


def seen(walk: Callable[[dict[str, Any], list[Any]], list[Any]], resource: dict[str, Any]) -> Any:
    """The nodes a walk finds, or the error it stops with (fhirpathpy's stops on a list in a
    list, which JSON allows and FHIR does not; ours must stop alike, not answer otherwise)."""
    try:
        nodes = walk(CONTEXT, [ResourceNode.create_node({"resourceType": "Patient", **resource}, "Patient")])
    except Exception as error:  # noqa: BLE001 - the error is the answer compared
        return type(error)
    return [(node.data, node.path, node.propName) for node in nodes]


@given(resources)
def test_children_are_fhirpathpys(resource: dict[str, Any]) -> None:
    assert seen(fhirpath_linear.children, resource) == seen(navigation.children, resource)


@given(resources)
def test_descendants_are_fhirpathpys(resource: dict[str, Any]) -> None:
    assert seen(fhirpath_linear.descendants, resource) == seen(navigation.descendants, resource)


@given(st.lists(st.integers() | st.lists(st.integers(), max_size=3), max_size=8))
def test_flatten_joins_as_fhirpathpys(items: list[Any]) -> None:
    quadratic = reduce(lambda joined, item: joined + item if isinstance(item, list) else [*joined, item], items, [])
    assert fhirpath_linear.flatten(items) == quadratic
