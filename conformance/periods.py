"""Period end must not precede start, including partial dates (``2020`` vs ``2020-05-01``).

FHIRPath's per-1 leaves comparisons of different precisions undecided (empty, so it passes);
here a start is taken at its earliest possible instant and an end at its latest, and only an
end that is certainly earlier is an error.
"""

from __future__ import annotations

import calendar
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
    if not isinstance(start, str) or not isinstance(end, str):
        return
    start_bounds, end_bounds = instant_bounds(start), instant_bounds(end)
    if start_bounds is None or end_bounds is None:
        return
    slack = _ZONE_SLACK if (len(start) <= 10) != (len(end) <= 10) else timedelta(0)
    if end_bounds[1] + slack < start_bounds[0]:
        issues.error("rule.period-order", path, start=start, end=end)
