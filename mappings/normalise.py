"""Normalisers for the mess legacy exports contain, each named so mapping specs can list them.

A normaliser returns the cleaned value or raises :class:`MappingError` with a stable message
id; it never guesses.  Full-width digits become ASCII and ``1945年1月1日`` becomes
``1945-01-01``, but an ID number Excel turned into ``1.10101E+17`` or text that was decoded
with the wrong encoding is refused, because the true value cannot be recovered.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, TypeVar
from zoneinfo import ZoneInfo


class MappingError(ValueError):
    """A value that cannot be mapped; ``message_id`` names the reason in the message catalog."""

    def __init__(self, message_id: str, **params: Any) -> None:
        super().__init__(message_id)
        self.message_id = message_id
        self.params = params


Normaliser = Callable[[Any], Any]

_CHINA = timezone(timedelta(hours=8))
#: the day a sender's clock showed: China kept summer time (1940–1949, 1986–1991), so a
#: midnight of 1946-06-01 there is 1946-05-31T15:00Z, not 16:00Z (the zone from ``tzdata``
#: where the machine has no zone database)
_CHINA_CIVIL = ZoneInfo("Asia/Shanghai")
#: a day written as :data:`_DATE_PATTERNS` write it (1945-1-1, 1945/1/1, 1945.1.1, 1945年1月1日,
#: 19450101), then a time of day, with seconds, fractions and a UTC offset or Z when the
#: export has them; after 年月日 the space may be left out (1945年1月1日09:30)
_DATETIME = re.compile(
    r"(?P<day>\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}|\d{4}\.\d{1,2}\.\d{1,2}|\d{4}年\d{1,2}月\d{1,2}日|\d{8})"
    r"(?:[ T]|(?<=日))(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?"
    r" ?(?P<zone>Z|[+-]\d{2}:?\d{2})?",
    re.ASCII,
)
_EXCEL_EPOCH = date(1899, 12, 30)  # Excel's day 0, counting its fictitious 1900-02-29
#: the smallest size of a JSON number read as milliseconds since 1970 (a Java platform's
#: java.util.Date as Jackson writes it): 12 digits and more, dates before 1966-11 or after 1973-02.
#: Smaller numbers are YYYYMMDD (8 digits), Excel serials (5) or ambiguous (10 digits: seconds of
#: 2001 or milliseconds of 1970), and stay refused rather than misread.
EPOCH_MILLIS_MIN = 100_000_000_000
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:\.\d+)?[eE][+-]?\d+", re.ASCII)
_DATE_PATTERNS = [
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:[T ].*)?", re.ASCII),
    re.compile(r"(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})(?: .*)?", re.ASCII),
    re.compile(r"(?P<y>\d{4})\.(?P<m>\d{1,2})\.(?P<d>\d{1,2})", re.ASCII),
    re.compile(r"(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日?", re.ASCII),
    re.compile(r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})", re.ASCII),
]
#: a year and month without a day: 1938-05, 1938/5, 1938.05, 1938年5月.  After a dot the month
#: has two digits: 1938.1 may be 1938.10 a spreadsheet wrote as a number, and stays refused.
_YEAR_MONTH = re.compile(r"(?P<y>\d{4})(?:[-/](?P<m>\d{1,2})|\.(?P<dm>\d{2})|年(?P<cm>\d{1,2})月)", re.ASCII)
#: the years a whole number between 1800 and 2099 is read as, written as text or as a number: as
#: an Excel serial it would be a day of 1904–1905, which no record of the living has
_YEAR = re.compile(r"(?:18|19|20)\d{2}", re.ASCII)
# Text decoded with the wrong codec: U+FFFD, the classic GBK-of-UTF-8 "锟斤拷", or Latin-1
# letters where Chinese was expected (UTF-8 bytes read as ISO-8859-1).
#: characters of garbled text a message quotes: 赵淑芬 garbled is 9, the family name's 3
MOJIBAKE_SHOWN = 3
# × and · are real text in Chinese exports (a masked name 王××, 阿依古丽·买买提), not mojibake
_GARBLED = re.compile(r"锟斤拷|烫烫烫|[\u0080-\u00b6\u00b8-\u00d6\u00d8-\u00ff]{2,}")
_MOJIBAKE = re.compile(r"\ufffd|" + _GARBLED.pattern)
#: what a decoder or converter writes for a character it could not read or map (U+FFFD)
LOST_CHARACTER = "\ufffd"
#: a name in Chinese characters (CJK ideographs of every extension) and the middle dot of a
#: transliterated one (阿依古丽·买买提), nothing else: what a lossy GBK export leaves of one
_CHINESE_NAME = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003ffff·•・]*")
#: what Excel shows for a formula that failed (the #N/A of a VLOOKUP that found nothing, the #REF!
#: of a deleted column …): an .xlsx saves it as the cell's value and a CSV exported from the
#: sheet as its text, so it reached the archive as a person's address or name
EXCEL_ERRORS = frozenset(
    {"#N/A", "#REF!", "#VALUE!", "#DIV/0!", "#NAME?", "#NULL!", "#NUM!", "#SPILL!", "#CALC!", "#GETTING_DATA"}
)


# Full-width digits and Latin letters (and the ideographic space) fold to ASCII in any text;
# Chinese punctuation such as ， and 、 stays, it belongs to the text.
_ALNUM_FOLD = {
    cp: cp - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)) for cp in range(r[0], r[1] + 1)
}
_ALNUM_FOLD[0x3000] = 0x20


def ascii_digits(value: str) -> bool:
    """Whether ``value`` is digits 0-9 only, as an escape's count or a list index must be:
    ``str.isdigit`` alone also takes ``²``, which ``int`` cannot read (a ValueError, not a
    refusal), and full-width digits, which no HL7 escape or spec path is written with.  (The
    gateway has its own: this layer imports nothing of ours.)"""
    return value.isascii() and value.isdigit()


def text(value: Any) -> str | None:
    """Trimmed text with full-width digits and letters folded to ASCII; empty becomes None."""
    if value is None:
        return None
    if isinstance(value, (list, dict)):
        # a JSON list or object where one value belongs: writing its Python repr would be junk
        raise MappingError("mapping.not-text", value=str(value)[:40])
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    raw = str(value)
    if _MOJIBAKE.search(raw):
        # a few characters show what went wrong; more would spell out a name decoded back
        # (èµµæ·‘èŠ¬ is 赵淑芬), which masking cannot recognise in its garbled form
        raise MappingError("mapping.mojibake", value=raw[:MOJIBAKE_SHOWN] + ("…" if len(raw) > MOJIBAKE_SHOWN else ""))
    if raw.strip().upper() in EXCEL_ERRORS:
        raise MappingError("mapping.spreadsheet-error", value=raw.strip())
    return raw.translate(_ALNUM_FOLD).strip() or None


def person_name(value: Any) -> str | None:
    """A person's name as :func:`text` cleans it, refused when its export lost characters: Excel
    saving a sheet as "CSV (逗号分隔)" writes GBK and puts ``?`` for every character GBK lacks
    (王䶮 becomes 王?), and a conversion that could not map a character writes U+FFFD.  No name
    holds either, and the lost character cannot be recovered from what is left
    (``mapping.lost-characters``).  A U+FFFD beside anything but Chinese characters (é™ˆçŽ‰ç and
    U+FFFD: UTF-8 read as Windows-1252, which has no character for some bytes) stays mojibake:
    the wrong decoding is what to fix there."""
    if isinstance(value, str) and LOST_CHARACTER in value and not _GARBLED.search(value):
        if _CHINESE_NAME.fullmatch(value.strip().replace(LOST_CHARACTER, "")):
            raise MappingError("mapping.lost-characters", value=value.strip())
    cleaned = text(value)
    if cleaned is not None and "?" in cleaned:
        raise MappingError("mapping.lost-characters", value=cleaned)
    return cleaned


def _folded(value: Any) -> str | None:
    """Text with every compatibility form folded (NFKC): for codes, numbers and dates, where
    a full-width hyphen or slash is only a spelling of the ASCII one (full-width digits are
    folded already: :func:`text`).  Other digits are refused: a superscript, circled or
    mathematical one (², ①, ⑩, 𝟏 …), which NFKC would read as 0-9 (``integer('²')`` was 2,
    ``identifier('①')`` '1') though no Chinese system types a number so
    (``mapping.compatibility-digits``); and the digits of another script (Arabic-Indic ٣,
    Devanagari ३ …), which no fold makes ASCII (``mapping.foreign-digits``): ``int`` reads
    them as numbers and an identifier kept them, where no Chinese system means one; the
    patterns here take 0-9 alone (``re.ASCII``)."""
    cleaned = text(value)
    if cleaned is None:
        return None
    if cleaned.isascii():
        return cleaned
    invisible = [c for c in dict.fromkeys(cleaned) if unicodedata.category(c) == "Cf"]
    if invisible:
        # a byte order mark starting a line of two exports joined into one, a zero-width space
        # pasted from a web page: 个人档案编号 "\ufeff110105…" landed as a number no other
        # source's record matched, though every tool shows it as the same
        raise MappingError("mapping.invisible-characters", value=cleaned, characters=_code_points(invisible))
    folded = unicodedata.normalize("NFKC", cleaned)
    compatible = [
        c for c in dict.fromkeys(cleaned) if not c.isascii() and _ASCII_DIGIT.search(unicodedata.normalize("NFKC", c))
    ]
    if compatible:
        # quoted folded (¹³⁸… as 138…), as masking reads a number in the reason: 0-9
        raise MappingError("mapping.compatibility-digits", value=folded, digits=_shown(compatible))
    foreign = [c for c in dict.fromkeys(folded) if c.isdecimal() and not c.isascii()]
    if foreign:
        raise MappingError("mapping.foreign-digits", value=folded, digits=_shown(foreign))
    return folded


_ASCII_DIGIT = re.compile("[0-9]")


def _code_points(characters: list[str]) -> str:
    """Characters nobody sees, as a reason names them."""
    return ", ".join(f"U+{ord(c):04X}" for c in characters)


def _shown(digits: list[str]) -> str:
    """Digits as a reason names them: each with its code point."""
    return ", ".join(f"{c} U+{ord(c):04X}" for c in digits)


def identifier(value: Any) -> str | None:
    """An identifier as text, refusing what a spreadsheet did to long numbers."""
    if isinstance(value, float):
        raise MappingError("mapping.excel-mangled-number", value=repr(value))
    cleaned = _folded(value)
    if cleaned is None:
        return None
    if _SCIENTIFIC.fullmatch(cleaned):
        raise MappingError("mapping.excel-mangled-number", value=cleaned)
    return cleaned.replace(" ", "").upper()


def digits(value: Any) -> str | None:
    """Phone numbers and the like: separators removed, letters refused, and digits other than
    0-9 too (full-width ones are folded before; ``\\d`` alone also took Arabic-Indic digits,
    which were written to the resource as they came)."""
    cleaned = identifier(value)
    if cleaned is None:
        return None
    compact = re.sub(r"[\s\-()]", "", cleaned)
    extension = _EXTENSION.search(cleaned)
    if extension and not _MOBILE.fullmatch(compact):  # 1380371-0001 is a mobile written in groups
        raise MappingError("mapping.phone-extension", value=cleaned, extension=extension["extension"])
    if not re.fullmatch(r"\+?\d{3,20}", compact, re.ASCII):
        raise MappingError("mapping.not-digits", value=cleaned)
    return compact


#: an office number's extension after its local number of 7 or 8 digits (0371-65551234-8001, as
#: 区号-总机-分机 are written): its separators removed, the digits joined to the number
#: (0371655512348001) were a number nobody can dial, and ContactPoint has no place for one
_EXTENSION = re.compile(r"(?<!\d)\d{7,8}-(?P<extension>\d{1,6})$", re.ASCII)
_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)


def fhir_date(value: Any) -> str | None:
    """ISO date from the formats seen in exports: 1945-1-1, 1945/1/1, 19450101, 1945年1月1日,
    Excel serial numbers and spreadsheet date cells.  A number of 8 digits is 19450101 typed
    into a number cell, read as its digits: serials of plausible dates have 5.  A JSON number of
    12 digits or more is a Java platform's milliseconds since 1970, the day it was in China."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if _epoch_millis(value):
        return _from_millis(value).astimezone(_CHINA_CIVIL).date().isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if _four_digits_with_fraction(value):
            # 1938.05 typed into a number cell: a year and month whose zeros the number may have
            # lost (1938.1 for 1938.10), or a moment of 1905; neither is told, so refused
            raise MappingError("mapping.bad-date", value=str(value))
        if not _eight_digits(value) and not _YEAR.fullmatch(str(value).removesuffix(".0")):
            return _from_serial(value)
        value = str(int(value))
    cleaned = _folded(value)
    if cleaned is None:
        return None
    if re.fullmatch(r"\d{4,5}(?:\.0)?", cleaned, re.ASCII) and not _YEAR.fullmatch(cleaned):
        return _from_serial(float(cleaned))
    if _FRACTIONAL_SERIAL.fullmatch(cleaned):  # a moment saved as text: its day, as of the number
        return _from_serial(float(cleaned))
    if re.fullmatch(r"\d{4}", cleaned, re.ASCII):
        return cleaned
    month = _YEAR_MONTH.fullmatch(cleaned)
    if month:  # a month without its day (a birth month an old archive knows), at that precision
        number = int(month["m"] or month["dm"] or month["cm"])
        if not 1 <= number <= 12:
            raise MappingError("mapping.impossible-date", value=cleaned)
        return f"{month['y']}-{number:02d}"
    timed = _DATETIME.fullmatch(cleaned)
    if timed and timed["zone"]:
        # a moment with its offset (a Java export's 1949-12-30T16:00:00.000+0000 is the
        # Beijing midnight of 1949-12-31): the day is the Chinese calendar day it fell on
        moment = datetime.fromisoformat(fhir_datetime(cleaned) or "")
        return moment.astimezone(_CHINA_CIVIL).date().isoformat()
    if timed:
        cleaned = timed["day"]  # a Beijing time of day: the day is as written, however written
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(cleaned)
        if match:
            try:
                return date(int(match["y"]), int(match["m"]), int(match["d"])).isoformat()
            except ValueError as exc:
                raise MappingError("mapping.impossible-date", value=cleaned) from exc
    raise MappingError("mapping.bad-date", value=cleaned)


def _zone(written: str | None) -> timezone:
    """The offset a time was written with; none means Beijing time."""
    if not written:
        return _CHINA
    if written == "Z":
        return UTC
    hours, minutes = int(written[1:3]), int(written[-2:])
    if hours > 14 or minutes > 59:
        raise ValueError(f"no such UTC offset {written}")
    return timezone((1 if written[0] == "+" else -1) * timedelta(hours=hours, minutes=minutes))


def fhir_datetime(value: Any) -> str | None:
    """A dateTime with seconds and +08:00 when the export gives a time, else a date.  An Excel
    serial with a fraction (45632.5, a date cell formatted General, or such a cell saved to CSV)
    gives one too: its fraction is the time of day, which was cut off."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=_CHINA)
        return moment.isoformat(timespec="seconds")
    if _epoch_millis(value):
        return _from_millis(value).isoformat(timespec="seconds")
    cleaned = _folded(value) if not isinstance(value, (int, float, date)) else value
    serial = _fractional_serial(cleaned)
    if serial is not None:
        return _moment_from_serial(serial)
    if isinstance(cleaned, str):
        match = _DATETIME.fullmatch(cleaned)
        if match:
            day = date.fromisoformat(fhir_date(match["day"]) or "")
            try:
                zone = _zone(match["zone"])
                moment = datetime(
                    day.year, day.month, day.day, int(match["h"]), int(match["mi"]), int(match["s"] or 0), tzinfo=zone
                )
            except ValueError as exc:
                raise MappingError("mapping.impossible-date", value=cleaned) from exc
            # Beijing time, as every other time in the archive
            return moment.astimezone(_CHINA).isoformat(timespec="seconds")
        if ":" in cleaned:  # a time no pattern reads: refused, not cut back to its date
            raise MappingError("mapping.bad-date", value=cleaned)
    return fhir_date(cleaned)


def _four_digits_with_fraction(number: float) -> bool:
    """Whether a number is 1938.05-like: four digits before a fraction."""
    return 1000 <= abs(number) < 10_000 and not float(number).is_integer()


def _epoch_millis(value: Any) -> bool:
    """Whether a value is a JSON whole number of milliseconds since 1970 (``EPOCH_MILLIS_MIN``)."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) >= EPOCH_MILLIS_MIN


def _from_millis(millis: int) -> datetime:
    """The Beijing moment of milliseconds since 1970; a number no calendar reaches is no date."""
    try:
        return datetime.fromtimestamp(millis / 1000, _CHINA)
    except (ValueError, OverflowError, OSError) as exc:
        raise MappingError("mapping.bad-date", value=str(millis)) from exc


def _eight_digits(number: float) -> bool:
    """Whether a number is a whole number of 8 digits, as 19450101 is."""
    return 10_000_000 <= number <= 99_999_999 and float(number).is_integer()


def _from_serial(serial: float) -> str:
    if not 1 <= serial < 80_000:
        raise MappingError("mapping.bad-date", value=str(serial))
    return (_EXCEL_EPOCH + timedelta(days=int(serial))).isoformat()


#: an Excel serial written as text with a fraction, as a General cell saved to CSV shows it: five
#: digits, as every serial since 1927 has (four with a fraction is 1938.05, a year and month)
_FRACTIONAL_SERIAL = re.compile(r"\d{5}\.\d*[1-9]\d*", re.ASCII)


def _fractional_serial(value: Any) -> float | None:
    """The serial of a number, or of text, that is an Excel serial with a time of day: a number
    with a fraction (a whole one is a day, or 19450101's digits; four digits with one are refused
    as fhir_date refuses them), text of 5 digits with one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return None if float(value).is_integer() or _four_digits_with_fraction(value) else float(value)
    if isinstance(value, str) and _FRACTIONAL_SERIAL.fullmatch(value):
        return float(value)
    return None


def _moment_from_serial(serial: float) -> str:
    """The Beijing moment of an Excel serial (days since Excel's day 0, the fraction the time of
    day of the wall clock it was typed on), to the nearest second."""
    if not 1 <= serial < 80_000:
        raise MappingError("mapping.bad-date", value=str(serial))
    moment = datetime.combine(_EXCEL_EPOCH, time(), tzinfo=_CHINA) + timedelta(seconds=round(serial * 86_400))
    return moment.isoformat(timespec="seconds")


def integer(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    cleaned = _folded(value)
    if cleaned is None:
        return None
    if not re.fullmatch(r"[+-]?\d+(?:\.0+)?", cleaned, re.ASCII):
        raise MappingError("mapping.not-a-number", value=cleaned)
    return _number(cleaned, lambda: int(cleaned.split(".")[0]))  # not via float: exact


def decimal(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):  # JSON's NaN / Infinity literals
            raise MappingError("mapping.not-a-number", value=str(value))
        return value
    cleaned = _folded(value)
    if cleaned is None:
        return None
    # plain decimal notation only: float() would also take nan, inf and 1_000
    if not re.fullmatch(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", cleaned, re.ASCII):
        raise MappingError("mapping.not-a-number", value=cleaned)
    return _number(cleaned, lambda: int(cleaned) if re.fullmatch(r"[+-]?\d+", cleaned, re.ASCII) else float(cleaned))


#: the characters of a number a refusal quotes: a cell may hold a million digits
NUMBER_SHOWN = 40
_Number = TypeVar("_Number", int, float)


def _number(cleaned: str, read: Callable[[], _Number]) -> _Number:
    """The number ``read`` makes of ``cleaned``, refused as no number when it is none a record
    means: more digits than Python converts (4,300: a ValueError, which quarantined the record
    as the gateway's own failure, ingest.internal-error), or out of a float's range (1e400 read
    as infinity, which the profiles' invariants could not evaluate)."""
    shown = cleaned if len(cleaned) <= NUMBER_SHOWN else cleaned[:NUMBER_SHOWN] + "…"
    try:
        number = read()
    except ValueError as exc:
        raise MappingError("mapping.not-a-number", value=shown) from exc
    if not math.isfinite(number):
        raise MappingError("mapping.not-a-number", value=shown)
    return number


def split_list(value: Any) -> list[str]:
    """Multi-valued cells: 高血压,糖尿病 / 2、3 / 2;3 (full-width separators included)."""
    cleaned = text(value)
    if cleaned is None:
        return []
    return [part for part in re.split(r"[,，、;；|/\s]+", cleaned) if part]


#: what always separates the numbers of a cell listing several (full-width forms included)
_PHONE_SEPARATORS = re.compile(r"[,，、;；/／|｜]+")
#: the scheme of a phone number written as a URL (CDA TEL: ``tel:+86-371-68801234``)
_TEL_SCHEME = re.compile(r"^tel:", re.IGNORECASE)
#: the fewest digits of a whole phone number: a landline without its area code (6666888)
SHORTEST_PHONE = 7


def phone_numbers(value: Any) -> list[str]:
    """The phone numbers of a cell that may list several: 13800000000、66668888 or
    66668888 77779999.  A space separates two numbers only where every part it separates is a
    whole number (at least ``SHORTEST_PHONE`` digits), so a number written in groups, 138 0000 0000
    or 0371-6555 1234, stays one number; ``digits`` then checks each.  A number written as a
    ``tel:`` URL (RFC 3966), as CDA R2 writes every TEL value, is that number.  An e-mail or web
    address (``mailto:``, ``http://…``) is one contact, whatever slashes it holds: its ``/``
    separates the parts of one address, not two numbers."""
    cleaned = text(value)
    if cleaned is None:
        return []
    scheme = _URL_SCHEME.fullmatch(cleaned)
    if scheme and scheme.group(1).lower() in _UNDIVIDED_SCHEMES:
        return [cleaned]
    numbers: list[str] = []
    for chunk in _PHONE_SEPARATORS.split(cleaned):
        parts = _TEL_SCHEME.sub("", chunk.strip()).split()
        if len(parts) > 1 and all(sum(c.isdigit() for c in part) >= SHORTEST_PHONE for part in parts):
            numbers.extend(parts)
        elif parts:
            numbers.append(" ".join(parts))
    return numbers


#: the scheme of a URL (RFC 3986: a letter, then letters, digits, ``+``, ``-`` or ``.``)
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
#: schemes whose rest is a number to dial (RFC 3966 ``tel:``, and ``fax:`` as CDA writers use it)
_DIALLED_SCHEMES = frozenset({"tel", "fax"})
#: schemes whose whole URL is the contact (a web page: ``ContactPoint.system`` url)
_ADDRESSED_SCHEMES = frozenset({"http", "https"})
#: schemes of one address, never a list of numbers
_UNDIVIDED_SCHEMES = _ADDRESSED_SCHEMES | {"mailto"}
#: an e-mail address as a person writes one: something, an @, a domain, no spaces
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def _scheme_and_rest(value: Any, fold: Normaliser = _folded) -> tuple[str, str] | None:
    """A contact written as a URL split into its lower-case scheme and the rest; a value without
    a scheme is a number, as the exports write phones (``tel``).  ``fold`` reads the value
    (:func:`_folded`, refusing digits other than 0-9)."""
    cleaned = fold(value)
    if cleaned is None:
        return None
    written = _URL_SCHEME.fullmatch(cleaned)
    return (written.group(1).lower(), written.group(2).strip()) if written else ("tel", cleaned)


def url_scheme(value: Any) -> str | None:
    """The scheme of a contact written as a URL (CDA R2 TEL: ``tel:``, ``fax:``, ``mailto:``),
    ``tel`` for a bare number; ConceptMap ``url-scheme-to-contact-point-system`` turns it into
    ``ContactPoint.system``, so a scheme it does not list is refused by name.  The rest's
    digits are :func:`contact_value`'s to judge: refused here too, a fax number in
    Arabic-Indic digits was refused twice, once for its system."""
    split = _scheme_and_rest(value, _compatibility_folded)
    return split[0] if split else None


def _compatibility_folded(value: Any) -> str | None:
    """Text with every compatibility form folded (NFKC), its digits not judged."""
    cleaned = text(value)
    return unicodedata.normalize("NFKC", cleaned) if cleaned is not None else None


def contact_value(value: Any) -> str | None:
    """The number or address of a contact written as a URL or bare: an e-mail address after
    ``mailto:`` (kept as written, case and all), a web address (``http:``, ``https:``) whole,
    as ``ContactPoint.value`` of system url holds it, else a number checked by ``digits``.  The rest
    of a scheme the ConceptMap does not know is left unchecked: that map refuses the record,
    once, naming the schemes it takes."""
    split = _scheme_and_rest(value)
    if split is None:
        return None
    scheme, rest = split
    if scheme == "mailto":
        if not _EMAIL.fullmatch(rest):
            raise MappingError("mapping.not-an-email", value=rest)
        return rest
    if scheme in _ADDRESSED_SCHEMES:
        return _folded(value)
    return digits(rest) if scheme in _DIALLED_SCHEMES else rest


def email(value: Any) -> str | None:
    """An e-mail address written bare, as HL7 XTN.4 sends one: kept as written, case and all,
    or refused when it is not one (``mapping.not-an-email``)."""
    cleaned = _folded(value)
    if cleaned is None:
        return None
    if not _EMAIL.fullmatch(cleaned):
        raise MappingError("mapping.not-an-email", value=cleaned)
    return cleaned


# The national identity document a number is, by its shape alone (the validator then checks it by
# that document's rules): 港澳台居民居住证 numbers are built like a 身份证 with the address code
# 810000/820000/830000, which no 身份证 carries; 外国人永久居留身份证 numbers begin with 9 (2023
# edition, 18 characters) or with a 3-letter nationality code (older 15-character card).  Anything
# else is a 身份证 number, right or wrong, so a bad number is still quarantined as a bad 身份证.
_RESIDENCE_PERMIT = re.compile(r"8[123]0000\d{11}[\dX]", re.ASCII)
_FOREIGN_PR = re.compile(r"9\d{16}[\dX]|[A-Z]{3}\d{12}", re.ASCII)


def _code_or_none(value: Any) -> str | None:
    """A code as ``identifier`` cleans it, or None when that refuses it: the code's own rule
    reports it once, and the system derived from it is simply left out."""
    try:
        return identifier(value)
    except MappingError:
        return None


def id_document_kind(value: Any) -> str | None:
    """``id-card``, ``hmt-residence-permit`` or ``foreign-permanent-residence`` (ConceptMap
    ``id-document-kind-to-identifier-system`` turns it into the identifier system).  A value
    the ``identifier`` normaliser refuses gives no system: the value's own rule reports it once
    and the identifier is dropped as if the field were empty."""
    cleaned = _code_or_none(value)
    if cleaned is None:
        return None
    if _RESIDENCE_PERMIT.fullmatch(cleaned):
        return "hmt-residence-permit"
    if _FOREIGN_PR.fullmatch(cleaned):
        return "foreign-permanent-residence"
    return "id-card"


def division_list(value: Any) -> str | None:
    """Which list a division code belongs to: ``gb-t-2260`` for 6-digit province, city and county
    codes, ``nbs-division`` (统计用区划代码) for 9-digit townships, 12-digit villages and the
    statistics-only county-level codes (county digits 71–79: 开发区 and the like, 郑州 410171).
    ConceptMap ``division-list-to-code-system`` turns it into the code system.  A value the
    ``identifier`` normaliser refuses gives no system: the code's own rule reports it once."""
    cleaned = _code_or_none(value)
    if cleaned is None:
        return None
    if len(cleaned) in (9, 12) or (len(cleaned) == 6 and cleaned[4] == "7"):
        return "nbs-division"
    return "gb-t-2260"


def insured_region_list(value: Any) -> str | None:
    """Which list a 医保区划 (insuplc_admdvs, IN1-3) belongs to: ``nhsa-admdvs-city-level`` for a
    city's own 统筹区, its first four digits and 99 (郑州市本级 410199: no GB/T 2260 code ends in
    99), else ``gb-t-2260``, where it is checked as any GB/T 2260 code.  ConceptMap
    ``division-list-to-code-system`` turns it into the code system.  A value the ``identifier``
    normaliser refuses gives no system: the code's own rule reports it once."""
    cleaned = _code_or_none(value)
    if cleaned is None:
        return None
    return "nhsa-admdvs-city-level" if len(cleaned) == 6 and cleaned.endswith("99") else "gb-t-2260"


def choice(value: Any) -> str | None:
    """A ticked choice without the detail written after it, for its ConceptMap: the 健康体检表's
    减体重（目标5kg） is 减体重, 其他：按时服药 is 其他.  The spec keeps the whole item as the
    concept's text, so the detail (a target weight, a vaccine) is not lost."""
    cleaned = text(value)
    if cleaned is None:
        return None
    return re.split(r"[(（:：]", cleaned, maxsplit=1)[0].strip() or cleaned


Splitter = Callable[[Any], list[str]]


def whole(value: Any) -> list[str]:
    """The value as one item: an e-mail address, whose spaces (a typo) are no list."""
    cleaned = text(value)
    return [] if cleaned is None else [cleaned]


#: how an ``each`` divides a multi-valued cell into its items (default ``list``)
SPLITTERS: dict[str, Splitter] = {"list": split_list, "phone_numbers": phone_numbers, "whole": whole}

NORMALISERS: dict[str, Normaliser] = {
    "text": text,
    "person_name": person_name,
    "identifier": identifier,
    "digits": digits,
    "url_scheme": url_scheme,
    "contact_value": contact_value,
    "email": email,
    "date": fhir_date,
    "datetime": fhir_datetime,
    "integer": integer,
    "decimal": decimal,
    "id_document_kind": id_document_kind,
    "division_list": division_list,
    "insured_region_list": insured_region_list,
    "choice": choice,
}
