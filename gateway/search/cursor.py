"""Where the next page of a search begins: ``_after``, the sort values of the match before it.

Every search orders its matches by its ``_sort`` keys, each by one or two columns of a
match's index rows, and then by id (:func:`order_columns`), so the values of the last match
shown tell exactly where the next page starts, whatever was written or deleted meanwhile.
An offset shifted instead: a match deleted before it left another on no page, and one
written before it showed the last match again.

A ``next`` link carries the values as one opaque, URL-safe token: base64url of the JSON array
of the order it was written for (the ``_sort`` keys applied), each column's value (null for a
match without one) and the id.  The token comes back from the client, so it is read as
untrusted input: one that does not decode to values of the form its order takes is refused
(the caller's 400), never handed to a database that would fail on it (a NUL in a text, an
integer past a float).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from gateway.search.query import SortKey

#: what one column of an order holds for a match: text, a number, or nothing (no value)
Value = str | float | None

#: the columns of a search parameter's index rows that sort it, by its type: (ascending,
#: descending).  A date ascending goes by the earliest moment its values cover, descending by
#: the latest (an open period, still going on, first), and values that tie there (periods
#: open alike) by the other end
SORT_COLUMNS = {
    "string": (("value",), ("value",)),
    "token": (("value",), ("value",)),
    "uri": (("value",), ("value",)),
    "date": (("low", "high"), ("high", "low")),
    "number": (("number",), ("number",)),
    "quantity": (("number",), ("number",)),
}

_TOKEN = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)


@dataclass(frozen=True)
class OrderColumn:
    """One term of a search's order: the resource's ``id`` or ``last_updated``, or a column of
    the index rows of the search parameter ``param`` (the least of a match's values
    ascending, the greatest descending; a match without one sorts last either way)."""

    column: str
    descending: bool = False
    param: str = ""

    @property
    def indexed(self) -> bool:
        """Whether the value comes from index rows, and so may be missing."""
        return self.column not in _OWN_COLUMNS


#: columns of a table's own, never missing: a resource's id and time of writing, an audit
#: event's time recorded and place in the chain
_OWN_COLUMNS = frozenset({"id", "last_updated", "recorded", "seq"})


def order_columns(sort: Sequence[SortKey]) -> list[OrderColumn]:
    """The terms the matches are ordered by: each ``_sort`` key's, then the id (ascending,
    unless the last key is the id), so that no two matches tie and a page ends at one place."""
    columns: list[OrderColumn] = []
    for key in sort:
        if key.param == "_id":
            columns.append(OrderColumn("id", key.descending))
        elif key.param == "_lastUpdated":
            columns.append(OrderColumn("last_updated", key.descending))
        else:
            names = SORT_COLUMNS[key.type][key.descending]
            columns += [OrderColumn(name, key.descending, key.param) for name in names]
    if not sort or sort[-1].param != "_id":
        columns.append(OrderColumn("id"))
    return columns


def encode(sort: Sequence[SortKey], values: Sequence[Value]) -> str:
    """The ``_after`` of the page after a match with these values (one per order column)."""
    return write(_signature(sort), values)


def decode(token: str, sort: Sequence[SortKey]) -> tuple[Value, ...] | None:
    """The values an ``_after`` carries, or None when it is no token :func:`encode` writes for
    this order (malformed, altered, or a link's of another ``_sort``)."""
    return read(token, _signature(sort), order_columns(sort))


def write(order: str, values: Sequence[Value]) -> str:
    """The token of a place in the order named ``order``: the values there, one per column."""
    payload = orjson.dumps([order, *values])
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def read(token: str, order: str, columns: Sequence[OrderColumn]) -> tuple[Value, ...] | None:
    """The values a token :func:`write` wrote for ``order`` carries, one per column; None for
    any other text."""
    if not _TOKEN.fullmatch(token):
        return None
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(decoded, list) or len(decoded) != len(columns) + 1 or decoded[0] != order:
        return None
    values = decoded[1:]
    if not all(_fits(column, value) for column, value in zip(columns, values, strict=True)):
        return None
    return tuple(
        float(value) if column.column == "number" and value is not None else value
        for column, value in zip(columns, values, strict=True)
    )


def example(sort: Sequence[SortKey]) -> str:
    """An ``_after`` of this order, to show in the message refusing one."""
    samples = {"id": "zhang-xiuying", "last_updated": "2026-12-01T08:00:00.000000Z"}
    return encode(sort, [samples.get(column.column) for column in order_columns(sort)])


def _signature(sort: Sequence[SortKey]) -> str:
    """The order a token was written for, as ``_sort`` names it."""
    return ",".join(f"{'-' if key.descending else ''}{key.param}" for key in sort)


def _fits(column: OrderColumn, value: object) -> bool:
    """Whether a decoded value is one the column can hold, so both databases compare it."""
    if value is None:
        return column.indexed
    if column.column == "id":
        return isinstance(value, str) and _ID.fullmatch(value) is not None
    if column.column in ("last_updated", "recorded"):
        return isinstance(value, str) and _INSTANT.fullmatch(value) is not None
    if column.column == "seq":  # a place in the audit chain: a 64-bit integer from 1
        return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63
    if column.column == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, str) and "\x00" not in value
