"""Bundle rules the R4 invariants do not state but the reference HL7 validator enforces
(its BundleValidator), each an error there and here:

- a ``fullUrl`` is an absolute URL (``BUNDLE_ENTRY_URL_ABSOLUTE``); one that looks like a
  RESTful resource URL ends in the entry's ``Type/id`` (``BUNDLE_ENTRY_URL_MATCHES_TYPE_ID``), so
  the resource needs an id (``…_MATCHES_NO_ID``);
- a link relation among self/first/previous/next/last occurs at most once
  (``BUNDLE_LINK_SEARCH_NO_DUPLICATES``), and the paging relations only page searchsets and
  histories (``BUNDLE_LINK_SEARCH_PROHIBITED``);
- searchset entries carry resource ids (``BUNDLE_SEARCH_ENTRY_NO_RESOURCE_ID``: an error for
  entries in mode match or include, a warning for an entry without a search mode) and an
  entry in mode outcome holds an OperationOutcome;
- ``entry.response.outcome`` is an OperationOutcome (Bundle.entry.response.outcome's definition);
- in a transaction or batch, a POST or PUT names its resource's type in a relative URL, and a
  PUT to ``Type/id`` carries a resource of that id (http.html#update:
  the body "SHALL have an id element that has an identical value to the [id] in the URL"), as
  the gateway's processing refuses it otherwise (``http.wrong-type``, ``http.id-missing``,
  ``http.id-mismatch``).

Unique fullUrls are bdl-7, a core invariant, evaluated with the others.
"""

from __future__ import annotations

import re
from typing import Any

from conformance.issues import IssueList

_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+")
_RESTFUL = re.compile(r"https?://\S*/(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})")
#: an update's request.url, relative or absolute: ``Patient/a``; a conditional one has a query
_INSTANCE = re.compile(r"(?:\S*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})")
REQUEST_TYPES = frozenset({"transaction", "batch"})
#: the requests whose entry carries the resource written (a tuple: a method may be any JSON)
WRITES = ("POST", "PUT")
UNIQUE_RELATIONS = ("self", "first", "previous", "next", "last")
PAGING_RELATIONS = frozenset({"first", "previous", "next", "last"})
PAGED_TYPES = frozenset({"searchset", "history"})


def check_bundle_rules(bundle: dict[str, Any], path: str, issues: IssueList, resource_types: frozenset[str]) -> None:
    kind = bundle.get("type") if isinstance(bundle.get("type"), str) else None
    _links(bundle.get("link"), kind, path, issues)
    entries = bundle.get("entry")
    entries = entries if isinstance(entries, list) else []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        where = f"{path}.entry[{position}]"
        resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
        _full_url(entry.get("fullUrl"), resource, where, issues, resource_types)
        if kind == "searchset" and resource is not None:
            _search_entry(resource, _mode(entry), where, issues)
        if kind in REQUEST_TYPES and resource is not None:
            _request(entry.get("request"), resource, where, issues)
        response = entry.get("response")
        outcome = response.get("outcome") if isinstance(response, dict) else None
        if isinstance(outcome, dict) and outcome.get("resourceType") != "OperationOutcome":
            issues.error(
                "bundle.outcome-not-operation-outcome", f"{where}.response.outcome", type=outcome.get("resourceType")
            )


def _full_url(
    full_url: Any, resource: dict[str, Any] | None, where: str, issues: IssueList, resource_types: frozenset[str]
) -> None:
    if not isinstance(full_url, str):
        return
    if not _ABSOLUTE.fullmatch(full_url):
        issues.error("bundle.fullurl-not-absolute", f"{where}.fullUrl", fullUrl=full_url)
        return
    restful = _RESTFUL.fullmatch(full_url)
    if resource is None or restful is None or restful["type"] not in resource_types:
        return
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if not isinstance(rid, str):
        issues.error("bundle.fullurl-resource-without-id", f"{where}.fullUrl", fullUrl=full_url)
    elif not full_url.endswith(f"/{rtype}/{rid}"):
        issues.error("bundle.fullurl-id-mismatch", f"{where}.fullUrl", fullUrl=full_url, type=rtype, id=rid)


def _request(request: Any, resource: dict[str, Any], where: str, issues: IssueList) -> None:
    """A POST or PUT names the resource's type in its URL, and a PUT to ``Type/id`` that id."""
    if not isinstance(request, dict) or request.get("method") not in WRITES or not isinstance(request.get("url"), str):
        return
    url, rtype = request["url"], resource.get("resourceType")
    # a relative URL's type, read as the server reads it; an absolute one is for its own server
    named = None if "://" in url else url.lstrip("/").partition("?")[0].split("/")[0]
    if named and isinstance(rtype, str) and named != rtype:
        issues.error("bundle.request-type-mismatch", f"{where}.resource.resourceType", type=rtype, url=url)
        return
    target = _INSTANCE.fullmatch(url) if request["method"] == "PUT" else None
    if target is None or target["type"] != rtype:
        return  # a create or a conditional update: the server chooses or resolves the id
    body_id = resource.get("id")
    if body_id is None:
        issues.error("bundle.request-id-missing", f"{where}.resource.id", url=url)
    elif isinstance(body_id, str) and body_id != target["id"]:
        issues.error("bundle.request-id-mismatch", f"{where}.resource.id", id=body_id, url=url)


def _links(links: Any, kind: str | None, path: str, issues: IssueList) -> None:
    seen: set[str] = set()
    for index, link in enumerate(links if isinstance(links, list) else []):
        relation = link.get("relation") if isinstance(link, dict) else None
        if not isinstance(relation, str):
            continue
        where = f"{path}.link[{index}].relation"
        if relation in PAGING_RELATIONS and kind not in PAGED_TYPES:
            issues.error("bundle.link-paging-outside-search", where, relation=relation, type=kind)
        elif relation in UNIQUE_RELATIONS and relation in seen:
            issues.error("bundle.link-duplicate", where, relation=relation)
        seen.add(relation)


def _mode(entry: Any) -> str | None:
    search = entry.get("search") if isinstance(entry, dict) else None
    mode = search.get("mode") if isinstance(search, dict) else None
    return mode if isinstance(mode, str) else None


def _search_entry(resource: dict[str, Any], mode: str | None, where: str, issues: IssueList) -> None:
    rtype = resource.get("resourceType")
    if mode == "outcome":
        if rtype != "OperationOutcome":
            issues.error("bundle.search-outcome-not-operation-outcome", f"{where}.resource", type=rtype)
        return
    if isinstance(resource.get("id"), str) or rtype == "OperationOutcome":
        return
    severity = "error" if mode in ("match", "include") else "warning"
    issues.add(severity, "bundle.search-entry-without-id", f"{where}.resource", type=rtype)
