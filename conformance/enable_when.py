"""Whether a Questionnaire item is enabled in a QuestionnaireResponse (R4 ``enableWhen`` and
``enableBehavior``), as the reference validator decides it (hapifhir/org.hl7.fhir.core
``EnableWhenEvaluator``, read, not run).

The question's answers are looked for from the item's own place outwards: in the nearest
enclosing response node (group instance, answer, the response) that holds an item with that
linkId.  A condition holds when any of those answers satisfies it; ``exists`` compares whether
there are answers at all.  As in the reference, ``!=`` holds only when some answer differs: no
answer makes it false.

Verdicts are three-valued.  A comparison this module cannot decide (a date against a dateTime of
another precision, Quantities in different units, an answer of another type) is ``None``, and
``None`` propagates through ``all``/``any`` as in three-valued logic, so that the validator
neither demands nor forbids an answer on a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Verdict = bool | None
_ORDERING = (">", "<", ">=", "<=")
_NUMBERS = ("Integer", "Decimal")
_TEXTUAL_TIMES = ("Date", "DateTime", "Time")


def enabled(definition: dict[str, Any], context: Sequence[dict[str, Any]]) -> Verdict:
    """True, False, or None (undecided) for the Questionnaire item ``definition`` placed under the
    response nodes ``context`` (outermost first: the response, then each enclosing item or
    answer).  An item without ``enableWhen`` is enabled."""
    conditions = [c for c in _as_list(definition.get("enableWhen")) if isinstance(c, dict)]
    if not conditions:
        return True
    verdicts = [_condition(condition, context) for condition in conditions]
    if definition.get("enableBehavior") == "any":
        return True if True in verdicts else (None if None in verdicts else False)
    return False if False in verdicts else (None if None in verdicts else True)


def _condition(condition: dict[str, Any], context: Sequence[dict[str, Any]]) -> Verdict:
    question, operator = condition.get("question"), condition.get("operator")
    expected = next(((k[len("answer") :], v) for k, v in condition.items() if k.startswith("answer")), None)
    if not isinstance(question, str) or expected is None:
        return None  # a malformed condition (que-7 reports it): no verdict
    answers = _answers(question, context)
    if operator == "exists":
        return (len(answers) > 0) == expected[1] if isinstance(expected[1], bool) else None
    if operator not in ("=", "!=", *_ORDERING):
        return None
    verdicts = [_compare(answer, expected, operator) for answer in answers]
    if True in verdicts:
        return True
    return None if None in verdicts else False


def _answers(link_id: str, context: Sequence[dict[str, Any]]) -> list[tuple[str, Any]]:
    """(type, value) of every answer to ``link_id`` in the nearest enclosing node holding it."""
    for node in reversed(context):
        items = _items_with(node, link_id)
        if items:
            return [
                (key[len("value") :], value)
                for item in items
                for answer in _as_list(item.get("answer"))
                if isinstance(answer, dict)
                for key, value in answer.items()
                if key.startswith("value")
            ]
    return []


def _items_with(node: dict[str, Any], link_id: str) -> list[dict[str, Any]]:
    """Items below ``node`` (through items and answers, depth first) with this linkId."""
    found: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        current = stack.pop()
        for child in reversed(_as_list(current.get("item"))):
            if not isinstance(child, dict):
                continue
            if child.get("linkId") == link_id:
                found.append(child)
            stack.append(child)
            stack.extend(a for a in reversed(_as_list(child.get("answer"))) if isinstance(a, dict))
    return found


def _compare(answer: tuple[str, Any], expected: tuple[str, Any], operator: str) -> Verdict:
    order = _order(answer, expected)
    if order is None:
        return None
    if operator == "=":
        return order == 0
    if operator == "!=":
        return order != 0
    if order == "unordered":
        return None  # only = and != apply to Codings, booleans and References
    return {">": order > 0, "<": order < 0, ">=": order >= 0, "<=": order <= 0}[operator]


def _order(answer: tuple[str, Any], expected: tuple[str, Any]) -> int | str | None:
    """-1, 0 or 1 as the answer sorts against the expected value; "unordered" for two unequal
    values with no order; None when they cannot be compared."""
    (kind, value), (wanted_kind, wanted) = answer, expected
    if kind in _NUMBERS and wanted_kind in _NUMBERS:
        return _sign(value, wanted) if _is_number(value) and _is_number(wanted) else None
    if kind != wanted_kind:
        return None
    if kind == "Coding":
        return _same_coding(value, wanted)
    if kind == "Quantity":
        return _quantity_order(value, wanted)
    if kind == "Reference":
        same = (
            isinstance(value, dict) and isinstance(wanted, dict) and value.get("reference") == wanted.get("reference")
        )
        return 0 if same else "unordered"
    if kind == "Boolean":
        return 0 if value == wanted else "unordered"
    if not isinstance(value, str) or not isinstance(wanted, str):
        return None
    if kind in _TEXTUAL_TIMES and len(value) != len(wanted):
        return None  # different precisions: 2024 is neither before nor after 2024-05
    return _sign(value, wanted)


def _same_coding(value: Any, wanted: Any) -> int | str | None:
    if not isinstance(value, dict) or not isinstance(wanted, dict):
        return None
    same_code = value.get("code") == wanted.get("code")
    systems = (value.get("system"), wanted.get("system"))
    same_system = None in systems or systems[0] == systems[1]
    return 0 if same_code and same_system else "unordered"


def _quantity_order(value: Any, wanted: Any) -> int | None:
    if not isinstance(value, dict) or not isinstance(wanted, dict):
        return None
    unit, wanted_unit = value.get("code") or value.get("unit"), wanted.get("code") or wanted.get("unit")
    if unit != wanted_unit or not _is_number(value.get("value")) or not _is_number(wanted.get("value")):
        return None
    return _sign(value["value"], wanted["value"])


def _sign(value: Any, wanted: Any) -> int:
    return (value > wanted) - (value < wanted)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
