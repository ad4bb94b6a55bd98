"""Validation issues, the message catalog that words them, and the OperationOutcome they form.

Checks append :class:`Issue` values and carry on; nothing here raises on bad input.  An issue
holds a stable message id and its parameters, not text: the wording (zh-CN or en) is chosen
only when an OperationOutcome is rendered, so tests and reports match on ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from profiles.canonical import code_system

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
MESSAGE_SYSTEM = code_system("validation-message")
_message_system = MESSAGE_SYSTEM


def message_system() -> str:
    """The code system of message ids in every OperationOutcome this process writes."""
    return _message_system


def publish_messages_under(base: str) -> None:
    """Name the message code system under the configured canonical base, so a province that
    publishes under its own domain sees no other domain in any output.  Called once by the
    composition root (gateway/services.py), like a logging configuration: an OperationOutcome
    may be worded far from any object that knows the configuration."""
    global _message_system
    _message_system = code_system("validation-message", base.rstrip("/"))


@cache
def catalog() -> dict[str, dict[str, Any]]:
    with (Path(__file__).parent / "messages.json").open(encoding="utf-8") as handle:
        entries = json.load(handle)
    entries.pop("_about")
    return entries


@cache
def supersessions() -> dict[str, frozenset[str]]:
    """A finding → the generic findings it makes redundant on the same element (its catalog
    entry's ``supersedes``), which the validator drops.  An unknown division code is also a
    code its code system lacks and a code outside the extension's value set, but only the rule
    says what a code of the list looks like, or names an abolished county's successor: one
    fault, one reason for the clerk.  Kept with the messages it relates, so a new rule states
    what it supersedes where its wording is written."""
    return {key: frozenset(entry["supersedes"]) for key, entry in catalog().items() if "supersedes" in entry}


@dataclass(slots=True)
class Issue:
    severity: str
    message_id: str
    expression: str
    params: dict[str, Any] = field(default_factory=dict)
    #: where the value came from outside FHIR (e.g. "line 17", a legacy file/row/column)
    location: str | None = None

    def text(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return _worded(self.message_id, lang, self.params)

    @property
    def code(self) -> str:
        return catalog()[self.message_id]["code"]

    @property
    def is_error(self) -> bool:
        return self.severity in ("fatal", "error")

    def to_fhir(self, lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "details": {
                "coding": [{"system": _message_system, "code": self.message_id}],
                "text": self.text(lang),
            },
        }
        if self.expression:
            issue["expression"] = [self.expression]
        if self.location:
            issue["location"] = [self.location]
        return issue


@dataclass(frozen=True, slots=True)
class Phrase:
    """A catalogued message that is a parameter of another (why a narrative is no XML): worded
    in the language of the sentence it stands in, where text worded beforehand put English
    inside the Chinese sentence.  Hashable, as an issue's parameters are (the validator drops
    repeated issues by them); ``str()`` is the English, for logs."""

    message_id: str
    params: tuple[tuple[str, Any], ...] = ()

    def text(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return _worded(self.message_id, lang, dict(self.params))

    def __str__(self) -> str:
        return self.text("en")


def phrase(message_id: str, **params: Any) -> Phrase:
    return Phrase(message_id, tuple(params.items()))


def _worded(message_id: str, lang: str, params: dict[str, Any]) -> str:
    template = catalog()[message_id][lang]
    try:
        return template.format(**{k: v.text(lang) if isinstance(v, Phrase) else v for k, v in params.items()})
    except (KeyError, IndexError):
        return template


class IssueList(list[Issue]):
    """The accumulator every check appends to."""

    def add(self, severity: str, message_id: str, expression: str, **params: Any) -> None:
        self.append(Issue(severity, message_id, expression, params))

    def error(self, message_id: str, expression: str, **params: Any) -> None:
        self.append(Issue("error", message_id, expression, params))

    @property
    def has_errors(self) -> bool:
        return any(issue.is_error for issue in self)


def operation_outcome(issues: list[Issue], lang: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """An OperationOutcome; a clean result still says so, as FHIR requires one issue at least."""
    entries = [issue.to_fhir(lang) for issue in issues or [Issue("information", "validation.passed", "")]]
    return {"resourceType": "OperationOutcome", "issue": entries}


def render_text(issues: list[Issue], lang: str = DEFAULT_LANGUAGE) -> str:
    """One line per issue, for people reading a terminal."""
    labels = {
        "zh-CN": {"fatal": "致命", "error": "错误", "warning": "警告", "information": "提示"},
        "en": {"fatal": "FATAL", "error": "ERROR", "warning": "WARNING", "information": "INFO"},
    }[lang]
    lines = []
    for issue in issues:
        where = issue.expression or "-"
        if issue.location:
            where = f"{issue.location} {where}"
        lines.append(f"{labels[issue.severity]:<7} {where}  [{issue.message_id}] {issue.text(lang)}")
    return "\n".join(lines)
