"""居民身份证号 (GB 11643-1999) and the other national identity documents built like it
(港澳台居民居住证, 外国人永久居留身份证): check character, 15→18 conversion, what a number encodes.

Pure functions on strings, so the validator's business rules and anything else that meets an
ID number share one implementation of the ISO 7064 MOD 11-2 arithmetic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from operator import mul

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
# [0-9], never \d: Python's \d takes every Unicode digit, and int() reads them, so a number
# with full-width digits (４１０１０５…) passed its check character as if it were ASCII
EIGHTEEN = re.compile(r"[1-9][0-9]{16}[0-9X]")
FIFTEEN = re.compile(r"[1-9][0-9]{14}")
DIGITS_17_CHECK = re.compile(r"[0-9]{17}[0-9X]")


#: what the ASCII codes of 17 weighted digits add to their values: the weights' sum times '0'
_ASCII_ZERO = ord("0") * sum(WEIGHTS)


def check_char(first17: str) -> str:
    if len(first17) != len(WEIGHTS):
        raise ValueError(f"17 characters expected, not {len(first17)}")
    if first17.isascii() and first17.isdigit():
        # the digits' ASCII codes, weighted, less what the codes add: int() of each digit was
        # the most of a valid 身份证's checks.  Any other text is read by int() (which reads
        # full-width digits too, and refuses what is no digit)
        return CHECK_CHARS[(sum(map(mul, first17.encode(), WEIGHTS)) - _ASCII_ZERO) % 11]
    return CHECK_CHARS[sum(map(mul, map(int, first17), WEIGHTS)) % 11]


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
        converted = upgrade_15(value)
        if facts(converted) is None:  # converting would only make an impossible 18-digit number
            return [("rule.id-card-date", {"value": number, "date": converted[6:14]})]
        return [("rule.id-card-15-digit", {"value": number, "converted": converted})]
    if not EIGHTEEN.fullmatch(value):
        return [("rule.id-card-format", {"value": number})]
    found = []
    expected = check_char(value[:17])
    if value[17] != expected:
        found.append(("rule.id-card-checksum", {"value": number, "expected": expected}))
    if facts(value) is None:
        found.append(("rule.id-card-date", {"value": number, "date": value[6:14]}))
    return found


@lru_cache(maxsize=64)
def facts(number: str) -> IdCardFacts | None:
    """Birth date, sex and region the number encodes, or None if its date is impossible.
    Remembered for a while: the business rules read a number's facts for its checks
    (:func:`problems`), then for the birth date and sex, and the date was half the cost."""
    value = number.upper()
    if not EIGHTEEN.fullmatch(value):
        return None
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None
    return IdCardFacts(born, int(value[16]) % 2 == 1, value[:6])


# ---------------------------------------------------------------------------------------------
# Other national identity documents (issue 13).  Each has its own identifier system
# (NamingSystem-hmt-residence-permit.json, NamingSystem-foreign-permanent-residence.json) and
# its own rules; both reuse the MOD 11-2 arithmetic above.

#: 港澳台居民居住证 (since 2018-09-01): the 身份证's structure with the address code 810000 (香港),
#: 820000 (澳门) or 830000 (台湾) instead of a county.
RESIDENCE_PERMIT_REGIONS = {"810000": "香港", "820000": "澳门", "830000": "台湾"}
RESIDENCE_PERMIT = re.compile(r"8[123][0-9]{15}[0-9X]")

#: 外国人永久居留身份证, 2023 edition (issued from 2023-12-01): 18 characters, '9', the issuing
#: province's 2-digit code, a 3-digit nationality code (GB/T 2659 numeric), birth date YYYYMMDD,
#: a 3-digit sequence and a MOD 11-2 check character.  The layout of the inner digits is
#: unconfirmed (see the NamingSystem), so only the leading 9 and the check character are errors;
#: what the inner digits would say (date, province, sex) is reported as warnings.
FOREIGN_PR = re.compile(r"9[0-9]{16}[0-9X]")
#: The 2004/2017 card: 15 characters, an ISO 3166-1 alpha-3 nationality code then 12 digits
#: (unconfirmed layout; accepted with a warning, its number is not checked).
FOREIGN_PR_OLD = re.compile(r"[A-Z]{3}[0-9]{12}")


def looks_like(number: str) -> str | None:
    """The other document a number filed as a 身份证 has the shape of, or None."""
    value = number.upper()
    if RESIDENCE_PERMIT.fullmatch(value) and value[:6] in RESIDENCE_PERMIT_REGIONS:
        return "hmt-residence-permit"
    if FOREIGN_PR.fullmatch(value) or FOREIGN_PR_OLD.fullmatch(value):
        return "foreign-permanent-residence"
    return None


def _birth(value: str) -> date | None:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


def residence_permit_problems(number: str) -> list[tuple[str, dict[str, str]]]:
    """Every problem with a 港澳台居民居住证 number, as (message id, params); all are errors."""
    value = number.upper()
    if not DIGITS_17_CHECK.fullmatch(value):
        return [("rule.residence-permit-format", {"value": number})]
    found = []
    if value[:6] not in RESIDENCE_PERMIT_REGIONS:
        found.append(("rule.residence-permit-region", {"value": number, "region": value[:6]}))
    expected = check_char(value[:17])
    if value[17] != expected:
        found.append(("rule.residence-permit-checksum", {"value": number, "expected": expected}))
    if _birth(value[6:14]) is None:
        found.append(("rule.residence-permit-date", {"value": number, "date": value[6:14]}))
    return found


def residence_permit_facts(number: str) -> IdCardFacts | None:
    """Birth date, sex and region of a 港澳台居民居住证 number (as on the 身份证), or None."""
    value = number.upper()
    if not DIGITS_17_CHECK.fullmatch(value):
        return None
    born = _birth(value[6:14])
    return None if born is None else IdCardFacts(born, int(value[16]) % 2 == 1, value[:6])


def foreign_pr_problems(number: str) -> list[tuple[str, str, dict[str, str]]]:
    """Every problem with a 外国人永久居留身份证 number, as (severity, message id, params)."""
    value = number.upper()
    if FOREIGN_PR_OLD.fullmatch(value):
        return [("warning", "rule.foreign-pr-old-format", {"value": number})]
    if not FOREIGN_PR.fullmatch(value):
        return [("error", "rule.foreign-pr-format", {"value": number})]
    found = []
    expected = check_char(value[:17])
    if value[17] != expected:
        found.append(("error", "rule.foreign-pr-checksum", {"value": number, "expected": expected}))
    if _birth(value[6:14]) is None:
        found.append(("warning", "rule.foreign-pr-date", {"value": number, "date": value[6:14]}))
    return found


def foreign_pr_facts(number: str) -> IdCardFacts | None:
    """What a 2023-edition number is believed to encode (unconfirmed): birth date in characters
    7–14, the sex in the parity of character 17 as on the 身份证, the issuing province in 2–3."""
    value = number.upper()
    if not FOREIGN_PR.fullmatch(value):
        return None
    born = _birth(value[6:14])
    return None if born is None else IdCardFacts(born, int(value[16]) % 2 == 1, value[1:3] + "0000")
