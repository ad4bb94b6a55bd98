"""Invariants of a common shape are answered in Python (conformance.fhirpath_shapes), with
fhirpathpy's verdicts: the compiled closure must agree with the interpreter on every input it
answers, and answer the common one without the interpreter."""

from __future__ import annotations

from datetime import date, datetime, time

from hypothesis import given
from hypothesis import strategies as st

from conformance.clock import CHINA, pinned_moment
from conformance.fhirpath_scope import Scope
from conformance.invariants import Budget, compile_invariant, reset_budget, set_budget

SCOPE = Scope({}, {})
BIRTH_DATE = "$this.toString() <= today().toString()"

today_comparisons = st.builds(
    lambda cut, op: f"$this.toString(){cut} {op} today().toString()",
    st.sampled_from(["", ".substring(0, 10)", ".substring(0, 4)", ".substring(0,7)", ".substring(0, 0)"]),
    st.sampled_from(["<", "<=", ">", ">="]),
)
dates = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
#: what a date element may hold: full and partial dates, date-times, and anything else
values = st.one_of(
    dates.map(date.isoformat),
    dates.map(lambda d: d.isoformat()[:7]),
    dates.map(lambda d: d.isoformat()[:4]),
    st.datetimes().map(lambda d: d.isoformat() + "+08:00"),
    st.text(max_size=20),
    st.text(alphabet="0123456789-T:+Z ", max_size=25),
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
)


@given(today_comparisons, values, dates, st.booleans(), st.sampled_from(["date", "dateTime", "string", "Element"]))
def test_a_today_comparison_agrees_with_fhirpathpy(
    expression: str, value: object, day: date, empty_fails: bool, base: str
) -> None:
    """In parentheses the expression is no shape: fhirpathpy evaluates it."""
    compiled = compile_invariant("shape-test", "error", expression, "", empty_fails=empty_fails)
    interpreted = compile_invariant("shape-test", "error", f"({expression})", "", empty_fails=empty_fails)
    with pinned_moment(datetime.combine(day, time(12), CHINA)):
        assert compiled.check(value, SCOPE, base) == interpreted.check(value, SCOPE, base)


def test_a_birth_date_never_seen_is_judged_without_the_interpreter() -> None:
    invariant = compile_invariant("yy-pat-3", "error", BIRTH_DATE, "", empty_fails=True)
    invariant.check("1950-01-01", SCOPE, "Patient.birthDate")  # prepared
    budget = Budget()
    token = set_budget(budget)
    try:
        invariant.check("1937-04-19", SCOPE, "Patient.birthDate")
    finally:
        reset_budget(token)
    assert budget.steps_left == budget.steps
