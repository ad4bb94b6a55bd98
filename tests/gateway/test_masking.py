"""Masking of personal identifiers in text people read (gateway/masking.py): 身份证号 however
mistyped, grouped or encoded, old 永居证 numbers, mobile and fixed-line phones, names in name
criteria and credentials, in free text, URLs, log records and the command line's output."""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from datetime import date
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from gateway import masking
from gateway.cli import main
from gateway.masking import (
    _ZERO_WIDTH,
    CREDENTIAL_PARAMETERS,
    FULL_WIDTH_DIGITS,
    PROVINCE_CODES,
    TEXT_PARAMETERS,
    install_log_masking,
    is_name_parameter,
    mask_id_cards,
    mask_name,
    mask_phones,
    mask_query,
    mask_repeated,
    mask_text,
    mask_url,
)
from profiles.registry import PACKAGE_DIR

PACKAGE_ROOT = Path(masking.__file__).parent

ID_CARD = "410105194912310020"
ENCODED_ID_CARD = "".join(f"%{ord(c):02X}" for c in ID_CARD)


def test_identifiers_phones_and_names_are_masked() -> None:
    assert mask_text(f"身份证{ID_CARD}，电话 13800000001") == "身份证410105********0020，电话 138****0001"
    assert mask_text("旧证 410105491231002 新证 11010519630402991X") == "旧证 410105******002 新证 110105********991X"
    assert mask_text("+86 138-0000-0001") == "+86 138****0001"
    assert mask_text("医保人员编号 41112357174961943107") == "医保人员编号 41112357174961943107"  # 20 digits: no ID
    assert (mask_name("张秀英"), mask_name("李四")) == ("张**", "李**")
    assert mask_query([("subject:Patient.name:contains", "王小明"), ("birthdate", "ge1949")]) == [
        ("subject:Patient.name:contains", "王**"),
        ("birthdate", "ge1949"),
    ]


def test_a_landline_is_masked() -> None:
    assert mask_text("Patient?telecom=0371-68801234") == "Patient?telecom=0371-****1234"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("王芳——0371-68801234", "王芳——0371-****1234"),  # em dashes, read as ASCII ones, shown as written
        ("联系人：王芳-010-88886666", "联系人：王芳-010-****6666"),
        ("0371-68801234ext.12", "0371-****1234ext.12"),
        ("010-88886666x123", "010-****6666x123"),
        ("+86-371-68801234ext8", "+86-371-****1234ext8"),
        ("Fax010-88886666", "Fax010-****6666"),
        ("bp-0371-68801234", "bp-0371-****1234"),  # an id that reads as one: over-masked
    ],
)
def test_a_landline_after_a_dash_a_glued_label_or_before_an_extension_is_masked(written: str, masked: str) -> None:
    """A dash before it (a UUID's, it was thought), a letter before it or an extension glued
    after it and the number went through whole."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"), [("(0371)68801234", "(0371)****1234"), ("（0371）68801234", "（0371）****1234")]
)
def test_a_landline_with_a_bracketed_area_code_is_masked(written: str, masked: str) -> None:
    assert mask_text(f"Patient?phone={written}") == f"Patient?phone={masked}"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("电话 0371/68801234", "电话 0371/****1234"),
        ("(0371)/68801234", "(0371)/****1234"),
        ("0371 / 68801234", "0371 / ****1234"),
    ],
)
def test_a_landline_with_a_slash_after_its_area_code_is_masked(written: str, masked: str) -> None:
    """A form prints the area code and the number apart by a slash, and it went through whole."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("+86 (371) 68801234", "+86 (371) ****1234"),
        ("+86（371）68801234", "+86（371）****1234"),
        ("86-371-68801234", "86-371-****1234"),
        ("+86(138)00138000", "+86(138)****8000"),
    ],
)
def test_a_phone_with_the_country_code_bracketed_or_bare_is_masked(written: str, masked: str) -> None:
    """An area code or mobile prefix in brackets after +86, or a bare 86 and a dash, and the
    number went through whole."""
    assert mask_text(f"Patient?phone={written}") == f"Patient?phone={masked}"


def test_a_code_search_is_recorded_as_asked() -> None:
    """``code`` is an OAuth word and a FHIR search parameter: only the credentials are hidden."""
    assert mask_query([("code", "http://loinc.org|8480-6")]) == [("code", "http://loinc.org|8480-6")]


@pytest.mark.parametrize("name", ["access_token", "client_secret", "client_assertion"])
def test_credentials_sent_as_query_parameters_are_never_recorded(name: str) -> None:
    assert mask_query([(name, "eyJhbGciOiJSUzM4NCJ9.secret"), ("_count", "1")]) == [(name, "***"), ("_count", "1")]


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        # a Bundle entry's URL, as an audit event describes the entry
        ("GET Patient?access_token=s3cr3t-AAA → 400", "GET Patient?access_token=*** → 400"),
        ("GET Patient?Access_Token=s3cr3t&api_key=k", "GET Patient?Access_Token=***&api_key=***"),
        # dots between the groups of a 身份证号, as spaces and dashes were
        ("Patient?identifier=410105.19491231.0020", "Patient?identifier=410105********0020"),
        # a fixed line with the country code, which drops the trunk 0
        ("电话 +86-371-66884234", "电话 +86-371-****4234"),
        # a name searched through _has
        ("Organization?_has:Patient:organization:name=令狐冲", "Organization?_has:Patient:organization:name=令**"),
    ],
)
def test_what_security_qa_found_in_clear_is_masked(written: str, masked: str) -> None:
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("pair", "masked"),
    [
        (("Access_Token", "s3cr3t"), ("Access_Token", "***")),
        (("access_token:exact", "s3cr3t"), ("access_token:exact", "***")),
        (("_has:Patient:organization:name", "令狐冲"), ("_has:Patient:organization:name", "令**")),
        (("NAME", "张秀英"), ("NAME", "张**")),
    ],
)
def test_a_query_parameter_is_masked_in_any_case_or_form(pair: tuple[str, str], masked: tuple[str, str]) -> None:
    assert mask_query([pair]) == [masked]


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("10-88886666", "10-****6666"),
        ("联系电话：371-68801234", "联系电话：371-****1234"),
        ("(28-85501234)", "(28-****1234)"),
        ("Tel: 10-8888-6666", "Tel: 10-****6666"),
    ],
)
def test_a_landline_without_its_trunk_zero_is_masked(written: str, masked: str) -> None:
    """An area code typed without its 0 (10, 2x, 3xx–9xx) and a dash: only 0 began a landline."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    "text",
    ["2024-12-06", "27-20241206", "范围 300-5000000 元", "10-20000000", "v1.10-88886666", "ab-371-68801234x", "120-80"],
)
def test_a_date_an_amount_or_an_id_is_no_landline_without_its_trunk_zero(text: str) -> None:
    """A local number never begins with 0, 1 or 9; a date (20241206) or a round amount
    (5000000) after a dash, or a dash glued to a version or a word, is no landline."""
    assert mask_text(text) == text


@pytest.mark.parametrize("text", ["客服热线 400-820-8820", "免费电话：800-810-8888", "REF 300-2501-1234"])
def test_a_service_or_reference_number_is_no_landline_without_its_trunk_zero(text: str) -> None:
    """400 and 800 begin a company's or a hospital's hotline (400-820-8820), 300 a reference
    number, no area code (none ends in 00): the trunk-less landline read them as 0400's,
    0800's and 0300's lines and hid a number printed for all."""
    assert mask_text(text) == text


def test_a_uuid_is_no_landline() -> None:
    reference = "Patient/9f3c2a1e-0123-4567-8901-23456789abcd"
    assert mask_text(reference) == reference


def test_a_name_criterion_quoted_in_an_error_is_masked() -> None:
    text = "引用“Patient?name=张秀英&birthdate=1949-12-31”无法解析"
    assert mask_text(text) == "引用“Patient?name=张**&birthdate=1949-12-31”无法解析"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("41010519491231002", "410105********002"),  # the check character left off
        ("4101051949123100201", "410105********00201"),  # a digit doubled
        ("4101051949123100X", "410105********00X"),  # a digit dropped
        ("41010519491231", "410105********"),  # cut short after the birth date
        ("身份证号“41010519491231002”格式错误", "身份证号“410105********002”格式错误"),
        # in groups, as the division code, the birth date and the rest are read out
        ("410105 19491231 002", "410105********002"),
        ("410105-19491231-002", "410105********002"),
        ("410105 19491231 00201", "410105********00201"),
        ("出生 410105 19491231，", "出生 410105********，"),
    ],
)
def test_a_mistyped_id_card_number_is_masked(written: str, masked: str) -> None:
    """The validator's rule.id-card-format quotes the number as written, in the reports and
    the trail: 17 digits of a 身份证号 are the whole of it (its check character follows).
    Written in groups, the number went through whole, its birth date shown."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    "number",
    [
        "S20261102091502",
        "20261119141205",
        "20261102091502123",
        "41112357174961943107",
        "4101002026100001",
        "410105 19491231 001234",
    ],
)
def test_a_time_stamp_or_an_insurance_number_is_no_mistyped_id_card(number: str) -> None:
    """An HL7 control id, time stamps (to the second, the millisecond), a 20-digit 医保人员编号 and a 长护险
    评估编号 (a division, a year, a month and a serial) begin otherwise than with a division
    code and a date, or are longer than any ID."""
    assert mask_text(number) == number


@pytest.mark.parametrize(
    ("written", "masked"),
    [("1381234567", "138****4567"), ("138 1234 567", "138****4567"), ("+86 1381234567", "+86 138****4567")],
)
def test_a_mobile_number_mistyped_to_ten_digits_is_masked(written: str, masked: str) -> None:
    """An 11-digit mobile was masked, the same number a digit short quoted in full."""
    assert mask_text(f"Patient?telecom={written}") == f"Patient?telecom={masked}"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("1380 0138 000", "138****8000"),
        ("1380-0138-000", "138****8000"),
        ("13800 138000", "138****8000"),
        ("+86 1380 0138 000", "+86 138****8000"),
    ],
)
def test_a_mobile_number_in_other_groups_is_masked(written: str, masked: str) -> None:
    """Only groups of 3-4-4 (or fewer of them: 3-8, 7-4) were known: grouped 4-4-3 or 5-6
    the number went through whole."""
    assert mask_text(f"电话：{written}。") == f"电话：{masked}。"


@pytest.mark.parametrize(
    "text", ["1380.0138000", "Patient/9f3c2a1e-1380-0138-000a-23456789abcd", "13 8 2026 12345", "1500  2000  300"]
)
def test_a_decimal_a_uuid_or_small_numbers_side_by_side_are_no_mobile_number(text: str) -> None:
    assert mask_text(text) == text


def test_round_hundreds_in_groups_are_masked_as_the_mobile_number_they_may_be() -> None:
    """Amounts side by side read so too, but a leak loses to an over-mask."""
    assert mask_text("合计 1500 2000 300 元") == "合计 150****0300 元"


@pytest.mark.parametrize(
    "text",
    [
        '{"iat": 1733494205, "exp":1733494805}',
        "expires_at=1733494205",
        "GET /fhir/Patient?_lastUpdated=1733494205",
        "createdAt: '1733494205'",
        "date -d @1733494205",
    ],
)
def test_a_unix_time_labelled_as_a_time_is_no_mobile_number(text: str) -> None:
    """Ten digits beginning 17 were masked as a mobile number a digit short: a token's claims
    and every time stamp in seconds of 2024 and 2025 (17… to 19… until 2033)."""
    assert mask_text(text) == text


@pytest.mark.parametrize("text", ["@1381234567", "联系 @1591234567"])
def test_ten_digits_after_a_bare_at_sign_not_begun_as_a_recent_time_are_masked(text: str) -> None:
    """A bare ``@`` names no time as a label's word does: only a time of the years whose
    Unix times begin as a mobile does (17 to 19: late 2023 to 2033) is read as one after it;
    a mobile number a digit short (13…, 15…) went through."""
    assert "1234" not in mask_text(text)


@pytest.mark.parametrize(("text", "masked"), [("1733494205", "173****4205"), ("phone=1733494205", "phone=173****4205")])
def test_ten_digits_not_labelled_as_a_time_are_masked_as_the_mobile_number_they_may_be(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", ["Basic/p1381234567", "Observation/bp-1381234567", "0.1381234567", "4101002026"])
def test_ten_digits_inside_a_word_or_a_number_or_not_begun_as_a_mobile_stay(text: str) -> None:
    """As a fixed line's digits inside a word stay: an id, a decimal's fraction, a code."""
    assert mask_text(text) == text


def test_an_old_foreign_permanent_residence_number_is_masked() -> None:
    assert mask_text("永居证 USA123456789012") == "永居证 USA********9012"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("USA 1234 5678 9012", "USA********9012"),
        ("USA-123456789012", "USA********9012"),
        ("USA 123456789012", "USA********9012"),
        ("USA 1949 1231 6789", "USA********6789"),  # a date, but no time of day
        ("ＵＳＡ１２３４５６７８９０１２", "ＵＳＡ********9012"),
    ],
)
def test_an_old_foreign_permanent_residence_number_in_groups_or_full_width_is_masked(written: str, masked: str) -> None:
    """Grouped, or its letters typed full-width, the number went through whole."""
    assert mask_text(f"永居证 {written}。") == f"永居证 {masked}。"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("usa123456789012", "usa********9012"),
        ("Usa 1234 5678 9012", "Usa********9012"),
        ("USA:123456789012", "USA:********9012"),
        ("USA： 1234 5678 9012", "USA：********9012"),
        ("%75%73%61%3A123456789012", "usa:********9012"),
    ],
)
def test_an_old_permanent_residence_number_in_lowercase_or_after_a_colon_is_masked(written: str, masked: str) -> None:
    """Only capital letters right before the digits were known: typed in lowercase, or copied
    with its form field's colon, the number went through whole."""
    assert mask_text(f"永居证 {written}。") == f"永居证 {masked}。"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("USA : 123456789012", "USA :********9012"),
        ("USA=123456789012", "USA=********9012"),
        ("USA/123456789012", "USA/********9012"),
        ("USA_123456789012", "USA_********9012"),
        ("USA# 1234 5678 9012", "USA#********9012"),
    ],
)
def test_an_old_permanent_residence_number_after_a_key_s_punctuation_is_masked(written: str, masked: str) -> None:
    """Only a colon right after its letters was known: after a spaced colon, an equals sign,
    a slash, an underscore or a hash, as a record's key copies it, it went through whole."""
    assert mask_text(f"永居证 {written}。") == f"永居证 {masked}。"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("CHN^1234 5678 9012", "CHN^********9012"),
        ("CHN&123456789012", "CHN&********9012"),
        ("CHN,123456789012", "CHN,********9012"),
        ("CHN; 123456789012", "CHN;********9012"),
        ("|CHN|123456789012", "|CHN|********9012"),
        ("USA，123456789012", "USA，********9012"),
        ("USA；123456789012", "USA；********9012"),
        ("USA、123456789012", "USA、********9012"),
    ],
)
def test_an_old_permanent_residence_number_after_a_field_separator_is_masked(written: str, masked: str) -> None:
    """An HL7 v2 message or a CSV file puts the nationality and the number in fields side by
    side, and after the separator the number went through whole; so did a Chinese list's
    full-width comma, semicolon or 顿号 (h8)."""
    assert mask_text(f"永居证 {written}。") == f"永居证 {masked}。"


def test_an_old_permanent_residence_number_in_an_hl7_segment_is_masked() -> None:
    """A segment's fields: the nationality then the number, in the middle of the segment."""
    segment = "PID|1||p1^^^HIS||王^秀英||19491231|F|||||||||||||||USA|123456789012|"
    assert mask_text(segment) == segment.replace("123456789012", "********9012")


@pytest.mark.parametrize(
    "written",
    [
        "CHN|123456789012",
        "Patient?identifier=CHN|123456789012",
        "Patient?identifier=CHN%7C123456789012",
        '{"value":"CHN|123456789012"}',
        "/fhir/Patient/CHN|123456789012",
        "/fhir/Patient/CHN%7C123456789012",
        "证件 CHN|123456789012",
        "identifier: CHN|123456789012",
    ],
)
def test_an_old_permanent_residence_number_after_a_bar_where_a_token_begins_is_masked(written: str) -> None:
    """A token's country and number (``identifier=CHN|…``): the bar was read only after an HL7
    field, as a field of its own, and then only at a text's start or after an equals sign,
    not inside a JSON value, a path or after a space."""
    assert "56789" not in unquote(mask_text(written))


def test_an_old_permanent_residence_number_searched_as_a_token_is_masked() -> None:
    """Its letters, taken for the token's system, were masked apart from its digits, which
    alone are no number."""
    assert mask_query([("identifier", "CHN|123456789012")]) == [("identifier", "CHN|********9012")]


@pytest.mark.parametrize("segment", ["QRD|202612061430|R|I|Q1", "MSH|^~\\&|HIS\rQRD|202612061430|R"])
def test_twelve_digits_after_a_segment_s_name_are_no_permanent_residence_number(segment: str) -> None:
    """A segment's name is three letters as a country is, but no field of its own: its first
    field (a query's time, QRD-1) stays."""
    assert mask_text(segment) == segment


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("手机：１３８，００１３，８０００", "手机：138****8000"),
        ("138，0013，8000", "138****8000"),
        ("138、0013、8000", "138****8000"),
        ("410105，19491231，0020", "410105********0020"),
        ("410105、19491231、002X", "410105********002X"),
        ("410105，491231，002", "410105******002"),
        ("电话：0371，68801234", "电话：0371，****1234"),
        ("010、8888、6666", "010、****6666"),
        ("（0371），6880，1234", "（0371），****1234"),
    ],
)
def test_a_number_with_full_width_or_ideographic_commas_between_its_groups_is_masked(written: str, masked: str) -> None:
    """Chinese input types a comma between a number's groups, and the number went through whole."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    "text",
    ["12，138，0013，8000", "138，0013，8000，7", "13，8001，3800，0", "12，0371，6880，1234", "0371，6880，1234，5"],
)
def test_numbers_listed_with_full_width_commas_are_no_phone_number(text: str) -> None:
    """Only a mobile's or an ID's own groups are read across a comma, not a list's numbers."""
    assert mask_text(text) == text


OLD_PR = "USA123456789012"


@pytest.mark.parametrize(
    "written",
    [
        "".join(f"%{ord(c):02X}" for c in OLD_PR),
        "identifier=%55%53%41%2D123456789012",
        "%55%53%41" + OLD_PR[3:],
        "%E5%8F%B7%55%53%41%20123456789012",
        "%EF%BC%B5%EF%BC%B3%EF%BC%A1123456789012",  # full-width letters, UTF-8
    ],
)
def test_an_old_permanent_residence_number_percent_encoded_is_masked(written: str) -> None:
    """The reading decoded only digits and separators: its letters stayed escaped and the
    twelve digits went through, plain to anyone who decodes them."""
    masked = mask_text(written)
    assert "5678" not in unquote(masked)
    assert "********9012" in masked and ("USA" in masked or "ＵＳＡ" in masked)


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ('{"USA":"123456789012"}', '{"USA":"********9012"}'),
        ('USA "123456789012"', 'USA "********9012"'),
        ("USA(123456789012)", "USA(********9012)"),
        ("(USA)123456789012", "(USA)********9012"),
        ("“USA”：“123456789012”", "“USA”：“********9012”"),
        ("%22USA%22:%22123456789012%22", "%22USA%22:%22********9012%22"),
    ],
)
def test_an_old_permanent_residence_number_after_a_quote_or_a_bracket_is_masked(written: str, masked: str) -> None:
    """Its letters and digits as a JSON key and value, or the digits bracketed or quoted after
    them: only punctuation without a quote or bracket was read between them."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "hidden"),
    [
        ("Patient?phone=0371%2F68801234", "6880"),
        ("%7CCHN%7C123456789012%7C", "56789"),
        ("Patient?phone=138%EF%BC%8C0013%EF%BC%8C8000", "0013"),
        ("identifier=%55%53%41%3D123456789012", "56789"),
        ("identifier=USA%3A123456789012", "56789"),
    ],
)
def test_a_number_with_an_escaped_separator_is_masked(written: str, hidden: str) -> None:
    """A slash after an area code, an HL7 field's bar, a full-width comma or a key's equals
    sign, escaped: the reading as a URL kept them as escapes, which part a number's groups,
    and the number went through to anyone who decodes it."""
    assert hidden not in unquote(mask_text(written))


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "/fhir/Patient?identifier=urn%3Aoid%3A2.16.156.10011.1.3%7C11010119491231003X",
            "/fhir/Patient?identifier=urn%3Aoid%3A2.16.156.10011.1.3%7C110101********003X",
        ),
        ("Patient?_text=a%09b%2Bc%3Ad&phone=13800138000", "Patient?_text=a%09b%2Bc%3Ad&phone=138****8000"),
        ("Patient?telecom=138+0013+8000&_count=1+2", "Patient?telecom=138+****+8000&_count=1+2"),
    ],
)
def test_a_url_is_logged_as_sent_but_for_its_hidden_digits(url: str, masked: str) -> None:
    """The escapes decoded to look for numbers (``%3A``, ``%09``, ``%2B``), and a query's
    ``+`` read as a space, were shown decoded: the trail showed a URL no client sent."""
    assert mask_url(url) == masked


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=30))
def test_a_url_without_a_number_is_logged_as_sent(value: str) -> None:
    url = f"Patient?_text={quote(value, safe='')}"
    assert mask_url(url) == url


def test_an_escaped_separator_is_shown_as_written() -> None:
    """Decoded to read the number, a URL's reserved character is shown escaped again: decoded,
    an ``%26`` would read in the trail as another parameter."""
    assert mask_text("q=A%26B%2F13800138000") == "q=A%26B%2F138****8000"


@pytest.mark.parametrize("url", ["/Patient?q=a%0D%0A2026-12-06 INFO forged", "/Patient?phone=138%0A0013%0A8000"])
def test_an_escaped_line_break_is_shown_escaped(url: str) -> None:
    """Decoded to read a number's groups, ``%0A`` and ``%0D`` are shown escaped again: decoded,
    a request line a client wrote them in became two lines of the log, the second forged."""
    assert not {"\n", "\r"} & set(mask_text(url))


def test_masking_a_url_whose_masked_numbers_an_escaped_line_break_parts_twice_changes_nothing() -> None:
    """The mobile's stars free the twelve digits before it and the escaped line break to read
    as a 15-digit ID; the pass after the stars saw the break escaped, and only masking the
    result again found the ID (a case Hypothesis found)."""
    once = mask_text("111381234567%0A1381234567")
    assert mask_text(once) == once


@pytest.mark.parametrize(
    "text",
    [
        "UTC 20261206 1430",
        "utc 20261206 1430",
        "UTC 2026-12-06-2359",
        "ABC 1234 - 5678 9012",
        "HIS20261102091502",
        "CDA OID 2.16.156.10011.2.3.3.6",  # a profile's description, as the validator quotes it
        "cda oid: 2.16.156.10011.2.3.3.6",
    ],
)
def test_a_word_before_a_time_stamp_or_numbers_side_by_side_is_no_permanent_residence_number(text: str) -> None:
    assert mask_text(text) == text


ID_LIKE = st.from_regex(r"\A[1-9]\d{16}[0-9X]\Z")
#: text around the ID: anything but a digit right beside it (digits would make it another number)
AROUND = st.text(max_size=30)


@settings(max_examples=300, deadline=None)
@example("AAA000000000000", "", False, "0\xad")  # a digit before a soft hyphen
@given(
    st.from_regex(r"\A[A-Za-z]{3}[0-9]{12}\Z").filter(lambda number: number[3:5] not in ("19", "20")),
    st.sampled_from(["", " ", "-"]),
    st.booleans(),
    AROUND,
)
def test_no_old_permanent_residence_number_survives_masking(number: str, gap: str, escaped: bool, before: str) -> None:
    """Its letters in either case, whole or in groups of four, as written or percent-encoded,
    after any text but a letter or digit (which would make its letters part of a longer word);
    in groups, digits that read as a date and a time of day of this century or the last are a
    time stamp, and stay."""
    last = before.rstrip(_ZERO_WIDTH)[-1:].translate(FULL_WIDTH_DIGITS)  # masking reads through those
    before = before + " " if last.isalnum() or last == "%" else before
    assume(number[3:11] not in before.translate(FULL_WIDTH_DIGITS))  # else the text holds them anyway
    written = number[:3] + gap + gap.join((number[3:7], number[7:11], number[11:]))
    if escaped:
        written = "".join(f"%{ord(c):02X}" for c in written)
    assert number[3:11] not in unquote(mask_text(before + written)).translate(FULL_WIDTH_DIGITS).replace(gap or " ", "")


@settings(max_examples=300, deadline=None)
@given(ID_LIKE, AROUND, AROUND)
def test_no_id_card_number_survives_masking(id_card: str, before: str, after: str) -> None:
    # a digit or a percent sign right before it would make it another number or an escape
    # (test_an_id_card_number_right_after_a_percent_sign_is_masked)
    before = before + "x" if before[-1:].isdigit() or before.endswith("%") else before
    after = "x" + after if after[:1].isdigit() else after
    masked = mask_text(before + id_card + after)
    # every script's decimal digits (full-width ones too) are read as ASCII ones
    typed = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in id_card)
    assert id_card not in masked
    assert typed[:6] + "*" * 8 + typed[-4:] in masked


@settings(max_examples=300, deadline=None)
@given(ID_LIKE, AROUND, AROUND)
def test_no_id_card_birth_date_survives_a_percent_sign_before_it(id_card: str, before: str, after: str) -> None:
    """Decoded first, ``%31`` took an ID's first digit for an escape and left 17 digits that no
    pattern matched."""
    after = "x" + after if after[:1].isdigit() else after
    assert id_card[6:14] not in mask_text(f"{before}%{id_card}{after}")


@pytest.mark.parametrize("written", ["%31010519491231002", "50%3101051949123100"])
def test_a_mistyped_id_card_number_right_after_a_percent_sign_keeps_its_birth_date_hidden(written: str) -> None:
    """Only whole ID numbers' birth dates were hidden: a mistyped one (17 or 16 characters)
    lost its first digit to ``%31`` and went through whole."""
    assert "19491231" not in mask_text(written)


@pytest.mark.parametrize(
    "written",
    [
        "Patient?_content=%E8%BA%AB%E4%BB%BD%E8%AF%81%E5%8F%B7410105194912310020",
        "identifier=%22410105194912310020%22",
        "x=%E5%8F%B7%E7%A0%8113800138000",
    ],
)
def test_a_number_right_after_an_escape_of_another_character_is_masked(written: str) -> None:
    """The escape's last hex digit (``%B7``, ``%22``) began the number's run of digits, and no
    pattern begins inside a run: the number went through whole."""
    assert mask_text(written) != written


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("410105 1949 1231 0020", "410105********0020"),
        ("4101 0519 4912 3100 20", "410105********0020"),
        ("410105\u200919491231\u20090020", "410105********0020"),
        ("138\u00a00013\u00a08000", "138****8000"),
        ("0371\u201068801234", "0371-****1234"),
        ("138\t0013\t8000", "138****8000"),
        ("410105\t19491231\t0020", "410105********0020"),
    ],
)
def test_a_number_in_other_groups_or_apart_by_other_spaces_and_dashes_is_masked(written: str, masked: str) -> None:
    """Grouped 6-4-4-4 or 4-4-4-4-2, or apart by a no-break or thin space or a hyphen (U+2010)
    as a word processor types them, or by tabs (columns pasted from a spreadsheet), the
    numbers went through whole or half masked."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("138 - 0013 - 8000", "138****8000"),
        ("138  0013  8000", "138****8000"),
        ("0371.68801234", "0371.****1234"),
        ("138\u200b0013\u200b8000", "138****8000"),
        ("0371\u201468801234", "0371-****1234"),
    ],
)
def test_a_number_typed_with_spaced_dashes_double_spaces_or_zero_width_characters_is_masked(
    written: str, masked: str
) -> None:
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("138_0013_8000", "138****8000"),
        ("138·0013·8000", "138****8000"),
        ("138\n0013\n8000", "138\n****\n8000"),
        ("410105\r\n19491231\r\n0020", "410105\r\n********\r\n0020"),
        ("0371_68801234", "0371_****1234"),
    ],
)
def test_a_number_apart_by_underscores_middle_dots_or_line_breaks_is_masked(written: str, masked: str) -> None:
    """An underscore (a file's or a key's name), a middle dot (as Chinese text parts a name's
    words) or a line break (a wrapped column) between the groups: the number went through."""
    assert mask_text(written) == masked


def test_a_long_text_is_masked_but_not_remembered() -> None:
    """A client's claimed profile of a megabyte was kept whole, each of 4,096 kept texts."""
    before = masking._mask_remembered.cache_info().currsize
    mask_repeated("http://example.org/StructureDefinition/" + "x" * 10_000)
    assert masking._mask_remembered.cache_info().currsize == before


def test_an_id_card_number_with_an_escaped_digit_is_masked_as_an_id() -> None:
    """Its twelfth digit escaped (``%33``), read as written it began with a mobile number's
    eleven digits, and masked as one it showed eleven of its eighteen (now hidden as both)."""
    assert mask_text("Patient?identifier=13010219900%33071234") == "Patient?identifier=130***********1234"


@pytest.mark.parametrize("written", ["%13000000000", "涨幅50%13800138000", "%B13800138000"])
def test_a_mobile_number_right_after_a_literal_percent_sign_is_masked(written: str) -> None:
    """Read as a URL, ``%13`` (a control character) took the number's first two digits and left
    nine that no pattern matched: the number went through whole."""
    assert written[-11:] not in mask_text(written)


@pytest.mark.parametrize("url", ["/p/name=x?y&telecom=138+0013+8000&z=?", "Patient/token=a?b&telecom=138+0013+8000?"])
def test_a_form_encoded_number_is_masked_when_a_hidden_value_held_the_first_question_mark(url: str) -> None:
    """The credential's or name's value hidden took the query's ``?`` with it, and the ``+``
    of the query were read from a later ``?`` on: none was a space, and the number went
    through whole."""
    assert "0013" not in mask_url(url)


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("涨幅50%13800%3138000 元", "涨幅50%138****8000 元"),
        ("%%13699%3904170|", "%%136****4170|"),
        ("a%%02%31/6%38%380%3123%34", "a%%021/****1234"),
        ("x%220105194912%3310020", "x%220105********0020"),
    ],
)
def test_a_number_after_a_literal_percent_sign_with_a_digit_escaped_is_masked(written: str, masked: str) -> None:
    """A literal ``%`` took the number's first digits into an escape kept as written (``%13``,
    a quote's ``%22``) and another digit was escaped (``%31``): shown escaped, no pass read the digits together,
    and the number went through whole, one decoding away (the old text shown decoded it)."""
    assert mask_text(written) == masked
    assert mask_url(written) == masked


def test_a_number_after_a_literal_percent_sign_with_a_query_plus_and_an_escaped_digit_is_masked() -> None:
    """As above, with a form-encoded query's ``+`` between the groups, which reads as a space."""
    assert mask_url("Patient?telecom=%139+%375838243") == "Patient?telecom=%139+****8243"


def test_a_number_an_id_s_stars_free_after_a_literal_percent_and_hex_digit_is_masked_at_once() -> None:
    """The stars of an ID freed eighteen digits before it to read as one number, but only
    with the ``%2`` before them read apart from the ``%30`` after it (:func:`_variants`), which
    the search of the starred reading did not try: masking the result again hid ten more."""
    written = "%2%30%C2%AD%33%371 6880123%34%33%35010519_491231９663"
    masked = mask_text(written)
    assert mask_text(masked) == masked
    assert "6880123" not in masked


@pytest.mark.parametrize(
    ("written", "birth_day"),
    [("%110101 19900307 1234", "0307"), ("涨幅50%530514-1995-0420-6030", "0420"), ("%11 0101 1990 0307 1234", "0307")],
)
def test_a_grouped_id_card_number_after_a_literal_percent_sign_keeps_its_birth_date_hidden(
    written: str, birth_day: str
) -> None:
    """Read as a URL its digits after ``%11`` looked like a landline, whose masking hid four
    digits; the ID's own hiding was passed over for it and the month and day went through."""
    assert birth_day not in mask_text(written)


@pytest.mark.parametrize("written", ["%17%3235977512", "号%46.10431947061853%2D32号", "%138%2D0013%2D8000"])
def test_digits_a_literal_percent_sign_and_escapes_join_are_masked(written: str) -> None:
    """Neither reading alone saw the number (``%17`` literal, then ``%32`` an escaped 2): it
    went through as ``%17235977512``, which masking again would have masked."""
    masked = mask_text(written)
    assert mask_text(masked) == masked


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789%ABCDEF -.+x号"), max_size=40))
def test_masked_text_holds_nothing_more_to_mask(text: str) -> None:
    masked = mask_text(text)
    assert mask_text(masked) == masked


def test_an_old_permanent_residence_number_after_a_percent_sign_keeps_its_own_masking() -> None:
    """``%DE`` read as an escape, the number was found only as written, and kept three more
    digits than its own masking keeps."""
    assert mask_text("%DEU123456789012") == "%DEU********9012"


@pytest.mark.parametrize(
    "written",
    [
        "Patient?telecom=" + "".join(f"%EF%BC%{0x90 + int(digit):02X}" for digit in "13800138000"),
        "Patient?telecom=138%E3%80%800013%E3%80%808000",
        "identifier=410105%C2%A019491231%C2%A00020",
    ],
)
def test_a_number_of_percent_encoded_full_width_characters_is_masked(written: str) -> None:
    """Full-width digits and ideographic or no-break spaces, escaped as UTF-8, were not read
    as a number's characters: the number went through, plain to anyone who decodes it."""
    assert mask_text(written) != written


NUL = "\0"


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("138%E2%80%8B0013%E2%80%8B8000", "13800138000"),  # escaped zero-width spaces
        ("%EF%BC%880371%EF%BC%8968801234", "68801234"),  # escaped full-width brackets
        ("%%3313800138000", "13800138000"),  # a decoded 3 would complete %33
        ("410105%2%3019491231%2%300020", "410105 19491231 0020"),  # a decoded 0 would complete %20
        ("138%2%440013%2%448000", "138-0013-8000"),  # a decoded D would complete %2D
        (NUL.join(["%", "31%", "33%", "38%", "30%", "30%", "31%", "33%", "38%", "30%", "30%", "30"]), "13800138000"),
    ],
)
def test_no_number_appears_when_the_masked_text_is_decoded(written: str, number: str) -> None:
    """Escapes the reading kept, or made, went through, and one ``unquote`` showed the number
    (as a reader sees it: zero-width spaces unseen)."""
    assert number not in unquote(mask_text(written)).translate(FULL_WIDTH_DIGITS)


def escaped(text: str) -> str:
    return "".join(f"%{ord(character):02X}" for character in text)


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("%4" + escaped("ABC123456789012"), "ABC123456789012"),
        ("%4" + escaped("USA123456789012"), "USA123456789012"),
        ("%%41BC123456789012", "ABC123456789012"),
        ("%4" + escaped(ID_CARD), ID_CARD),
        ("%4" + escaped("13800138000"), "13800138000"),
        ("%" + escaped("13800138000"), "13800138000"),
        ("%1%33800138000", "13800138000"),
    ],
)
def test_no_number_appears_after_a_literal_percent_sign_and_hex_digit(written: str, number: str) -> None:
    """The escape after ``%4`` (``%41``, an A) was kept escaped, the number read without its
    first character, and one ``unquote`` showed ``%4ABC123456789012``; the hex digit joined
    what followed it (``%4USA…``, ``%4410105…``), and no pattern begins inside a word."""
    assert number not in unquote(mask_text(written))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["", *"0123456789ABCDEFabcdef"]),
    st.one_of(
        st.from_regex(r"\A[1-9][0-9]{16}[0-9X]\Z").map(lambda number: (number, number[6:14])),
        st.from_regex(r"\A1[3-9][0-9]{9}\Z").map(lambda number: (number, number[3:7])),
        st.from_regex(r"\A[A-Za-z]{3}[0-9]{12}\Z").map(lambda number: (number, number[3:11])),
    ),
    AROUND,
)
def test_no_escaped_number_appears_after_a_literal_percent_sign(
    digit: str, number: tuple[str, str], before: str
) -> None:
    """Its hidden digits, where they are nowhere else in the text, stay hidden."""
    written, hidden = number
    assume(written.count(hidden) == 1 and hidden not in before)
    assert hidden not in unquote(mask_text(f"{before}%{digit}{escaped(written)}"))


@pytest.mark.parametrize(
    "written",
    [
        "100000000 - 200000000",
        "20261206143000+0800 - 20261206150000+0800",
        "2026-12-06 14:30:00.0000  20261206",
        "86 120 1300 1400",
        "2024-12-06\n2024-12-07\n2024-12-08",  # one to a line
        "1500\n2000\n300",
    ],
)
def test_numbers_written_as_ranges_or_side_by_side_are_no_id_or_phone(written: str) -> None:
    assert mask_text(written) == written


@pytest.mark.parametrize(
    "written", ["IMG_20241206_143000_0001.jpg", "ADT_20241206_143000_1234.hl7", "scan_20241206_183000_12345.pdf"]
)
def test_a_file_name_of_a_date_a_time_and_a_counter_is_no_id_or_phone(written: str) -> None:
    """Eighteen digits in groups an underscore parts, as a file's name joins a date, a time and
    a counter, count as an ID only when they begin as one (410105_1949_1231_0020 is masked),
    and eleven (an evening's 183000 and a counter) as a mobile only in its own 3-4-4."""
    assert mask_text(written) == written


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("13800_138000", "138****8000"),
        ("tel_1380_0138_000", "tel_138****8000"),
        ("电话:1380_0138_000", "电话:138****8000"),
    ],
)
def test_a_mobile_number_in_other_groups_an_underscore_parts_alone_is_masked(written: str, masked: str) -> None:
    """Groups an underscore parts were taken for a file's time and counter wherever they
    stood, and a mobile so written (masked before) went through whole: they are a file's
    words only beside another group of digits so parted (scan_20241206_183000_12345)."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    "written",
    [
        "MSH|^~\\&|HIS|LAB|20241206143000\n2024-12-06 14:31:00 INFO sent",
        "sent bytes=1532768\n2024-12-06 14:31:00 INFO next",
        "took 0371688\n2024-12-06 14:31:00 INFO next",
    ],
)
def test_masking_keeps_the_line_break_between_a_lines_digits_and_the_next_lines_year(written: str) -> None:
    """A time stamp or a count ending one log line and the next line's year read as an ID's
    14 and 4 or a mobile's 7 and 4 digits (masked, as a leak loses to an over-mask); rewritten
    as one run, they joined the two lines into one."""
    assert mask_text(written).splitlines()[1] == written.splitlines()[1]


@pytest.mark.parametrize(
    "oid",
    [
        "urn:oid:2.16.156.1001.1234.5",
        "2.16.840.1.113883.19.5.99999.1",
        "2.16.156.10011.1.20.30.40",
        "OID 2.16.156.10011.2.3.138.1013.8000",
    ],
)
def test_an_oid_is_no_id_or_phone(oid: str) -> None:
    """Three of its components read as a dotted mobile (156.1001.1234), eighteen of its
    digits as an ID in groups: the OID was logged starred, or its dots dropped."""
    assert mask_text(oid) == oid


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("86.138.0013.8000", "86.138****8000"),
        ("+86.138.0013.8000", "+86.138****8000"),
        ("410105.1949.1231.0020", "410105********0020"),
        ("urn:oid:2.16.156.10011.0.1.410105194912310020", "urn:oid:2.16.156.10011.0.1.410105********0020"),
    ],
)
def test_a_dotted_number_after_its_country_code_or_an_id_ending_an_oid_is_masked(written: str, masked: str) -> None:
    """Dotted digits before a dotted number are its country code, or the number is not dotted."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [("sec 3.1.139.1234.5678", "sec 3.1.139****5678"), ("v9.12.139.1234.5678", "v9.12.139****5678")],
)
def test_a_dotted_number_after_dotted_numbers_no_oid_begins_with_is_masked(written: str, masked: str) -> None:
    """Two dotted numbers before it (a section's, a version's) made it an OID's components,
    though an OID's first arc is 0, 1 or 2 (ITU-T X.660)."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("1.138.0013.8000", "1.138****8000"),
        ("联系人:1.138.0013.8000;2.139.0013.9000", "联系人:1.138****8000;2.139****9000"),
        ("手机138.0013.8000.1号楼", "手机138****8000.1号楼"),
        ("1.410105.19491231.0020", "1.410105********0020"),
    ],
)
def test_a_dotted_number_beside_a_list_or_floor_number_is_masked(written: str, masked: str) -> None:
    """One dotted group of digits beside it was taken for an OID's: the number went through
    whole.  An OID has two more on one side, or one on each."""
    assert mask_text(written) == masked


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("1.138.0013.8000.2.139.0013.9000", "1.138****8000.2.139****9000"),
        ("v1.2.410105.19491231.0020", "v1.2.410105********0020"),
    ],
)
def test_a_dotted_number_with_a_group_no_oid_arc_can_be_is_masked(written: str, masked: str) -> None:
    """Dotted groups on both sides of it, or two before it, were taken for an OID's arcs:
    a list glued into one dotted run went through whole, though 0013 is no arc (an OID's
    arcs have no leading zero)."""
    assert mask_text(written) == masked


def test_a_record_with_a_bad_format_string_is_masked_whatever_spaces_its_number_has(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its arguments were written as their repr, which spells a no-break space ``\\xa0``:
    no longer a separator the number's pattern knows."""
    install_log_masking()
    with caplog.at_level(logging.INFO, logger="yiyang.test"):
        logging.getLogger("yiyang.test").info("merged %s into %s", "138\u00a00013\u00a08000")
    assert "0013" not in caplog.records[-1].getMessage()


@pytest.mark.parametrize(
    ("written", "masked"),
    [("50% 138\x0000138000", "50% 138\x0000138000"), ("%100000000000000000\x000", "%100000********0000\x000")],
)
def test_a_nul_in_the_text_is_kept_and_joins_no_number(written: str, masked: str) -> None:
    """The reading's marks are NULs, and removing every NUL joined the digits on either side
    of the text's own: into a mobile number masking had not seen, or an ID into 19 digits
    that are none (its birth date shown)."""
    assert mask_text(written) == masked


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A1[3-9]\d{9}\Z"), st.text(max_size=10))
def test_no_mobile_number_survives_a_percent_sign_before_it(phone: str, before: str) -> None:
    assert phone not in mask_text(f"{before}%{phone}")


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A1[3-9]\d{9}\Z"), AROUND)
def test_no_mobile_number_survives_masking(phone: str, before: str) -> None:
    before = before + " " if before[-1:].isdigit() else before
    assert phone not in mask_text(before + phone)


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"\A1[3-9][0-9]{9}\Z"),
    st.lists(st.integers(3, 8), min_size=1, max_size=2, unique=True),
    st.sampled_from([" ", "-", ".", "\t", "\u3000"]),
    AROUND,
)
def test_no_mobile_number_in_groups_survives_masking(phone: str, cuts: list[int], gap: str, before: str) -> None:
    """Cut into two or three groups of three digits or more (a single dot is a decimal point)."""
    cuts = sorted(cuts)
    if len(cuts) == 2 and cuts[1] - cuts[0] < 3:
        cuts = cuts[:1]
    gap = gap if gap != "." or len(cuts) == 2 else " "
    written = gap.join(phone[start:end] for start, end in zip([0, *cuts], [*cuts, 11], strict=True))
    # a letter, digit or dash right before it make it part of a word; a digit and a dot, of an OID
    last = before[-2:].translate(FULL_WIDTH_DIGITS)
    if last[-1:].isascii() and (last[-1:].isalnum() or last[-1:] == "-") or re.fullmatch(r"\d\.", last):
        before += " "
    assert phone not in re.sub(r"[\s.-]", "", mask_text(before + written).translate(FULL_WIDTH_DIGITS))


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\A0[1-9]\d{1,2}-?[2-8]\d{6,7}\Z"), AROUND)
def test_no_landline_survives_masking(phone: str, before: str) -> None:
    """Written apart from the words around it: after a digit, a hex digit and a dash (a UUID's
    groups) or a letter (an id), unless it is written as a label glued to it is (``Fax010-…``),
    it is no number."""
    last = before[-2:].translate(FULL_WIDTH_DIGITS)  # a full-width digit is a digit
    inside = last[-1:].isascii() and (last[-1:].isdigit() or (last[-1:].isalpha() and "-" not in phone))
    before = before + " " if inside or re.fullmatch(r"[0-9A-Fa-f]-", last) else before
    assert phone not in mask_text(before + phone)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789X +-.86USA身份证()（）af:T\t"), max_size=40))
def test_the_shortcut_for_text_without_a_long_digit_run_masks_as_the_full_scan(text: str) -> None:
    assert mask_text(text) == mask_phones(mask_id_cards(text))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789Xx_·，、 -.+()（）/^|86USA:"), max_size=40))
@example("1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1_1")
def test_a_pattern_left_out_for_what_a_text_lacks_matches_nothing_in_it(text: str) -> None:
    """Only the patterns a text holds the features of (three digits in a row, a full-width
    comma) are tried on it: those left out could not have matched."""
    tried = set(masking._applying(masking.ID_MASKS + masking.PHONE_MASKS, text))
    left_out = [mask for mask in masking.ID_MASKS + masking.PHONE_MASKS if mask not in tried]
    assert [mask.pattern.pattern for mask in left_out if mask.pattern.search(text)] == []


def test_log_records_of_the_gateway_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    install_log_masking()
    with caplog.at_level(logging.INFO, logger="yiyang.test"):
        logging.getLogger("yiyang.test").info("merged %s (phone %s)", ID_CARD, "13912345678")
    assert caplog.records[-1].getMessage() == "merged 410105********0020 (phone 139****5678)"


def test_a_record_with_a_bad_format_string_is_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    """Its message could not be formatted, so it was left alone, and logging's error report
    printed the raw arguments."""
    install_log_masking()
    with caplog.at_level(logging.INFO, logger="yiyang.test"):
        logging.getLogger("yiyang.test").info("merged %s into %s", ID_CARD)
    assert ID_CARD not in caplog.records[-1].getMessage()


def explained(capsys: pytest.CaptureFixture[str], row: str) -> tuple[str, str]:
    """``mappings explain`` of one row of the community-health sample: masked, then revealed."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "mappings/samples/community-health/个人基本信息表.csv"
    main(["mappings", "explain", "community-health", str(sample), "--record", row])
    masked = capsys.readouterr().out
    main(["mappings", "explain", "community-health", str(sample), "--record", row, "--reveal"])
    return masked, capsys.readouterr().out


def test_demo_style_output_is_masked_unless_revealed(capsys: pytest.CaptureFixture[str]) -> None:
    masked, revealed = explained(capsys, "row 14")
    assert ("110105********9910" in masked, "110105196304029910" in revealed) == (True, True)


def test_a_percent_encoded_name_is_masked_as_the_name_it_encodes() -> None:
    """Masked as written it read ``name=%**``: a URL no one sent, the family name lost."""
    assert mask_text("GET /fhir/Patient?name=%E5%BC%A0%E7%A7%80%E8%8B%B1&birthdate=1949-12-31") == (
        "GET /fhir/Patient?name=%E5%BC%A0**&birthdate=1949-12-31"
    )


def test_explain_masks_the_persons_name_unless_revealed(capsys: pytest.CaptureFixture[str]) -> None:
    masked, revealed = explained(capsys, "row 2")
    assert ("孙福春" in masked, "孙**" in masked, "孙福春" in revealed) == (False, True, True)


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("8613800000001", "86138****0001"),
        ("１３８０００００００１", "138****0001"),
        ("138.0000.0001", "138****0001"),
        ("410105 19491231 0020", "410105********0020"),
        ("４１０１０５１９４９１２３１００２０", "410105********0020"),
        # groups apart by the ideographic space, dash or dot of full-width input
        ("410105\u300019491231\u30000020", "410105********0020"),
        ("４１０１０５\u3000１９４９１２３１\u3000００２０", "410105********0020"),
        ("138－0000－0001", "138****0001"),
        ("138．0000．0001", "138****0001"),
    ],
)
def test_phones_and_ids_are_masked_however_typed(written: str, masked: str) -> None:
    assert mask_text(f"Patient?phone={written}") == f"Patient?phone={masked}"


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        # a Bundle entry's URL, recorded as the client wrote it
        (f"GET Patient?identifier={ENCODED_ID_CARD} → 200 OK", "GET Patient?identifier=410105********0020 → 200 OK"),
        (f"GET Patient/{ENCODED_ID_CARD.lower()} → 404", "GET Patient/410105********0020 → 404"),
        ("Patient?telecom=%31%33%38%30%30%30%30%30%30%30%31", "Patient?telecom=138****0001"),
        ("Patient?phone=%2B86%20138%200000%200001", "Patient?phone=+86 138 **** 0001"),
    ],
)
def test_a_percent_encoded_number_is_masked_as_the_number_it_encodes(written: str, masked: str) -> None:
    assert mask_text(written) == masked


def test_a_bearer_token_in_free_text_is_hidden() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"
    assert mask_text(f"GET /fhir/Patient?x={token}") == "GET /fhir/Patient?x=***"


@pytest.mark.parametrize("name", ["token", "api_key"])
def test_other_credential_parameters_are_never_recorded(name: str) -> None:
    assert mask_query([(name, "SuperSecret")]) == [(name, "***")]


def test_names_in_free_text_searches_and_filters_are_masked() -> None:
    assert (mask_query([("_text", "欧阳娜娜")]), mask_text("_filter=name eq 欧阳娜娜")) == (
        [("_text", "欧**")],
        "_filter=name eq 欧**",
    )


@pytest.mark.parametrize(
    ("written", "number"),
    [
        ("138%090013%098000", "138\t0013\t8000"),
        ("410105%0919491231%090020", "19491231"),
        ("USA%091234%095678%099012", "1234\t5678"),
    ],
)
def test_a_number_apart_by_escaped_tabs_is_masked(written: str, number: str) -> None:
    """Tabs separate groups; escaped (``%09``) they were kept as written and the number unseen."""
    assert number not in unquote(mask_text(written))


@pytest.mark.parametrize("written", ["1380 0138 000.5", "ABC 1234 5678 9012.5", "1380 0138 000-1"])
def test_a_grouped_number_followed_by_a_fraction_or_more_digits_stays(written: str) -> None:
    assert mask_text(written) == written


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("USA123456789012_1.jpg", "USA********9012_1.jpg"),
        ("护照扫描_USA123456789012·2", "护照扫描_USA********9012·2"),
        ("1381234567_1", "138****4567_1"),
        ("note_1381234567", "note_138****4567"),
        ("1380 0138 000_1", "138****8000_1"),
    ],
)
def test_a_number_an_underscore_or_middle_dot_joins_to_a_word_is_masked(written: str, masked: str) -> None:
    """An underscore or a middle dot parts a file's or a key's words; once they became marks,
    a digit after one read as the number going on, as after a decimal's dot, and the number
    went through whole, masked before they were."""
    assert mask_text(written) == masked


def test_the_province_codes_are_those_of_gb_t_2260_and_the_residence_permits() -> None:
    """masking.json keeps its own list, so that masking (every log line) does not load the
    3,000 divisions of the package's CodeSystem; the two may not drift apart."""
    divisions = json.loads((PACKAGE_DIR / "CodeSystem-gb-t-2260.json").read_text(encoding="utf-8"))
    provinces = {concept["code"][:2] for concept in divisions["concept"] if concept["code"].endswith("0000")}
    assert PROVINCE_CODES == provinces | {"83"}  # 台湾居民居住证, not a division of GB/T 2260


#: a token's system: OIDs, URLs, and runs of the characters a system may hold (digits, dots
#: and dashes among them, letters that begin a JWT or a time label)
TOKEN_SYSTEM = st.one_of(
    st.sampled_from(["urn:oid:2.16.156.10011.1.3", "http://loinc.org", "urn:oid:1.2.86.13800138000", "iat:"]),
    st.from_regex(r"\A[A-Za-z0-9:./_-]{1,40}\Z"),
    st.text(alphabet="0123456789.:-/eyJiat_X", min_size=1, max_size=40),
)
#: a token's code: numbers of every kind, their separators, and what masking reads around them
TOKEN_CODE = st.one_of(
    st.builds("".join, st.lists(st.one_of(ID_LIKE, st.sampled_from(["13800138000", "0371-68801234", "x"])))),
    st.text(alphabet="0123456789 -.+()（）Xx=&:@%|号０１２３\u3000\u200beyJ_at\"'", max_size=40),
    st.text(max_size=30),
)


@settings(max_examples=500, deadline=None)
@given(TOKEN_SYSTEM, TOKEN_CODE)
@example("urn:CHN", "123456789012")  # a system ending in a country's letters
def test_a_token_is_masked_apart_from_its_system_as_it_is_whole(system: str, code: str) -> None:
    """The fast path of ``mask_query`` (the system masked once, the code alone) and masking the
    whole value agree."""
    value = f"{system}|{code}"
    assert mask_query([("identifier", value)]) == [("identifier", mask_text(value))]


@settings(max_examples=500, deadline=None)
@given(TOKEN_SYSTEM, TOKEN_CODE, st.booleans(), st.booleans())
@example("urn:oid:2.16.156.10011.1.3", "11010119491231003X", True, True)
@example("urn:CHN", "123456789012", True, False)
def test_a_token_search_url_is_masked_in_parts_as_it_is_whole(
    system: str, code: str, escaped_system: bool, escaped_bar: bool
) -> None:
    """The fast path of ``mask_url`` (a conditional entry's type, parameter and system masked
    once, the code alone) and masking the whole URL agree, escaped or not."""
    if escaped_system:
        system = system.replace(":", "%3A").replace("/", "%2F")
    url = f"Patient?identifier={system}{'%7C' if escaped_bar else '|'}{code}"
    assert mask_url(url) == masking._masked(url, form_encoded="+" in code)


#: a search parameter's name: one of those masking reads, with a modifier or chain, in any case,
#: or any text (an ID number or a phone a client put in the name)
PARAMETER_NAME = st.one_of(
    st.sampled_from(["access_token", "Access_Token", "name", "family:exact", "subject:Patient.name", "_text"]),
    st.sampled_from(["identifier", "telecom", "410105194912310020", "13800138000", "_count"]),
    st.text(max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(PARAMETER_NAME, st.text(max_size=30))
def test_a_parameter_seen_before_is_masked_as_it_was_the_first_time(name: str, value: str) -> None:
    """``mask_query`` remembers how each parameter name is read (credential, names, other)
    and masked: a name seen before, and every value under it, is masked as a fresh reading
    masks it."""
    first = mask_query([(name, value)])
    assert mask_query([("_count", "1"), (name, value)])[1:] == first == [fresh_mask_query(name, value)]


def fresh_mask_query(name: str, value: str) -> tuple[str, str]:
    """What ``mask_query`` records of one pair, read as its docstring says, from scratch."""
    if name.split(":", 1)[0].lower() in CREDENTIAL_PARAMETERS:
        value = "***"
    elif is_name_parameter(name) or name in TEXT_PARAMETERS:
        value = ",".join(mask_name(part) for part in value.split(","))
    return mask_text(name), mask_query([("x", value)])[0][1]


@pytest.mark.parametrize("mark", ["\u00ad", "\u200e", "\u200f", "\u202a", "\u2066", "\u061c"])
def test_an_invisible_format_character_inside_a_number_does_not_hide_it(mark: str) -> None:
    """A soft hyphen, a direction mark or an isolate splits the digits, and no viewer shows it."""
    assert mask_text(f"138{mark}0013{mark}8000") == "138****8000"


def test_an_escaped_left_to_right_mark_inside_a_number_does_not_hide_it() -> None:
    assert mask_text("tel=138%E2%80%8E00138000") == "tel=138****8000"


@pytest.mark.parametrize("name", ["Grace", "Mike", "3B", "1"])
def test_a_landline_after_a_name_ending_in_a_hex_letter_and_a_dash_is_masked(name: str) -> None:
    """Only four hex digits and a dash before it are a UUID's group."""
    assert "68801234" not in mask_text(f"{name}-0371-68801234")


@pytest.mark.parametrize("text", ["110105491231 1381234567", "4310.519491231189 1949123186", "9 03715234.037119491231"])
def test_masking_twice_is_masking_once(text: str) -> None:
    """A digit starred on the first pass no longer stops a match beside it."""
    once = mask_text(text)
    assert mask_text(once) == once


def test_an_hl7_telephone_in_components_is_masked() -> None:
    """An XTN's country, area and local number are components of their own (^86^371^…)."""
    assert "68801234" not in mask_text("PID|1||||||||||||^PRN^PH^^86^371^68801234")


#: the separator table (gateway/masking.json), by kind
SEPARATORS = {
    kind: characters
    for kind, characters in json.loads((PACKAGE_ROOT / "masking.json").read_text(encoding="utf-8"))[
        "separators"
    ].items()
    if kind != "description"
}
#: what may stand alone between any two groups of a number: a blank, a line break or a mark
BETWEEN_GROUPS = st.sampled_from(["", *SEPARATORS["blanks"], *SEPARATORS["lineBreaks"], *SEPARATORS["marks"]])
#: what stands between a number's three groups: any of those, or a full-width comma twice
SEPARATOR_PAIRS = st.one_of(
    st.tuples(BETWEEN_GROUPS, BETWEEN_GROUPS), st.sampled_from(SEPARATORS["commas"]).map(lambda comma: (comma, comma))
)
#: text around a number with no digit (which would make it another number) and no ``%``
#: (which would make its first digits an escape)
AROUND_A_NUMBER = st.text(st.characters(blacklist_categories=("Nd",), blacklist_characters="%"), max_size=20)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@st.composite
def id_card_numbers(draw: st.DrawFn) -> str:
    """A valid 18-character 身份证号: a province's division code, a birth date, a sequence
    number and the GB 11643 check character."""
    region = draw(st.sampled_from(sorted(PROVINCE_CODES))) + draw(st.from_regex(r"\A\d{4}\Z"))
    born = draw(st.dates(date(1900, 1, 1), date(2026, 12, 31))).strftime("%Y%m%d")
    body = region + born + draw(st.from_regex(r"\A\d{3}\Z"))
    return body + "10X98765432"[sum(int(digit) * weight for digit, weight in zip(body, ID_WEIGHTS, strict=True)) % 11]


@settings(max_examples=300, deadline=None)
@given(id_card_numbers(), SEPARATOR_PAIRS, AROUND_A_NUMBER, AROUND_A_NUMBER)
@example("110000200001010000", ("，", "，"), "", "X")  # an X after it: masked as after a space
def test_a_valid_id_card_number_between_any_separators_is_masked(
    id_card: str, separators: tuple[str, str], before: str, after: str
) -> None:
    first, second = separators
    masked = mask_text(f"{before}{id_card[:6]}{first}{id_card[6:14]}{second}{id_card[14:]}{after}")
    assert id_card[6:14] not in masked


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"\A1[3-9]\d{9}\Z"), SEPARATOR_PAIRS, AROUND_A_NUMBER, AROUND_A_NUMBER)
def test_a_mobile_number_between_any_separators_is_masked(
    phone: str, separators: tuple[str, str], before: str, after: str
) -> None:
    first, second = separators
    assume(phone[3:7] not in f"{phone[:3]}*{phone[7:]}")  # else the digits kept show them
    assert phone[3:7] not in mask_text(f"{before}{phone[:3]}{first}{phone[3:7]}{second}{phone[7:]}{after}")


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [*"0123456789", *"".join(map("".join, SEPARATORS.values())), *"%ABCDEFUSXx+@=|号", "%7C", "%2F", "%3D"]
        ),
        max_size=40,
    ).map("".join)
)
def test_masking_a_masked_text_changes_nothing(text: str) -> None:
    """Idempotent over every separator of the table, escapes and an old 永居证's letters."""
    masked = mask_text(text)
    assert mask_text(masked) == masked
