"""Evaluate a package Measure over the archive for one period: each population's count,
overall and per stratum, and the score.

The database does the counting (``gateway/storage/measure_sql.py``): criteria are FHIR
searches run through the same parser and SQL as the REST API, so a criterion means exactly
what the same query typed into a browser means.  Python only expands the ``{{…}}`` FHIRPath
in queries, applies the population file and does the arithmetic.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fhirpathpy import compile as compile_fhirpath

from gateway.measures.definition import FUNCTION, POPULATION_FILE, Criteria, MeasureDefinition, Population
from gateway.measures.population import AGE_BANDS, PopulationTable, band_low
from gateway.search.parameters import SearchParameters
from gateway.search.query import SearchError, SearchQuery, parse_search
from gateway.search.values import BEIJING, ascii_digits, date_range
from gateway.security.access import Access
from gateway.storage.measure_sql import (
    DIVISION,
    LATEST_BY,
    Place,
    Selection,
    members_sql,
    named_matches_sql,
    named_sql,
    tally_sql,
)
from gateway.storage.store import Store, Transaction
from profiles.registry import r4_base_types

_EMBEDDED = re.compile(r"\{\{(.+?)\}\}")
#: reference parameters that lead from a clinical resource to its Patient, in preference order
_TO_PATIENT = ("patient", "subject", "beneficiary")
#: reference parameters that lead from a subject to the resource whose division it is in
_TO_PLACE = ("patient", "primary-organization", "organization", "subject")

Strata = dict[tuple[str, str], int]


@cache
def _r4_date() -> re.Pattern[str]:
    """An R4 date of any precision (YYYY, YYYY-MM, YYYY-MM-DD): the base model's own regex,
    so a period bound is held to what a resource's date is."""
    return re.compile(r4_base_types()["date"]["regex"])


class MeasureError(ValueError):
    """A measure that cannot be evaluated as asked: a stable message id and its values, and the
    operation parameter at fault (``expression``) when one is."""

    def __init__(self, message_id: str, expression: str | None = None, **params: Any) -> None:
        super().__init__(message_id)
        self.message_id, self.expression, self.params = message_id, expression, params


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @classmethod
    def between(cls, start: str, end: str) -> Period:
        """From the first day of ``start`` to the last of ``end``, each an R4 date of any
        precision (a year, a month or a day), as R4's $evaluate-measure reads periodStart and
        periodEnd (2026 to 2026 is the year).  A refusal names the parameter at fault."""
        first, last = cls._bound("periodStart", start), cls._bound("periodEnd", end)
        if last.end < first.start:
            raise MeasureError("measure.period-reversed", "periodEnd", start=start, end=end)
        return cls(first.start, last.end)

    @classmethod
    def _bound(cls, name: str, text: str) -> Period:
        """periodStart or periodEnd: a date, not the command line's ``start/end`` pair."""
        try:
            if not _r4_date().fullmatch(text):
                raise MeasureError("measure.bad-period-date")
            return cls.parse(text)
        except MeasureError as error:
            raise MeasureError("measure.bad-period-date", name, name=name, value=text) from error

    @classmethod
    def parse(cls, text: str) -> Period:
        """``2026`` (a year), ``2026-07`` (a month), ``2026-07-01`` (a day) or
        ``2026-01-01/2026-06-30``."""
        try:
            if "/" in text:
                first, last = text.split("/", 1)
                period = cls(_day(first), _day(last))
            elif _DAY.fullmatch(text):
                period = cls(date.fromisoformat(text), date.fromisoformat(text))
            elif re.fullmatch(r"\d{4}", text):
                period = cls(date(int(text), 1, 1), date(int(text), 12, 31))
            elif re.fullmatch(r"\d{4}-\d{2}", text):
                year, month = map(int, text.split("-"))
                following = date(year + month // 12, month % 12 + 1, 1)
                period = cls(date(year, month, 1), date.fromordinal(following.toordinal() - 1))
            else:
                raise ValueError(text)
        except ValueError as exc:
            raise MeasureError("measure.bad-period", period=text) from exc
        if period.end < period.start:  # understood, but ending before it starts
            raise MeasureError("measure.period-reversed", start=period.start.isoformat(), end=period.end.isoformat())
        return period

    def years_before_end(self, years: int) -> date:
        """The latest birth date of someone at least ``years`` old on the last day."""
        if self.end.year - years < FIRST_YEAR:
            raise self.out_of_range(f"{self.end.isoformat()} - {years} years")
        try:
            return self.end.replace(year=self.end.year - years)
        except ValueError:  # 29 February
            return self.end.replace(year=self.end.year - years, day=28)

    def out_of_range(self, computed: str) -> MeasureError:
        """The refusal of a period the criteria compute a date from that no query can hold."""
        period = f"{self.start.isoformat()}/{self.end.isoformat()}"
        return MeasureError("measure.period-out-of-range", period=period, computed=computed)


@dataclass
class PopulationResult:
    code: str
    description: str
    #: None when unknown: a denominator from a population file that was not supplied
    count: int | None
    strata: Strata = field(default_factory=dict)
    #: why ``count`` is None (a data-absent-reason code): ``unknown`` or ``masked``
    absent: str = "unknown"


@dataclass
class MeasureResult:
    measure: MeasureDefinition
    period: Period
    division: str | None
    populations: dict[str, PopulationResult]
    #: a proportion in percent, a cohort's count, a continuous variable's sum
    score: float | None
    strata_scores: dict[tuple[str, str], float | None]
    #: message ids (gateway/messages.json) explaining what the numbers are or lack
    notes: list[str]

    def count(self, code: str) -> int | None:
        found = self.populations.get(code)
        return found.count if found else None


class MeasureEvaluator:
    """Built once per process (gateway/services.py); evaluates any package Measure."""

    def __init__(self, store: Store, parameters: SearchParameters) -> None:
        self.store = store
        self.parameters = parameters

    def evaluate_all(
        self,
        measures: list[MeasureDefinition],
        period: Period,
        *,
        division: str | None = None,
        population: PopulationTable | None = None,
    ) -> list[MeasureResult]:
        """Several measures of one period; a population several of them share (everyone aged
        65 and over, in eight of them) is counted once."""
        counted: dict[tuple[str, tuple[Any, ...]], list[tuple[Any, ...]]] = {}
        return [self.evaluate(m, period, division=division, population=population, counted=counted) for m in measures]

    def evaluate(
        self,
        measure: MeasureDefinition,
        period: Period,
        *,
        division: str | None = None,
        population: PopulationTable | None = None,
        access: Access | None = None,
        counted: dict[tuple[str, tuple[Any, ...]], list[tuple[Any, ...]]] | None = None,
    ) -> MeasureResult:
        """One measure; ``counted`` keeps the rows of populations already counted (same SQL,
        same answer within one run)."""
        counted = {} if counted is None else counted
        if division is not None and not ascii_digits(division):
            raise MeasureError("measure.bad-division", "division", division=division)
        place = self._place(measure.basis)
        bands = _bands(period) if measure.basis == "Patient" else ()
        restricted = access is not None and access.restricted
        residents = _residents(measure, population, division, restricted)
        notes: list[str] = [] if residents is None else residents.notes
        results: dict[str, PopulationResult] = {}
        chains: dict[str, list[Selection]] = {}
        observed = 0.0
        # one snapshot: on PostgreSQL a statement by statement view counted a numerator after
        # writes its denominator had not seen (numerator > denominator, a rate over 100 %)
        with self.store.reading(consistent=True) as tx:

            def tally(code: str, selections: list[Selection]) -> PopulationResult:
                sql, params = tally_sql(measure.basis, selections, within=division, place=place, bands=bands)
                key = (sql, tuple(params))
                if key not in counted:
                    counted[key] = tx.resources.tally((sql, params))
                rows = counted[key] if residents is None else residents.keep(counted[key])
                return _result(measure, code, rows)

            def selections(population: Population) -> list[Selection]:
                found = self._selections(measure, population, period, access)
                if measure.basis != "Patient":  # only a Patient is named by number
                    return found
                return [s if s.via is None else _named(tx, s) for s in found]

            initial = measure.populations["initial-population"]
            chains["initial-population"] = selections(initial)
            # a rate over the population file is over its residents: they are the initial population
            results["initial-population"] = (
                tally("initial-population", chains["initial-population"])
                if residents is None
                else residents.result(measure, "initial-population")
            )
            for code in ("denominator", "denominator-exclusion", "numerator", "measure-population"):
                entry = measure.population(code)
                if entry is None:
                    continue
                if entry.criteria.language == POPULATION_FILE:
                    assert residents is not None  # _residents found this population
                    results[code] = residents.result(measure, code)
                    continue
                # a population lies within the one before it: numerator ⊆ denominator ⊆ initial
                parent = "denominator" if code in ("numerator", "denominator-exclusion") else "initial-population"
                if parent not in chains:
                    parent = "initial-population"
                chains[code] = chains[parent] + selections(entry)
                results[code] = tally(code, chains[code])
            observation = measure.population("measure-observation")
            if observation is not None:
                members = tx.resources.members(
                    members_sql(measure.basis, chains["measure-population"], within=division, place=place)
                )
                observed = sum(_observe(observation.criteria, content, period) for _, content in members)
                # the population counts observations; their aggregate (a sum) is the score
                results["measure-observation"] = PopulationResult(
                    "measure-observation", observation.description, len(members)
                )
        score, strata_scores = _scores(measure, results, observed)
        return MeasureResult(measure, period, division, results, score, strata_scores, notes)

    # -- criteria --------------------------------------------------------------------------
    def _selections(
        self, measure: MeasureDefinition, population: Population, period: Period, access: Access | None
    ) -> list[Selection]:
        first = self._selection(measure, population.criteria, period, access, population.latest_matches)
        return [first, *(self._selection(measure, c, period, access) for c in population.also_requires)]

    def _selection(
        self,
        measure: MeasureDefinition,
        criteria: Criteria,
        period: Period,
        access: Access | None,
        latest_matches: Criteria | None = None,
    ) -> Selection:
        text = _expand(criteria.expression, period)
        kind, _, query_string = text.partition("?")
        query = self._parsed(measure, kind, query_string, text)
        # a count shows no record's id, so a record is judged by whom it names alone: the rule
        # on the records it names (Provenance targets, readings' members) nested in a count's
        # statement overflowed SQLite's parser, and would tell a count nothing
        restriction = access.condition(kind, through=False) if access is not None else None
        latest = self._latest(measure, kind, text, latest_matches, period)
        if kind == measure.basis:
            return Selection(query, None, restriction)
        via = next(
            (
                code
                for code in _TO_PATIENT
                if (found := self.parameters.get(kind, code)) is not None and measure.basis in found.targets
            ),
            None,
        )
        if via is None:
            raise MeasureError(
                "measure.bad-criteria",
                measure=measure.url,
                criteria=text,
                detail=f"no reference from {kind} to {measure.basis}",
            )
        return Selection(query, via, restriction, latest)

    def _latest(
        self, measure: MeasureDefinition, kind: str, text: str, latest_matches: Criteria | None, period: Period
    ) -> SearchQuery | None:
        """The search each subject's latest match must meet too: matches of another type than
        the subjects, with a date to tell the latest by."""
        if latest_matches is None:
            return None
        if kind == measure.basis or self.parameters.get(kind, LATEST_BY) is None:
            detail = f"no latest {kind} by {LATEST_BY} of each {measure.basis}"
            raise MeasureError("measure.bad-criteria", measure=measure.url, criteria=text, detail=detail)
        expanded = _expand(latest_matches.expression, period)
        return self._parsed(measure, kind, expanded.partition("?")[2], expanded)

    def _parsed(self, measure: MeasureDefinition, kind: str, query_string: str, text: str) -> SearchQuery:
        try:
            return parse_search(kind, parse_qsl(query_string, keep_blank_values=True), self.parameters)
        except SearchError as exc:  # the Measure is broken
            raise MeasureError("measure.bad-criteria", measure=measure.url, criteria=text, detail=str(exc)) from exc

    def _place(self, basis: str) -> Place:
        """Where a subject's division is read: its own admin-division rows, or those of the
        resource a reference parameter names (an episode's patient, an affiliation's
        organization)."""
        if self.parameters.get(basis, DIVISION) is not None:
            return Place(None)
        for code in _TO_PLACE:
            found = self.parameters.get(basis, code)
            if found is not None and any(self.parameters.get(t, DIVISION) for t in found.targets):
                return Place(code)
        return Place(None)


def _named(tx: Transaction, selection: Selection) -> Selection:
    """The selection with the matches naming their person by number alone, each with the
    Patient the identity index says holds the number: first every record of the type naming
    someone so (usually none), then those of them the criterion matches."""
    named = tx.resources.named(named_sql(selection))
    if not named:
        return selection
    matched = tx.resources.matched(named_matches_sql(selection, [record for record, _ in named]))
    return replace(selection, named=tuple(pair for pair in named if pair[0] in matched))


def _bands(period: Period) -> list[tuple[str, str]]:
    """(band, latest birth instant) from the oldest band down; the youngest has no bound."""
    ordered = sorted(AGE_BANDS, key=band_low, reverse=True)
    bounds = [(band, date_range(period.years_before_end(band_low(band)).isoformat())[0]) for band in ordered[:-1]]
    return [*bounds, (ordered[-1], "")]


def _result(measure: MeasureDefinition, code: str, rows: list[tuple[Any, ...]]) -> PopulationResult:
    entry = measure.populations[code]
    strata: Counter[tuple[str, str]] = Counter()
    total = 0
    for county, sex, band, count in rows:
        count = int(count)
        total += count
        values = {"division": county or "unknown", "sex": sex or "unknown", "age-band": band or "unknown"}
        for stratifier in measure.stratifiers:
            strata[(stratifier, values[stratifier])] += count
    return PopulationResult(code, entry.description, total, dict(strata))


@dataclass
class Residents:
    """The resident population a rate divides by (the population file's strata of its age),
    which is also the rate's initial population: FHIR nests numerator ⊆ denominator ⊆ initial
    population, and the archive's own people aged 65+ are far fewer than the residents."""

    minimum_age: int
    table: PopulationTable | None
    division: str | None
    #: why there is no count: ``unknown`` (no file) or ``masked`` (a restricted client)
    absent: str
    notes: list[str]

    def strata(self) -> Counter[tuple[str, str, str]] | None:
        """(county, sex, age band) → residents; None when the count may not or cannot be given."""
        if self.table is None or self.absent == "masked":
            return None
        return self.table.residents(self.minimum_age, self.division)

    def result(self, measure: MeasureDefinition, code: str) -> PopulationResult:
        entry = measure.populations[code]
        strata = self.strata()
        if strata is None:
            return PopulationResult(code, entry.description, None, absent=self.absent)
        return _result(measure, code, [(*stratum, count) for stratum, count in strata.items()])

    def keep(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The archive's rows of people in a stratum the file has residents of: anyone else
        (another county, no known sex) is no resident it counts, and counted over it would
        put more people in a numerator than in its denominator."""
        strata = self.strata()
        if strata is None:
            return rows
        kept = [row for row in rows if strata[(row[0], row[1], row[2])] > 0]
        if len(kept) < len(rows) and "measure.outside-population-file" not in self.notes:
            self.notes.append("measure.outside-population-file")
        return kept


def _residents(
    measure: MeasureDefinition, table: PopulationTable | None, division: str | None, restricted: bool
) -> Residents | None:
    """The population-file denominator of a rate, if it has one.  A restricted client (an
    elderly-care platform) sees counts over the people it serves only, and the county's
    residents are not all its people: their counts are masked for it."""
    denominator = measure.population("denominator")
    if denominator is None or denominator.criteria.language != POPULATION_FILE:
        return None
    if restricted:
        return Residents(denominator.criteria.minimum_age, table, division, "masked", ["measure.population-masked"])
    notes = [] if table is not None else ["measure.no-population-file"]
    return Residents(denominator.criteria.minimum_age, table, division, "unknown", notes)


def _scores(
    measure: MeasureDefinition, results: dict[str, PopulationResult], observed: float
) -> tuple[float | None, dict[tuple[str, str], float | None]]:
    if measure.scoring == "cohort":
        return float(results["initial-population"].count or 0), {}
    if measure.scoring == "continuous-variable":
        return float(observed), {}
    numerator, denominator = results["numerator"], results["denominator"]
    excluded = results.get("denominator-exclusion")

    def rate(top: int | None, bottom: int | None, minus: int | None) -> float | None:
        if top is None or bottom is None:
            return None
        base = bottom - (minus or 0)
        return round(100.0 * top / base, 2) if base > 0 else None

    overall = rate(numerator.count, denominator.count, excluded.count if excluded else None)
    keys = set(numerator.strata) | set(denominator.strata)
    by_stratum = {
        key: rate(
            numerator.strata.get(key, 0),
            denominator.strata.get(key) if denominator.count is not None else None,
            excluded.strata.get(key, 0) if excluded else None,
        )
        for key in sorted(keys)
    }
    return overall, by_stratum


#: the FHIRPath engine computes dates of four-digit years only: a year before 1000 it writes
#: unpadded ("935-12-31", which no search reads) or cannot read back
FIRST_YEAR = 1000
_SHORT_YEAR_DATE = re.compile(r"\d{1,3}-\d{2}-\d{2}.*")


@cache
def _compiled(expression: str) -> Any:
    return compile_fhirpath(expression)


def _expand(expression: str, period: Period) -> str:
    """Replace each ``{{FHIRPath}}`` of an x-fhir-query by its value (x-fhir-query's rule)."""
    variables = {"periodStart": period.start.isoformat(), "periodEnd": period.end.isoformat()}

    def value(match: re.Match[str]) -> str:
        try:
            found = _compiled(match.group(1).strip())({}, variables)
        except (ValueError, OverflowError) as exc:  # a date before year 1 or after 9999
            raise period.out_of_range(match.group(1).strip()) from exc
        if len(found) != 1:
            raise MeasureError("measure.bad-criteria", measure="", criteria=expression, detail=match.group(0))
        computed = str(found[0])
        if _SHORT_YEAR_DATE.fullmatch(computed):  # the engine neither reads nor pads years before 1000
            raise period.out_of_range(f"{match.group(1).strip()} = {computed}")
        return computed

    return _EMBEDDED.sub(value, expression)


def _observe(criteria: Criteria, content: Any, period: Period) -> float:
    """A measure observation of one subject (``text/x-yiyang-function``)."""
    assert criteria.language == FUNCTION and criteria.expression == "bed-days"
    resource = orjson.loads(content) if isinstance(content, str | bytes) else content
    return float(bed_days(resource.get("period") or {}, period))


def bed_days(episode_period: dict[str, Any], period: Period) -> int:
    """床日 of an episode within the reporting period: the nights from its start (or the
    period's first day) up to its end, the day of discharge not counted; an open episode
    counts through the period's last day; a same-day episode counts one day, as 床日 are
    billed."""
    try:
        start = _beijing_day(str(episode_period["start"]))
        raw_end = episode_period.get("end")
        end = _beijing_day(str(raw_end)) if raw_end else None
    except (KeyError, ValueError):
        return 0
    after_period = period.end + timedelta(days=1)
    first = max(start, period.start)
    last = min(end, after_period) if end is not None else after_period
    if first > min(last, period.end):
        return 0
    return max((last - first).days, 1)


#: a day as FHIR writes one; ``date.fromisoformat`` alone also reads week dates (2026-W01-1
#: is 29 December 2025) and the basic form (20260101)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _day(text: str) -> date:
    """``text`` as a day written YYYY-MM-DD; ValueError for anything else."""
    if not _DAY.fullmatch(text):
        raise ValueError(f"{text!r} is not a day written YYYY-MM-DD")
    return date.fromisoformat(text)


def _beijing_day(text: str) -> date:
    """The calendar day of a FHIR date or dateTime in Beijing time, the day the period's dates
    mean (the search reads them so): 2026-12-31T18:00:00Z is 1 January 2027 in the ward."""
    if len(text) <= 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo is None else moment.astimezone(BEIJING)).date()
