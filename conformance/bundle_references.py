"""References inside a Bundle must resolve: urn:uuid to a fullUrl, Type/id to an entry,
and conditional references (``Patient?identifier=sys|value``) to exactly one entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from conformance.issues import IssueList


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value, f"{path}.reference"
            elif isinstance(value, (dict, list)) and key != "contained":
                yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, f"{path}[{index}]")


class _Index:
    """Everything a reference can resolve to in one Bundle, indexed once.

    Looking each reference up by scanning every entry (``any(u.endswith(...) for u in …)``)
    made a 20,000-entry Bundle take minutes; here each lookup is a set or dict probe.
    """

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.full_urls: set[str] = set()
        #: every tail of a fullUrl after a "/" (``Patient/1`` of ``http://x/fhir/Patient/1``)
        self.url_tails: set[str] = set()
        self.local_ids: set[str] = set()
        #: (type, system, value) and (type, None, value) → entry indexes, for identifier queries
        self.identifiers: dict[tuple[str, str | None, str], set[int]] = {}
        self._conditional: dict[str, tuple[str, int]] = {}
        for index, entry in enumerate(entries):
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                self.full_urls.add(full_url)
                position = full_url.find("/")
                while position != -1:
                    self.url_tails.add(full_url[position + 1 :])
                    position = full_url.find("/", position + 1)
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            rtype = resource.get("resourceType")
            if isinstance(resource.get("id"), str):
                self.local_ids.add(f"{rtype}/{resource['id']}")
            if not isinstance(rtype, str):
                continue
            identifiers = resource.get("identifier")
            for identifier in identifiers if isinstance(identifiers, list) else ():
                if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
                    value, system = identifier["value"], identifier.get("system")
                    self.identifiers.setdefault((rtype, None, value), set()).add(index)
                    if isinstance(system, str):
                        self.identifiers.setdefault((rtype, system, value), set()).add(index)

    def resolves(self, reference: str) -> bool:
        return reference in self.full_urls or reference in self.local_ids or reference in self.url_tails

    def conditional(self, reference: str) -> tuple[str, int]:
        """("malformed" | "count", number of matching entries), memoised per reference."""
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


def check_bundle(bundle: dict[str, Any], path: str, issues: IssueList) -> None:
    entries = [e for e in _list(bundle.get("entry")) if isinstance(e, dict)]
    index = _Index(entries)
    must_resolve = bundle.get("type") == "document"
    for position, entry in enumerate(entries):
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        for reference, where in _references(resource, f"{path}.entry[{position}].resource"):
            if reference.startswith("#"):
                continue
            if reference.startswith(("urn:uuid:", "urn:oid:")):
                if reference not in index.full_urls:
                    issues.error("rule.reference-unresolved", where, reference=reference)
            elif "?" in reference:
                verdict, count = index.conditional(reference)
                if verdict == "malformed":
                    issues.error("rule.conditional-reference-malformed", where, reference=reference)
                elif count > 1:
                    issues.error("rule.conditional-reference-ambiguous", where, reference=reference, count=count)
                elif count == 0:
                    issues.add("information", "rule.reference-external", where, reference=reference)
            elif index.resolves(reference):
                continue
            elif must_resolve:
                issues.error("rule.reference-unresolved", where, reference=reference)
            else:
                issues.add("information", "rule.reference-external", where, reference=reference)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
