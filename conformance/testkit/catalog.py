"""What a test is: an id, what it tests in zh-CN and English, its suite and a check function
run with a :class:`Context`.  A check records what it verified with :meth:`Context.check`
(a false condition fails the test with the specific reason) and gives up with :class:`Skip`
when the server or the credentials offer nothing to judge."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from conformance.issues import Issue
from conformance.testkit.http import Answer, Http, KeyCredentials
from conformance.validator import Validator

Suite = Literal["capability", "push", "pull", "security"]
SUITES: tuple[Suite, ...] = ("capability", "push", "pull", "security")


class Skip(Exception):
    """Nothing to judge, and why (e.g. no second client's credentials were given)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One thing verified: what, and whether it held (with what was wrong when it did not)."""

    passed: bool
    text: str


@dataclass
class Context:
    """What every test works with: the HTTP client, the validator and default profiles, the
    optional credentials for narrower or other-organisation tokens, and the checks made so
    far in the running test."""

    http: Http
    validator: Validator
    #: the provincial profile each resource type is held to when it claims none
    profiles: Mapping[str, str]
    credentials: KeyCredentials | None = None
    elderly: KeyCredentials | None = None
    elderly_token: str | None = None
    checks: list[Check] = field(default_factory=list)
    #: why the push suite could not write the examples the pull suite reads, when it could not
    push_refused: str | None = None

    def check(self, condition: bool, what: str, wrong: str = "") -> bool:
        """Record that ``what`` was verified; when ``condition`` is false the test fails and
        ``wrong`` (or ``what``) says specifically what the server did instead."""
        self.checks.append(Check(bool(condition), what if condition else (wrong or what)))
        return bool(condition)

    def require(self, condition: bool, what: str, wrong: str = "") -> None:
        """A check later checks depend on: stop the test when it does not hold."""
        if not self.check(condition, what, wrong):
            raise Stop

    def validate(self, resource: Any, where: str) -> None:
        """Hold a returned resource to the provincial rules with the conformance Validator."""
        if not isinstance(resource, dict) or "resourceType" not in resource:
            self.check(False, "", f"{where}: not a FHIR resource")
            return
        claimed = resource.get("meta", {}).get("profile") or []
        default = self.profiles.get(resource["resourceType"])
        profiles = [default] if default and not claimed else []
        errors = [i for i in self.validator.validate(resource, profiles) if i.is_error]
        reference = f"{resource['resourceType']}/{resource.get('id', '')}"
        self.check(
            not errors,
            f"{where}: {reference} conforms to the provincial profiles",
            f"{where}: {reference} does not conform: " + "; ".join(_issue(i) for i in errors[:5]),
        )

    def take_checks(self) -> list[Check]:
        taken, self.checks = self.checks, []
        return taken


class Stop(Exception):
    """A required check failed: the rest of the test depends on it."""


def _issue(issue: Issue) -> str:
    return f"{issue.message_id} at {issue.expression}"


@dataclass(frozen=True, slots=True)
class KitTest:
    """One test of the kit (a row of the catalog)."""

    id: str
    suite: Suite
    zh: str
    en: str
    run: Callable[[Context], None]

    def description(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


def entries(bundle: Any) -> Iterator[dict[str, Any]]:
    """The entries of a Bundle answer (none when it is not one)."""
    if isinstance(bundle, dict) and bundle.get("resourceType") == "Bundle":
        yield from (e for e in bundle.get("entry") or [] if isinstance(e, dict))


def resources(bundle: Any, mode: str | None = None) -> list[dict[str, Any]]:
    """The resources of a Bundle answer, of one search mode when given.  An entry that states
    no mode is a match: ``search.mode`` is optional, and a server that leaves it out must not
    pass a check that its search reveals nothing."""
    return [
        e["resource"]
        for e in entries(bundle)
        if isinstance(e.get("resource"), dict)
        and (mode is None or (e.get("search") or {}).get("mode", "match") == mode)
    ]


def is_outcome(answer: Answer) -> bool:
    return isinstance(answer.body, dict) and answer.body.get("resourceType") == "OperationOutcome"


def describe(answer: Answer) -> str:
    """The status and, for an OperationOutcome, its first issue: for failure messages."""
    if is_outcome(answer):
        first = (answer.body.get("issue") or [{}])[0]
        return f"HTTP {answer.status} ({first.get('code', '')}: {first.get('diagnostics') or _text(first)})"
    return f"HTTP {answer.status}"


def _text(issue: Mapping[str, Any]) -> str:
    details = issue.get("details")
    return str(details.get("text", "")) if isinstance(details, dict) else ""
