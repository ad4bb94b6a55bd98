"""``yiyang``: the gateway's command line; all terminal wording lives in this package.

Exit status of every command: 0 clean, 1 invalid data found, 2 usage or I/O problem (a bad
option, an unreadable file, an unreachable or damaged store), 3 internal error.  Other tools
depend on these codes and on each command's options exactly.  A command stopped from outside
ends as a shell reports a tool a signal stopped, 128 + the signal: 130 interrupted (Ctrl-C),
143 terminated (SIGTERM: ``ingest`` and ``replay`` first commit what they processed, as on
Ctrl-C), 141 when the reader of its output went away (``| head``, SIGPIPE), quietly.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Sequence

from conformance.issues import DEFAULT_LANGUAGE
from gateway.cli import archive, audit, clients, conformance, demo, ingest, measure, report, server, validate
from gateway.cli.common import (
    EXIT_INTERNAL,
    EXIT_SIGNALLED,
    EXIT_USAGE,
    Parser,
    Terminated,
    UsageError,
    command_language,
    speaking,
)
from gateway.config import ConfigError
from gateway.messages import text
from gateway.storage.store import StoreError

MODULES = (validate, demo, ingest, archive, server, clients, audit, report, conformance, measure)


def build_parser() -> Parser:
    parser = Parser(prog="yiyang", description="cli.help.yiyang")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gateway.masking import install_log_masking

    install_log_masking()  # 身份证号 and phones never reach a log line in full
    arguments = sys.argv[1:] if argv is None else list(argv)
    token = speaking.set(command_language(arguments))  # argparse's help and refusals, in the language asked
    try:
        args = build_parser().parse_args(arguments)
    finally:
        speaking.reset(token)
    lang = getattr(args, "lang", DEFAULT_LANGUAGE)  # what a failure below is worded in, as usage() does
    try:
        return args.run(args, sys.stdout)
    except UsageError as exc:
        sys.stderr.write(f"yiyang: error: {exc}\n")
        return EXIT_USAGE
    except ConfigError as exc:
        sys.stderr.write(f"yiyang: error: {exc.text(lang)}\n")
        return EXIT_USAGE
    except Terminated:
        return EXIT_SIGNALLED + signal.SIGTERM
    except KeyboardInterrupt:
        return EXIT_SIGNALLED + signal.SIGINT
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor a word at exit's flush
        return EXIT_SIGNALLED + signal.SIGPIPE
    # after BrokenPipeError, its subclass: a full disk, no permission … (the system's reason in
    # English: what it says of a write is not the catalogue's file.* wording of a read)
    except OSError as exc:
        failed = {"path": exc.filename or "", "reason": exc.strerror or exc}
        sys.stderr.write(f"yiyang: error: {text('cli.os-error', lang, failed)}\n")
        return EXIT_USAGE
    except StoreError as exc:  # an unreachable, busy or damaged store; its text names it
        sys.stderr.write(f"yiyang: error: {text('cli.store-error', lang, {'error': exc})}\n")
        return EXIT_USAGE
    except json.JSONDecodeError as exc:  # a damaged line in a file the gateway reads back
        damaged = {"line": exc.lineno, "column": exc.colno}
        sys.stderr.write(f"yiyang: error: {text('cli.damaged-json-line', lang, damaged)}\n")
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - one line and exit 3, never a traceback
        sys.stderr.write(f"yiyang: internal error: {type(exc).__name__}: {exc}\n")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
