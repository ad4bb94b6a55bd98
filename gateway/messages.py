"""The one zh-CN/en message catalog of everything the gateway says.

Each layer keeps the wording of its own messages beside its code (``conformance``,
``mappings``, ``gateway/ingest``, ``gateway/search``, the command line's in
``gateway/cli/messages.json``, and the API's here in ``messages.json``); this module merges
them once so the CLI, the API and reports word any message id the same way.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from conformance.issues import Phrase, message_system
from conformance.issues import catalog as validation_catalog
from mappings.conceptmaps import message_catalog as mapping_catalog
from mappings.records import Message, TemplateParams

_HERE = Path(__file__).parent
LANGUAGES = ("zh-CN", "en")


def _load(path: Path) -> dict[str, dict[str, str]]:
    entries = orjson.loads(path.read_bytes())
    entries.pop("_about", None)
    return entries


@cache
def catalog() -> dict[str, dict[str, str]]:
    return {
        **validation_catalog(),
        **mapping_catalog(),
        **_load(_HERE / "ingest" / "messages.json"),
        **_load(_HERE / "search" / "messages.json"),
        **_load(_HERE / "cli" / "messages.json"),
        **_load(_HERE / "messages.json"),
    }


class Worded:
    """A catalogued message not worded yet: a layer below the terminal and the API (a
    registration check, the audit chain's verdict, the population file) cannot know its
    reader's language, so it hands on the id and its values and the reader words them
    (:meth:`text`, or as a parameter of another message, worded in the same language, as a
    reader's :class:`~mappings.records.Message` is).
    ``str()`` is the English, for logs.  Mixed into exceptions: ``class E(Worded, ValueError)``."""

    def __init__(self, message_id: str, **params: Any) -> None:
        self.message_id = message_id
        self.params = params

    def text(self, lang: str) -> str:
        return text(self.message_id, lang, self.params)

    def __str__(self) -> str:
        return self.text("en")


class Listed(Worded):
    """Names inside a sentence, joined as its language joins them (、 in Chinese, a comma in
    English): joined once beforehand, an English reason listed its columns with 、."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__("cli.list-separator")
        self.names = list(names)

    def text(self, lang: str) -> str:
        return text("cli.list-separator", lang).join(self.names)


#: what the catalog says for an OS error: its ``strerror`` is English whatever the language
_FILE_ERRORS = {
    errno.ENOENT: "file.not-found",
    errno.EACCES: "file.forbidden",
    errno.EPERM: "file.forbidden",
    errno.EISDIR: "file.is-folder",
}


def file_problem(error: OSError) -> Worded:
    """Why a file could not be read, in the reader's language (the rarer errors keep the
    system's own English words, inside a worded sentence)."""
    message_id = _FILE_ERRORS.get(error.errno or 0, "file.error")
    return Worded(message_id, reason=error.strerror or str(error))


def text(message_id: str, lang: str, params: dict[str, Any] | None = None) -> str:
    entry = catalog().get(message_id)
    if entry is None:
        return message_id
    values = {
        name: value.text(lang) if isinstance(value, (Worded, Message, Phrase)) else value
        for name, value in (params or {}).items()
    }
    return entry.get(lang, entry["en"]).format_map(TemplateParams(values))


def worded(message_id: str, params: dict[str, Any] | None = None) -> dict[str, str]:
    """The message in every language (quarantine entries and audit records keep both)."""
    return {lang: text(message_id, lang, params) for lang in LANGUAGES}


def issue(
    severity: str, message_id: str, lang: str, params: dict[str, Any] | None = None, expression: str | None = None
) -> dict[str, Any]:
    """An OperationOutcome.issue for a catalogued message."""
    found: dict[str, Any] = {
        "severity": severity,
        "code": catalog().get(message_id, {}).get("code", "processing"),
        "details": {
            "coding": [{"system": message_system(), "code": message_id}],
            "text": text(message_id, lang, params),
        },
    }
    if expression:
        found["expression"] = [expression]
    return found
