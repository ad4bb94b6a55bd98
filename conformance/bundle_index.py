"""What a reference inside a Bundle resolves to, by the R4 rules (bundle.html#references).

One index per Bundle, built on first use and shared by the reference checks and FHIRPath's
``resolve()``.  Looking each reference up by scanning every entry made a 20,000-entry Bundle
take minutes; here each lookup is a dict probe.

The rules, in order:

- an absolute reference (``http…``, ``urn:uuid:…``) is matched against ``fullUrl``;
- a relative ``Type/id`` is made absolute with the RESTful base of the referring entry's
  ``fullUrl`` and then matched; failing that (the referring entry has a ``urn:uuid`` fullUrl,
  say) an entry whose resource is ``Type/id`` or whose fullUrl ends in ``/Type/id`` is taken,
  as the gateway always did, so a transaction's relative references keep resolving;
- a version-specific reference (``…/_history/2``) drops the version before matching and then
  needs the entry's ``meta.versionId`` to be that version.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

#: a RESTful resource URL: [base/]Type/id (the base is what relative references resolve against)
_RESTFUL = re.compile(r"(?P<base>.*/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})")
_VERSIONED = re.compile(r"(?P<url>.+)/_history/(?P<version>[^/]+)")


def split_version(reference: str) -> tuple[str, str | None]:
    """``Patient/1/_history/2`` → (``Patient/1``, ``2``); an unversioned reference keeps None."""
    match = _VERSIONED.fullmatch(reference)
    return (match["url"], match["version"]) if match else (reference, None)


def is_absolute(reference: str) -> bool:
    return reference.startswith(("http://", "https://", "urn:"))


class BundleIndex:
    """Every entry a reference can name in one Bundle, indexed on first use."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self._built = False
        self.entries: list[dict[str, Any]] = []
        self.full_urls: dict[str, list[int]] = {}
        #: ``Type/id`` of each entry's resource, and every tail of a fullUrl after a "/"
        self.local: dict[str, list[int]] = {}
        #: (type, system, value) and (type, None, value) → entry positions, for identifier queries
        self.identifiers: dict[tuple[str, str | None, str], set[int]] = {}
        self._conditional: dict[str, tuple[str, int]] = {}

    def _build(self) -> None:
        self._built = True
        entries = self.bundle.get("entry")
        self.entries = [e if isinstance(e, dict) else {} for e in entries] if isinstance(entries, list) else []
        for position, entry in enumerate(self.entries):
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                self.full_urls.setdefault(full_url, []).append(position)
                slash = full_url.find("/")
                while slash != -1:
                    self.local.setdefault(full_url[slash + 1 :], []).append(position)
                    slash = full_url.find("/", slash + 1)
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            rtype = resource.get("resourceType")
            if isinstance(rtype, str) and isinstance(resource.get("id"), str):
                self.local.setdefault(f"{rtype}/{resource['id']}", []).append(position)
            if isinstance(rtype, str):
                self._index_identifiers(rtype, resource, position)

    def _index_identifiers(self, rtype: str, resource: dict[str, Any], position: int) -> None:
        identifiers = resource.get("identifier")
        for identifier in identifiers if isinstance(identifiers, list) else ():
            if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
                value, system = identifier["value"], identifier.get("system")
                self.identifiers.setdefault((rtype, None, value), set()).add(position)
                if isinstance(system, str):
                    self.identifiers.setdefault((rtype, system, value), set()).add(position)

    # -- resolution ----------------------------------------------------------------------
    def find(self, reference: str, from_full_url: str | None = None) -> int | None:
        """The position of the entry ``reference`` names, read from the entry whose fullUrl is
        ``from_full_url``; None when nothing in the Bundle answers it."""
        if not self._built:
            self._build()
        url, version = split_version(reference)
        candidates = self.full_urls.get(url)
        if candidates is None and not is_absolute(url):
            candidates = self._relative(url, from_full_url)
        if not candidates:
            return None
        if version is None:
            return candidates[0]
        return next((p for p in candidates if self._version_of(p) == version), None)

    def _relative(self, url: str, from_full_url: str | None) -> list[int] | None:
        if isinstance(from_full_url, str):
            restful = _RESTFUL.fullmatch(from_full_url)
            if restful and restful["base"]:
                found = self.full_urls.get(restful["base"] + url)
                if found:
                    return found
        return self.local.get(url)

    def _version_of(self, position: int) -> str | None:
        resource = self.entries[position].get("resource")
        meta = resource.get("meta") if isinstance(resource, dict) else None
        version = meta.get("versionId") if isinstance(meta, dict) else None
        return version if isinstance(version, str) else None

    def resource(self, reference: str, from_full_url: str | None = None) -> dict[str, Any] | None:
        position = self.find(reference, from_full_url)
        if position is None:
            return None
        found = self.entries[position].get("resource")
        return found if isinstance(found, dict) else None

    def has_version(self, reference: str, from_full_url: str | None = None) -> bool:
        """Whether the unversioned target of a version-specific reference is in the Bundle,
        though with another (or no) ``meta.versionId``."""
        url, _ = split_version(reference)
        return self.find(url, from_full_url) is not None

    # -- conditional references ----------------------------------------------------------
    def conditional(self, reference: str) -> tuple[str, int]:
        """("malformed" | "count", number of matching entries), memoised per reference."""
        if not self._built:
            self._build()
        found = self._conditional.get(reference)
        if found is None:
            found = self._conditional[reference] = self._evaluate(reference)
        return found

    def _evaluate(self, reference: str) -> tuple[str, int]:
        resource_type, _, query = reference.partition("?")
        if not resource_type.isalpha() or "=" not in query:
            return ("malformed", 0)
        matching: set[int] | None = None
        for name, wanted in parse_qsl(query, keep_blank_values=True):
            if name != "identifier":
                return ("count", 0)  # only identifier queries can be decided offline
            system, _, value = wanted.rpartition("|")
            found = self.identifiers.get((resource_type, system or None, value), set())
            matching = found if matching is None else matching & found
            if not matching:
                return ("count", 0)
        return ("count", len(matching or ()))
