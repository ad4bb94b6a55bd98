"""What every command shares: exit codes, the usage error, the parser class, store options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.issues import DEFAULT_LANGUAGE, LANGUAGES
from gateway.config import Config, configured_language

#: 0 clean, 1 invalid data found, 2 usage or I/O, 3 internal error
EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """Bad arguments or unreadable inputs: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors, as we want
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"yiyang: error: {message}\n")


def add_language(parser: argparse.ArgumentParser) -> None:
    """--lang, by default the configured language (``YIYANG_LANGUAGE``), as the API's is."""
    configured = configured_language()
    default = configured if configured in LANGUAGES else DEFAULT_LANGUAGE
    parser.add_argument("--lang", choices=LANGUAGES, default=default, help=f"default {default} (YIYANG_LANGUAGE)")


def add_database(
    parser: argparse.ArgumentParser,
    default: str = "$YIYANG_DATABASE_URL, else sqlite:///yiyang-data/archive.sqlite",
) -> None:
    parser.add_argument("--database", metavar="URL", help=f"sqlite:///PATH or postgresql://… (default {default})")


def usage(args: argparse.Namespace, message_id: str, **params: object) -> UsageError:
    """A usage error worded from the catalog in the command's language (zh-CN unless --lang)."""
    from gateway.messages import text

    return UsageError(text(message_id, getattr(args, "lang", DEFAULT_LANGUAGE), params))


def file_text(args: argparse.Namespace, path: Path) -> str:
    """The text of a file an option names (a JWK Set, a secret, a private key), as a usage
    error naming the file when it cannot be read or is not UTF-8: such files are written by
    hand, often on Windows, and a traceback would not say which file to fix.  A byte-order
    mark (Notepad's "UTF-8") is not part of the text: left in, it would be a secret's first
    character."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise unreadable(args, path, exc) from exc


def unreadable(args: argparse.Namespace, path: Path, error: OSError | UnicodeDecodeError) -> UsageError:
    """The usage error of a file that could not be read as UTF-8 text, naming it: one wording
    whether the command read the file itself (:func:`file_text`) or a layer below did."""
    from gateway.messages import file_problem

    if isinstance(error, UnicodeDecodeError):  # saved in GBK, or not text at all
        return usage(args, "cli.file.not-utf8", path=path, offset=error.start)
    return usage(args, "cli.file.unreadable", path=path, reason=file_problem(error))


def output_folder(args: argparse.Namespace, folder: Path) -> Path:
    """``folder`` (an ``--out``), refused naming the file in its way when it, or a folder above
    it, is a file: checked before anything is opened or written, where its creation would
    otherwise fail late (after an ingest into ``--database`` had landed) with the system's
    English "File exists"."""
    nearest = next((path for path in (folder, *folder.parents) if path.exists()), None)
    if nearest is not None and not nearest.is_dir():
        raise usage(args, "cli.out-is-a-file", path=nearest)
    return folder


def xlsx_needs_out(args: argparse.Namespace) -> None:
    """A workbook is binary: ``--format xlsx`` written to the terminal would be garbage."""
    if args.format == "xlsx" and args.out is None:
        raise usage(args, "cli.xlsx-needs-out")


def config_of(args: argparse.Namespace, reading: bool = False, **explicit: object) -> Config:
    """The configuration with the command's options.  Its database URL must be one (a mistyped
    ``sqlite://`` would otherwise become a file of that name); a command that only ``reading``
    the archive refuses a SQLite path where there is none, instead of creating an empty one."""
    config = Config.load(database_url=getattr(args, "database", None), **explicit)
    url = config.database_url
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
        if not path.strip() or path.endswith("/"):
            raise usage(args, "cli.bad-database-url", url=url)
        if reading and not Path(path).is_file():
            raise usage(args, "cli.no-archive", path=path)
    elif not url.startswith(("postgresql://", "postgres://")) or url.endswith("://"):
        raise usage(args, "cli.bad-database-url", url=url)
    return config


def existing_files(paths: list[Path], args: argparse.Namespace | None = None) -> list[Path]:
    for path in paths:
        if Path(path).is_dir():  # not "no such file": it is there, and the files are in it
            raise usage(args or argparse.Namespace(), "cli.folder-given", path=path)
        if not Path(path).is_file():
            raise usage(args or argparse.Namespace(), "cli.no-such-file", path=path)
    return [Path(p) for p in paths]


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535 (``--port 70000`` fails before anything starts)."""
    number = _integer(text)
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"{text}: a port is a number from 1 to 65535")
    return number


def positive(text: str) -> int:
    """An argparse type: a count of at least one (``--workers 0`` would start no worker)."""
    number = _integer(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return number


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
