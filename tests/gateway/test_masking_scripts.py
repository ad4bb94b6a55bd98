"""Numbers written in another script's digits are masked as ASCII ones are.

The normalisers refuse a value holding an Arabic-Indic ٣ or a Devanagari ३
(``mapping.foreign-digits``) and their reason quotes it: a 联系电话 or a 身份证号 so written
reached the exchange record (the auditors' reports) whole, since masking knew 0-9 and the
full-width ０-９ alone."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from pathlib import Path
from urllib.parse import quote, unquote

from hypothesis import given
from hypothesis import strategies as st

from gateway.cli import main
from gateway.masking import _read_as_ascii, mask_id_cards, mask_text, mask_url

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "mappings/samples/community-health/个人基本信息表.csv"
#: the zero of every script's decimal digits (its nine others follow it)
ZEROS = [chr(cp) for cp in range(0x110000) if chr(cp).isdecimal() and unicodedata.decimal(chr(cp)) == 0]
ID_CARD, PHONE = "410102195608016041", "13251610956"


def written_in(zero: str, number: str) -> str:
    """``number``'s digits in the script whose zero is ``zero`` (an X stays an X)."""
    return "".join(chr(ord(zero) + int(c)) if c.isdigit() else c for c in number)


def as_ascii(text: str) -> str:
    """``text`` with every decimal digit read as its ASCII one."""
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)


def ingested_in_arabic_indic_digits(tmp_path: Path) -> str:
    """The exchange issues' texts (zh-CN and en) of the sample's first row ingested with its
    身份证号 and phone in Arabic-Indic digits."""
    header, row = SAMPLE.read_text(encoding="utf-8-sig").splitlines()[:2]
    cells = row.split(",")
    assert (cells[5], cells[7]) == (ID_CARD, PHONE)
    cells[5], cells[7] = written_in("٠", ID_CARD), written_in("٠", PHONE)
    source = tmp_path / "个人基本信息表.csv"
    source.write_text(f"{header}\n{','.join(cells)}\n", encoding="utf-8")
    database = tmp_path / "archive.sqlite"
    main(["ingest", "--source", "community-health", "--database", f"sqlite:///{database}", str(source)])
    with sqlite3.connect(database) as connection:
        return " ".join(row[0] + row[1] for row in connection.execute("SELECT text_zh, text_en FROM exchange_issue"))


def test_a_phone_in_arabic_indic_digits_is_masked_in_the_exchange_record(tmp_path: Path) -> None:
    texts = ingested_in_arabic_indic_digits(tmp_path)
    assert [number in as_ascii(texts) for number in (ID_CARD, PHONE)] == [False, False]


def test_the_catalogs_advice_beside_a_masked_number_is_recorded_as_written(tmp_path: Path) -> None:
    """mapping.foreign-digits advises "（全角 ０-９ 亦可）": the exchange record showed it as
    "0-9", folded with the number it quotes."""
    assert "（全角 ０-９ 亦可）" in ingested_in_arabic_indic_digits(tmp_path)


NUMBERS = st.sampled_from([ID_CARD, "11010519491231002X", "110105491231002", PHONE, "0371-68801234"])


@given(st.sampled_from(ZEROS), NUMBERS, st.sampled_from(["", "联系电话：", "tel ", "号码 "]))
def test_a_number_in_any_scripts_digits_is_masked(zero: str, number: str, before: str) -> None:
    masked = mask_text(before + written_in(zero, number))
    assert number not in as_ascii(masked)


@given(st.sampled_from(ZEROS), st.sampled_from([ID_CARD, "11010519491231002X"]))
def test_an_id_card_in_any_scripts_digits_is_masked_by_the_id_masking(zero: str, number: str) -> None:
    assert number not in as_ascii(mask_id_cards(written_in(zero, number)))


def test_the_other_scripts_digits_masking_reads_are_those_unicode_has() -> None:
    """gateway/masking.json keeps each script's zero (masking every log line does not scan
    Unicode's million code points); a newer Unicode's new digits show here."""
    kept = json.loads((ROOT / "gateway/masking.json").read_text(encoding="utf-8"))["otherDigits"]["zeros"]
    assert [chr(int(zero, 16)) for zero in kept] == [zero for zero in ZEROS if not zero.isascii()]


@given(st.sampled_from(ZEROS), NUMBERS)
def test_a_number_in_any_scripts_digits_percent_encoded_in_a_url_is_masked(zero: str, number: str) -> None:
    """A digit beyond the BMP (mathematical 𝟏, Adlam 𞥑 …) is four bytes of UTF-8, which the
    URL reading decoded one escape at a time, as no character."""
    masked = mask_url("Patient?telecom=" + quote(written_in(zero, number)))
    assert number not in as_ascii(unquote(masked))


#: text around a number that masking reads as ASCII but must show as written: the catalog's
#: own advice (mapping.foreign-digits), an en dash of a range, an ideographic space
ADVICE = "请用 0-9（全角 ０-９ 亦可）书写；体温 30–45 Cel\u3000"


@given(
    st.sampled_from(
        ["", "电话 13800138000；", "１３８００１３８０００，", "身份证 ４１０１０５１９４９１２３１００２０ "]
    )
)
def test_text_beside_a_number_is_shown_as_written(before: str) -> None:
    """Digits are folded to ASCII to find numbers, and only the numbers found are shown so:
    the exchange issue showed the catalog's "（全角 ０-９ 亦可）" as "0-9"."""
    assert mask_text(before + ADVICE).endswith(ADVICE)


#: text as numbers are written in full-width and other scripts' digits, with the separators
#: and invisible characters masking reads through, beside text that is no number
FOLDED_TEXT = st.text(st.sampled_from("0123456789１３８０٣ \u3000－—–．，\u200b\u00a0-.Xｘ（）+86年电话"), max_size=40)


@given(FOLDED_TEXT)
def test_what_is_shown_reads_as_the_text_read_as_ascii_masked(text: str) -> None:
    """Shown as written outside its numbers, the masked text still reads, character for
    character, as masking the text read as ASCII does: no digit it hides comes back."""
    assert _read_as_ascii(mask_text(text)) == mask_text(_read_as_ascii(text))


#: what stands between numbers in text: Chinese, Latin (not an X, which an ID ends with) and
#: punctuation that parts no number's groups
WORDS = "张秀英号码电话abcABC!?。：;"
#: what reading as ASCII changes (an ideographic or no-break space, a full-width dash or dot,
#: an en dash) or drops (a zero-width space, a soft hyphen)
READ_OTHERWISE = "\u3000\u00a0－–．\u200b\u00ad"


@st.composite
def in_scripts(draw: st.DrawFn, number: str) -> str:
    """``number``'s digits each in a script of its own (an X full-width or not), a zero-width
    character after any of them."""
    return "".join(
        (written_in(draw(st.sampled_from(ZEROS)), c) if c.isdigit() else draw(st.sampled_from("XＸ")))
        + draw(st.sampled_from(["", "", "\u200b", "\u00ad"]))
        for c in number
    )


@st.composite
def words_and_short_numbers(draw: st.DrawFn) -> str:
    """Words, and numbers of at most four digits in any scripts each after a word: nothing
    masking reads as an identifier or a phone number (ten digits at least)."""
    pieces = []
    for _ in range(draw(st.integers(0, 4))):
        pieces.append(draw(st.sampled_from(WORDS)) + draw(st.text(st.sampled_from(WORDS + READ_OTHERWISE), max_size=4)))
        pieces.append(draw(in_scripts(draw(st.from_regex(r"\A[0-9]{0,4}\Z")))))
    return "".join(pieces)


@given(st.from_regex(r"\A[0-9]{17}[0-9X]\Z"), st.data(), words_and_short_numbers(), words_and_short_numbers())
def test_text_around_a_number_in_any_mix_of_scripts_digits_is_shown_as_written(
    id_card: str, data: st.DataObject, before: str, after: str
) -> None:
    """The masked number is shown read as ASCII; every other character as written: a
    full-width or an Arabic-Indic digit, an ideographic space, a zero-width space."""
    written = data.draw(in_scripts(id_card))
    masked = mask_text(f"{before}号：{written}。{after}")
    assert masked == f"{before}号：{id_card[:6]}{'*' * 8}{id_card[14:]}。{after}"
