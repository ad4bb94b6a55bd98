"""``$evaluate-measure`` (FHIR R4 Measure operation): the provincial indicators, computed from
the archive for a period, answered as a MeasureReport of type ``summary``.

``GET /fhir/Measure/{id}/$evaluate-measure?periodStart=2026-01-01&periodEnd=2026-12-31`` or
``GET /fhir/Measure/$evaluate-measure?measure={url}&periodStart=…&periodEnd=…``, optionally
``&division=410105``.  The Measures are the package's; the denominators over the resident
population come from ``YIYANG_POPULATION_FILE``.  A restricted principal (an elderly-care
platform) counts only the people it may see, so an indicator never reveals anyone else.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask import Blueprint, Flask, Response
from werkzeug.datastructures import MultiDict

from gateway.api.negotiation import given_once, operation_args, prefer_handling, respond
from gateway.api.routes import access, services
from gateway.fhir.capability import EVALUATE_MEASURE
from gateway.fhir.errors import FhirError
from gateway.fhir.operation_inputs import defined_inputs
from gateway.fhir.parameters import honoured_only, unsupported_value
from gateway.measures.catalog import select
from gateway.measures.evaluate import MeasureError, Period
from gateway.measures.population import PopulationFileError, PopulationTable, read_population
from gateway.measures.report import measure_report
from gateway.reporting import generated_now

measures = Blueprint("measures", __name__, url_prefix="/fhir")


def install(app: Flask) -> None:
    app.register_blueprint(measures)


@measures.route("/Measure/$evaluate-measure", methods=["GET", "POST"])
def evaluate_type() -> Response:
    args = operation_args()
    return _evaluate(args.get("measure", ""), args)


@measures.route("/Measure/<measure_id>/$evaluate-measure", methods=["GET", "POST"])
def evaluate_instance(measure_id: str) -> Response:
    return _evaluate(measure_id, operation_args())


def _evaluate(wanted: str, args: MultiDict[str, str]) -> Response:
    """The parameters taken, each once, those required, the codes ``reportType`` takes and the
    parameters refused are the operation's definition's
    (profiles/package/OperationDefinition-Measure-evaluate-measure.json).  Anything else but
    the controls every answer takes (_format, _pretty) is refused, since a typo must not widen
    a count, unless handling is lenient: then it is ignored (a MeasureReport has no room to say
    so), as a search skips one.  The refused ones (``patient``, ``practitioner``, R5's
    ``subject``) ask for the report of one patient or of a practitioner's patients: refused
    whatever the handling, since ignoring one answers the population's report as if it were
    the one asked for."""
    found = services()
    inputs = defined_inputs(found.registry, found.registry.url("OperationDefinition", EVALUATE_MEASURE))
    for name in inputs.refused:
        if name in args:
            raise FhirError(400, "measure.subject-report", name, name=name)
    lenient = prefer_handling() == "lenient"
    args = MultiDict(honoured_only(args.items(multi=True), "$evaluate-measure", tuple(inputs.types), lenient)[0])
    given_once(args, [name for name in inputs.types if name in inputs.single])
    for name, codes in inputs.codes.items():  # reportType: R4's population, and the report's type
        if name in args and args[name] not in codes:
            raise unsupported_value(name, args[name], codes)
    for name in inputs.required:  # periodStart, periodEnd: alone, one was read as a period of a day
        if not args.get(name):
            raise FhirError(400, "http.parameter-required", name, name=name, where="$evaluate-measure")
    start, end = args["periodStart"], args["periodEnd"]
    if not wanted:  # 0..1 in R4 because an instance names its Measure; the type needs one
        raise FhirError(400, "http.parameter-required", "measure", name="measure", where="$evaluate-measure")
    try:
        # one Measure, one MeasureReport: the command line's "all" names none of them here (it
        # answered the first Measure's report, as if a Measure/all existed)
        if wanted == "all":
            raise MeasureError("measure.unknown", measure=wanted)
        chosen = select(found.measure_definitions, wanted)[0]
        period = Period.between(start, end)
        result = found.measures.evaluate(
            chosen,
            period,
            division=args.get("division"),
            population=_population(found.config.population_file),
            access=access(),
        )
    except MeasureError as error:
        if error.message_id == "measure.unknown":  # the type-level operation named it in `measure`
            expression = "measure" if "measure" in args else None
            raise FhirError(404, error.message_id, expression, **error.params) from error
        raise FhirError(400, error.message_id, error.expression, **error.params) from error
    return respond(measure_report(result, generated_now(), found.config.canonical_base))


@cache
def _population(path: str) -> PopulationTable | None:
    """The configured population file, read once per process."""
    if not path:
        return None
    try:
        return read_population(Path(path))
    except PopulationFileError as error:
        raise FhirError(500, "measure.population-file", detail=error) from error
