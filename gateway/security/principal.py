"""The authenticated party behind a request: a registered client system acting for its
organisation, with the SMART v2 scopes its token grants."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    #: the registered client (a hospital's HIS, an elderly-care platform, an auditor's tool)
    client_id: str
    #: the Organization id the client acts for (its own and, for writes, those partOf it)
    organization: str
    #: granted SMART v2 scopes as written, e.g. "system/Patient.rs", "system/*.cruds"
    scopes: frozenset[str]
    #: the client's role, which decides whom it may see: "hospital", "elderly-care", "auditor"
    role: str


#: the principal of the request being served, for the layers below the API that must not know
#: Flask (set by gateway/api after authentication; None for the command line, which acts as
#: the operator)
acting: ContextVar[Principal | None] = ContextVar("acting", default=None)
