"""FHIRPath today() and now() read conformance.clock: Beijing time, pinnable for tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conformance.clock import CHINA, pinned_moment, validation_day, validation_moment
from conformance.fhirpath_scope import Scope
from conformance.invariants import compile_invariant

MOMENT = datetime(2026, 12, 5, 23, 30, tzinfo=UTC)  # 2026-12-06 07:30 in Beijing


def holds(expression: str) -> bool | str:
    with pinned_moment(MOMENT):
        invariant = compile_invariant("clock-test", "error", expression, "", empty_fails=True)
        return invariant.check({}, Scope({}, {}), "Element")


def test_today_is_the_beijing_date_of_the_pinned_moment() -> None:
    assert holds("today() = @2026-12-06") is True


def test_now_is_the_pinned_moment_with_the_beijing_offset() -> None:
    assert holds("now() = @2026-12-06T07:30:00.000+08:00") is True


def test_the_validation_day_is_beijings() -> None:
    with pinned_moment(MOMENT):
        assert validation_day().isoformat() == "2026-12-06"


def test_a_moment_without_a_zone_cannot_be_pinned() -> None:
    with pytest.raises(ValueError), pinned_moment(datetime(2026, 12, 6, 7, 30)):
        pass


def test_the_unpinned_moment_is_read_in_beijing_time() -> None:
    assert validation_moment().utcoffset() == CHINA.utcoffset(None)


def test_a_remembered_verdict_on_a_value_is_the_days_own() -> None:
    """Verdicts on primitive values are memoised; one reading today() must not be reused the next day."""
    invariant = compile_invariant("clock-test", "error", "$this.toString() <= today().toString()", "", empty_fails=True)
    verdicts = []
    for moment in (datetime(2026, 12, 5, 4, tzinfo=UTC), datetime(2026, 12, 6, 4, tzinfo=UTC)):
        with pinned_moment(moment):
            verdicts.append(invariant.check("2026-12-06", Scope({}, {}), "date"))
    assert verdicts == [False, True]
