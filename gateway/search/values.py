"""Encodings shared by the indexer and the query parser, so both sides compare like with like.

Dates become closed ranges of UTC instants in one fixed-width text format that sorts
correctly as text on SQLite and PostgreSQL alike ('YYYY-MM-DDTHH:MM:SS.ffffffZ').  A value
without an offset is Beijing time (+08:00): the province's sources never say, and it is
what they mean.  A partial value ('2026', '2026-11') spans its whole year / month / day,
and a value to the second spans that second, as R4 search requires.

Strings are compared after NFKD without combining marks and case folding, so full-width
'ＡＢＣ' finds 'abc' and 'José' finds 'jose'; Chinese characters are unchanged.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from urllib.parse import unquote, urlsplit

#: the largest whole number a request may name where the databases take it (a count, an
#: offset, a version): their 32-bit integer range
MAX_SQL_INTEGER = 2**31 - 1
MIN_INSTANT = "0001-01-01T00:00:00.000000Z"
MAX_INSTANT = "9999-12-31T23:59:59.999999Z"
BEIJING = timezone(timedelta(hours=8))

_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,
)
_MICRO = timedelta(microseconds=1)
#: a time zone whose "+" came unescaped in a URL's query, where it reads as a space
_SPACED_ZONE = re.compile(r"(?<=\d) (?=\d{2}:\d{2}$)")


def ascii_digits(text: str) -> bool:
    """Whether ``text`` is digits 0-9 only.  ``str.isdigit`` alone also takes ``²`` (no number
    to ``int``) and full-width ``４１０１０５`` (a number to ``int``, but never a code the
    store holds), so a code or a count checked with it was a 500 or a quiet miss."""
    return text.isascii() and text.isdigit()


def natural_number(text: str) -> int | None:
    """``text`` as a whole number ≥ 0 both databases take, or None: ASCII digits only and at
    most :data:`MAX_SQL_INTEGER`."""
    if not ascii_digits(text) or int(text) > MAX_SQL_INTEGER:
        return None
    return int(text)


def format_instant(moment: datetime) -> str:
    """The fixed text form, as ``isoformat`` writes it in C (its year always four digits, where
    strftime's %Y does not zero-pad years before 1000), the offset of UTC written ``Z``.  Every
    date a resource is indexed by is formatted twice (its range's low and high): formatted
    field by field in Python, that was half of encoding a Patient's ``birthDate``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:26] + "Z"


def queried_date(text: str) -> str:
    """A date from a URL's query as its sender wrote it: ``2026-12-01T08:00:00+08:00`` sent
    without escaping the ``+`` arrives as ``…08:00:00 08:00`` (a space, by form decoding), a
    slip so common that servers read it as meant; a space is nowhere else valid in a date."""
    return _SPACED_ZONE.sub("+", text)


def date_range(text: str) -> tuple[str, str]:
    """[low, high] of a FHIR date, dateTime or instant; ValueError if it is not one.  Its
    parts are read by position (``Match.groups``), not as a dict of the named ones: a
    birthdate's range was a third of parsing a search by name and birthdate."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a FHIR date: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    fraction = (fraction or "")[:6]
    start = datetime(
        int(year),
        int(month or 1),
        int(day or 1),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int(fraction.ljust(6, "0")) if fraction else 0,
        tzinfo=_zone(zone),
    )
    # the precision given: the last of the parts present (0 a year … 4 a second)
    precision = 4 if second else 3 if hour else 2 if day else 1 if month else 0
    return clamped_instant(start), _clamped_end(start, precision, len(fraction))


def _zone(text: str | None) -> timezone:
    if text is None:
        return BEIJING
    if text == "Z":
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"not a time-zone offset: {text!r}")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if text[0] == "-" else offset)


def clamped_instant(moment: datetime) -> str:
    """The instant in UTC, or the nearer bound when UTC falls outside years 1–9999."""
    try:
        return format_instant(moment)
    except OverflowError:
        return MIN_INSTANT if moment.year == 1 else MAX_INSTANT


def _clamped_end(start: datetime, precision: int, fraction_digits: int) -> str:
    """The last microsecond of the period the value's ``precision`` denotes (0 a year, 1 a
    month, 2 a day, 3 a minute, 4 a second or its fraction)."""
    try:
        if precision == 0:
            after = start.replace(year=start.year + 1)
        elif precision == 1:
            after = (
                start.replace(year=start.year + 1, month=1)
                if start.month == 12
                else start.replace(month=start.month + 1)
            )
        elif precision == 2:
            after = start + timedelta(days=1)
        elif precision == 3:
            after = start + timedelta(minutes=1)
        else:
            after = start + timedelta(microseconds=10 ** (6 - fraction_digits))
        return clamped_instant(after - _MICRO)
    except (OverflowError, ValueError):  # the period runs past year 9999
        return MAX_INSTANT


def normalise(text: str) -> str:
    """The comparison form of a string: NFKD, combining marks dropped, case-folded.  Marks
    are looked for in C first (``map``): the province's names and addresses have none, and a
    Python loop over every character was most of indexing a Patient's dozen strings."""
    decomposed = unicodedata.normalize("NFKD", text)
    if any(map(unicodedata.combining, decomposed)):
        decomposed = "".join(c for c in decomposed if not unicodedata.combining(c))
    return decomposed.casefold()


#: a relative literal reference: Type/id, or one version of it
_LOCAL = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def local_reference(url: str, base_url: str) -> str | None:
    """The relative reference (``Patient/1``) an absolute URL on this server's base stands for,
    however it is spelt: scheme and host in any case, the default port written or not, dot
    segments, doubled slashes and percent-encoding.  None for another server's URL (or one
    with a query or fragment, or a path ending in a slash)."""
    if "//" not in url:  # no authority, so no host: a urn:uuid, a relative reference
        return None
    found, base = _split(url), _base(base_url)
    if found is None or base is None or found[0] != base[0] or found[2]:
        return None
    segments, base_segments = found[1], base[1]
    if segments[: len(base_segments)] != base_segments:
        return None
    local = "/".join(segments[len(base_segments) :])
    return local if _LOCAL.fullmatch(local) else None


@lru_cache(maxsize=16)
def _base(base_url: str) -> tuple[tuple[str, str, int | None], list[str], bool] | None:
    """The server's base split once: every entry of a transaction asks about its fullUrl,
    and a host's IDNA form costs more than the rest of the comparison."""
    return _split(base_url.rstrip("/"))


def _split(url: str) -> tuple[tuple[str, str, int | None], list[str], bool] | None:
    """(scheme, host, port) with the host in one form (no trailing dot, an IP address as
    Python writes it, a name in its ASCII form) and the scheme's default port filled in; the
    path's segments with dot segments resolved and each decoded; and whether the path ends in
    a slash or a query or fragment follows (then it names no resource).  None for text that is
    no URL: whitespace, control characters or a backslash, which parsers disagree on."""
    if any(c <= " " or c == "\\" for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port if parts.port is not None else _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # a port that is no number
        return None
    if not parts.scheme or not parts.hostname:
        return None
    segments: list[str] = []
    raw = parts.path.split("/")
    for segment in map(unquote, raw):
        if "/" in segment:  # %2F: no separator of ours
            return None
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    open_end = raw[-1] in ("", ".", "..") and len(raw) > 1 or bool(parts.query or parts.fragment)
    return (parts.scheme.lower(), _host(parts.hostname), port), segments, open_end


def _host(name: str) -> str:
    host = unquote(name).rstrip(".").lower()
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host
