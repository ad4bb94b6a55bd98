"""``yiyang conformance check FILE|DIR… [--format html|json|junit|xlsx|csv] [--out FILE]
[--lang zh-CN|en] [--profile URL]…`` — exported files validated resource by resource and
reported in the formats of ``yiyang report`` (JUnit: one testcase per resource, failing when
the resource has an error).

``yiyang conformance run --base-url URL [--token T | --client-id ID --key FILE] [--suite S]…
[--format html|json|junit] [--out FILE] [--lang zh-CN|en]`` — the participants' test kit
(``conformance/testkit``) run over HTTP against any FHIR server, reported the same way.

Exit status: 0 when no resource has an error (no test failed), 1 when one does, 2 for usage or I/O problems.
The validator is the one ``gateway/services.py`` builds; no database is opened.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

from gateway.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    Parser,
    add_language,
    config_of,
    file_text,
    usage,
    xlsx_needs_out,
)


def register(commands: Any) -> None:
    from gateway.cli.report import add_output
    from gateway.reporting import FORMATS

    conformance = commands.add_parser("conformance", help="cli.help.conformance")
    actions = conformance.add_subparsers(dest="action", required=True, parser_class=Parser)
    check = actions.add_parser("check", help="cli.help.conformance.check")
    check.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR", help="cli.help.conformance.check.paths")
    check.add_argument(
        "--profile", action="append", default=[], metavar="URL", help="cli.help.conformance.check.profile"
    )
    add_output(check, FORMATS, required=False)
    add_language(check)
    check.set_defaults(run=run_check)
    register_run(actions)


#: what ``conformance run`` writes: the formats meant for people and for CI
RUN_FORMATS = ("html", "json", "junit")


def register_run(actions: Any) -> None:
    from conformance.testkit.catalog import SUITES
    from gateway.cli.report import add_output

    run = actions.add_parser("run", help="cli.help.conformance.run")
    run.add_argument("--base-url", required=True, metavar="URL", help="cli.help.conformance.run.base-url")
    auth = run.add_mutually_exclusive_group()
    auth.add_argument("--token", metavar="TOKEN", help="cli.help.conformance.run.token")
    auth.add_argument("--client-id", metavar="ID", help="cli.help.conformance.run.client-id")
    run.add_argument("--key", type=Path, metavar="FILE", help="cli.help.conformance.run.key")
    run.add_argument("--kid", metavar="KID", help="cli.help.conformance.run.kid")
    run.add_argument("--scope", default="system/*.cruds", help="cli.help.conformance.run.scope")
    run.add_argument("--elderly-client-id", metavar="ID", help="cli.help.conformance.run.elderly-client-id")
    run.add_argument("--elderly-key", type=Path, metavar="FILE", help="cli.help.conformance.run.elderly-key")
    run.add_argument("--elderly-token", metavar="TOKEN", help="cli.help.conformance.run.elderly-token")
    run.add_argument("--suite", action="append", choices=(*SUITES, "all"), help="cli.help.conformance.run.suite")
    add_output(run, RUN_FORMATS, required=False)
    add_language(run)
    run.set_defaults(run=run_kit)


#: the options naming a client and its key: the kit's own, and the elderly-care client's
KIT_CLIENT = ("--client-id", "--key")
ELDERLY_CLIENT = ("--elderly-client-id", "--elderly-key")


def _credentials(args: argparse.Namespace, client_id: str | None, key: Path | None, options: tuple[str, str]) -> Any:
    """The signing credentials of a client and its key, given by ``options`` (the names a
    refusal uses); a key missing or unusable is a usage error before any request is sent."""
    from conformance.testkit.http import KeyCredentials

    if client_id is None:
        return None
    if key is None:
        raise usage(args, "cli.conformance.needs-key", client=options[0], key=options[1])
    try:
        credentials = KeyCredentials(client_id, file_text(args, key), args.kid)
        credentials.algorithm  # noqa: B018 - parses the key now, so a bad one is a usage error
    except (ValueError, TypeError) as exc:
        raise usage(args, "cli.conformance.not-a-key", path=key) from exc
    return credentials


def run_kit(args: argparse.Namespace, out: IO[str]) -> int:
    from conformance.testkit.catalog import Context
    from conformance.testkit.http import Http
    from conformance.testkit.runner import run
    from gateway.cli.report import write
    from gateway.fhir.repository import default_profiles
    from gateway.masking import mask_text
    from gateway.reporting import Rendering, generated_now, render, words_in
    from gateway.services import Services

    credentials = _credentials(args, args.client_id, args.key, KIT_CLIENT)
    elderly = _credentials(args, args.elderly_client_id, args.elderly_key, ELDERLY_CLIENT)
    http = Http(args.base_url, args.token, language=args.lang)
    if credentials is not None:
        try:
            status, body = http.sign_in(credentials, args.scope)
        except OSError as exc:  # requests' errors are OSErrors: the server cannot be reached
            raise usage(args, "cli.conformance.unreachable", url=args.base_url, reason=exc) from exc
        if http.login is None:
            raise usage(args, "cli.conformance.no-token", client=credentials.client_id, status=status, body=body)
    else:  # a token given, or none: the server must answer at all, or every test is an error
        try:
            http.send("GET", "metadata", token=False)
        except (OSError, ValueError) as exc:  # requests' errors (no server, no URL) are one or the other
            raise usage(args, "cli.conformance.unreachable", url=args.base_url, reason=type(exc).__name__) from exc
    http.take_log()
    http.take_broken()  # the probe's and the sign-in's answers belong to no test
    services = Services(config_of(args))
    ctx = Context(
        http, services.validator, default_profiles(services.registry), credentials, elderly, args.elderly_token
    )
    suites = args.suite or ["all"]
    scope = [("testkit.scope.base-url", args.base_url), ("testkit.scope.suites", ", ".join(suites))]
    report = run(ctx, suites, args.lang, scope, generated_now(), mask_text)
    write(args.out, render(report, Rendering(args.format, args.lang)))
    if args.out is not None:
        summary = report.summary
        line = {"path": args.out, "total": summary.total, "passed": summary.passed, "failed": summary.failed}
        line |= {"errors": summary.errors, "skipped": summary.skipped}
        out.write(words_in(args.lang)("testkit.cli.ran", line) + "\n")
    # a test that could not run (an error) is no pass either: a CI gate must not go green
    return EXIT_INVALID if report.summary.failed or report.summary.errors else EXIT_OK


def run_check(args: argparse.Namespace, out: IO[str]) -> int:
    from conformance.report.aggregate import file_report
    from conformance.report.svg import percent
    from gateway.cli.report import write
    from gateway.fhir.repository import default_profiles
    from gateway.file_check import FileChecker, files_in
    from gateway.masking import mask_text
    from gateway.messages import text
    from gateway.reporting import Rendering, generated_now, render, words_in
    from gateway.services import Services

    for path in args.paths:
        if not path.exists():
            raise usage(args, "cli.no-such-file", path=path)
    files = files_in(args.paths)
    if not files:
        paths = text("cli.list-separator", args.lang).join(map(str, args.paths))
        raise usage(args, "cli.conformance.no-files", paths=paths)
    xlsx_needs_out(args)
    services = Services(config_of(args))
    # a profile no one has would be no check at all: every file "passed" it
    if unknown := [url for url in args.profile if services.registry.get(url) is None]:
        raise usage(args, "cli.conformance.unknown-profile", url=unknown[0])
    checker = FileChecker(
        services.validator,
        default_profiles(services.registry),
        services.config.max_bytes,
        args.lang,
        args.profile,
    )
    checked = [resource for path in files for resource in checker.check(path)]
    if not checked:  # empty exports: a report of nothing checked would read as all passed
        raise usage(
            args, "cli.conformance.no-resources", paths=text("cli.list-separator", args.lang).join(map(str, files))
        )
    named = mask_text(", ".join(map(str, files)))
    report = file_report(checked, [("report.scope.files", named)], generated_now())
    write(args.out, render(report, Rendering(args.format, args.lang, args.table)))
    if args.out is not None:
        summary = report.summary
        words = words_in(args.lang)
        line = {"path": args.out, "total": summary.total, "rate": percent(summary.rate), "failed": summary.failed}
        out.write(words("report.cli.checked", line) + "\n")
    return EXIT_INVALID if report.summary.failed else EXIT_OK
