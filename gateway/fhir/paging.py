"""Paging links of searchset and history Bundles: the request again with another ``_offset``.

Search, history and the audit trail page alike, so their links are built in one place: the
request's own parameters (``_format`` and ``_since`` included) percent-encoded once, then
``_count`` and the offset of each page.  A link a client follows must parse as the request
did: a time zone's ``+`` written raw would come back as a space.

An offset alone shifts when the archive changes between pages (a write lists a version on
two pages of a history, a deletion leaves a member of ``$everything`` on none), so a caller
may add an ``anchor`` every link carries (the history's ``_upto``: the newest version the
first page counted, so that later versions never shift its pages) and a ``cursor`` only
``next`` carries (``$everything``'s ``_after``: the last member shown, where the next page
starts whatever was deleted before it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import urlencode

#: parameters the links set themselves
_PAGING = ("_count", "_offset")
#: each byte as ``urlencode`` writes it (``quote_plus``: letters, digits and ``_.-~`` as they
#: are, a space as ``+``, any other byte as ``%XX``), by the code point of its Latin-1 reading
_QUOTED = {
    byte: chr(byte) if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) in "_.-~") else f"%{byte:02X}"
    for byte in range(256)
}
_QUOTED[ord(" ")] = "+"


def _quoted(text: object) -> str:
    """``quote_plus(str(text))``, its UTF-8 bytes mapped in C (``str.translate``): quote_plus
    maps byte by byte in a Python loop, 8–9 µs of the 16–22 µs a search by identifier's
    links cost, for its one pair."""
    return str(text).encode().decode("latin-1").translate(_QUOTED)


def _query(pairs: Iterable[tuple[str, str]]) -> str:
    """The query string ``urlencode(pairs)`` writes."""
    return "&".join(f"{_quoted(key)}={_quoted(value)}" for key, value in pairs)


def page_links(
    address: str,
    pairs: Iterable[tuple[str, str]],
    count: int,
    offset: int,
    *,
    more: bool,
    pages: bool = True,
    total: int | None = None,
    anchor: Sequence[tuple[str, str]] = (),
    cursor: tuple[str, str | None] | None = None,
) -> list[dict[str, str]]:
    """``self``, then (unless ``pages`` is False, as for a count alone) ``first``, ``next``
    when ``more`` matches follow, ``previous`` after the first page and, when the ``total``
    is known, ``last``.  A page past the end leads back to the last page, not to the page
    before it, which would be as empty.  ``anchor`` pairs go on every link, replacing the
    request's own; ``cursor`` names a parameter ``next`` carries with the value given (none
    when None) and ``self`` with the request's own, since it says where this page began."""
    pairs = list(pairs)
    named = cursor[0] if cursor else None
    replaced = {*_PAGING, *(name for name, _ in anchor), named}
    kept = _query([*((k, v) for k, v in pairs if k not in replaced), *anchor])
    prefix = f"{address}?{kept}{'&' if kept else ''}_count={count}&_offset="

    def link(relation: str, at: int, position: str | None = None) -> dict[str, str]:
        tail = f"&{urlencode([(named, position)], safe='/')}" if named and position is not None else ""
        return {"relation": relation, "url": f"{prefix}{at}{tail}"}

    links = [link("self", offset, next((v for k, v in pairs if k == named), None))]
    if pages:
        links.append(link("first", 0))
        last = (max(total - 1, 0) // count) * count if total is not None and count > 0 else None
        if more:
            links.append(link("next", offset + count, cursor[1] if cursor else None))
        if offset > 0:
            before = offset - count if last is None else min(offset - count, last)
            links.append(link("previous", max(0, before)))
        if last is not None:
            links.append(link("last", last))
    return links
