"""Instance, type and system history as FHIR history Bundles, without HTTP: the ``_history``
routes and a batch's history entries build them alike.

A client that sees only the people it serves (an elderly-care platform) sees a version only
while its resource is visible to it and when the version itself concerns those people
(``Access.version_visible``): an Observation moved from someone else to its resident keeps a
first version that is someone else's.  Those versions are judged on their content, so they are
counted in Python, over the newest :data:`RESTRICTED_HISTORY_SCAN` versions.  A deletion, which
has no content and whose resource no index row describes any more, is judged by the version it
deleted (``Access.deletion_visible``): R4 http.html#history lists deletions (``request.method``
DELETE, no resource), and a platform synchronising from a type's history must learn that its
resident's record is gone.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.fhir.errors import FhirError
from gateway.fhir.paging import page_links
from gateway.fhir.parameters import honoured_only, instant, whole_number
from gateway.security.access import Access
from gateway.storage.store import Stored, Transaction

#: what a history request may say (``_offset``, ``_upto`` and ``_after`` are this server's paging), besides the controls
#: of the answer every interaction takes (``_format``, ``_pretty``)
HISTORY_HONOURED = ("_count", "_offset", "_since", "_upto", "_after")
#: versions a restricted client's history looks through at most, newest first
RESTRICTED_HISTORY_SCAN = 10_000
#: versions judged at a time while looking through them
_SCAN_BATCH = 1000
#: ``_after``: the version a page starts past, as the ``next`` links write it
_VERSION = re.compile(r"([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})/_history/([1-9][0-9]{0,8})")
_VERSION_EXAMPLE = "Observation/bp-1/_history/2"


@dataclass(frozen=True)
class HistoryRequest:
    """One history page asked for: of an instance, a type (``resource_id`` None) or the whole
    system (``kind`` None too)."""

    kind: str | None
    resource_id: str | None
    count: int
    offset: int = 0
    #: ``_since`` in the store's form
    since: str | None = None
    #: the request's parameters, which its paging links repeat (``_since``, ``_format``)
    pairs: tuple[tuple[str, str], ...] = ()
    #: the newest version the pages list (``_upto``, which the first page's links carry);
    #: None for the archive's newest now
    upto: int | None = None
    #: the version the page starts past (``_after``, which ``next`` links carry), if any
    after: tuple[str, str, int] | None = None
    #: where the request was written (a Bundle entry's URL), for its refusals
    where: str | None = None


def history_request(
    kind: str | None,
    resource_id: str | None,
    params: Mapping[str, str],
    page_size: int,
    max_page_size: int,
    where: str | None = None,
    lenient: bool = False,
) -> HistoryRequest:
    """The page asked for by ``_count``, ``_offset``, ``_since``, ``_upto`` and ``_after`` (400
    for a bad one, and for any other parameter: ``_at``, ``_list`` or a search criterion ignored would
    widen the answer; ``where`` locates it, e.g. in a Bundle entry's URL).  Under ``lenient``
    (``Prefer: handling=lenient``) any other is ignored as a search ignores one, and left out
    of the paging links, which say what the page answers: a history Bundle has no room for
    an outcome entry (each of its entries is a version, with its request and response)."""
    params = dict(honoured_only(params.items(), "_history", HISTORY_HONOURED, lenient, where)[0])
    count = min(whole_number(params, "_count", page_size, where), max_page_size)
    offset = whole_number(params, "_offset", 0, where)
    since = instant(params, "_since", where)
    upto = whole_number(params, "_upto", -1, where)
    after = None
    if (text := params.get("_after")) is not None:
        if not (found := _VERSION.fullmatch(text)):
            raise FhirError(
                400, "http.not-a-page-cursor", where or "_after", name="_after", value=text, example=_VERSION_EXAMPLE
            )
        after = (found[1], found[2], int(found[3]))
    pairs = tuple(params.items())
    return HistoryRequest(kind, resource_id, count, offset, since, pairs, None if upto < 0 else upto, after, where)


def history_bundle(tx: Transaction, rules: Access, base_url: str, asked: HistoryRequest) -> dict[str, Any]:
    """The history Bundle of one page, newest first, with its total and paging links; 404 for
    an instance without versions the client may see (an empty page for one with none since
    ``_since``), 403 for a restricted client asking for the whole system's.

    The pages list the versions up to the newest when the first was read, which its links
    carry as ``_upto``: a version written between two pages came first and pushed every
    other one place down, so the next page repeated the last entry of the one before.  The
    ``next`` link also names the page's last version (``_after``), and the next page lists
    those before it: on PostgreSQL a write under way when the first page was read may commit
    later below ``_upto``, which again pushed the others down, and a restricted client's
    versions shift when a resource leaves its sight."""
    bounded = asked.upto is not None
    upto = asked.upto if bounded else tx.resources.newest_version()
    asked = replace(asked, upto=upto)
    below = None  # the newest version the page may list, when it starts past one
    if asked.after is not None:
        below = min(_cursor_place(tx, rules, asked, asked.after) - 1, upto)
    versions, total = _versions(tx, rules, asked, below)
    kind, resource_id = asked.kind, asked.resource_id
    # one version more than the page was read to tell whether another page follows: an
    # offset counted from the start stands too far on when the total is read again
    more, versions = 0 < asked.count < len(versions), versions[: asked.count]
    # no version at all: no such resource.  None since ``_since`` (or up to ``_upto``) is an
    # empty page of one that exists (a restricted client's was checked above): a platform
    # polling an instance for changes must not read "nothing changed" as "it does not exist"
    narrowed = asked.since is not None or bounded
    if resource_id and total == 0 and (not narrowed or tx.resources.read(kind or "", resource_id) is None):
        raise FhirError(404, "http.not-found", reference=f"{kind}/{resource_id}")
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": page_links(
            f"{base_url}/{_path(asked)}",
            asked.pairs,
            asked.count,
            asked.offset,
            more=more,
            total=total,
            anchor=[("_upto", str(upto))],
            cursor=("_after", f"{versions[-1][0].reference}/_history/{versions[-1][0].version}" if versions else None),
        ),
    }
    if versions:  # an empty page (``_since`` now, ``_count=0``) has none: FHIR JSON has no empty array
        statuses = _statuses(tx, versions)
        bundle["entry"] = [
            _entry(base_url, stored, method, status)
            for (stored, method), status in zip(versions, statuses, strict=True)
        ]
    return bundle


def _cursor_place(tx: Transaction, rules: Access, asked: HistoryRequest, after: tuple[str, str, int]) -> int:
    """Where the version ``_after`` names stands, when it is one this history may list: of its
    type or instance, and one the principal may see.  Any other is refused as a version that
    does not exist: looked up whoever's it was, a page past 李建国's reading (200) and past no
    reading at all (400) told an elderly-care client which of his records exist, and a Patient's
    history paged past an Observation told a client holding Patient scopes alone."""
    kind, resource_id, version = after
    within = asked.kind in (None, kind) and asked.resource_id in (None, resource_id)
    place = tx.resources.version_place(kind, resource_id, version) if within else None
    if place is not None and rules.restricted:
        stored = tx.resources.vread(kind, resource_id, version)
        # a deletion is listed by the version it deleted, whatever became of its resource since
        if (
            stored is None
            or (not stored.deleted and rules.hides(tx, tx.resources.read(kind, resource_id)))
            or not _shown(tx, rules, [stored])[0]
        ):
            place = None
    if place is None:
        text = "{}/{}/_history/{}".format(*after)
        where = asked.where or "_after"
        raise FhirError(400, "http.not-a-page-cursor", where, name="_after", value=text, example=_VERSION_EXAMPLE)
    return place


def _versions(
    tx: Transaction, rules: Access, asked: HistoryRequest, below: int | None
) -> tuple[list[tuple[Stored, str]], int]:
    """The page's versions (one more than it holds, to tell whether another follows) and the
    total, of those the principal may see: a restricted client's are read version by version,
    403 for the whole system's and 404 for an instance hidden from it.  ``below``: the newest
    version the page may list, when it starts past one (``_after``)."""
    kind, resource_id, upto = asked.kind, asked.resource_id, asked.upto
    if rules.restricted:
        restriction = None
        if kind is None:
            principal = rules.principal
            raise FhirError(403, "http.history-system-restricted", organization=principal and principal.organization)
        if resource_id is None:
            restriction = rules.condition(kind)
        else:
            current = tx.resources.read(kind, resource_id)
            if current is None or rules.hides(tx, current):
                raise FhirError(404, "http.not-found", reference=f"{kind}/{resource_id}")
        visible = _visible_versions(tx, rules, asked, restriction)
        if below is None:
            return visible[asked.offset : asked.offset + asked.count + 1], len(visible)
        return _visible_versions(tx, rules, replace(asked, upto=below), restriction, asked.count + 1), len(visible)
    if below is None:
        return tx.resources.history(kind, resource_id, asked.since, asked.count + 1, asked.offset, upto=upto)
    versions, _ = tx.resources.history(kind, resource_id, asked.since, asked.count + 1, upto=below)
    return versions, tx.resources.history(kind, resource_id, asked.since, 0, upto=upto)[1]


def _visible_versions(
    tx: Transaction, rules: Access, asked: HistoryRequest, restriction: Any, enough: int | None = None
) -> list[tuple[Stored, str]]:
    """The versions up to ``asked.upto`` the client may see, newest first, among the newest
    :data:`RESTRICTED_HISTORY_SCAN`; ``enough`` stops at that many (a page, not a total)."""
    kept: list[tuple[Stored, str]] = []
    read = tx.resources.versions(
        asked.kind, asked.resource_id, asked.since, RESTRICTED_HISTORY_SCAN, restriction, asked.upto
    )
    with contextlib.closing(read):  # a page found early leaves the rest unread
        while (enough is None or len(kept) < enough) and (batch := list(itertools.islice(read, _SCAN_BATCH))):
            shown = _shown(tx, rules, [stored for stored, _ in batch])
            kept += [found for found, visible in zip(batch, shown, strict=True) if visible]
    return kept


def _shown(tx: Transaction, rules: Access, versions: list[Stored]) -> list[bool]:
    """Whether a restricted principal may see each of ``versions``: a version by its own
    content (``Access.version_visible``), a deletion by the version it deleted
    (``Access.deletion_visible``), those read in one go for them all."""
    deleted = tx.resources.read_versions([(s.type, s.id, s.version - 1) for s in versions if s.deleted])
    return [
        rules.deletion_visible(tx, deleted.get((s.type, s.id, s.version - 1)))
        if s.deleted
        else rules.version_visible(tx, s)
        for s in versions
    ]


def _path(asked: HistoryRequest) -> str:
    return "/".join(part for part in (asked.kind, asked.resource_id, "_history") if part)


def _statuses(tx: Transaction, versions: list[tuple[Stored, str]]) -> list[str]:
    """Each version's ``response.status``, as its write was answered: 201 for a creation — a
    first version, or the first after a deletion (a PUT re-creating a deleted resource
    answers 201) — and 200 otherwise, a deletion included (never a first version, nor one
    after a deletion).  A deletion's entry is the DELETE that succeeded (R4 http.html#history:
    ``request.method`` DELETE, no resource), which R4 http.html#delete answers 200 (or 204):
    it was listed 410, the status of a later read of what it deleted, as if it had failed.
    Whether the version before was a deletion is read from the page when it holds that
    version, else from the store (all the page's in one go: a type's history names a
    different resource on nearly every entry)."""
    on_page = {(stored.type, stored.id, stored.version): stored for stored, _ in versions}
    before = {(stored.type, stored.id, stored.version - 1) for stored, _ in versions if stored.version > 1}
    deleted = {key for key in before if key in on_page and on_page[key].deleted}
    deleted |= tx.resources.deletions(sorted(before - on_page.keys()))

    def status(stored: Stored) -> str:
        if stored.version == 1 or (stored.type, stored.id, stored.version - 1) in deleted:
            return "201"
        return "200"

    return [status(stored) for stored, _ in versions]


def _entry(base_url: str, stored: Stored, method: str, status: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "fullUrl": f"{base_url}/{stored.reference}",
        "request": {"method": method, "url": stored.reference if method != "POST" else stored.type},
        "response": {
            "status": status,
            "etag": f'W/"{stored.version}"',
            "lastModified": stored.last_updated,
        },
    }
    if stored.resource is not None:
        entry["resource"] = stored.resource
    return entry
