"""``yiyang measure evaluate`` — the provincial indicators (签约率, 健康管理率 …) computed from
the archive.

``yiyang measure evaluate --measure URL|ID|all --period 2026 [--database URL] [--division CODE]
[--population FILE] [--format json|html|xlsx] [--out FILE] [--lang zh-CN|en]`` writes the
MeasureReports (JSON: a collection Bundle) and, with ``--out``, prints one line.  Without a
population file the rates over the resident population have no denominator: the report says
so instead of inventing one.  Exit status: 0 done, 2 a usage problem (unknown measure, bad
period, unreadable population file).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import EXIT_OK, Parser, add_database, add_language, config_of, usage, xlsx_needs_out
from gateway.cli.report import write

FORMATS = ("json", "html", "xlsx")


def register(commands: Any) -> None:
    measure = commands.add_parser("measure", help="cli.help.measure")
    actions = measure.add_subparsers(dest="action", required=True, parser_class=Parser)
    evaluate = actions.add_parser("evaluate", help="cli.help.measure.evaluate")
    evaluate.add_argument("--measure", default="all", metavar="URL|ID|all", help="cli.help.measure.evaluate.measure")
    evaluate.add_argument("--period", required=True, metavar="PERIOD", help="cli.help.measure.evaluate.period")
    evaluate.add_argument("--division", metavar="CODE", help="cli.help.measure.evaluate.division")
    evaluate.add_argument(
        "--population",
        type=Path,
        metavar="FILE",
        help="cli.help.measure.evaluate.population",
    )
    evaluate.add_argument("--format", choices=FORMATS, default="json")
    evaluate.add_argument("--out", type=Path, metavar="FILE", help="cli.help.measure.evaluate.out")
    add_database(evaluate)
    add_language(evaluate)
    evaluate.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace, out: IO[str]) -> int:
    from gateway.measures.catalog import division_names, select
    from gateway.measures.evaluate import MeasureError, Period
    from gateway.measures.population import PopulationFileError, read_population
    from gateway.measures.render import render_html, render_xlsx
    from gateway.measures.report import report_bundle
    from gateway.messages import text
    from gateway.reporting import generated_now
    from gateway.services import Services

    xlsx_needs_out(args)
    services = Services(config_of(args, reading=True))
    try:
        try:
            period = Period.parse(args.period)
            measures = select(services.measure_definitions, args.measure)
            population = read_population(args.population) if args.population else None
            results = services.measures.evaluate_all(measures, period, division=args.division, population=population)
        except MeasureError as error:
            raise usage(args, error.message_id, **error.params) from error
        except PopulationFileError as error:  # worded in --lang, the file's line and the system's reason too
            raise usage(args, "measure.population-file", detail=error) from error
        names = division_names(services.registry)
        if args.format == "json":
            import orjson

            bundle = report_bundle(results, generated_now(), services.config.canonical_base)
            data = orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n"
        elif args.format == "html":
            data = render_html(results, args.lang, names)
        else:
            data = render_xlsx(results, args.lang, names)
    finally:
        services.close()
    write(args.out, data)
    if args.out is not None:
        out.write(
            text("measure.written", args.lang, {"count": len(results), "period": args.period, "out": args.out}) + "\n"
        )
    return EXIT_OK
