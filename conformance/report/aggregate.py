"""Building reports from plain rows.

The store hands over *facts*: exchanges counted per participant, source, day and verdict,
resources counted per profile and outcome, issues counted per rule and per location, and the
failing exchanges in full — grouped in SQL, so a report over a million exchanges reads a few
thousand rows.  :func:`tally` makes the same facts from records held in memory (exported files,
tests); :func:`exchange_report` and :func:`file_report` turn facts into a :class:`Report`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from conformance.report.model import (
    ERROR_SEVERITIES,
    Counts,
    ExchangeDetail,
    Finding,
    Report,
    ResourceVerdict,
    Result,
    Section,
    Verdict,
)

#: example locations shown per rule, and rules drawn in the failures chart
EXAMPLES = 3
CHARTED_RULES = 10
_SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}
K = TypeVar("K", str, tuple[str, str])


@dataclass(frozen=True, slots=True)
class ExchangeCount:
    """``count`` exchanges of one participant and source on one day with one verdict."""

    client: str
    organization: str
    source: str
    day: str
    verdict: str
    count: int


@dataclass(frozen=True, slots=True)
class ProfileCount:
    """``count`` resources of a type held to a profile, all passing or all failing."""

    profile: str
    resource_type: str
    passed: bool
    count: int


@dataclass(frozen=True, slots=True)
class RuleCount:
    """How often a rule was broken at one severity in exchanges of one verdict, in how many
    of them, with an example text.  In exchanges refused for another reason than their
    content (verdict ``error``) the "rule" is the refusal's reason."""

    rule: str
    severity: str
    verdict: str
    occurrences: int
    affected: int
    text: str


@dataclass(frozen=True, slots=True)
class LocationCount:
    rule: str
    severity: str
    location: str
    verdict: str
    occurrences: int


@dataclass(frozen=True, slots=True)
class Facts:
    counts: Sequence[ExchangeCount]
    profiles: Sequence[ProfileCount]
    rules: Sequence[RuleCount]
    locations: Sequence[LocationCount]
    #: failing exchanges in full, newest first (possibly only the newest of them)
    failing: Sequence[ExchangeDetail] = ()
    failing_total: int = 0
    #: issues of ``failing`` not read, to bound what a report holds
    failing_findings_omitted: int = 0
    #: issues of ``failing`` read as the report is written (None: those ``failing`` hold)
    failing_findings_listed: int | None = None


# -- facts from records in memory --------------------------------------------------------------
def tally(exchanges: Iterable[ExchangeDetail], failing_limit: int | None = None) -> Facts:
    """The facts of exchanges held in full: what the store computes with GROUP BY."""
    counted: Counter[tuple[str, str, str, str, str]] = Counter()
    verdicts: list[ResourceVerdict] = []
    findings: list[tuple[str, str, Finding]] = []
    failing: list[ExchangeDetail] = []
    for exchange in exchanges:
        counted[(exchange.client, exchange.organization, exchange.source, exchange.day, exchange.verdict)] += 1
        verdicts.extend(exchange.verdicts)
        findings.extend((exchange.id, finding.verdict or exchange.verdict, finding) for finding in exchange.findings)
        if exchange.verdict == Verdict.FAIL:
            failing.append(exchange)
    failing.sort(key=lambda e: (e.recorded, _numeric(e.id)), reverse=True)
    rules, locations = count_rules(findings)
    return Facts(
        counts=[ExchangeCount(*key, count) for key, count in sorted(counted.items())],
        profiles=count_profiles(verdicts),
        rules=rules,
        locations=locations,
        failing=failing[:failing_limit] if failing_limit is not None else failing,
        failing_total=len(failing),
    )


def count_profiles(verdicts: Iterable[ResourceVerdict]) -> list[ProfileCount]:
    counted: Counter[tuple[str, str, bool]] = Counter()
    for verdict in verdicts:
        counted[(verdict.profile, verdict.resource_type, verdict.passed)] += verdict.resources
    return [ProfileCount(*key, count) for key, count in sorted(counted.items())]


def count_rules(findings: Iterable[tuple[str, str, Finding]]) -> tuple[list[RuleCount], list[LocationCount]]:
    """From (exchange key, its verdict, finding), in the exchanges' order: per rule, severity
    and verdict the occurrences, distinct exchanges and the text of its first finding (the
    store's example is its first issue's, of its first exchange); per rule, severity, location
    and verdict the occurrences."""
    occurrences: Counter[tuple[str, str, str]] = Counter()
    affected: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    texts: dict[tuple[str, str, str], str] = {}
    locations: Counter[tuple[str, str, str, str]] = Counter()
    for key, verdict, finding in findings:
        rule = (finding.rule, finding.severity, verdict)
        occurrences[rule] += 1
        affected[rule].add(key)
        texts.setdefault(rule, finding.text)
        locations[(finding.rule, finding.severity, finding.location, verdict)] += 1
    rules = [RuleCount(*rule, n, len(affected[rule]), texts[rule]) for rule, n in sorted(occurrences.items())]
    return rules, [LocationCount(*where, n) for where, n in sorted(locations.items())]


# -- the auditors' report ------------------------------------------------------------------------
def exchange_report(facts: Facts, scope: Sequence[tuple[str, str]], generated: str) -> Report:
    """Pass rates by participant, source, day, week and profile; the rules broken, with where;
    the failing exchanges to drill down to."""
    by_participant: dict[tuple[str, str], list[int]] = defaultdict(_tally)
    by_source: dict[str, list[int]] = defaultdict(_tally)
    by_day: dict[str, list[int]] = defaultdict(_tally)
    for row in facts.counts:  # thousands of groups: plain lists, not a Counts per addition
        slot = _SLOT.get(row.verdict, 3)
        by_participant[(row.client, row.organization)][slot] += row.count
        by_source[row.source][slot] += row.count
        by_day[row.day][slot] += row.count
    participants = {key: Counts(*value) for key, value in by_participant.items()}
    sources = {key: Counts(*value) for key, value in by_source.items()}
    days = {key: Counts(*value) for key, value in by_day.items()}
    summary = sum(days.values(), Counts())
    weeks: dict[str, Counts] = defaultdict(Counts)
    for day, counts in days.items():
        weeks[iso_week(day)] += counts
    sections = (
        Section(
            "participants",
            "report.section.participants",
            "report.column.participant",
            tuple(
                Result(f"{client}|{organization}", client, counts.verdict, note=organization, counts=counts)
                for (client, organization), counts in _worst_first(participants)
            ),
            note_title="report.column.organization",
        ),
        Section("sources", "report.section.sources", "report.column.source", _rated(_worst_first(sources))),
        Section(
            "trend-day", "report.section.trend-day", "report.column.day", _rated(sorted(days.items())), kind="trend"
        ),
        Section(
            "trend-week", "report.section.trend-week", "report.column.week", _rated(sorted(weeks.items())), kind="trend"
        ),
        profiles_section(facts.profiles),
        rules_section(facts.rules, facts.locations),
        refusals_section(facts.rules),
        Section(
            "exchanges",
            "report.section.exchanges",
            "report.column.exchange",
            tuple(failing_result(exchange) for exchange in facts.failing),
            note_title="report.column.time",
        ),
    )
    return Report(
        kind="exchanges",
        generated=generated,
        scope=tuple(scope),
        summary=summary,
        sections=sections,
        exchanges=tuple(facts.failing),
        exchanges_total=facts.failing_total,
        findings_omitted=facts.failing_findings_omitted,
        findings_listed=facts.failing_findings_listed,
    )


def profiles_section(profiles: Iterable[ProfileCount]) -> Section:
    by_profile: dict[tuple[str, str], Counts] = defaultdict(Counts)
    for row in profiles:
        by_profile[(row.profile, row.resource_type)] += Counts.of(
            Verdict.PASS if row.passed else Verdict.FAIL, row.count
        )
    return Section(
        "profiles",
        "report.section.profiles",
        "report.column.profile",
        tuple(
            Result(f"{profile}|{kind}", profile, counts.verdict, note=kind, counts=counts)
            for (profile, kind), counts in _worst_first(by_profile)
        ),
        note_title="report.column.resource-type",
    )


def rules_section(rules: Iterable[RuleCount], locations: Iterable[LocationCount]) -> Section:
    """Every rule broken by content that was judged, errors first and the most frequent
    first, with the locations where it was broken most often.  Drawn as bars: failures by
    rule."""
    # the examples of a rule at one severity are its own: dom-6's thousand warnings must not
    # stand in for the few places invariant.failed was an error
    where: Counter[tuple[str, str, str]] = Counter()
    for row in locations:
        if row.verdict != Verdict.ERROR:
            where[(row.rule, row.severity, row.location)] += row.occurrences
    by_rule: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for (rule, severity, location), count in where.items():
        by_rule[(rule, severity)].append((-count, location))
    results = []
    for rule in _merged(r for r in rules if r.verdict != Verdict.ERROR):
        top = sorted(by_rule.get((rule.rule, rule.severity), ()))[:EXAMPLES]
        verdict = Verdict.FAIL if rule.severity in ERROR_SEVERITIES else Verdict.PASS
        examples = tuple(location or "-" for _, location in top)
        results.append(_rule_result(rule, verdict, examples))
    return Section(
        "rules",
        "report.section.rules",
        "report.column.rule",
        tuple(results),
        note_title="report.column.message",
        kind="bars",
    )


def refusals_section(rules: Iterable[RuleCount]) -> Section:
    """Why requests were refused for other reasons than their content (401, 403, 404 …): the
    errors of those exchanges; a warning the validator noted on their content refused nothing."""
    refusing = (r for r in rules if r.verdict == Verdict.ERROR and r.severity in ERROR_SEVERITIES)
    results = tuple(_rule_result(rule, Verdict.ERROR, ()) for rule in _merged(refusing))
    return Section(
        "refusals", "report.section.refusals", "report.column.reason", results, note_title="report.column.message"
    )


def _merged(rules: Iterable[RuleCount]) -> list[RuleCount]:
    """One row per rule and severity (the verdicts summed), errors first, the most frequent
    first."""
    merged: dict[tuple[str, str], RuleCount] = {}
    for rule in rules:
        key = (rule.rule, rule.severity)
        seen = merged.get(key)
        if seen is None:
            merged[key] = rule
        else:
            merged[key] = RuleCount(
                rule.rule,
                rule.severity,
                seen.verdict,
                seen.occurrences + rule.occurrences,
                seen.affected + rule.affected,
                min(seen.text, rule.text),
            )
    return sorted(merged.values(), key=lambda r: (_SEVERITY_ORDER.get(r.severity, 9), -r.occurrences, r.rule))


def _rule_result(rule: RuleCount, verdict: Verdict, examples: tuple[str, ...]) -> Result:
    return Result(
        f"{rule.rule}|{rule.severity}",
        rule.rule,
        verdict,
        note=rule.text,
        severity=rule.severity,
        occurrences=rule.occurrences,
        affected=rule.affected,
        examples=examples,
    )


def charted_rules(section: Section) -> list[Result]:
    """The rules the failures chart draws: the most frequent errors."""
    return [result for result in section.results if result.verdict == Verdict.FAIL][:CHARTED_RULES]


def failing_result(exchange: ExchangeDetail) -> Result:
    """A failing exchange's row in the report's exchanges section."""
    label = f"#{exchange.id} {exchange.client} {exchange.interaction}"
    return Result(
        exchange.id,
        label,
        exchange.verdict,
        note=exchange.recorded,
        findings=exchange.findings,
        link=exchange.id,
        findings_counted=exchange.findings_counted,
    )


#: where a verdict is counted in a tally list (the order of Counts' fields)
_SLOT = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.ERROR: 2, Verdict.SKIP: 3}


def _tally() -> list[int]:
    return [0, 0, 0, 0]


def _rated(groups: Iterable[tuple[str, Counts]]) -> tuple[Result, ...]:
    return tuple(Result(key, key, counts.verdict, counts=counts) for key, counts in groups)


def _worst_first(groups: dict[K, Counts]) -> list[tuple[K, Counts]]:
    """Lowest pass rate first (nothing judged last), then most exchanges, then by name."""
    return sorted(
        groups.items(),
        key=lambda item: (item[1].rate if item[1].rate is not None else 2.0, -item[1].total, str(item[0])),
    )


def iso_week(day: str) -> str:
    """2026-11-30 → 2026-W49 (ISO 8601 weeks start on Monday)."""
    year, week, _ = date.fromisoformat(day).isocalendar()
    return f"{year}-W{week:02d}"


def _numeric(value: str) -> int:
    return int(value) if value.isdigit() else 0


# -- checked files -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CheckedResource:
    """One resource of a file, validated: where it sits (``line 3``, ``entry 2``), what it
    is, the profiles it was held to and what was found."""

    file: str
    position: str
    resource_type: str
    resource_id: str
    profiles: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        return not any(finding.is_error for finding in self.findings)

    @property
    def key(self) -> str:
        return f"{self.file}#{self.position}" if self.position else self.file


def file_report(resources: Sequence[CheckedResource], scope: Sequence[tuple[str, str]], generated: str) -> Report:
    """One section per file with one result per resource, then pass rates by profile and the
    rules broken — the same sections as the auditors' report where they apply."""
    by_file: dict[str, list[Result]] = defaultdict(list)
    verdicts: list[ResourceVerdict] = []
    findings: list[tuple[str, str, Finding]] = []
    summary = Counts()
    for checked in resources:
        verdict = Verdict.PASS if checked.passed else Verdict.FAIL
        summary += Counts.of(verdict)
        reference = f"{checked.resource_type}/{checked.resource_id}" if checked.resource_id else checked.resource_type
        by_file[checked.file].append(
            Result(checked.key, reference, verdict, note=checked.position, findings=checked.findings)
        )
        errors = sum(1 for f in checked.findings if f.is_error)
        warnings = sum(1 for f in checked.findings if f.severity == "warning")
        for profile in checked.profiles:
            verdicts.append(
                ResourceVerdict(checked.resource_type, checked.resource_id, profile, checked.passed, errors, warnings)
            )
        findings.extend((checked.key, verdict, finding) for finding in checked.findings)
    rules, locations = count_rules(findings)
    sections = tuple(
        Section(
            f"file:{name}",
            "report.section.file",
            "report.column.resource",
            tuple(results),
            note_title="report.column.position",
            subtitle=name,
        )
        for name, results in by_file.items()
    ) + (profiles_section(count_profiles(verdicts)), rules_section(rules, locations))
    return Report(kind="files", generated=generated, scope=tuple(scope), summary=summary, sections=sections)
