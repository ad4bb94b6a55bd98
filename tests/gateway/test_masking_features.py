"""Which patterns masking tries on a text: those whose features the text holds.

A reference whose id is mostly digits (``Patient/00000000-0000-0000-0000-00000001eef0``, as a
generator of sequential UUIDs writes them) has ten digits with dashes between them, so every
one of the thirteen patterns was tried on it, though it holds no mobile prefix, no trunk 0, no
86, no area code and dash, no birth date: 84,000 references cost the audit thread seconds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.masking import (
    ID_MASKS,
    PHONE_MASKS,
    _applying,
    _bare_id_card_masked,
    _masked_both_ways,
    _scanned,
)

MOSTLY_DIGITS = "Patient/00000000-0000-0000-0000-00000001eef0"


def test_a_reference_of_mostly_zeros_is_tried_by_the_id_patterns_alone() -> None:
    tried = [mask.pattern for mask in _applying(ID_MASKS + PHONE_MASKS, MOSTLY_DIGITS)]
    assert [mask.pattern for mask in PHONE_MASKS if mask.pattern in tried] == []


#: text as numbers are written: digits (full-width ones and other scripts' too), every kind of
#: separator, the letters of an old 永居证 and an extension, a plus, brackets, a bar
CHARACTERS = st.sampled_from("0123456789" * 4 + "１３８٠١٣" + " -._·，、/()（）^|+86XxUSAext:=")
#: numbers of every kind each pattern masks, as the documentation writes them
NUMBERS = st.sampled_from(
    ["13800138000", "138 0013 8000", "1380 0138 000", "138，0013，8000", "1381234567", "+86(138)00138000"]
    + ["410105194912310020", "410105 1949 1231 0020", "410105、19491231、0020", "41010519491231002", "110105491231002"]
    + ["USA123456789012", "CHN^123456789012", "0371-68801234", "(0371)68801234", "0371/68801234", "0371，68801234"]
    + ["+86-371-66884234", "0086 10 8888 6666", "86-371-68801234", "^86^371^68801234", "10-88886666", "371-68801234"]
)
TEXT = st.one_of(
    st.text(CHARACTERS, max_size=40),
    st.tuples(st.text(CHARACTERS, max_size=6), NUMBERS, st.text(CHARACTERS, max_size=6)).map("".join),
)


@settings(max_examples=3000)
@given(TEXT)
def test_a_pattern_that_matches_is_never_left_untried(text: str) -> None:
    """The features are what each pattern needs: skipping one masks nothing less."""
    tried = [mask.pattern for mask in _applying(ID_MASKS + PHONE_MASKS, text)]
    assert [
        m.pattern.pattern for m in ID_MASKS + PHONE_MASKS if m.pattern.search(text) and m.pattern not in tried
    ] == []


#: any text that is one 18-character 身份证号 alone, of any digits: valid or not, begun as a
#: mobile number (13…), a landline (0…) or a country code (86…) does
BARE_ID_CARD = st.tuples(
    st.sampled_from(["", "13", "0", "010", "86", "41010519491231", "11010120240229"]),
    st.text("0123456789", min_size=17, max_size=17),
    st.sampled_from("0123456789Xx"),
).map(lambda parts: (parts[0] + parts[1])[:17] + parts[2])


@settings(max_examples=3000)
@given(BARE_ID_CARD)
def test_a_bare_id_card_is_masked_as_every_scan_masks_it(number: str) -> None:
    """The shortcut for a code that is an ID alone hides what scanning it with every pattern,
    as written and read as a URL (:func:`_masked_both_ways`), hides."""
    scanned = {_scanned(number), _scanned(_masked_both_ways(number))}
    assert scanned == {_bare_id_card_masked(number)}
