"""Running the catalog into a ``testkit`` report: one section per suite, one result per test,
whose findings are the requests sent (method, URL, status) and the checks made — a failed
check as an error naming what was wrong, so every renderer shows it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from conformance.report.model import Counts, Finding, Report, Result, Section, Verdict
from conformance.testkit import capability, pull, push, security
from conformance.testkit.catalog import SUITES, Context, KitTest, Skip, Stop, Suite

CATALOG: tuple[KitTest, ...] = capability.TESTS + push.TESTS + pull.TESTS + security.TESTS
REQUEST, CHECK, SKIPPED, BROKEN = "testkit.request", "testkit.check", "testkit.skipped", "testkit.broken"


def selected(suites: Iterable[str]) -> list[KitTest]:
    """The tests of the suites asked for (``all``: every suite), in catalog order."""
    wanted = set(SUITES) if "all" in suites else set(suites)
    return [test for test in CATALOG if test.suite in wanted]


def run_test(test: KitTest, ctx: Context, lang: str, mask: Callable[[str], str]) -> Result:
    """One test: its verdict, and as findings the requests it sent and the checks it made."""
    verdict: Verdict
    reason: Finding | None = None
    try:
        if test.suite == "pull" and ctx.push_refused:  # its data is what push could not write
            raise Skip(f"needs the examples the push suite writes; {ctx.push_refused}")
        test.run(ctx)
    except Skip as skipped:
        reason = Finding("information", SKIPPED, "", str(skipped))
    except Stop:
        pass
    except Exception as exc:  # noqa: BLE001 - a server answering nonsense must not end the run
        reason = Finding("error", BROKEN, "", f"{type(exc).__name__}: {exc}")
    sent = [
        Finding("information", REQUEST, mask(f"{s.method} {s.url}"), str(s.status) if s.status else "-")
        for s in ctx.http.take_log()
    ]
    checks = ctx.take_checks()
    found = [Finding("information" if c.passed else "error", CHECK, "", mask(c.text)) for c in checks]
    broken = ctx.http.take_broken()
    if reason is not None and reason.rule == SKIPPED:
        verdict = Verdict.SKIP
    elif broken:  # the server answered no FHIR at all: what the checks said of it is beside the point
        verdict = Verdict.ERROR
        reason = Finding("error", BROKEN, "", mask("; ".join(broken)))
    elif any(not c.passed for c in checks):
        verdict = Verdict.FAIL
    elif reason is not None:
        verdict = Verdict.ERROR
    else:
        verdict = Verdict.PASS if checks else Verdict.SKIP
    failed = [f for f in found if f.is_error]
    extra = [reason] if reason is not None else []
    # an error's reason first: it says why the checks' verdicts mean nothing
    first = extra + failed if verdict == Verdict.ERROR else failed + extra
    findings = tuple(first + [f for f in found if not f.is_error] + sent)
    return Result(test.id, test.id, verdict, note=test.description(lang), findings=findings)


def run(
    ctx: Context,
    suites: Sequence[str],
    lang: str,
    scope: Sequence[tuple[str, str]],
    generated: str,
    mask: Callable[[str], str] = str,
) -> Report:
    """Run the selected suites against the server behind ``ctx.http`` into a report."""
    by_suite: dict[Suite, list[Result]] = {}
    for test in selected(suites):
        by_suite.setdefault(test.suite, []).append(run_test(test, ctx, lang, mask))
    summary = sum((Counts.of(r.verdict) for results in by_suite.values() for r in results), Counts())
    sections = tuple(
        Section(
            f"suite:{suite}",
            f"testkit.suite.{suite}",
            "testkit.column.test",
            tuple(results),
            note_title="testkit.column.description",
        )
        for suite, results in by_suite.items()
    )
    return Report(kind="testkit", generated=generated, scope=tuple(scope), summary=summary, sections=sections)
