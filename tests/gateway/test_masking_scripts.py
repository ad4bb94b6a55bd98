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
from gateway.masking import mask_id_cards, mask_text, mask_url

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


def test_a_phone_in_arabic_indic_digits_is_masked_in_the_exchange_record(tmp_path: Path) -> None:
    header, row = SAMPLE.read_text(encoding="utf-8-sig").splitlines()[:2]
    cells = row.split(",")
    assert (cells[5], cells[7]) == (ID_CARD, PHONE)
    cells[5], cells[7] = written_in("٠", ID_CARD), written_in("٠", PHONE)
    source = tmp_path / "个人基本信息表.csv"
    source.write_text(f"{header}\n{','.join(cells)}\n", encoding="utf-8")
    database = tmp_path / "archive.sqlite"
    main(["ingest", "--source", "community-health", "--database", f"sqlite:///{database}", str(source)])
    with sqlite3.connect(database) as connection:
        texts = " ".join(row[0] + row[1] for row in connection.execute("SELECT text_zh, text_en FROM exchange_issue"))
    assert [number in as_ascii(texts) for number in (ID_CARD, PHONE)] == [False, False]


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
