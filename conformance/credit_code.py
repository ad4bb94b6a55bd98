"""统一社会信用代码 (GB 32100-2015): the check character of an organisation's unified social
credit code, which catches a mistyped character or two swapped ones before a wrong number
names an 养老机构 or a hospital in the shared archive.

Its format (18 characters of the code's alphabet) is the profile's invariant yy-org-2; this
module only does the arithmetic FHIRPath cannot: each of the first 17 characters weighs
3^position mod 31, and the 18th makes the weighted sum a multiple of 31.
"""

from __future__ import annotations

import re

#: the code's 31 characters, in the order of their values (no I, O, Z, S, V)
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = tuple(pow(3, position, 31) for position in range(17))
FORMAT = re.compile(f"[{ALPHABET}]{{18}}")


def check_char(first17: str) -> str:
    if len(first17) != len(WEIGHTS):
        raise ValueError(f"17 characters expected, not {len(first17)}")
    total = sum(ALPHABET.index(char) * weight for char, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[-total % 31]


def checksum_problem(code: str) -> str | None:
    """The check character the code should end in, when it is well formed and ends in another
    (a malformed code is the format invariant's to report, once)."""
    if not FORMAT.fullmatch(code):
        return None
    expected = check_char(code[:17])
    return expected if code[17] != expected else None
