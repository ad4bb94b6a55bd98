"""How a request is recorded by its HTTP method alone: the FHIR RESTful interaction a method
stands for (http://hl7.org/fhir/restful-interaction) and its audit action (C R U D E).

The audit trail falls back on it for a request no route names (``gateway/security/audit.py``),
the exchange log for the interaction of an exchange (``gateway/api/exchanges.py``), and a
batch for the interaction of an entry it refused (``gateway/fhir/bundles.py``).  A leaf: it
imports nothing of the gateway, so the FHIR interactions need not import the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Interaction:
    """How an endpoint is recorded: restful-interaction code (or None), DICOM event type for
    non-REST events, action (C R U D E) and operation name."""

    code: str | None
    action: str
    operation: str | None = None
    login: bool = False


#: an unknown route (404), a method no route takes, or a route that only refuses (writes to the
#: audit trail, other methods at the token endpoint): recorded by its HTTP method
BY_METHOD = {
    "GET": Interaction("read", "R"),
    "HEAD": Interaction("read", "R"),
    "POST": Interaction("create", "C"),
    "PUT": Interaction("update", "U"),
    "PATCH": Interaction("patch", "U"),
    "DELETE": Interaction("delete", "D"),
}
