"""What every command shares: exit codes, the usage error, the parser class, store options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.issues import DEFAULT_LANGUAGE, LANGUAGES
from gateway.config import Config

#: 0 clean, 1 invalid data found, 2 usage or I/O, 3 internal error
EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """Bad arguments or unreadable inputs: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors, as we want
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"yiyang: error: {message}\n")


def add_language(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=LANGUAGES, default=DEFAULT_LANGUAGE)


def add_database(
    parser: argparse.ArgumentParser,
    default: str = "$YIYANG_DATABASE_URL, else sqlite:///yiyang-data/archive.sqlite",
) -> None:
    parser.add_argument("--database", metavar="URL", help=f"sqlite:///PATH or postgresql://… (default {default})")


def config_of(args: argparse.Namespace, **explicit: object) -> Config:
    return Config.load(database_url=getattr(args, "database", None), **explicit)


def existing_files(paths: list[Path]) -> list[Path]:
    for path in paths:
        if not Path(path).is_file():
            raise UsageError(f"cannot read {path}: no such file")
    return [Path(p) for p in paths]
