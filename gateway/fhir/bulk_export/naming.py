"""Whom a version's text names, read from the text itself: cheaper than indexing the version,
and asked first so that the usual record (naming its resident alone) is never indexed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import orjson

from gateway.search.indexer import referenced_id
from gateway.storage.store import Stored


def _names_any(stored: Stored, people: Callable[[str], bool]) -> bool:
    """Whether a version's text names one of ``people`` as a Patient as the search index reads
    a reference (:func:`_patients_named`): a version that does not is in none of their
    compartments.  Asked before :meth:`PersonalData.in_compartment_of`, which indexes the
    whole version (~1 ms): a Group's export judged every record changed since in the archive
    so, whoever's it was."""
    return any(people(found) for found in _patients_named(stored))


#: how a version's text (as orjson or JSONB wrote it) may name a person by number alone: a
#: Reference's ``identifier`` is an object (a resource's own are an array), or a reference
#: to a contained resource; a few single identifiers of a resource (Composition's) match too
_BY_NUMBER = re.compile(rb'"identifier"\s*:\s*\{|"reference"\s*:\s*"#')


def _may_name_by_number(stored: Stored) -> bool:
    """Whether a version's text may name a person by number alone (an index row of
    :data:`IDENTIFIED_PEOPLE`), which places it in that person's compartment: a text test, so
    that the usual record, which names its resident by id, is not indexed to learn so."""
    return _BY_NUMBER.search(stored.json()) is not None


def _patients_named(stored: Stored) -> Iterator[str]:
    """The ids of the Patients a version's text names, as the search index reads a reference
    (:func:`referenced_id`), wherever it sits: its compartments are among theirs.  Only the
    strings holding the word ``Patient`` are asked, found in the text orjson stored (which
    escapes no letter): the index takes a reference's type from its text."""
    text = stored.json()
    at = text.find(b"Patient")
    while at >= 0:
        opening, closing = _unescaped_quote(text, at, -1), _unescaped_quote(text, at, 1)
        found = referenced_id(orjson.loads(text[opening : closing + 1]), "Patient")
        if found is not None:
            yield found
        at = text.find(b"Patient", closing)


def _unescaped_quote(text: bytes, at: int, step: int) -> int:
    """Where the JSON string holding byte ``at`` of ``text`` opens (``step`` -1) or closes
    (``step`` 1): the nearest quote that way that no backslash escapes."""
    quote = at
    while True:
        quote = text.rfind(b'"', 0, quote) if step < 0 else text.find(b'"', quote + 1)
        escapes = quote
        while text[escapes - 1 : escapes] == b"\\":
            escapes -= 1
        if (quote - escapes) % 2 == 0:
            return quote
