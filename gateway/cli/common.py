"""What every command shares: exit codes, the usage error, the parser class, store options."""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, NoReturn

from conformance.issues import DEFAULT_LANGUAGE, LANGUAGES
from gateway.config import Config, configured_language
from gateway.messages import Worded, text
from gateway.storage import SQLITE_PREFIX, displayable_url, sqlite_path

#: 0 clean, 1 invalid data found, 2 usage or I/O, 3 internal error
EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
#: stopped from outside: 128 + the signal, as a shell reports a tool the signal stopped
EXIT_SIGNALLED = 128


class UsageError(Exception):
    """Bad arguments or unreadable inputs: one line on stderr, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the command is (:func:`stopped_as_interrupted`): exit 143."""


@contextmanager
def stopped_as_interrupted() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does, through its ``finally`` blocks: Python's own
    SIGTERM ends the process at once, and an ingest stopped so (by a scheduler, ``kill``)
    left its file's exchange record unwritten, though its committed batches stood."""

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    before = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


#: the language the command line speaks while argparse reads its arguments — help, usage and
#: argparse's own refusals — which must be known before argparse has read ``--lang``
#: (:func:`command_language`); set by ``main`` for one run
speaking: ContextVar[str] = ContextVar("speaking", default=DEFAULT_LANGUAGE)


def default_language() -> str:
    """The configured language (``YIYANG_LANGUAGE``), as the API's is, else zh-CN."""
    configured = configured_language()
    return configured if configured in LANGUAGES else DEFAULT_LANGUAGE


def command_language(argv: Sequence[str]) -> str:
    """``--lang`` as the arguments give it (the last, as argparse takes it), else the
    default: what argparse will find, found before it runs."""
    chosen = default_language()
    for index, argument in enumerate(argv):
        if argument == "--lang" and index + 1 < len(argv):
            chosen = argv[index + 1]
        elif argument.startswith("--lang="):
            chosen = argument.removeprefix("--lang=")
    return chosen if chosen in LANGUAGES else default_language()


def words(message_id: str, **params: object) -> str:
    """A catalogued text in the language the command line speaks."""
    return text(message_id, speaking.get(), params)


class Formatter(argparse.HelpFormatter):
    """argparse's help in the command line's language: every help text, section title and
    description given to the parsers is a catalogue id (``cli.help.*``), worded when the help
    is printed; argparse's own words (``usage:``, the sections, ``-h``) are catalogued too."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        found = action.help
        return words(found, **getattr(found, "params", {})) if found else found

    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, prefix if prefix is not None else words("cli.argparse.usage"))

    def start_section(self, heading: str | None) -> None:
        super().start_section(words(heading) if heading else heading)

    def add_text(self, text: str | None) -> None:
        super().add_text(words(text) if text and text is not argparse.SUPPRESS else text)


class Help(str):
    """A help text's catalogue id with values of its own (argparse takes only a str)."""

    params: dict[str, object]

    def __new__(cls, message_id: str, **params: object) -> Help:
        made = super().__new__(cls, message_id)
        made.params = params
        return made


#: argparse's own refusals, recognised by Python's wording of them, and the catalogue's ids;
#: one it words otherwise (another Python release) is printed as it is
ARGPARSE_REFUSALS = (
    (re.compile(r"the following arguments are required: (?P<names>.+)"), "cli.argparse.required"),
    (re.compile(r"unrecognized arguments: (?P<names>.+)"), "cli.argparse.unrecognized"),
    (re.compile(r"one of the arguments (?P<names>.+) is required"), "cli.argparse.one-required"),
    (re.compile(r"ambiguous option: (?P<option>\S+) could match (?P<matches>.+)"), "cli.argparse.ambiguous"),
    (
        re.compile(r"argument (?P<argument>[^:]+): invalid choice: (?P<value>.+) \(choose from (?P<choices>.+)\)"),
        "cli.argparse.invalid-choice",
    ),
    (re.compile(r"argument (?P<argument>[^:]+): expected one argument"), "cli.argparse.expected-one"),
    (re.compile(r"argument (?P<argument>[^:]+): not allowed with argument (?P<other>.+)"), "cli.argparse.exclusive"),
    (re.compile(r"argument (?P<argument>[^:]+): invalid (?P<type>\S+) value: (?P<value>.+)"), "cli.argparse.bad-value"),
    (re.compile(r"argument (?P<argument>[^:]+): (?P<problem>.+)"), "cli.argparse.argument"),
)


class Parser(argparse.ArgumentParser):
    """argparse with the gateway's exit status and in the command line's language."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, formatter_class=Formatter, add_help=False, **kwargs)
        self._positionals.title = "cli.argparse.positionals"
        self._optionals.title = "cli.argparse.options"
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS, help="cli.argparse.help")

    def error(self, message: str) -> NoReturn:  # argparse exits 2 on usage errors, as we want
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"yiyang: error: {_refusal(message)}\n")


def _refusal(message: str) -> str:
    for pattern, message_id in ARGPARSE_REFUSALS:
        found = pattern.fullmatch(message)
        if found:
            return words(message_id, **found.groupdict())
    return message


class TypeRefusal(Worded, argparse.ArgumentTypeError):
    """An option's value refused by its type (``--port 70000``): argparse keeps only its
    ``str()``, which is worded in the language the command line speaks."""

    def __str__(self) -> str:
        return self.text(speaking.get())


def add_language(parser: argparse.ArgumentParser) -> None:
    """--lang, by default :func:`default_language`."""
    parser.add_argument("--lang", choices=LANGUAGES, default=default_language(), help="cli.help.lang")


def add_database(parser: argparse.ArgumentParser, help_id: str = "cli.help.database") -> None:
    """``help_id`` says where the store is when the option is absent."""
    parser.add_argument("--database", metavar="URL", help=help_id)


def usage(args: argparse.Namespace, message_id: str, **params: object) -> UsageError:
    """A usage error worded from the catalog in the command's language (zh-CN unless --lang)."""
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
        path = _sqlite_path(url)
        if path is None:
            raise usage(args, "cli.bad-database-url", url=displayable_url(url))
        if reading and not path.is_file():
            raise usage(args, "cli.no-archive", path=path)
    elif not url.startswith(("postgresql://", "postgres://")) or url.endswith("://"):
        raise usage(args, "cli.bad-database-url", url=displayable_url(url))
    return config


def _sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names, or None when it names none: ``sqlite://``, a folder
    (``sqlite:///data/``), an escape that spells no UTF-8 or a NUL."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    written = url.removeprefix(SQLITE_PREFIX)
    if not written.strip() or written.endswith("/"):
        return None
    try:
        path = sqlite_path(url)
    except ValueError:
        return None
    return None if not str(path).strip() or "\x00" in str(path) else path


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
        raise TypeRefusal("cli.type.port", value=text)
    return number


def positive(text: str) -> int:
    """An argparse type: a count of at least one (``--workers 0`` would start no worker)."""
    number = _integer(text)
    if number < 1:
        raise TypeRefusal("cli.type.positive", value=text)
    return number


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TypeRefusal("cli.type.whole-number", value=text) from None
