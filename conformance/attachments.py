"""Attachment.size and Attachment.hash agree with Attachment.data (datatypes.html#Attachment):
``size`` is the number of bytes of the data and ``hash`` its SHA-1, both base64-encoded data
decoded first.  The reference validator refuses a mismatch (TYPE_SPECIFIC_CHECKS_DT_ATT_SIZE_CORRECT,
TYPE_SPECIFIC_CHECKS_DT_ATT_HASH_MISMATCH); data that is not base64 is reported by the
primitive check and not decoded here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from conformance.issues import IssueList


def check_attachment(node: dict[str, Any], path: str, issues: IssueList) -> None:
    data, size, digest = node.get("data"), node.get("size"), node.get("hash")
    if not isinstance(data, str) or (size is None and digest is None):
        return
    try:
        content = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return
    if type(size) is int and size != len(content):
        issues.error("attachment.size-mismatch", f"{path}.size", size=size, actual=len(content))
    if isinstance(digest, str):
        actual = base64.b64encode(hashlib.sha1(content).digest()).decode("ascii")  # noqa: S324 - FHIR's hash is SHA-1
        if "".join(digest.split()) != actual:
            issues.error("attachment.hash-mismatch", f"{path}.hash", hash=digest[:40], actual=actual)
