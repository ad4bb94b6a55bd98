"""Language tags: R4 binds ``Resource.language`` and ``Attachment.language`` to all-languages,
which is BCP-47 itself, so a code there must at least be a well-formed tag.

The grammar is RFC 5646's (section 2.1), as one regular expression: no registry of subtags is
loaded, so ``zz`` is well-formed and passes while ``zz-#!`` or ``zh_CN`` does not.  Every field
is bounded and told apart by its length or first character, so the match is linear.
"""

from __future__ import annotations

import re
from typing import Any

from conformance.primitives import Checker, Problem

_LANGTAG = (
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})"  # language, with up to three extlang
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"  # variants
    r"(?:-[0-9a-wy-z](?:-[a-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"  # private use
)
_PRIVATE_USE = r"x(?:-[a-z0-9]{1,8})+"
#: RFC 5646's irregular grandfathered tags, the only valid tags outside the grammar above
_IRREGULAR = (
    "en-gb-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|i-pwn|i-tao|i-tay|"
    "i-tsu|sgn-be-fr|sgn-be-nl|sgn-ch-de"
)
LANGUAGE_TAG = re.compile(f"{_LANGTAG}|{_PRIVATE_USE}|{_IRREGULAR}", re.ASCII | re.IGNORECASE)


def language_checker(code: Checker) -> Checker:
    """The ``code`` checker, then BCP-47's grammar on a value it accepts (one problem at most)."""

    def check_language(value: Any) -> Problem:
        problem = code(value)
        if problem is None and LANGUAGE_TAG.fullmatch(value) is None:
            return "code.invalid-language", {"value": str(value)[:80]}
        return problem

    return check_language
