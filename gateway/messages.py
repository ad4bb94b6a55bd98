"""The one zh-CN/en message catalog of everything the gateway says.

Each layer keeps the wording of its own messages beside its code (``conformance``,
``mappings``, ``gateway/ingest``, ``gateway/search``, and the API's here in
``messages.json``); this module merges them once so the CLI, the API and reports word any
message id the same way.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

from conformance.issues import catalog as validation_catalog
from conformance.issues import message_system
from mappings.conceptmaps import message_catalog as mapping_catalog

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
        **_load(_HERE / "messages.json"),
    }


class _Params(dict[str, Any]):
    """Template parameters; a placeholder nobody filled stays visible instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def text(message_id: str, lang: str, params: dict[str, Any] | None = None) -> str:
    entry = catalog().get(message_id)
    if entry is None:
        return message_id
    return entry.get(lang, entry["en"]).format_map(_Params(params or {}))


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
