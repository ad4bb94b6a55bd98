"""Paging links (gateway/fhir/paging.py): the request again at other offsets."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from gateway.fhir.paging import page_links

#: any text a decoded query may hold (lone surrogates cannot be sent as UTF-8)
_TEXT = st.text(st.characters(exclude_categories=["Cs"]))
_PAIRS = st.lists(st.tuples(_TEXT.filter(lambda key: key not in ("_count", "_offset")), _TEXT), max_size=4)


def relations(total: int | None, offset: int, count: int = 10) -> dict[str, int]:
    links = page_links("http://x/fhir/Patient", [("name", "张")], count, offset, more=False, total=total)
    return {link["relation"]: int(link["url"].rsplit("=", 1)[1]) for link in links}


def test_a_known_total_gives_a_last_link() -> None:
    assert relations(62, 20)["last"] == 60


def test_a_page_past_the_end_leads_back_to_the_last_page() -> None:
    """Its previous link led to offset 990 of 62 matches: another empty page."""
    assert relations(62, 1000)["previous"] == 60


def test_no_last_link_without_a_total() -> None:
    assert "last" not in relations(None, 20)


def test_an_empty_result_has_its_last_page_at_the_start() -> None:
    assert relations(0, 0)["last"] == 0


def test_an_anchor_replaces_the_one_the_request_carried() -> None:
    """A page reached by a link asks with the anchor again: its own links carry it once."""
    pairs = [("_upto", "7"), ("_count", "10"), ("_offset", "10")]
    links = page_links("http://x/fhir/Basic/_history", pairs, 10, 10, more=False, anchor=[("_upto", "7")])
    assert links[0]["url"] == "http://x/fhir/Basic/_history?_upto=7&_count=10&_offset=10"


def test_a_cursor_goes_on_the_next_link_alone() -> None:
    """``previous`` and ``last`` count from the start: a cursor there would start them past it."""
    links = page_links("http://x/fhir/P/$everything", [], 2, 2, more=True, total=9, cursor=("_after", "Basic/b"))
    assert [link["relation"] for link in links if "_after=Basic/b" in link["url"]] == ["next"]


@given(_PAIRS)
def test_a_link_parses_back_to_the_pairs_it_repeats(pairs: list[tuple[str, str]]) -> None:
    """A link a client follows asks what the request asked: its own escaping undone, every
    character (an OID's ``:``, a token's ``|``, a name's 汉字, a ``+`` and a space) the same."""
    url = page_links("http://x/fhir/Patient", pairs, 20, 0, more=False)[0]["url"]
    assert parse_qsl(urlsplit(url).query, keep_blank_values=True)[: len(pairs)] == pairs


@given(_PAIRS)
def test_a_link_writes_the_pairs_as_urlencode_does(pairs: list[tuple[str, str]]) -> None:
    """The same text as ``urllib.parse.urlencode``, which the links were written with before
    their quoting moved to a table (clients and caches saw that text)."""
    url = page_links("http://x/fhir/Patient", pairs, 20, 0, more=False)[0]["url"]
    assert url.startswith(f"http://x/fhir/Patient?{urlencode(pairs)}")
