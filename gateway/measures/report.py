"""An evaluated measure as a FHIR MeasureReport (``type: summary``), and several of them as one
collection Bundle — the JSON that ``yiyang measure evaluate`` writes and
``$evaluate-measure`` answers.

An unknown count (a denominator whose population file was not supplied) is not a zero: the
population carries no ``count`` but the core ``data-absent-reason`` extension (``unknown``, or
``masked`` for a client that may not see the residents), and so does the score, so no
consumer can mistake "not known" for "none".
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.measures.definition import extension_url
from gateway.measures.evaluate import MeasureResult, PopulationResult

POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
#: the unit of a continuous-variable score, by its measure-observation function
OBSERVATION_UNITS = {"bed-days": ("d", "床日 / bed-days")}


def measure_report(result: MeasureResult, generated: str, base: str) -> dict[str, Any]:
    measure = result.measure
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": measure.url,
        "date": generated,
        "period": {"start": result.period.start.isoformat(), "end": result.period.end.isoformat()},
    }
    if measure.target is not None:
        report["extension"] = [{"url": extension_url(base, "yy-ext-measure-target"), "valueDecimal": measure.target}]
    if measure.scoring == "proportion":
        report["improvementNotation"] = measure.resource.get("improvementNotation")
    group: dict[str, Any] = {"population": [_population(p) for p in result.populations.values()]}
    score = _score(result, result.score)
    if score is not None:
        group["measureScore"] = score
    if measure.stratifiers:
        group["stratifier"] = [_stratifier(result, name) for name in measure.stratifiers]
    report["group"] = [group]
    if result.division:
        report["subject"] = {"display": f"区划 / division {result.division}"}
    return report


def report_bundle(results: list[MeasureResult], generated: str, base: str) -> dict[str, Any]:
    """The reports of one run, each under a stable urn:uuid (same measure, period and division,
    same fullUrl), so two runs can be compared entry by entry."""
    entries = []
    for result in results:
        key = f"{result.measure.url}|{result.period.start}|{result.period.end}|{result.division or ''}"
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}",
                "resource": measure_report(result, generated, base),
            }
        )
    return {"resourceType": "Bundle", "type": "collection", "timestamp": generated, "entry": entries}


def _population(population: PopulationResult, count: int | None = None, *, stratum: bool = False) -> dict[str, Any]:
    value = population.count if not stratum else count
    found: dict[str, Any] = {"code": {"coding": [{"system": POPULATION_SYSTEM, "code": population.code}]}}
    if value is None:
        found["extension"] = [{"url": ABSENT, "valueCode": population.absent}]
    else:
        found["count"] = value
    return found


def _score(result: MeasureResult, value: float | None) -> dict[str, Any] | None:
    scoring = result.measure.scoring
    if scoring == "cohort":
        return None  # a cohort's answer is its count
    if value is None:
        denominator = result.populations.get("denominator")
        return {"extension": [{"url": ABSENT, "valueCode": denominator.absent if denominator else "unknown"}]}
    if scoring == "continuous-variable":
        observation = result.measure.populations["measure-observation"].criteria.expression
        code, unit = OBSERVATION_UNITS.get(observation, ("1", ""))
        return {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": code}
    return {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}


def _stratifier(result: MeasureResult, name: str) -> dict[str, Any]:
    values = sorted(
        {value for population in result.populations.values() for (s, value) in population.strata if s == name}
    )
    strata = []
    for value in values:
        populations = [
            _population(p, None if p.count is None else p.strata.get((name, value), 0), stratum=True)
            for p in result.populations.values()
        ]
        stratum: dict[str, Any] = {"value": {"text": value}, "population": populations}
        score = _score(result, result.strata_scores.get((name, value)))
        if score is not None:
            stratum["measureScore"] = score
        strata.append(stratum)
    return {"code": [{"text": name}], "stratum": strata}
