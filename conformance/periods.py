"""Period end must not precede start, including partial dates (``2020`` vs ``2020-05-01``).

FHIRPath's per-1 leaves comparisons of different precisions undecided (empty, so it passes);
here a start is taken at its earliest possible instant and an end at its latest, and only an
end that is certainly earlier is an error.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from conformance.issues import IssueList

# Dates carry no zone; allowing the widest offsets keeps a same-day period from ever failing.
_ZONE_SLACK = timedelta(hours=14)


def instant_bounds(value: str) -> tuple[datetime, datetime] | None:
    """The earliest and latest instant a date, dateTime or instant may mean (UTC, naive);
    None for a malformed value (the primitive checks report those)."""
    try:
        if len(value) == 4:
            year = int(value)
            return datetime(year, 1, 1), datetime(year, 12, 31, 23, 59, 59)
        if len(value) == 7:
            year, month = int(value[:4]), int(value[5:7])
            last = calendar.monthrange(year, month)[1]
            return datetime(year, month, 1), datetime(year, month, last, 23, 59, 59)
        if len(value) == 10:
            day = datetime.fromisoformat(value)
            return day, day.replace(hour=23, minute=59, second=59)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None  # malformed values are reported by the primitive checks
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment, moment


def check_period(node: dict[str, Any], path: str, issues: IssueList) -> None:
    start, end = node.get("start"), node.get("end")
    if not isinstance(start, str) or not isinstance(end, str) or in_order_as_written(start, end):
        return
    if ends_before(start, end):
        issues.error("rule.period-order", path, start=start, end=end)


def ends_before(start: str, end: str) -> bool:
    """Whether a period's end is certainly earlier than its start (False for malformed values)."""
    start_bounds, end_bounds = instant_bounds(start), instant_bounds(end)
    if start_bounds is None or end_bounds is None:
        return False
    slack = _ZONE_SLACK if (len(start) <= 10) != (len(end) <= 10) else timedelta(0)
    return end_bounds[1] + slack < start_bounds[0]


#: a date of any precision, and a dateTime to the second (a fraction optional) with its zone
_DATE_LAYOUT = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")
_MOMENT_LAYOUT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")


def in_order_as_written(start: str, end: str) -> bool:
    """Whether ``end`` is not before ``start`` by their text alone: two dates of one precision,
    or two dateTimes of one layout and zone, order as their strings do.  Why: turning a
    period's two dateTimes into instants (datetime's astimezone and replace) cost more than
    the rest of an Encounter's structure checks together, and nearly every period is written
    so; the others, and any end written before its start, are worked out by :func:`ends_before`."""
    if len(start) != len(end) or end < start:
        return False
    if len(start) <= 10:
        return _DATE_LAYOUT.fullmatch(start) is not None and _DATE_LAYOUT.fullmatch(end) is not None
    return (
        _zone(start) == _zone(end)
        and _MOMENT_LAYOUT.fullmatch(start) is not None
        and _MOMENT_LAYOUT.fullmatch(end) is not None
    )


def _zone(moment: str) -> str:
    return "Z" if moment.endswith("Z") else moment[-6:]
