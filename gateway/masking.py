"""Masking of personal identifiers in text people read: logs, the audit trail's free text and
the command line's output.

Logs and terminal output are read over shoulders and pasted into tickets, and an audit trail is
read by auditors who need to know *that* 张秀英's record was read, not her 身份证号.  What stays
is enough to find the record again: the region and last four characters of an ID number, the
operator prefix and last four digits of a mobile number, the family name.

The matching is deliberately eager (an 18-digit run next to a letter is still masked, a 15-digit
number is masked whatever it is): masking a number that was not an ID costs nothing, letting
one through is the failure this module exists to prevent.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from os.path import commonprefix
from pathlib import Path
from string import ascii_letters, hexdigits
from typing import IO, Any, NamedTuple
from urllib.parse import quote, unquote

import orjson

#: what the numbers begin with, as data (gateway/masking.json): the division codes of the
#: provinces, the prefixes of mobile numbers, the labels that name a time
_DATA = orjson.loads((Path(__file__).parent / "masking.json").read_bytes())


def _two_digit_codes(codes: Iterable[str]) -> str:
    """A pattern of two-digit codes, written as a set of second digits per first digit
    (``1[12345]|2[123]|…``): an alternation of 35 codes is tried code by code."""
    seconds: dict[str, str] = {}
    for code in sorted(codes):
        seconds[code[0]] = seconds.get(code[0], "") + code[1]
    return "(?:" + "|".join(f"{first}[{rest}]" for first, rest in seconds.items()) + ")"


def _first_digits(codes: Iterable[str]) -> str:
    """The digits ``codes`` begin with, for a set a pattern's first lookahead holds."""
    return "".join(sorted({code[0] for code in codes}))


PROVINCE_CODES = frozenset(_DATA["provinces"]["codes"])
MOBILE_PREFIXES = frozenset(_DATA["mobilePrefixes"]["codes"])
#: a province's division code (the first two digits of a 身份证号)
PROVINCE = _two_digit_codes(PROVINCE_CODES)
#: a mobile number's first two digits
MOBILE_PREFIX = _two_digit_codes(MOBILE_PREFIXES)
_MOBILE_FIRST = _first_digits(MOBILE_PREFIXES)
#: what may stand between a number's groups, by how it may stand there (blanks, marks, commas
#: …), as data (gateway/masking.json): every pattern's separators are made of this table
_SEPARATOR_KINDS: dict[str, list[str]] = {
    kind: chars for kind, chars in _DATA["separators"].items() if kind != "description"
}


def _characters(*kinds: str) -> str:
    """The separators of ``kinds`` (:data:`_SEPARATOR_KINDS`), escaped for a character set."""
    return "".join(re.escape(character) for kind in kinds for character in _SEPARATOR_KINDS[kind])


def _one_of(*kinds: str) -> str:
    """A pattern of one separator of ``kinds``."""
    return f"[{_characters(*kinds)}]"


#: a blank (a space, a tab, a line break) and a mark (a dot, a dash, an underscore, a middle
#: dot) between a number's groups
_BLANK, _MARK = _one_of("blanks", "lineBreaks"), _one_of("marks")
#: a mark that, a digit after it, goes on with a number rather than ending it: a decimal's
#: dot, a range's or an id's dash (1380 0138 000.5, 1380 0138 000-1, bp-1381234567); an
#: underscore or a middle dot after a number or before it parts a file's or a key's words
#: (USA123456789012_1.jpg, note_1381234567), which leave the number whole
_GOES_ON = _one_of("goesOn")
#: a slash after a fixed line's area code (0371/68801234), and an HL7 v2 component's separator
#: between a telephone's parts (^86^371^68801234)
_SLASH, _COMPONENT = _one_of("areaCode"), _one_of("components")
#: what may part an old 永居证's letters from its digits (USA:, USA=, CHN^ …)
_KEY = _one_of("afterLetters")
#: a quote or bracket around an old 永居证's letters or digits ("USA":"…", USA(…), (USA)…)
_QUOTE = _one_of("quotes", "brackets")
#: the kinds of separator that stand between two digits (not those after a word's letters)
_BETWEEN_DIGITS = ("blanks", "lineBreaks", "marks", "commas", "areaCode", "brackets", "components")
#: what may stand between a number's groups: a blank or a mark (with a blank either side or
#: not: 138 - 0013 - 8000), or two blanks; or nothing.  Possessive: no separator holds a
#: digit, so nothing is lost by never giving one back, and a run of digits with none between
#: them is tried once, not once per way of splitting it (the grouped ID's scan twice as fast)
_SEP = rf"(?:{_MARK}{_BLANK}?+|{_BLANK}{_MARK}?+{_BLANK}?+)?+"
#: the separators between a number's groups (:data:`_SEP`), of one character or two, which
#: the masks drop to count a number's digits (:func:`_read_groups`)
_SEPARATORS = re.compile(_one_of("blanks", "lineBreaks", "marks") + "+")
#: 居民身份证号: 18 characters (17 digits and a digit or X) or the 15-digit 1989 form, not part
#: of a longer run of digits
ID_CARD = re.compile(
    rf"(?<!\d)(\d{{6}}){_SEP}(\d{{8}}){_SEP}(\d{{3}}[0-9Xx])(?!\d)|(?<!\d)(\d{{6}}){_SEP}(\d{{6}}){_SEP}(\d{{3}})(?!\d)"
)
#: an 18-character 身份证号 written in other groups than 6-8-4 (410105 1949 1231 0020, 4101 0519
#: 4912 3100 20): its 18 characters with a space, dot or dash between any two
ID_CARD_GROUPED = re.compile(rf"(?<!\d)\d(?:{_SEP}\d){{16}}{_SEP}[0-9Xx](?![0-9Xx])")
#: a 身份证号 mistyped to another length — a digit dropped or doubled, the check character left
#: off, the number cut short — which the validator's format error quotes as it was written: a
#: run of 14 to 19 characters that begins as an ID number does, with the division code of a
#: province (:data:`PROVINCE`: GB/T 2260, and 81–83 of the 港澳台居民居住证) and a birth date
#: (GB 11643), written whole or with a separator after the division code and the birth date
#: (410105 19491231 002, 410105-19491231); the 15 and 18 characters above are masked first: a
#: birth date alone after a division code is masked unless more digits follow it, which make
#: the whole too long for an ID.  A time stamp (20261119141205, an HL7 control id) begins with
#: a century no province has, and a business number of a division and a year (长护险评估编号
#: 4101002026100001) has no day after its month: both stay
BIRTH_DATE = r"(?:18|19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
ID_CARD_MISTYPED = re.compile(
    rf"(?=[{_first_digits(PROVINCE_CODES)}])(?<!\d)({PROVINCE}\d{{4}}){_SEP}({BIRTH_DATE})"
    rf"(?:{_SEP}(\d{{1,5}}[0-9Xx]?|[Xx])(?![0-9Xx])|(?!{_SEP}\d|[Xx]))"
)
#: a date and a time of day to the minute, as twelve digits
_TIME = rf"(?=19|20){BIRTH_DATE}(?:[01]\d|2[0-3])[0-5]\d"
#: the 2004–2023 外国人永久居留证: three letters (the holder's country, in either case,
#: full-width as Chinese input types them too: ＵＳＡ, or with a colon, equals sign, slash,
#: underscore or hash after them, spaced or not, as a form's field or a record's key is
#: copied: USA:, USA : , USA=, USA/, USA_, USA#; or an HL7 v2 component's or sub-component's
#: separator, a CSV's comma or semicolon or a Chinese list's (，；、): CHN^, CHN&, CHN, and CHN; — or quoted or
#: bracketed as a JSON key and value or a call's argument: "USA":"…", USA "…", USA(…),
#: (USA)…, and so over-masked any three-letter name's twelve-digit argument, sum(…)) and
#: twelve digits, in
#: any groups (USA 1234 5678 9012, USA-123456789012, usa123456789012); the 18-character 2023
#: form and the 港澳台居民居住证 share the 身份证 pattern above.  After an HL7 v2 field's
#: separator the letters must be a field of their own (…|USA|123456789012|): a segment's name
#: is three letters too, and its first field may be twelve digits (QRD|202612061430|, a
#: query's time), which stays.  At a text's start or after what begins a token (an equals
#: sign, a blank, a quote, a path's slash, a key's colon: :data:`_BEFORE_TOKEN`) the letters
#: and a bar are a token's country and number (CHN|123456789012, identifier=CHN|…,
#: {"value":"CHN|…"}, /Patient/CHN|…), unless the digits are a time (a segment's name and
#: QRD-1 again); and a token's system and code (http://loinc.org|0371…) are masked apart
#: (:func:`_masked_value`), which holds only while no pattern reads across the first ``|``
#: of a value, whose system holds none of ``|^&~=`` and does not end as a country does
_BEFORE_TOKEN = _characters("beforeToken")
FOREIGN_PR_OLD = re.compile(
    rf"(?<![A-Za-zＡ-Ｚａ-ｚ0-9])([A-Za-zＡ-Ｚａ-ｚ]{{3}}(?:{_QUOTE}?+{_BLANK}*+{_KEY}{_BLANK}*+{_QUOTE}?+|{_QUOTE}{_BLANK}*+{_QUOTE}?+|{_BLANK}*+{_QUOTE}|(?<=[|^&~][A-Za-zＡ-Ｚａ-ｚ]{{3}})\||(?<![^{_BEFORE_TOKEN}][A-Za-zＡ-Ｚａ-ｚ]{{3}})\|(?!{_TIME}(?!\d)))?){_SEP}(\d(?:{_SEP}\d){{11}})(?!\d|{_GOES_ON}\d)"
)
#: mainland mobile numbers (a :data:`MOBILE_PREFIX` and nine digits), with or without 86 /
#: +86 / 0086, the first three bracketed or not (+86(138)00138000), groups apart by a space,
#: dash or dot or not, not inside a longer number
MOBILE = re.compile(
    rf"(?=[+08(（{_MOBILE_FIRST}])(?<!\d)((?:(?:\+|00)?86[ .-]?)?[(（]?{MOBILE_PREFIX}\d[)）]?){_SEP}(\d{{4}}){_SEP}(\d{{4}})(?!\d)"
)
#: a full-width or ideographic comma (，、) between a number's groups, as Chinese input types
#: them (138，0013，8000, 410105、19491231、0020): read as a separator only between the groups
#: of a mobile number (3-4-4), a 身份证号 (6-8-4, or 6-6-3 of the 15-digit form) or a fixed
#: line (its area code and the rest, whole or in two groups: 0371，68801234, 010，8888，6666),
#: the whole not part of a longer list of numbers so parted (12，138，0013，8000，7 is a list):
#: a comma parts a list's numbers
_COMMA = _one_of("commas")
_NOT_LISTED_BEFORE = rf"(?<!\d)(?<!\d{_COMMA})"
_NOT_LISTED_AFTER = rf"(?!{_COMMA}\d)"
ID_CARD_COMMAS = re.compile(
    rf"{_NOT_LISTED_BEFORE}(\d{{6}}){_COMMA}(\d{{8}}){_COMMA}(\d{{3}}[0-9Xx])(?!\d){_NOT_LISTED_AFTER}"
    rf"|{_NOT_LISTED_BEFORE}(\d{{6}}){_COMMA}(\d{{6}}){_COMMA}(\d{{3}})(?!\d){_NOT_LISTED_AFTER}"
)
MOBILE_COMMAS = re.compile(
    rf"(?=[{_MOBILE_FIRST}]){_NOT_LISTED_BEFORE}({MOBILE_PREFIX}\d){_COMMA}(\d{{4}}){_COMMA}(\d{{4}})(?!\d){_NOT_LISTED_AFTER}"
)
LANDLINE_COMMAS = re.compile(
    rf"(?=[(（0]){_NOT_LISTED_BEFORE}(?<![A-Za-z])([(（]?0[1-9]\d{{1,2}}[)）]?)({_COMMA})(\d{{3,4}}){_COMMA}?(\d{{4}})(?!\d)"
    + _NOT_LISTED_AFTER
)
#: a mobile number in other groups than those of :data:`MOBILE` (1380 0138 000, 13800 138000):
#: its eleven digits in two or three groups of three or more, alone as a fixed line is (a
#: UUID's groups stay); groups of one or two digits are a list of small numbers (13 8 2026 …)
MOBILE_GROUPED = re.compile(
    rf"(?=[+08{_MOBILE_FIRST}])(?<![0-9A-Za-z-])((?:(?:\+|00)?86[ .-]?)?)({MOBILE_PREFIX}\d++(?:{_SEP}\d{{3,}}+){{1,2}})(?![0-9A-Za-z]|{_GOES_ON}\d)"
)
#: a mobile number mistyped to ten digits (one dropped: 1381234567, 138 1234 567), which a
#: record or a search quotes as written: ten digits beginning as a mobile does, alone, as the
#: fixed lines below are: not inside a longer word or number (next to a letter, a dash or a
#: digit, or a decimal's fraction), where ten digits are an id, a record number or a value
MOBILE_MISTYPED = re.compile(
    rf"(?=[+0{_MOBILE_FIRST}])(?<![0-9A-Za-z]|{_GOES_ON})((?:(?:\+|00)86[ .-]?)?{MOBILE_PREFIX}\d){_SEP}(\d{{3}}{_SEP}\d{{4}}|\d{{4}}{_SEP}\d{{3}})"
    rf"(?![0-9A-Za-z]|{_GOES_ON}\d)"
)
#: what may follow a fixed line's number: anything but a letter or digit (which make it part of
#: a longer word or number), or an extension glued to it (0371-68801234ext.12, 010-88886666x123;
#: after 转 or a space it is apart already)
_LANDLINE_END = r"(?:(?![0-9A-Za-z])|(?=(?:[Ee][Xx][Tt][.:]?|[Xx])\d))"
#: fixed-line numbers: a trunk 0, a two- or three-digit area code (bracketed or not) and a
#: seven- or eight-digit number (0371-68801234, 010 8888 6666, (0371)68801234, （0371）68801234;
#: a slash may part the area code from the rest as a form prints it: 0371/68801234, (0371)/…),
#: not inside a longer word: after a letter or a digit it is part of an id, and after a dash
#: that four hex digits precede it is a UUID's groups (…-0123-4567-8901-…), and stays.  A dash
#: after another character joins it to a name (王芳-010-88886666, 王芳——0371-68801234) or to
#: an id's word (bp-0371-68801234, masked: an id that reads so is over-masked, not a number
#: let through); and a word glued to a number written as a landline is most often written,
#: the area code, a dash and the rest (Fax010-88886666, Tel0371-68801234), is its label
LANDLINE = re.compile(
    rf"(?=[(（0])(?:(?<![0-9A-Za-z])(?<![0-9A-Fa-f]{{4}}-)|(?<=[A-Za-z])(?=0[1-9]\d{{1,2}}-\d{{7,8}}(?!\d)))"
    rf"([(（]?0[1-9]\d{{1,2}}[)）]?)({_BLANK}?+{_SLASH}{_BLANK}?+|{_SEP})(\d{{3,4}}){_SEP}(\d{{4}}){_LANDLINE_END}"
)
#: the same with the country code, which drops the trunk 0 (+86-371-66884234, 0086 10 8888 6666,
#: +86 (371) 68801234), or with a bare 86 and a dash (86-371-68801234: a bare 86 and a space
#: would take lists of numbers, 86 120 1300 1400), or as an HL7 v2 XTN's components
#: (^86^371^68801234)
LANDLINE_86 = re.compile(
    rf"(?=[+08])(?<![0-9A-Za-z])((?:(?:\+|00)86[ -]?|86[-^])[(（]?[1-9]\d{{1,2}}[)）]?)({_COMPONENT}|{_SEP})(\d{{3,4}}){_SEP}(\d{{4}})"
    + _LANDLINE_END
)
#: a fixed line whose area code is typed without its trunk 0 (10-88886666, 371-68801234): the
#: area code of a province's capital or a city (10 and 2x, which have eight-digit numbers, or
#: 3xx to 9xx), a dash and a local number, which begins with 2 to 8 (its last four after a
#: dash or not); not a date after a dash (27-20241206), a round amount (a range,
#: 300-5000000) or a number glued to a word, a version or a time before it (v1.10-…,
#: ab-371-…, 12:10-…), nor three digits ending in 00, which no area code does: a national
#: service number (400-820-8820, 800-…, printed for all to call) or a reference's or a
#: status's number (REF 300-2501-1234, HTTP 500-20000001); other numbers that read so are
#: over-masked (REF 310-2501-1234 → 310-****1234)
LANDLINE_NO_TRUNK = re.compile(
    rf"(?=[1-9])(?<![0-9A-Za-z.,:+-])((?:10|2\d)(?=-\d{{4}}-?\d{{4}})|(?![3-9]00-)[3-9]\d\d)(-)(?!{BIRTH_DATE})([2-8]\d{{2,3}})-?(\d{{4}})"
    rf"(?<!0000)(?!{_MARK}\d){_LANDLINE_END}"
)
#: request parameters that carry credentials (OAuth and SMART names): never recorded, whatever
#: endpoint they were sent to by mistake (not ``code``: that is a FHIR search parameter too)
CREDENTIAL_PARAMETERS = frozenset(
    {"access_token", "refresh_token", "id_token", "client_secret", "client_assertion", "assertion", "password"}
    | {"token", "api_key", "apikey", "secret", "key", "pwd", "passwd", "session"}
)
#: such a parameter inside free text (a Bundle entry's URL an audit event describes), in any case
_CREDENTIAL_IN_QUERY = re.compile(
    rf"(?<![\w-])((?:{'|'.join(sorted(CREDENTIAL_PARAMETERS))})(?::[A-Za-z-]+)?=)([^&\s\"'#]+)", re.IGNORECASE
)
#: a JSON Web Token (a bearer token, a client assertion) anywhere in text: header and payload
#: are base64url JSON objects, so both begin "eyJ"
JWT = re.compile(r"(?<![\w-])eyJ[\w-]*\.eyJ[\w-]*\.[\w-]*")
#: full-width digits (and Ｘ) as Chinese input methods type them, and the ideographic space,
#: dash and dot the same input mode puts between their groups; the no-break, thin and other
#: spaces and the hyphens and dashes a word processor or a web page puts there: read as ASCII
#: before matching; the invisible characters text copied from a web page or a bidirectional
#: editor carries between digits (zero-width spaces and joiners, a soft hyphen, direction
#: marks, embeddings and isolates), dropped: a viewer shows the number whole.  So are the
#: decimal digits of every other script (Arabic-Indic ١٣٨, Devanagari १३८, mathematical 𝟏𝟑𝟖
#: …: the zero of each, as data in gateway/masking.json): a normaliser refuses a value
#: holding one (mapping.foreign-digits) and its reason quotes the value, so a 联系电话 or a
#: 身份证号 so written reached the reports and the logs whole
_SPACES = "\u3000\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f"
_DASHES = "－\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_ZERO_WIDTH = "\u00ad\u034f\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
_ZEROS = [int(zero, 16) for zero in _DATA["otherDigits"]["zeros"]]
#: those digits in a character set: the BMP's one by one, and beyond it any character (a set
#: of 29 ranges there made the set tried range by range, 10 µs on a message of 100
#: characters; a text with an emoji is read through the table, and nothing in it changes)
_OTHER_DIGITS = "".join(f"{chr(zero)}-{chr(zero + 9)}" for zero in _ZEROS if zero <= 0xFFFF) + "\U00010000-\U0010ffff"
FULL_WIDTH_DIGITS = str.maketrans(
    {zero + value: str(value) for zero in _ZEROS for value in range(10)}
    | str.maketrans("Ｘｘ．" + _SPACES + _DASHES, "Xx." + " " * len(_SPACES) + "-" * len(_DASHES), _ZERO_WIDTH)
)
#: search parameters whose values are people's names (a chain or modifier may surround them)
NAME_PARAMETERS = frozenset({"name", "family", "given", "phonetic"})
#: free-text searches, whose words may be anyone's name: masked as names are
TEXT_PARAMETERS = frozenset({"_text", "_content"})
#: a name criterion of a ``_filter`` expression (``name eq 张秀英``, ``family co "张"``)
_NAME_IN_FILTER = re.compile(
    rf"(?<![\w-])((?:{'|'.join(sorted(NAME_PARAMETERS))})\s+[a-z]{{2}}\s+)(\"[^\"]*\"|[^\s)]+)"
)
#: a name criterion inside free text, as a conditional reference or a query string quoted in
#: an error message carries it (``Patient?name=张秀英&birthdate=…``)
_NAME_IN_QUERY = re.compile(
    rf"(?<![\w-])((?:{'|'.join(sorted(NAME_PARAMETERS))})(?::[A-Za-z-]+)?=)([^&\s\"'”’#]+)",
    re.IGNORECASE,
)
#: every pattern above holds ten or more digits (a landline of Beijing: 010 and seven) with
#: nothing but separators (:data:`_SEPARATOR_KINDS`) between them.  Text without ten such characters
#: in a row (paths, ids like p12345, codes) is returned at once instead of scanned by seven
#: patterns; a row that has them is counted as well (:data:`_TEN_DIGITS`), since a date or a
#: time (1961-06-02, 2026-12-06T14:00) and one UUID in six (7a842967-045f-…) have the row but
#: not the digits, and their scan found nothing at 2–10 µs each
_CANDIDATE = re.compile(rf"\d[\d{_characters(*_BETWEEN_DIGITS)}]{{8,}}\d")
#: ten digits with only those characters between them, sought from the first digit of a group
#: (a later start finds no more than it); slower than :data:`_CANDIDATE`, so asked second
_TEN_DIGITS = re.compile(rf"(?<!\d)\d(?:{_one_of(*_BETWEEN_DIGITS)}*+\d){{9}}")
#: what the full-width reading (:data:`FULL_WIDTH_DIGITS`) changes: Chinese text without any
#: of it (every validation message) is not translated character by character
_FULL_WIDTH = re.compile(f"[{_OTHER_DIGITS}Ｘｘ．{_SPACES}{_DASHES}{_ZERO_WIDTH}]")


def _read_as_ascii(text: str) -> str:
    """``text`` read as ASCII (:data:`FULL_WIDTH_DIGITS`) if it needs it, itself (at once)
    otherwise."""
    return text.translate(FULL_WIDTH_DIGITS) if not text.isascii() and _FULL_WIDTH.search(text) else text


def _masked_as_written(text: str, mask: Callable[[str], str]) -> str:
    """``mask`` of ``text`` read as ASCII (:func:`_read_as_ascii`), shown as written but for
    the numbers it masked: folded whole, the text showed the catalog's own "（全角 ０-９ 亦可）"
    as "0-9" and a range's en dash as a hyphen.  What is shown reads as ASCII as the masked
    text does, character for character (:func:`_unfolded`)."""
    read = _read_as_ascii(text)
    if read is text:
        return mask(text)
    masked = mask(read)
    return text if masked == read else _unfolded(text, read, masked)


def _unfolded(text: str, read: str, masked: str) -> str:
    """``masked`` (``text`` read as ASCII, then masked) with what masking left alone shown as
    ``text`` wrote it (:func:`_as_written`), but the numbers masking changed
    (:func:`_changes`), which are shown as masked, the digits and separators around each
    change with them (:data:`_NUMBER_BEFORE`, :data:`_NUMBER_AFTER`), read as ASCII."""
    changes = _changes(read, masked)
    written = _as_written(text, read)
    for i1, i2, _, _ in changes:
        before = _NUMBER_BEFORE.search(read, max(0, i1 - _NUMBER_REACH), i1)
        after = _NUMBER_AFTER.match(read, i2)
        begins, ends = before.start() if before else i1, after.end() if after else i2
        written[begins:ends] = read[begins:ends]
    pieces: list[str] = []
    at = 0
    for i1, i2, j1, j2 in changes:
        pieces.extend(written[at:i1])
        pieces.append(masked[j1:j2])
        at = i2
    pieces.extend(written[at:])
    return "".join(pieces)


def _as_written(text: str, read: str) -> list[str]:
    """Each character of ``read`` (``text`` read as ASCII) as ``text`` wrote it: reading
    changes a character into one, or drops it (:data:`_DROPPED`), and a dropped one goes with
    the one before it (those at the start with the first)."""
    if len(read) == len(text):
        return list(text)
    kept = [index for index, character in enumerate(text) if character not in _DROPPED]
    return [text[start:end] for start, end in zip([0, *kept[1:]], [*kept[1:], len(text)], strict=True)]


def _changes(read: str, masked: str) -> list[tuple[int, int, int, int]]:
    """Where masking changed ``read`` into ``masked``: (start, end) in ``read`` and in
    ``masked`` of each change, in order.  Masking rewrites runs of digits, stars, X and the
    separators between a number's groups (:data:`_NUMBERISH`) and leaves the text between the
    runs as it is, so the runs of the two pair up one for one (:func:`_paired`), from the
    start and from the end, and a pair differs between what its two share at either end.
    Linear: a matcher of any two texts (difflib's) took a text's square.  Where the text
    between the runs differs (a URL's escape shown decoded inside a number), what the pairing
    from either end leaves is one change."""
    front, i, j = _paired(_NUMBERISH.split(read), _NUMBERISH.split(masked))
    if i == len(read) and j == len(masked):
        return front
    back, end_i, end_j = _paired(_NUMBERISH.split(read[::-1]), _NUMBERISH.split(masked[::-1]))
    if i > len(read) - end_i or j > len(masked) - end_j:  # the two pairings cross: none from the end
        back, end_i, end_j = [], 0, 0
    middle_read, middle_masked = read[i : len(read) - end_i], masked[j : len(masked) - end_j]
    kept = len(commonprefix((middle_read, middle_masked)))
    tail = len(commonprefix((middle_read[kept:][::-1], middle_masked[kept:][::-1])))
    middle = [(i + kept, len(read) - end_i - tail, j + kept, len(masked) - end_j - tail)]
    last = [(len(read) - i2, len(read) - i1, len(masked) - j2, len(masked) - j1) for i1, i2, j1, j2 in back]
    return [*front, *(middle if middle_read != middle_masked else ()), *reversed(last)]


def _paired(reads: list[str], maskeds: list[str]) -> tuple[list[tuple[int, int, int, int]], int, int]:
    """The changes between the runs (``reads[1::2]``, ``maskeds[1::2]``) of two texts split
    by :data:`_NUMBERISH`, paired up while the text on either side of them is the same in
    both; and how far into each text that pairing reached."""
    changes: list[tuple[int, int, int, int]] = []
    i = j = 0
    for index in range(0, min(len(reads), len(maskeds)), 2):
        if reads[index] != maskeds[index]:
            return changes, i, j
        i, j = i + len(reads[index]), j + len(maskeds[index])
        if index + 2 >= len(reads) or index + 2 >= len(maskeds) or reads[index + 2] != maskeds[index + 2]:
            return changes, i, j  # the run before a difference may hold some of it
        was, now = reads[index + 1], maskeds[index + 1]
        if was != now:
            kept = len(commonprefix((was, now)))
            tail = len(commonprefix((was[kept:][::-1], now[kept:][::-1])))
            changes.append((i + kept, i + len(was) - tail, j + kept, j + len(now) - tail))
        i, j = i + len(was), j + len(now)
    return changes, i, j


#: the digits (or stars, an X) and separators between them right before a change masking made,
#: and right after it: the rest of the number it masked, shown read as ASCII as its masked
#: digits are
_NUMBER_CHARACTER = r"[0-9Xx*]"
_NUMBER_BEFORE = re.compile(rf"(?:{_NUMBER_CHARACTER}{_one_of(*_BETWEEN_DIGITS)}*)+\Z")
_NUMBER_AFTER = re.compile(rf"(?:{_one_of(*_BETWEEN_DIGITS)}*{_NUMBER_CHARACTER})+")
#: the characters reading as ASCII drops (:data:`FULL_WIDTH_DIGITS`)
_DROPPED = frozenset(_ZERO_WIDTH)
#: how far before a change its number is sought: the longest number and its separators
_NUMBER_REACH = 64
#: a run of what masking rewrites: digits, stars, an X and the separators between a number's
#: groups (the text between two runs it leaves as it is)
_NUMBERISH = re.compile(rf"([0-9Xx*{_characters(*_BETWEEN_DIGITS)}]+)")


def mask_id_cards(text: str) -> str:
    """410105194912310020 → 410105********0020; 15-digit numbers keep 6 and 3; a mistyped one
    keeps its division code and what follows its birth date (41010519491231002 →
    410105********002); an old 永居证 USA123456789012 → USA********9012.  Full-width digits
    and other scripts' are read as ASCII (:func:`_read_as_ascii`)."""
    return _masked_as_written(text, _id_cards_masked)


def _id_cards_masked(text: str) -> str:
    """:func:`mask_id_cards` of a text read as ASCII already."""
    for pattern, replacement, _ in _applying(ID_MASKS, text):
        text = pattern.sub(replacement, text)
    return text


def _grouped_id_card(match: re.Match[str]) -> str:
    """Eighteen characters in any groups; those apart by a spaced dash or two spaces, or by
    dots or underscores, only when they begin as an ID does (a division code and a birth
    date): two numbers of nine digits, or two time stamps' ends, written as a range
    (``100000000 - 200000000``), an OID's components (``2.16.156.10011.1.20.30.40``) or a
    file's name of a date, a time and a counter (``IMG_20241206_143000_0001``) are no ID."""
    written = _read_groups(match.group(0))
    if (written.side_by_side or written.dots or written.words) and not _ID_START.match(written.digits):
        return match.group(0)
    return written.digits[:6] + "*" * 8 + written.digits[14:]


class _Groups(NamedTuple):
    """A number's groups as written, read once for the rules of which groups form a number
    (:func:`_read_groups`)."""

    #: the number's characters without its separators
    digits: str
    #: its groups, in order
    groups: list[str]
    #: whether two of its groups are apart by a spaced dash, two spaces or a line break
    #: (``138 - 0013``, ``1500  2000``, ``2024-12-06⏎2024-12-07``): numbers side by side, or
    #: a range, unless they begin as an ID does
    side_by_side: bool
    #: how many of its separators are dots (one alone is a decimal point, more an OID's)
    dots: int
    #: whether a mark that parts a file's words (:data:`_PARTS_WORDS`) parts its groups
    words: bool


def _read_groups(written: str) -> _Groups:
    """``written`` (digits and the separators :data:`_SEP` allows between them) in groups."""
    groups = _SEPARATORS.split(written)
    return _Groups(
        "".join(groups),
        groups,
        _LOOSE.search(written) is not None,
        written.count("."),
        _PARTS_WORDS.search(written) is not None,
    )


#: a separator of two characters (:data:`_SEP`), or a line break: groups on two lines are
#: numbers side by side unless they begin as an ID does
_LOOSE = re.compile(rf"{_one_of('blanks', 'lineBreaks', 'marks')}{_BLANK}|{_BLANK}{_MARK}|{_one_of('lineBreaks')}")
#: a mark that parts a file's or a key's words (an underscore, as data: gateway/masking.json),
#: between groups that read as a number: ``IMG_20241206_143000_0001`` is a date, a time and a
#: counter
_PARTS_WORDS = re.compile(_one_of("partsWords"))
#: how an 18-character 身份证号 begins: a province's division code and a birth date
_ID_START = re.compile(rf"{PROVINCE}\d{{4}}{BIRTH_DATE}")


def _mistyped_id_card(match: re.Match[str]) -> str:
    rest = match.group(3) or ""
    if len(rest) > 5:  # twenty characters: no 身份证号, however mistyped
        return match.group(0)
    return match.group(1) + "*" * 8 + rest


def _foreign_pr_old(match: re.Match[str]) -> str:
    """Its letters and last four digits.  Twelve digits apart by a spaced dash or two spaces
    (``ABC 1234 - 5678 9012``) are numbers side by side, as they are for an ID; in groups of
    one or two digits they are an OID after a word (``OID 2.16.156.10011.2.3``); and in groups
    that read as a date and a time of day of this century or the last they are a time stamp
    after a word (``UTC 20261206 1430``): one number in ten thousand reads so, any date one in
    thirty (AAA 1800 0110 0000 went through)."""
    written = _read_groups(match.group(2))
    groups, digits = written.groups, written.digits
    if written.side_by_side or (len(groups) > 1 and (min(map(len, groups)) < 3 or _TIME_STAMP.fullmatch(digits))):
        return match.group(0)
    return match.group(1).rstrip(" \t") + "*" * 8 + digits[8:]


_TIME_STAMP = re.compile(_TIME)


def _id_card(match: re.Match[str]) -> str:
    if match.group(1):
        return match.group(1) + "*" * 8 + match.group(3)
    return match.group(4) + "*" * 6 + match.group(6)


def _mobile(match: re.Match[str]) -> str:
    return f"{match.group(1)}****{match.group(3)}"


def _grouped_mobile(match: re.Match[str]) -> str:
    """Its first three and last four digits, when its groups are those of a number: not apart
    by a spaced dash or two spaces (numbers side by side, as for an ID), by one dot alone
    (a decimal: 1380.0138000) nor by an underscore, as a file's name parts a time and a
    counter (``scan_20241206_183000_12345``; a mobile's own 3-4-4 is masked so parted) and
    another group of digits so parted stands beside it (``1380_0138_000`` alone, a key's
    ``tel_13800_138000``, is masked).  Three round hundreds (``1500 2000 300``) may be amounts side
    by side, but may be a mobile number too: a leak loses to an over-mask."""
    written = _read_groups(match.group(2))
    words = written.words and (
        _WORD_GROUP_BEFORE.search(match.string, max(0, match.start() - 2), match.start())
        or _WORD_GROUP_AFTER.match(match.string, match.end())
    )
    if len(written.digits) != 11 or written.side_by_side or written.dots == 1 or words:
        return match.group(0)
    return f"{match.group(1)}{written.digits[:3]}****{written.digits[-4:]}"


#: a group of digits and a mark that parts a file's words (:data:`_PARTS_WORDS`) before a
#: number, and one after it
_WORD_GROUP_BEFORE = re.compile(rf"\d{_one_of('partsWords')}\Z")
_WORD_GROUP_AFTER = re.compile(rf"{_one_of('partsWords')}\d")


def _mistyped_mobile(match: re.Match[str]) -> str:
    """Its first three and last four digits, unless a label before it names a time: ten
    digits that begin as a mobile number does are a Unix time in seconds too (1733494205,
    2024–2033 begin 17 to 19), which a log or a token's claims label as one (``"iat":
    1733494205``, ``expires_at=…``, ``@1733494205``; after a bare ``@`` only those of these
    years: ``@1381234567`` is masked); nor in groups an underscore parts, as a file's name
    joins an afternoon's time and a counter (``IMG_20241206_143000_0001``)."""
    written = _read_groups(match.group(0))
    if written.words or _labelled_time(match.string, match.start()):
        return match.group(0)
    return f"{match.group(1)}****{written.digits[-4:]}"


#: the last word of a label that names a time (``created_at``, ``expiresAt``, ``auth_time``,
#: a token's ``iat``, ``exp`` and ``nbf``)
TIME_LABELS = frozenset(_DATA["timeLabels"]["words"])
#: how a Unix time after a bare ``@`` begins: the years whose times begin as a mobile does
_TIMES_AFTER_AT = tuple(_DATA["timeLabels"]["afterAtSign"])
#: a label and the colon or equals sign after it (quoted, as in JSON, or not) that end the
#: text before a value, or the ``@`` of ``date -d @1733494205``
_LABEL = re.compile(r"(?:([A-Za-z][A-Za-z0-9_-]*)[\"']?[ \t]*[:=][ \t]*[\"']?|@)\Z")
#: where a label's words meet: an underscore or dash, or a capital after a small letter
_LABEL_WORDS = re.compile(r"[_-]|(?<=[a-z])(?=[A-Z])")
#: how far before a value its label is sought: a long label, quotes and spaces
_LABEL_REACH = 48


def _labelled_time(text: str, start: int) -> bool:
    """Whether the value at ``start`` of ``text`` follows a label naming a time, or a bare
    ``@`` and begins as a time of these years does (:data:`_TIMES_AFTER_AT`)."""
    label = _LABEL.search(text, max(0, start - _LABEL_REACH), start)
    if label is None:
        return False
    if label.group(1) is None:
        return text.startswith(_TIMES_AFTER_AT, start)
    return _LABEL_WORDS.split(label.group(1))[-1].lower() in TIME_LABELS


def mask_phones(text: str) -> str:
    """13800000001 → 138****0001; one digit short, 1381234567 → 138****4567 (its last four);
    0371-68801234 → 0371-****1234.  Full-width digits and other scripts' are read as ASCII
    (:func:`_read_as_ascii`)."""
    return _masked_as_written(text, _phones_masked)


def _phones_masked(text: str) -> str:
    """:func:`mask_phones` of a text read as ASCII already."""
    for pattern, replacement, _ in _applying(PHONE_MASKS, text):
        text = pattern.sub(replacement, text)
    return text


Replacement = Callable[[re.Match[str]], str]
# The phone patterns and the mistyped ID's begin with a lookahead of the characters they may
# begin with (``(?=[+018(（])``): a pattern that begins with a lookbehind is tried at every
# character of the text, one that begins with a set only where the set matches (MOBILE: 1.3 µs,
# not 3.2, on four log lines of 80 characters with a run of digits)


def _outside_dotted_runs(replacement: Replacement) -> Replacement:
    """``replacement`` for a number that stands alone: one written with dots between its
    groups is part of an OID or a version when two more dotted groups of digits go on one
    side of it, or one on each (urn:oid:2.16.156.1001.1234.5, 2.16.840.1.113883.19.5.99999.1),
    and stays as it is; one group alone beside it is a list's or a floor's number
    (1.138.0013.8000, 138.0013.8000.1号楼), and the number is masked; so is one with a group
    no OID's arc can be, a zero and more digits (1.138.0013.8000.2.139.0013.9000: an arc has
    no leading zero, as FHIR's oid type says), and one in a run that does not begin as an
    OID does, with an arc of 0, 1 or 2 (sec 3.1.139.1234.5678: a section's number, no OID);
    the country code before a dotted mobile is part of the number (86.138.0013.8000)."""

    def masked(match: re.Match[str]) -> str:
        text, start, end = match.string, match.start(), match.end()
        if (
            "." in match.group()
            and not _LEADING_ZERO.search(match.group())
            and (
                _TWO_ARCS_AFTER.match(text, end)
                or _TWO_ARCS_BEFORE.search(text, max(0, start - _ARCS_REACH), start)
                or (_DOT_AND_DIGIT.match(text, end) and _DIGIT_AND_DOT.search(text, max(0, start - 2), start))
            )
            and _begins_as_oid(text, start)
        ):
            return match.group()
        return replacement(match)

    return masked


def _begins_as_oid(text: str, start: int) -> bool:
    """Whether the run of dotted digits that the number at ``start`` of ``text`` is part of
    begins as an OID does: with an arc of 0, 1 or 2 (ITU-T X.660) and a dot, the number's
    own first group or within :data:`_OID_REACH` characters before it (a longer run is taken
    for no OID's, and the number masked)."""
    if start == 0 or text[start - 1] not in _DOTTED_DIGITS:
        return _OID_START.match(text, start) is not None
    return _OID_BEFORE.search(text, max(0, start - _OID_REACH), start) is not None


#: how an OID begins (its first arc and a dot), at the start of a run of dotted digits, and the
#: run of dotted digits so begun right before a number
_OID_START = re.compile(r"(?<![\d.])[012]\.")
_OID_BEFORE = re.compile(r"(?<![\d.])[012]\.[\d.]*\Z")
_DOTTED_DIGITS = frozenset("0123456789.")
_OID_REACH = 64
#: one dotted group of digits after a number, and one before it
_DOT_AND_DIGIT = re.compile(r"\.\d")
_DIGIT_AND_DOT = re.compile(r"\d\.\Z")
#: two dotted groups of digits after a number, and two before it (sought in the
#: :data:`_ARCS_REACH` characters before it: a longer arc is no OID's, and the number masked)
_TWO_ARCS_AFTER = re.compile(r"\.\d+\.\d")
_TWO_ARCS_BEFORE = re.compile(r"\d\.\d+\.\Z")
_ARCS_REACH = 24
#: a group of digits that begins with a zero and goes on: no OID's arc
_LEADING_ZERO = re.compile(r"(?<!\d)0\d")


class _Mask(NamedTuple):
    """A kind of number's pattern, its masking, and what a text holds that it may match in."""

    pattern: re.Pattern[str]
    replacement: Replacement
    #: the features (:data:`_FEATURES`) a text needs for the pattern to match in it, in the
    #: order they are sought
    needs: tuple[str, ...]


def _masks(*kinds: tuple[re.Pattern[str], Replacement, str]) -> tuple[_Mask, ...]:
    """Each kind of number's pattern and masking, in the order given, every masking kept off
    the numbers that are part of an OID or a version (:func:`_outside_dotted_runs`) and
    keeping the line breaks it finds between a number's groups (:func:`_lines_kept`)."""
    return tuple(
        _Mask(pattern, _outside_dotted_runs(_lines_kept(replacement)), tuple(needs.split()))
        for pattern, replacement, needs in kinds
    )


#: what a text must hold for a pattern to match in it, each sought once a text when a pattern
#: needs it: three digits in a row (all but a grouped ID's and an old 永居证's, whose groups
#: may be a digit each), a full-width comma (the patterns that read across one), and the digits
#: each kind of number begins with, written together in every form the patterns take: a
#: mobile's prefix and third digit, a fixed line's trunk 0 and area code's first two, a country
#: code 86, an area code without its 0 and the dash and three digits after it, a birth date
#: (a mistyped ID's).  A text of single digits an underscore or a middle dot parts
#: (``1_1_1_…``, 100 KB) was scanned by all thirteen patterns, and so was a reference of a
#: sequential UUID (``Patient/00000000-0000-0000-0000-00000001eef0``): its ten digits and
#: dashes begin no phone number, and the eight phone patterns found nothing at 30 µs
_FEATURES = {
    "digits": re.compile(r"\d{3}"),
    "comma": re.compile(_COMMA),
    "mobile": re.compile(rf"{MOBILE_PREFIX}\d"),
    "trunk": re.compile(r"0[1-9]\d"),
    "country": re.compile("86"),
    "areaDash": re.compile(r"\d-[2-8]\d\d"),
    "birth": re.compile(BIRTH_DATE),
}
#: any of the features a phone number begins with, sought first: a text with none (most
#: texts with ten digits: a date and a time, an OID, a sequential UUID) is read once for them
_FEATURES["phone"] = re.compile(
    "|".join(_FEATURES[kind].pattern for kind in ("mobile", "trunk", "country", "areaDash"))
)


def _applying(masks: tuple[_Mask, ...], text: str) -> list[_Mask]:
    """The ``masks`` whose patterns may match in ``text`` (:data:`_FEATURES`), each feature
    sought once and only if a mask needs it."""
    held: dict[str, bool] = {}
    applying = []
    for mask in masks:
        for feature in mask.needs:
            found = held.get(feature)
            if found is None:
                found = held[feature] = _FEATURES[feature].search(text) is not None
            if not found:
                break
        else:
            applying.append(mask)
    return applying


def _landline(match: re.Match[str]) -> str:
    """Its area code (with the country code, if written) and last four digits."""
    return f"{match.group(1)}{match.group(2)}****{match.group(4)}"


def _lines_kept(replacement: Replacement) -> Replacement:
    """``replacement`` for a number whose groups a line break parts, with its hidden digits
    starred where they stand and its separators kept: rewritten as one run, the number joined
    the lines it was written on, and a time stamp or a count ending one line with the year
    beginning the next (20241206143000⏎2024-12-06 …, bytes=1532768⏎2024-…), which read as an
    ID's or a mobile's groups, made one line of two in a log or the command line's output."""

    def masked(match: re.Match[str]) -> str:
        written, rewritten = match.group(), replacement(match)
        if "*" not in rewritten or not _LINE_BREAK.search(written):
            return rewritten
        kept_before = sum(map(_is_digit, rewritten[: rewritten.index("*")]))
        kept_after = sum(map(_is_digit, rewritten[rewritten.rindex("*") :]))
        places = [index for index, character in enumerate(written) if _is_digit(character)]
        characters = list(written)
        for index in places[kept_before : len(places) - kept_after]:
            characters[index] = "*"
        return "".join(characters)

    return masked


_LINE_BREAK = re.compile(_one_of("lineBreaks"))


def _is_digit(character: str) -> bool:
    """Whether ``character`` is one of a number's digits (any a pattern's ``\\d`` matches) or
    an ID's check character X."""
    return character.isdecimal() or character in "Xx"


#: each kind of ID number and how it is masked, in the order they are applied
ID_MASKS = _masks(
    (ID_CARD, _id_card, "digits"),
    (ID_CARD_COMMAS, _id_card, "comma digits"),
    (ID_CARD_GROUPED, _grouped_id_card, ""),
    (ID_CARD_MISTYPED, _mistyped_id_card, "birth"),
    (FOREIGN_PR_OLD, _foreign_pr_old, ""),
)
#: each kind of phone number and how it is masked, in the order they are applied (after IDs:
#: a phone pattern never matches inside a masked ID)
PHONE_MASKS = _masks(
    (MOBILE, _mobile, "phone mobile"),
    (MOBILE_COMMAS, _mobile, "phone comma mobile"),
    (MOBILE_GROUPED, _grouped_mobile, "phone mobile"),
    (MOBILE_MISTYPED, _mistyped_mobile, "phone mobile"),
    (LANDLINE_86, _landline, "phone country digits"),
    (LANDLINE, _landline, "phone trunk"),
    (LANDLINE_COMMAS, _landline, "phone comma trunk"),
    (LANDLINE_NO_TRUNK, _landline, "phone areaDash"),
)


def mask_text(text: str) -> str:
    """Every 身份证号 and phone number in free text (IDs first: a phone pattern never matches
    inside a masked ID), and the names of name criteria quoted in it."""
    return _masked(text, form_encoded=False)


def mask_url(url: str) -> str:
    """:func:`mask_text` of a URL, whose query is form-encoded: a ``+`` there is a space
    (``Patient?telecom=138+0013+8000``), as the server reads it, and is shown as sent.  A
    token search's URL (a conditional entry's ``Patient?identifier=urn%3Aoid%3A…%7C1101…``)
    is masked in two parts (:func:`_masked_token_search`)."""
    return _masked(url, form_encoded="+" in url.partition("?")[2], token_search=True)


def _masked(text: str, form_encoded: bool = False, token_search: bool = False) -> str:
    """:func:`mask_text`, with a ``+`` in the query read as a space when ``form_encoded``, and
    a token search's URL masked in two parts when ``token_search``."""
    questions = text.count("?")
    if "=" in text:
        text = _CREDENTIAL_IN_QUERY.sub(lambda m: m.group(1) + "***", text)
        text = _NAME_IN_QUERY.sub(lambda m: m.group(1) + _masked_names(m.group(2)), text)
    if " " in text and any(name in text for name in NAME_PARAMETERS):  # what the pattern begins with
        text = _NAME_IN_FILTER.sub(lambda m: m.group(1) + mask_name(m.group(2).strip('"')), text)
    if "eyJ" in text:
        text = JWT.sub("***", text)
    return _masked_as_written(text, lambda read: _masked_read(read, questions, form_encoded, token_search))


def _masked_read(text: str, questions: int, form_encoded: bool, token_search: bool) -> str:
    """:func:`_masked` of a text read as ASCII, which had ``questions`` question marks before
    its credentials and names were masked."""
    if token_search and (search := _TOKEN_SEARCH.match(text)) and not _PERCENT_OR_PLUS.search(text, search.end()):
        return _masked_token_search(search, text)
    # the steps above add no ``?``: the first is still the query's unless a credential's or a
    # name's value took it away (``/p/token=a?b&telecom=138+0013+8000``), and then a ``+``
    # anywhere may be a space
    spaces_from = (text.find("?") + 1 if text.count("?") == questions else 0) if form_encoded else -1
    return _numbers_masked(text, spaces_from)


def _numbers_masked(text: str, spaces_from: int = -1) -> str:
    """Every number in ``text`` masked, read both ways (:func:`_masked_both_ways`) if it has an
    escape or a form-encoded query's ``+`` (from ``spaces_from`` on)."""
    if "%" not in text and spaces_from < 0:
        return _masked_numbers(text)
    return _masked_numbers(_masked_both_ways(text, spaces_from))


#: a token search's URL up to its code: a type, one parameter, a system as a URL or an OID
#: writes it (:data:`_TOKEN_SYSTEM`, its colons and slashes escaped or not) and the bar, as
#: sent or escaped (``Patient?identifier=urn%3Aoid%3A2.16.156.10011.1.3%7C``)
_TOKEN_SEARCH = re.compile(
    r"[A-Za-z/]*\?[A-Za-z][A-Za-z0-9_-]*(?::[A-Za-z-]+)?=(?P<system>(?:[A-Za-z0-9:./_-]|%3[Aa]|%2[Ff])+)(?:\||%7[Cc])"
)
_PERCENT_OR_PLUS = re.compile(r"[%+]")


def _masked_token_search(search: re.Match[str], text: str) -> str:
    """The numbers of a token search's URL (:data:`_TOKEN_SEARCH`, its code and what follows
    without an escape or a ``+``) masked as masking it whole does, its start (the same request
    after request) masked once (:func:`_masked_search_start`) and the rest on its own: no
    pattern reads across the bar, and each one's lookarounds read a bar, as sent or escaped,
    as they read the text's start or end (:func:`_masked_value`, tested); but for a system
    that ends as a country does (``urn:CHN|…``), masked whole.  Masked whole, the OID's
    digits and escapes cost five scans of every pattern over the URL; the audit trail masks
    every Bundle entry's, and a hospital's push is conditional entries."""
    start = search.group()
    masked_start = _masked_search_start(start, search.group("system")) if len(start) <= REPEATED_LENGTH else None
    if masked_start is None:
        return _numbers_masked(text)
    rest = text[search.end() :]
    if _BARE_ID_CARD.fullmatch(rest):
        return masked_start + _bare_id_card_masked(rest)
    # read both ways whole (for the escapes of its start), the rest is read so too
    return masked_start + _masked_numbers(_masked_both_ways(rest) if "%" in start else rest)


@lru_cache(maxsize=1024)
def _masked_search_start(start: str, system: str) -> str | None:
    """:func:`_numbers_masked` of a token search's start, remembered: a conditional entry's
    type, parameter and ``system`` come back entry after entry; None for a system that ends
    as a country does, whose code is an old 永居证's digits."""
    if _COUNTRY.search(unquote(system)):
        return None
    return _numbers_masked(start)


def _masked_both_ways(text: str, spaces_from: int = -1) -> str:
    """``text`` read as a URL means it (:func:`_read_as_url`), with every number hidden that
    either that reading (or a variant of it: :func:`_variants`) or the text as written holds.

    A percent sign before a number is an escape in a URL (``%34%31%30…`` is an ID) but may be
    literal in free text (``涨幅50%13800138000``), where read as an escape it takes the number's
    first digits (``%13`` a control character, ``%31`` a 1) and leaves a run no pattern
    matches; and an escape inside a number (``13010219900%33071234``, an ID with its twelfth
    digit escaped) gives, as written, a different number than it means.  Neither reading is
    the right one for every text, so each number is hidden wherever either finds it: its
    hidden digits (as its own masking would hide them) starred one for one in the reading.
    The reading so starred is searched again until no number is left in it: stars free the
    digits beside them to read as a number across a character the text shows escaped (an
    ``%0A``), which the caller's pass over the text shown does not see.  The caller masks the
    result once more (:func:`_masked_numbers`), for numbers the two readings' stars leave
    joined, or that the marks of :func:`_read_as_url` kept apart.

    What is shown is the text as written, but for the hidden digits, starred, and the escapes
    inside a number's match, shown decoded (:func:`_shown`): ``urn%3Aoid%3A…%7C1101…`` keeps
    its escapes.  A ``+`` at ``spaces_from`` or after it (a form-encoded query's) reads as a
    space."""
    reading = _read_as_url(text, spaces_from)
    found = [hidden for variant in _variants(reading) for hidden in _hidden_spans(variant)]
    found += _hidden_as_shown(reading.text, reading)
    place = reading.place
    if reading.text != text:
        found += (
            _Hidden(place[start], place[end - 1] + 1, place[begins], place[ends - 1] + 1)
            for start, end, begins, ends in _hidden_spans(text)
        )
    characters = list(reading.text)
    numbers: list[tuple[int, int]] = []
    while found:
        for start, end, begins, ends in found:
            numbers.append((begins, ends))
            for index in range(start, end):
                if characters[index].isdecimal():
                    characters[index] = "*"
        starred = "".join(characters)
        found = [
            hidden
            for hidden in (
                *(hidden for variant in _variants(reading, starred) for hidden in _hidden_spans(variant)),
                *_hidden_as_shown(starred, reading),
            )
            if any(character.isdecimal() for character in characters[hidden.start : hidden.end])
        ]
    return _shown("".join(characters), reading, numbers)


def _hidden_as_shown(characters: str, reading: _Reading) -> Iterator[_Hidden]:
    """:func:`_hidden_spans` of ``characters`` (the reading, starred or not) as the old text
    shown read: without the marks, a character the reading keeps escaped (but a query's
    ``+``, a space) in its escape, where
    they are in the reading.  An escape kept as written (``%13``, a control character, or a
    quote's ``%22``) may be a literal ``%`` and the first digits of a number whose other
    digits are escaped (``50%13800%3138000``, ``x%220105194912%3310020``), which the text
    shown keeps escaped and so apart."""
    if not reading.marks and not reading.kept:
        return
    marks = set(reading.marks)
    pieces: list[str] = []
    place: list[int] = []
    for index, character in enumerate(characters):
        if index in marks:
            continue
        if index in reading.kept and character == reading.text[index] and reading.escaped[index] != "+":
            character = reading.escaped[index]  # a query's ``+`` reads as the space it means
        pieces.append(character)
        place.extend((index,) * len(character))
    for start, end, begins, ends in _hidden_spans("".join(pieces)):
        yield _Hidden(place[start], place[end - 1] + 1, place[begins], place[ends - 1] + 1)


def _variants(reading: _Reading, text: str | None = None) -> Iterator[str]:
    """The reading, and where a literal ``%`` and hex digit stand right before a number's
    escaped character (:attr:`_Reading.opened`), the reading with that digit apart from it;
    where hex digits are shown escaped (:attr:`_Reading.completing`), the reading with each
    apart from what follows it.  One decoding of the text shown joins ``%4`` and ``%31``
    into ``%41``, where a number may begin at the hex digit (``%1%33800138000``: a mobile),
    at the escaped character (``%4%34%31%30…``: an ID after the 4, ``%4%55%53%41…``: an old
    永居证) or after it (``%%3313800138000``).  Of ``text`` (the reading starred) if given."""
    text = reading.text if text is None else text
    yield text
    for places in (reading.opened, reading.completing):
        if places:
            apart = list(text)
            for index in places:
                apart[index] = "\0"
            yield "".join(apart)


def _shown(characters: str, reading: _Reading, numbers: Iterable[tuple[int, int]]) -> str:
    """``characters`` (the reading, starred) as the text shows it: without the marks
    :func:`_read_as_url` put in, the text's own NULs kept (removed, they joined the digits on
    either side into a number no pattern saw, ``%1000…0`` then a NUL and a 0, or made escapes
    of what they kept apart, ``%\x0031``), each decoded character a star if hidden, else in
    its escape as written but inside a number's match (``numbers``), where it is shown
    decoded (``%34%31%30…`` as ``410105********0020``) unless the reading keeps it escaped
    (:attr:`_Reading.kept`), and a dropped one's escape kept outside a number: a URL as
    logged is the URL as sent, only its hidden digits replaced, and never shows a line break
    or a delimiter the client escaped."""
    inside = bytearray(len(characters) + 1)
    for begins, ends in numbers:
        inside[begins:ends] = b"\1" * (ends - begins)
    marks = set(reading.marks)
    pieces, start = [], 0
    for index in sorted({*marks, *reading.escaped, *reading.dropped}):
        pieces.append(characters[start:index])
        start = index
        if index in reading.dropped and not (index and inside[index - 1] and inside[index]):
            pieces.append(reading.dropped[index])
        if index in reading.escaped:
            if characters[index] != reading.text[index]:
                pieces.append("*")
            elif index in reading.kept or not inside[index]:
                pieces.append(reading.escaped[index])
            else:
                pieces.append(characters[index])
            start = index + 1
        elif index in marks:
            start = index + 1
    pieces.append(characters[start:])
    return "".join(pieces)


class _Hidden(NamedTuple):
    """Where a number in a text has the characters its masking replaces, and where it is."""

    start: int
    end: int
    #: where the number's match begins and ends
    begins: int
    ends: int


def _hidden_spans(text: str) -> Iterator[_Hidden]:
    """Where each number in ``text`` has the characters its masking replaces (the stars of
    :data:`ID_MASKS` and :data:`PHONE_MASKS`, found as what the replacement and the number do
    not share at either end), every pattern matched on the text as it is."""
    if _CANDIDATE.search(text) is None or _TEN_DIGITS.search(text) is None:
        return
    for pattern, replacement, _ in _applying(ID_MASKS + PHONE_MASKS, text):
        for match in pattern.finditer(text):
            written, masked = match.group(), replacement(match)
            star = masked.find("*")
            if star < 0:
                continue
            kept = len(commonprefix((written, masked[:star])))
            tail = len(commonprefix((written[::-1], masked[star:].lstrip("*")[::-1])))
            yield _Hidden(match.start() + kept, match.end() - tail, match.start(), match.end())


#: a percent escape, as a URL (a Bundle entry's, a path) carries characters: one byte, or the
#: two, three or four bytes of a character in UTF-8 (a no-break space, a full-width digit, an
#: ideographic space, a mathematical 𝟏), tried first
_ESCAPE = re.compile(
    r"%[CD][0-9A-F]%[89AB][0-9A-F]|%E[0-9A-F](?:%[89AB][0-9A-F]){2}|%F[0-4](?:%[89AB][0-9A-F]){3}|%[0-9A-F]{2}",
    re.IGNORECASE,
)
#: the characters of a number — digits, X, an old 永居证's letters (full-width too: a
#: full-width form is its ASCII character + U+FEE0), every separator between groups or after
#: the letters (:data:`_SEPARATOR_KINDS`), a ``+`` and an HL7 v2 field's ``|`` — which, escaped
#: (``%34%31%30…``, ``%2B86%20138…``, ``%55%53%41%31…``, a full-width ``%EF%BC%91``,
#: ``%EF%BC%B5``, ``0371%2F6880…``, ``%55%53%41%3D…``), are read as what they encode (digits
#: as ASCII: :data:`FULL_WIDTH_DIGITS`) before matching: else a number hides behind its
#: encoding and the trail shows it to anyone who decodes it
_NUMBER_CHARACTERS = frozenset(
    "0123456789+|"
    + "".join(character for characters in _SEPARATOR_KINDS.values() for character in characters)
    + ascii_letters
    + "".join(chr(ord(character) + 0xFEE0) for character in ascii_letters + ":")
)
#: the characters of a number that, decoded for the reading, are shown escaped again as the
#: text wrote them: a URL's delimiters (but the colon, brackets and plus it reads the same
#: either way), an HL7 v2 field's bar, quotes, the full-width commas and line breaks: a decoded
#: ``%26`` or ``%3D`` would read in the trail as another parameter, a ``%2F`` as another path,
#: a ``%0D%0A`` in a logged request line as a log line of its own, forged by the client
_SHOWN_ESCAPED = _NUMBER_CHARACTERS & frozenset(
    "/?#[]@!$&',;=|^\""
    + "".join(_SEPARATOR_KINDS["commas"] + _SEPARATOR_KINDS["quotes"] + _SEPARATOR_KINDS["lineBreaks"])
)
#: the decoded characters that, after a ``%`` and a hex digit, complete an escape
_HEX_DIGITS = frozenset(hexdigits)
#: an escape, or a plus (a space in a form-encoded query)
_ESCAPE_OR_PLUS = re.compile(rf"{_ESCAPE.pattern}|\+", re.IGNORECASE)
#: the start of an escape left open: a decoded hex digit after it would complete a new one
_OPEN_ESCAPE = re.compile(r"%[0-9A-Fa-f]?$")


class _Reading(NamedTuple):
    """A text as a URL means it (:func:`_read_as_url`)."""

    #: the reading: the escapes of a number's characters decoded
    text: str
    #: where in the reading each character of the text is
    place: list[int]
    #: where the marks are (NULs) that no character of the text became
    marks: list[int]
    #: the decoded characters' escapes (or a query's ``+``) as written, by where they are in
    #: the reading
    escaped: dict[int, str]
    #: where those are that are shown escaped even inside a number (:data:`_SHOWN_ESCAPED`, a
    #: hex digit that would complete an escape, a query's ``+``)
    kept: set[int]
    #: the escapes of what the reading drops (a zero-width space), by where the reading goes on
    dropped: dict[int, str]
    #: where the hex digit of a literal ``%`` and hex digit is that a number's escaped
    #: character follows (``%4%41…``, ``%4%55…``)
    opened: list[int]
    #: where the hex digits are, decoded but shown escaped, that would complete an escape
    #: with a literal ``%`` before them (``%%33…``)
    completing: list[int]


def _read_as_url(text: str, spaces_from: int = -1) -> _Reading:
    """``text`` read as a URL means it.

    The escapes of a number's characters are decoded; any other escape (``号`` is %E5%8F%B7,
    a quote %22) is kept as written and followed by a mark (a NUL): else its last hex digit
    would begin the run of the digits after it, and no pattern starts inside a run.  A hex
    digit (a digit, A–F) whose decoding would complete a new escape with a literal ``%``
    before it (``%%33…``, ``%2%30``, ``%2%44``) is read decoded but kept escaped: decoded,
    the text shown would hold an escape that one more decoding reads as a character of a
    number masking did not see (:func:`_variants` reads it both joined to that ``%`` and
    apart).  A ``+`` at ``spaces_from`` or after it (a form-encoded query's) is read as the
    space it means and kept as written.  A character the reading drops (a zero-width space:
    :data:`FULL_WIDTH_DIGITS`) is dropped escaped too, and shown as written outside a number."""
    pieces: list[str] = []
    place: list[int] = []
    marks: list[int] = []
    escaped: dict[int, str] = {}
    kept: set[int] = set()
    dropped: dict[int, str] = {}
    opened: list[int] = []
    completing: list[int] = []
    shown = ""  # the last two characters of the text shown so far
    written = 0  # where the text not yet read begins
    for escape in (_ESCAPE_OR_PLUS if spaces_from >= 0 else _ESCAPE).finditer(text):
        if escape.group() == "+" and escape.start() < spaces_from:
            continue  # a plus before the query is a plus
        literal = text[written : escape.start()]
        place.extend(range(len(pieces), len(pieces) + len(literal)))
        pieces.extend(literal)
        shown = (shown + literal[-2:])[-2:]
        if escape.group() == "+":
            character = " "
            kept.add(len(pieces))
            shown = (shown + "+")[-2:]
        else:
            encoded = bytes.fromhex(escape.group().replace("%", ""))
            character = encoded.decode("utf-8", "replace").translate(FULL_WIDTH_DIGITS)
            if character and character not in _NUMBER_CHARACTERS:
                place.extend(range(len(pieces), len(pieces) + len(escape.group())))
                pieces.extend(escape.group())
                marks.append(len(pieces))
                pieces.append("\0")
                shown = escape.group()[-2:]
                written = escape.end()
                continue
            opening = _OPEN_ESCAPE.search(shown)
            if opening and len(opening.group()) == 2 and character:
                opened.append(len(pieces) - 1)
            if opening and character in _HEX_DIGITS or character in _SHOWN_ESCAPED:
                kept.add(len(pieces))
                shown = escape.group()[-2:]
                if opening and character in _HEX_DIGITS:
                    completing.append(len(pieces))
            else:
                shown = (shown + character)[-2:]
        if character:
            escaped[len(pieces)] = escape.group()
        else:
            dropped[len(pieces)] = dropped.get(len(pieces), "") + escape.group()
        place.extend((len(pieces),) * len(escape.group()))
        pieces.extend(character)
        written = escape.end()
    place.extend(range(len(pieces), len(pieces) + len(text) - written))
    pieces.extend(text[written:])
    return _Reading("".join(pieces), place, marks, escaped, kept, dropped, opened, completing)


#: the longest text :func:`mask_repeated` remembers: a client's long value (a claimed profile
#: of a megabyte) would hold that much memory for each of the 4,096 kept
REPEATED_LENGTH = 256


def mask_repeated(text: str) -> str:
    """:func:`mask_text`, remembered for short texts (:func:`_mask_remembered`)."""
    return _mask_remembered(text) if len(text) <= REPEATED_LENGTH else mask_text(text)


@lru_cache(maxsize=4096)
def _mask_remembered(text: str) -> str:
    """:func:`mask_text`, remembered for the last 4,096 texts: for the texts that come back
    request after request — a validation message (the dom-6 warning on each entry of every
    transaction), a FHIRPath, a profile's URL, a searched token's system — which the exchange
    log and the audit trail masked anew each time (16 µs of a transaction's 10 warnings).  Not
    for what one request alone carries (an id, a search's values), which would only push the
    others out."""
    return mask_text(text)


def _masked_numbers(text: str) -> str:
    """Every 身份证号 and phone number in ``text`` masked (IDs first: a phone pattern never
    matches inside a masked ID); text without a long enough run of digits returned at once.
    Masked again while ten digits are left and a pass changed something: a digit starred
    no longer stops a match beside it (``110105491231 1381234567``: the mobile's stars free
    the twelve digits before it to read as a 15-digit ID), and masking twice must change
    nothing."""
    return _bare_id_card_masked(text) if _BARE_ID_CARD.fullmatch(text) else _scanned(text)


def _scanned(text: str) -> str:
    """:func:`_masked_numbers` of any text, by every pattern in turn."""
    if _CANDIDATE.search(text) is None or _TEN_DIGITS.search(text) is None:
        return text
    masked = _phones_masked(_id_cards_masked(text))
    while masked != text and _TEN_DIGITS.search(masked):
        text, masked = masked, _phones_masked(_id_cards_masked(masked))
    return masked


#: a text that is one 18-character 身份证号 and nothing else, as an identifier search's code
#: is: every pattern's masking of it (:data:`ID_CARD` first, after which no ten digits are
#: left; read both ways, every other pattern that matches hides the same eight digits) is
#: its first six and last four characters (tested), at once instead of 10 µs of scans, most
#: of a search by identifier's audit; 35 of a conditional entry's 41 in a Bundle's audit
_BARE_ID_CARD = re.compile(r"[0-9]{17}[0-9Xx]")


def _bare_id_card_masked(number: str) -> str:
    """A :data:`_BARE_ID_CARD` masked as :data:`ID_CARD` masks it."""
    return number[:6] + "*" * 8 + number[14:]


def _masked_names(value: str) -> str:
    """The names of a query's name criterion (a comma list), masked; percent-encoded as a URL
    carries them (``%E5%BC%A0…``), masked as the names they encode and encoded again: masked
    as written, the log showed ``%**``, a name no one sent."""
    if "%" not in value:
        return ",".join(map(mask_name, value.split(",")))
    return quote(",".join(map(mask_name, unquote(value).split(","))), safe=",*")


def mask_name(name: str) -> str:
    """张秀英 → 张**: the family name stays, the length of the given name does not."""
    name = name.strip()
    return f"{name[0]}**" if name else name


#: the resources whose ``name`` is an older person's or a relative's, not an organisation's
PERSON_TYPES = ("Patient", "RelatedPerson")


def is_person_name(path: str) -> bool:
    """Whether an element path names a person: ``Patient.name[+].text``,
    ``Patient.contact[0].name.family`` (an Organization's name is no one's personal data)."""
    kind, _, rest = path.partition(".")
    return kind in PERSON_TYPES and "name" in (part.split("[", 1)[0] for part in rest.split("."))


def mask_name_value(value: object) -> object:
    """A name as a mapping step holds it: text masked as :func:`mask_name`, a structure hidden."""
    if value is None:
        return None
    return mask_name(value) if isinstance(value, str) else "***"


def is_name_parameter(parameter: str) -> bool:
    """Whether a search parameter's value is a person's name: ``name``, ``family:exact``,
    ``subject:Patient.name``, ``_has:Patient:organization:name``, ``NAME`` …  Any part of it
    counts (eagerly: an organisation's masked name costs nothing)."""
    return any(part in NAME_PARAMETERS for part in _PARTS.split(parameter.lower()))


_PARTS = re.compile(r"[.:]")


def is_credential_parameter(parameter: str) -> bool:
    """``access_token``, ``Access_Token``, ``access_token:exact`` …"""
    return parameter.split(":", 1)[0].lower() in CREDENTIAL_PARAMETERS


def mask_query(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Search parameters as they may be recorded: credentials hidden, names masked (the value
    is known to be a name), identifiers and phones masked in every value."""
    masked = []
    for name, value in pairs:
        recorded_name, kind = _remembered_parameter(name) if len(name) <= REPEATED_LENGTH else _parameter(name)
        if kind is _ValueKind.CREDENTIAL:
            value = "***"
        elif kind is _ValueKind.NAMES:
            value = ",".join(mask_name(part) for part in value.split(","))
        masked.append((recorded_name, _masked_value(value)))
    return masked


class _ValueKind(enum.Enum):
    """What a search parameter's value is, for masking."""

    #: hidden whole
    CREDENTIAL = "credential"
    #: names or free text, masked as names
    NAMES = "names"
    #: any other value: its identifiers and phones masked
    OTHER = "other"


def _parameter(name: str) -> tuple[str, _ValueKind]:
    """A search parameter's name as it may be recorded, and what its value is."""
    if is_credential_parameter(name):
        kind = _ValueKind.CREDENTIAL
    elif is_name_parameter(name) or name in TEXT_PARAMETERS:
        kind = _ValueKind.NAMES
    else:
        kind = _ValueKind.OTHER
    return mask_text(name), kind


@lru_cache(maxsize=1024)
def _remembered_parameter(name: str) -> tuple[str, _ValueKind]:
    """:func:`_parameter`, remembered: the same few parameter names come back search after
    search, and reading one anew (its parts split and looked up, its text masked) cost the
    audit thread 3 of an identifier search's 17 µs.  Short names alone, as
    :func:`mask_repeated` remembers texts."""
    return _parameter(name)


#: a token's system as a URL or an OID writes it (``urn:oid:2.16.156.10011.1.3``), holding
#: none of the characters by which masking reads across a ``|``: a query's ``=`` (whose value
#: a credential's or name's masking takes to the next ``&``), a space (a ``_filter``'s name
#: criterion), a ``%`` (an escape read with what precedes it)
_TOKEN_SYSTEM = re.compile(r"[A-Za-z0-9:./_-]+")
#: a token's system ending in three letters alone (``CHN``, ``urn:CHN``), which with its code
#: is an old 永居证 (CHN|123456789012: :data:`FOREIGN_PR_OLD`)
_COUNTRY = re.compile(rf"(?<![^{_BEFORE_TOKEN}])[A-Za-z]{{3}}\Z")


def _masked_value(value: str) -> str:
    """:func:`mask_text` of a search value.  A token's ``system|code`` comes with the same
    system request after request: it is masked once (:func:`mask_repeated`) and the code on
    its own, as masking the two apart gives what masking the whole does: no pattern matches a
    ``|``, and each one's lookarounds (a digit, a letter, a dash, a dot, a label before a
    time) read a ``|`` as they read the text's end (tested), but for an old 永居证's three
    letters and bar: a system that ends in three letters alone is a country, and the value
    is masked whole.  The OID's digits made an identifier search's masking 19.5 µs of
    the audit thread, against 4.5 for the code."""
    system, bar, code = value.partition("|")
    if bar and "%" not in code and _TOKEN_SYSTEM.fullmatch(system) and not _COUNTRY.search(system):
        return mask_repeated(system) + bar + mask_text(code)
    return mask_text(value)


class MaskingFilter(logging.Filter):
    """Masks 身份证号 and phones in a log record's message and exception text.

    The record is formatted here once (``msg % args``) and replaced by its masked text, so no
    handler or formatter later sees the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: logging would print the raw arguments
            args = record.args.values() if isinstance(record.args, dict) else record.args or ()
            message = " ".join(map(str, (record.msg, *args)))
        record.msg, record.args = mask_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


#: loggers whose records are masked: ours, the servers that log request lines
MASKED_LOGGERS = ("yiyang", "gateway", "gunicorn", "werkzeug")
_installed: list[Any] = []


def install_log_masking() -> None:
    """Mask every record of the gateway's loggers, whichever handler writes it.

    A filter on a logger sees only records logged on that very logger, and a filter on a
    handler misses handlers added later (gunicorn adds its own); the record factory sees every
    record when it is made, so the filter is applied there.  Installing twice is harmless."""
    if _installed:
        return
    previous = logging.getLogRecordFactory()
    masking = MaskingFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.split(".", 1)[0] in MASKED_LOGGERS:
            masking.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed.append(factory)


class MaskingWriter:
    """A text stream that masks 身份证号 and phones in what is written through it: the
    command line's output unless ``--reveal`` asks for it in full."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(mask_text(text))

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty … of the real stream
        return getattr(self.out, name)


def masked_unless(reveal: bool, out: IO[str]) -> IO[str]:
    """``out`` itself when the operator asked to see identifiers in full, else masked."""
    return out if reveal else MaskingWriter(out)  # type: ignore[return-value]
