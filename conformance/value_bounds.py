"""ElementDefinition ``minValue[x]`` / ``maxValue[x]`` and ``maxLength`` (elementdefinition.html).

Numbers compare as exact decimals.  Dates and times of different precisions compare the way
Period order does (periods.py): a value is out of bounds only when every instant it may mean is
outside — ``2020`` is not below a minimum of ``2020-06-01``, ``2019`` is.  Quantities compare
directly when they share a unit (same system and code); when both are UCUM
(``http://unitsofmeasure.org``) in different, commensurable codes the value is converted
(ucum.py: ``[degF]`` against ``Cel``, ``[lb_av]`` against ``kg``).  Any other pair — another
system, an unparsable code, incommensurable units such as ``mg/dL`` and ``mmol/L`` — is reported
as not comparable (a warning) rather than guessed.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from conformance import ucum
from conformance.issues import IssueList
from conformance.periods import instant_bounds

_TEMPORAL = frozenset({"Date", "DateTime", "Instant"})
_NUMBER = frozenset({"Integer", "Decimal", "PositiveInt", "UnsignedInt", "Integer64"})


def check_bounds(
    value: Any, minimum: tuple[str, Any] | None, maximum: tuple[str, Any] | None, path: str, issues: IssueList
) -> None:
    """Append ``profile.min-value`` / ``profile.max-value`` when ``value`` is certainly outside."""
    for bound, sign, message_id in ((minimum, -1, "profile.min-value"), (maximum, 1, "profile.max-value")):
        if bound is None:
            continue
        kind, limit = bound
        verdict = _compare(value, kind, limit)
        if verdict == "incomparable":
            issues.add("warning", "profile.value-bound-incomparable", path, value=_show(value), bound=_show(limit))
        elif verdict == sign:
            issues.error(message_id, path, value=_show(value), bound=_show(limit))


def check_length(value: Any, max_length: int | None, path: str, issues: IssueList) -> None:
    if max_length is not None and isinstance(value, str) and len(value) > max_length:
        issues.error("profile.max-length", path, max=max_length, length=len(value))


def _compare(value: Any, kind: str, limit: Any) -> int | str | None:
    """-1 when certainly below the limit, 1 when certainly above, 0 or None otherwise;
    "incomparable" for quantities in units that cannot be converted into each other."""
    if kind in _NUMBER:
        return _sign(_decimal(value), _decimal(limit))
    if kind in _TEMPORAL and isinstance(value, str) and isinstance(limit, str):
        mine, theirs = instant_bounds(value), instant_bounds(limit)
        if mine is None or theirs is None:
            return None
        return -1 if mine[1] < theirs[0] else 1 if mine[0] > theirs[1] else 0
    if kind == "Time" and isinstance(value, str) and isinstance(limit, str):
        return -1 if value < limit else 1 if value > limit else 0
    if kind == "Quantity" and isinstance(value, dict) and isinstance(limit, dict):
        if (value.get("system"), value.get("code") or value.get("unit")) != (
            limit.get("system"),
            limit.get("code") or limit.get("unit"),
        ):
            return _converted(value, limit) if "value" in value else None
        return _sign(_decimal(value.get("value")), _decimal(limit.get("value")))
    return None


def _converted(value: dict[str, Any], limit: dict[str, Any]) -> int | str | None:
    """Compare a Quantity with a bound in another UCUM unit; only UCUM codes are converted."""
    mine, theirs = _decimal(value.get("value")), _decimal(limit.get("value"))
    if mine is None or theirs is None:
        return None
    if value.get("system") != ucum.UCUM or limit.get("system") != ucum.UCUM:
        return "incomparable"
    verdict = ucum.compare(float(mine), value.get("code"), float(theirs), limit.get("code"))
    return "incomparable" if verdict is None else verdict


def _decimal(number: Any) -> Decimal | None:
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        return None
    try:
        return Decimal(str(number))
    except InvalidOperation:
        return None


def _sign(mine: Decimal | None, theirs: Decimal | None) -> int | None:
    if mine is None or theirs is None:
        return None
    return -1 if mine < theirs else 1 if mine > theirs else 0


def _show(value: Any) -> str:
    if isinstance(value, dict):
        unit = value.get("code") or value.get("unit") or ""
        return f"{value.get('value')} {unit}".strip()
    return str(value)
