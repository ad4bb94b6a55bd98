"""A package Measure, read once into what evaluation needs: its basis, scoring, populations
with their criteria, stratifiers, target and sources.

Measures are data (``profiles/package/Measure-*.json``); this module only knows the three
criteria languages they may use, so a new indicator is a new file, not new code:

* ``application/x-fhir-query`` — a FHIR search such as
  ``Encounter?type=…|health-check&date=ge{{%periodStart}}``; ``{{…}}`` holds FHIRPath with
  ``%periodStart`` and ``%periodEnd`` (``{{%periodEnd - 65 years}}``).  The subjects it selects
  are the matches themselves when they are of the measure's basis type, else the Patients
  their ``patient`` (or ``subject``) reference names.
* ``text/x-yiyang-population`` — a count from the user's population file (``age >= 65``):
  the 常住 residents the archive cannot know.
* ``text/x-yiyang-function`` — a named per-subject value for a measure observation
  (``bed-days``), for continuous-variable measures.

A population may also require further queries (extension ``yy-ext-measure-also-requires``):
规范健康管理 needs a 体检 *and* a self-care assessment in the year.  And it may judge each
subject by the latest of its matches alone (extension ``yy-ext-measure-latest-matches``, a
query that match must meet too): 失能 is what the latest 长护险 assessment says, and a
person once assessed grade 3 and reassessed grade 0 is no longer disabled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from profiles.canonical import DEFAULT_BASE

QUERY = "application/x-fhir-query"
POPULATION_FILE = "text/x-yiyang-population"
FUNCTION = "text/x-yiyang-function"
STRATIFIER = "text/x-yiyang-stratifier"
LANGUAGES = (QUERY, POPULATION_FILE, FUNCTION)
#: the stratifiers evaluation knows, each a property of a Patient subject
STRATIFIERS = ("division", "age-band", "sex")
FUNCTIONS = ("bed-days",)
SCORINGS = ("proportion", "ratio", "cohort", "continuous-variable")
POPULATION_CODES = (
    "initial-population",
    "denominator",
    "denominator-exclusion",
    "numerator",
    "measure-population",
    "measure-observation",
)
_AGE = re.compile(r"^\s*age\s*>=\s*(\d{1,3})\s*$")


def extension_url(base: str, name: str) -> str:
    return f"{base}/StructureDefinition/{name}"


class MeasureDefinitionError(ValueError):
    """A Measure the engine cannot evaluate: named with the FHIRPath of the problem."""

    def __init__(self, measure: str, expression: str, detail: str) -> None:
        super().__init__(f"{measure}: {expression}: {detail}")
        self.measure, self.expression, self.detail = measure, expression, detail


@dataclass(frozen=True)
class Criteria:
    language: str
    expression: str

    @property
    def minimum_age(self) -> int:
        """For a population-file criterion: the youngest age it counts."""
        found = _AGE.match(self.expression)
        assert found is not None  # checked when the Measure was read
        return int(found.group(1))


@dataclass(frozen=True)
class Population:
    code: str
    description: str
    criteria: Criteria
    also_requires: tuple[Criteria, ...] = ()
    #: a query the latest match of ``criteria`` (by its ``date``) must meet, for each subject
    latest_matches: Criteria | None = None


@dataclass(frozen=True)
class MeasureDefinition:
    url: str
    id: str
    title: str
    basis: str
    scoring: str
    populations: dict[str, Population]
    stratifiers: tuple[str, ...]
    #: the programme's target in percent (a rate) or count, with its direction
    target: float | None
    improvement: str
    sources: tuple[str, ...]
    resource: dict[str, Any]

    def population(self, code: str) -> Population | None:
        return self.populations.get(code)


def read_measure(resource: dict[str, Any], base: str = DEFAULT_BASE) -> MeasureDefinition:
    """The evaluable form of a Measure; raises :class:`MeasureDefinitionError` naming the
    element that is wrong, so a broken package file is reported, never half-evaluated."""
    name = str(resource.get("url") or resource.get("id") or "Measure")

    def fail(expression: str, detail: str) -> MeasureDefinitionError:
        return MeasureDefinitionError(name, expression, detail)

    groups = resource.get("group") or []
    if len(groups) != 1:
        raise fail("Measure.group", "exactly one group is supported")
    group = groups[0]
    scoring = _code(resource.get("scoring"))
    if scoring not in SCORINGS:
        raise fail("Measure.scoring", f"unknown scoring {scoring!r}")
    populations: dict[str, Population] = {}
    for index, entry in enumerate(group.get("population") or []):
        where = f"Measure.group[0].population[{index}]"
        code = _code(entry.get("code"))
        if code not in POPULATION_CODES or code in populations:
            raise fail(f"{where}.code", f"unknown or repeated population {code!r}")
        criteria = _criteria(entry.get("criteria"), f"{where}.criteria", fail)
        if criteria.language == POPULATION_FILE and code != "denominator":
            # residents are counted, never selected: they can only be what a rate divides by
            raise fail(f"{where}.criteria.language", "the population file gives a denominator only")
        also = tuple(
            _criteria(ext.get("valueExpression"), f"{where}.extension[{i}]", fail)
            for i, ext in enumerate(entry.get("extension") or [])
            if ext.get("url") == extension_url(base, "yy-ext-measure-also-requires")
        )
        if any(c.language != QUERY for c in also):
            raise fail(f"{where}.extension", "further requirements must be FHIR queries")
        latest = _latest_matches(entry, criteria, where, base, fail)
        populations[code] = Population(code, str(entry.get("description") or code), criteria, also, latest)
    needed = {
        "proportion": ("initial-population", "denominator", "numerator"),
        "ratio": ("initial-population", "denominator", "numerator"),
        "cohort": ("initial-population",),
        "continuous-variable": ("initial-population", "measure-population", "measure-observation"),
    }[scoring]
    missing = [code for code in needed if code not in populations]
    if missing:
        raise fail("Measure.group[0].population", f"{scoring} needs {', '.join(missing)}")
    stratifiers = []
    for index, entry in enumerate(group.get("stratifier") or []):
        criteria = entry.get("criteria") or {}
        if criteria.get("language") != STRATIFIER or criteria.get("expression") not in STRATIFIERS:
            raise fail(f"Measure.group[0].stratifier[{index}].criteria", f"one of {', '.join(STRATIFIERS)}")
        stratifiers.append(str(criteria["expression"]))
    basis = _code(resource.get("subjectCodeableConcept")) or "Patient"
    if stratifiers and basis != "Patient":
        raise fail("Measure.group[0].stratifier", "stratifiers are properties of Patient subjects")
    target = next(
        (
            float(ext["valueDecimal"])
            for ext in resource.get("extension") or []
            if ext.get("url") == extension_url(base, "yy-ext-measure-target") and "valueDecimal" in ext
        ),
        None,
    )
    return MeasureDefinition(
        url=str(resource.get("url", "")),
        id=str(resource.get("id", "")),
        title=str(resource.get("title") or resource.get("name") or resource.get("id", "")),
        basis=basis,
        scoring=scoring,
        populations=populations,
        stratifiers=tuple(stratifiers),
        target=target,
        improvement=_code(resource.get("improvementNotation")) or "increase",
        sources=tuple(str(a.get("display") or a.get("label") or "") for a in resource.get("relatedArtifact") or []),
        resource=resource,
    )


def _latest_matches(entry: dict[str, Any], criteria: Criteria, where: str, base: str, fail: Any) -> Criteria | None:
    """The population's ``yy-ext-measure-latest-matches`` query, if any: at most one, a FHIR
    query of the type its criteria select."""
    found = [
        (index, ext)
        for index, ext in enumerate(entry.get("extension") or [])
        if ext.get("url") == extension_url(base, "yy-ext-measure-latest-matches")
    ]
    if not found:
        return None
    index, extension = found[-1]
    latest = _criteria(extension.get("valueExpression"), f"{where}.extension[{index}]", fail)
    if len(found) > 1 or latest.language != QUERY or criteria.language != QUERY:
        raise fail(f"{where}.extension[{index}]", "one FHIR query the latest match of FHIR query criteria meets")
    if latest.expression.split("?", 1)[0] != criteria.expression.split("?", 1)[0]:
        raise fail(f"{where}.extension[{index}]", "the latest match is of the type the criteria select")
    return latest


def _criteria(value: Any, where: str, fail: Any) -> Criteria:
    if not isinstance(value, dict) or not isinstance(value.get("expression"), str):
        raise fail(where, "an Expression with language and expression is required")
    language, expression = value.get("language"), value["expression"]
    if language not in LANGUAGES:
        raise fail(f"{where}.language", f"one of {', '.join(LANGUAGES)}")
    if language == QUERY and not re.match(r"^[A-Z][A-Za-z]+\?", expression):
        raise fail(f"{where}.expression", "a FHIR query starts with a resource type and '?'")
    if language == POPULATION_FILE and not _AGE.match(expression):
        raise fail(f"{where}.expression", "population criteria read 'age >= N'")
    if language == FUNCTION and expression not in FUNCTIONS:
        raise fail(f"{where}.expression", f"one of {', '.join(FUNCTIONS)}")
    return Criteria(str(language), expression)


def _code(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    codings = concept.get("coding") or []
    return str(codings[0].get("code", "")) if codings and isinstance(codings[0], dict) else ""
