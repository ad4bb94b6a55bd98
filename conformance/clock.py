"""The moment FHIRPath ``today()`` and ``now()`` answer with: China Standard Time, pinnable.

fhirpathpy reads the machine's clock in the machine's time zone, so on a server kept in UTC a
person born on a Beijing morning would be born "after today" until 08:00.  The gateway's day
is Beijing's, as everywhere else it counts days (``gateway.exchanges.today``).

An invariant such as "a birth date is not after today" has a verdict that changes with the
day, so tests pin the moment with :func:`pinned_moment` rather than depend on when they run.
The pin is a context variable, installed for one thread of work like the FHIRPath budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))

_PINNED: ContextVar[datetime | None] = ContextVar("validation_moment", default=None)


def validation_moment() -> datetime:
    """Now in China Standard Time, or the pinned moment."""
    return _PINNED.get() or datetime.now(CHINA)


def validation_day() -> date:
    """The Beijing date of :func:`validation_moment`."""
    return validation_moment().date()


@contextmanager
def pinned_moment(moment: datetime) -> Iterator[None]:
    """Validate as at ``moment`` (an aware datetime) inside the block."""
    if moment.tzinfo is None:
        raise ValueError("pin an aware datetime: a moment without a zone names no day")
    token = _PINNED.set(moment.astimezone(CHINA))
    try:
        yield
    finally:
        _PINNED.reset(token)
