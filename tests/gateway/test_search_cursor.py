"""A next link's ``_after``: the values of the last match shown, read back only in the form its
order takes, so a token a client altered is a 400 at ``_after``, never a statement the
database fails on."""

from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.search import cursor
from gateway.search.parameters import SearchParameters
from gateway.search.query import SearchError, SortKey, parse_search
from profiles.registry import Registry

#: family, then birth date descending: a text column, then two instants (latest end first)
ORDER = [SortKey("family", "string"), SortKey("birthdate", "date", descending=True)]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
INSTANT = st.datetimes().map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
ID = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
PARAMETERS = SearchParameters(Registry())


def token(*payload: object) -> str:
    """A token as a client could forge it."""
    return base64.urlsafe_b64encode(orjson.dumps(list(payload))).rstrip(b"=").decode()


@given(st.one_of(st.none(), TEXT), st.one_of(st.none(), INSTANT), st.one_of(st.none(), INSTANT), ID)
def test_a_token_gives_back_the_values_it_was_written_with(
    family: str | None, high: str | None, low: str | None, resource_id: str
) -> None:
    values = (family, high, low, resource_id)
    assert cursor.decode(cursor.encode(ORDER, values), ORDER) == values


@given(st.text(max_size=200))
def test_any_after_is_read_or_refused_as_no_page_cursor(after: str) -> None:
    try:
        parse_search("Patient", [("_sort", "family,-birthdate"), ("_after", after)], PARAMETERS)
    except SearchError as error:
        assert (error.message_id, error.expression) == ("http.not-a-page-cursor", "_after")


@pytest.mark.parametrize(
    "forged",
    [
        token("family,-birthdate", "wang\x00", None, None, "a"),  # a NUL PostgreSQL refuses in text
        token("family,-birthdate", 3, None, None, "a"),  # a number where text sorts
        token("family,-birthdate", None, None, None, "../a"),  # no resource id
        token("family,-birthdate", None, None, "a"),  # a value short
        token("-family,-birthdate", None, None, None, "a"),  # another order's
        token("family,-birthdate", None, None, None, None),  # no id at all
        "not+base64/",
    ],
    ids=["nul", "number-for-text", "bad-id", "short", "other-order", "no-id", "not-base64"],
)
def test_a_forged_token_is_no_page_cursor(forged: str) -> None:
    assert cursor.decode(forged, ORDER) is None


def test_a_number_column_takes_no_boolean() -> None:
    """JSON's true is Python's 1: as a quantity it would seek past 1.0."""
    order = [SortKey("value-quantity", "quantity")]
    assert cursor.decode(token("value-quantity", True, "a"), order) is None
