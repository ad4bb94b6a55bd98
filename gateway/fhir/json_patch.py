"""A JSON Patch (RFC 6902) applied to a stored resource, for PATCH and Bundle PATCH entries.

Why not jsonpatch's own refusals: they quote the document ("member 'x' not found in {…the
whole resource…}", a failed test states the stored value), and a refusal's words travel to
the client, into the exchange records and into the audit trail's reasons.  Each operation is
applied alone, so a refusal names the one that failed, worded from what the client sent.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from gateway.fhir.errors import FhirError
from gateway.messages import Worded
from gateway.storage.store import Stored


def patched_resource(current: Stored, operations: Any, where: str = "") -> dict[str, Any]:
    """``current`` with ``operations`` applied: still a resource of the same type and id, or
    400.  A reference the patch wrote as a string on this server's own base is left for the
    caller to make relative, as a request body's are: a PATCH from the walk its checks read
    (``Repository._prepared``), a Bundle's entry before its links are resolved."""
    if not isinstance(operations, list):
        raise FhirError(400, "http.bad-patch", where, detail=Worded("patch.not-an-array"))
    patched: Any = copy.deepcopy(current.resource)
    for number, operation in enumerate(operations, start=1):
        patched = _applied(patched, operation, number, where)
    if not isinstance(patched, dict) or patched.get("resourceType") != current.type or patched.get("id") != current.id:
        raise FhirError(400, "http.bad-patch", where, detail=Worded("patch.changes-identity"))
    return patched


def _applied(document: Any, operation: Any, number: int, where: str) -> Any:
    try:
        return jsonpatch.apply_patch(document, [operation], in_place=True)
    except jsonpatch.InvalidJsonPatch as exc:  # its words describe the operation, not the document
        raise FhirError(400, "http.bad-patch-operation", where, number=number, detail=str(exc)) from exc
    except jsonpatch.JsonPatchTestFailed as exc:
        raise FhirError(400, "http.patch-test-failed", where, number=number, path=operation["path"]) from exc
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException, TypeError, ValueError, KeyError) as exc:
        op, path = operation.get("op"), operation.get("path")
        raise FhirError(400, "http.patch-not-applicable", where, number=number, op=op, path=path) from exc
