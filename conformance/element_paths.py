"""Whether an element path of a StructureDefinition exists in the R4 base model.

A differential element whose path the base type does not have (``Patient.nmae``,
``Observation.valueQuantity.unti``) constrains nothing a valid instance can contain: compiled as
it stands it became a phantom rule — a minimum no instance could meet, or a silent no-op.  The
reference validator refuses such a profile; so does the compiler, naming the step that is
not there.  A choice element may be named by its ``[x]`` name or, as R4 allows, by one of its
typed names (``valueQuantity``); children are followed through datatypes, backbone elements
and content references (``Questionnaire.item.item``).
"""

from __future__ import annotations

from conformance.structure import BaseModel, NodeModel


def unknown_step(model: BaseModel, type_name: str, names: list[str]) -> str | None:
    """The first name in ``names`` (the steps after the type) that the base model does not
    define at that place, or None when the whole path exists — or cannot be checked, because
    the type is not an R4 type (a logical model)."""
    root = model.nodes.get(type_name)
    if root is None:
        return None
    nodes: list[NodeModel] = [root]
    for name in names:
        following = [
            slot.child
            for node in nodes
            for slot in node.slots.values()
            if not slot.underscore and name in (slot.element, slot.key) and slot.child is not None
        ]
        if not following:
            return name
        nodes = following
    return None
