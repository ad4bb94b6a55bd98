"""居民身份证号 (GB 11643-1999): check character, 15→18 conversion and what the number encodes.

Pure functions on strings, so the validator's business rules and anything else that meets an
ID number share one implementation of the ISO 7064 MOD 11-2 arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
EIGHTEEN = re.compile(r"[1-9]\d{16}[\dX]")
FIFTEEN = re.compile(r"[1-9]\d{14}")


def check_char(first17: str) -> str:
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def upgrade_15(number: str) -> str:
    """The 18-digit form of a 1989-format number: century 19 inserted, check character added."""
    body = number[:6] + "19" + number[6:]
    return body + check_char(body)


@dataclass(frozen=True, slots=True)
class IdCardFacts:
    birth_date: date
    male: bool
    region: str


def problems(number: str) -> list[tuple[str, dict[str, str]]]:
    """Every problem with a number, as (message id, params); empty when it is valid."""
    value = number.upper()
    if FIFTEEN.fullmatch(value):
        return [("rule.id-card-15-digit", {"value": number, "converted": upgrade_15(value)})]
    if not EIGHTEEN.fullmatch(value):
        return [("rule.id-card-format", {"value": number})]
    found = []
    expected = check_char(value[:17])
    if value[17] != expected:
        found.append(("rule.id-card-checksum", {"value": number, "expected": expected}))
    if facts(value) is None:
        found.append(("rule.id-card-date", {"value": number, "date": value[6:14]}))
    return found


def facts(number: str) -> IdCardFacts | None:
    """Birth date, sex and region the number encodes, or None if its date is impossible."""
    value = number.upper()
    if not EIGHTEEN.fullmatch(value):
        return None
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None
    return IdCardFacts(born, int(value[16]) % 2 == 1, value[:6])
