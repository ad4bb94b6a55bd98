"""The one exception FHIR interactions raise: an HTTP status and the issues that explain it."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from conformance.issues import Issue
from gateway import messages
from gateway.security.withheld import in_full, told_in_full, unseen_message

if TYPE_CHECKING:
    from gateway.storage.store import StoreError

log = logging.getLogger("yiyang.api")


class FhirError(Exception):
    """A refused interaction: ``status`` for HTTP, a catalogued message, and any validation
    issues behind it (a 422 lists every issue the validator found, each with its FHIRPath)."""

    def __init__(
        self,
        status: int,
        message_id: str,
        expression: str | None = None,
        issues: list[Issue] | None = None,
        severity: str = "error",
        **params: Any,
    ) -> None:
        super().__init__(f"{status} {message_id} {params}")
        self.status = status
        self.message_id = message_id
        self.expression = expression
        self.issues = issues or []
        self.severity = severity
        self.params = params
        #: the message and parameters a reader is told, of a refusal worded for a client that
        #: may not read the record it quotes (:meth:`withheld`); None when told as it is
        self.in_full: tuple[str, dict[str, Any]] | None = None

    def warning(self, lang: str) -> dict[str, Any]:
        """The refusal as a warning issue: what ``Prefer: handling=lenient`` let pass instead."""
        return messages.issue("warning", self.message_id, lang, self.params, self.expression)

    def outcome(self, lang: str) -> dict[str, Any]:
        """What the client is told."""
        return _outcome(self.severity, self.message_id, self.params, self.expression, self.issues, lang)

    def audited(self, lang: str) -> dict[str, Any]:
        """What the auditors' exchange record keeps: the outcome as a client reading every
        record it quotes is told it (``gateway/security/withheld.py``)."""
        message_id, params = self.in_full or (self.message_id, self.params)
        return _outcome(self.severity, message_id, params, self.expression, list(map(in_full, self.issues)), lang)

    def withheld(self, readable: bool | None = None) -> FhirError:
        """This refusal as the client may be told it: itself, or its ``-unseen`` sibling
        keeping it in full.  ``readable``: whether the client reads what it quotes (by default
        as :func:`~gateway.security.withheld.told_in_full` finds)."""
        if readable is None:
            readable = told_in_full(self.message_id)
        if readable:
            return self
        message_id, params = unseen_message(self.message_id, self.params)
        told = FhirError(self.status, message_id, self.expression, self.issues, self.severity, **params)
        told.in_full = (self.message_id, self.params)
        return told


def _outcome(
    severity: str, message_id: str, params: dict[str, Any], where: str | None, issues: list[Issue], lang: str
) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [messages.issue(severity, message_id, lang, params, where)]
        + [issue.to_fhir(lang) for issue in issues],
    }


def not_found(kind: str, resource_id: str, where: str | None = None) -> FhirError:
    """What an absent resource answers, and so what a hidden one answers too."""
    return FhirError(404, "http.not-found", where, reference=f"{kind}/{resource_id}")


def store_failure(error: StoreError, failed: str, logger: logging.Logger = log) -> FhirError:
    """A store's failure (busy past its wait, a deadlock retried in vain) as its 503, under a
    new incident number logged on ``logger`` with what ``failed`` (an interaction: method and
    path, never a query or a body) and the database's own words, which the client is not
    shown: it is shown the number to give the maintainers.  One for a whole request (the
    app's handler), for each batch entry the store failed, and for an MLLP message."""
    incident = uuid.uuid4().hex[:12]
    logger.error("incident %s: store failure on %s: %s", incident, failed, error)
    return FhirError(503, "http.store-busy", incident=incident)
