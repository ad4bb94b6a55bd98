"""References a written resource makes to the archive, resolved for its validation.

Why: a profile may demand that ``Encounter.subject`` be a ``yy-patient``, and the reference
validator checks such a ``targetProfile`` by validating the target.  The validator can only see
the instance (offline, no database); when the gateway validates a write, the target is usually
already in the archive.  This resolver hands it over, so the check — and FHIRPath
``resolve()``, and ``resolve()`` slicing discriminators — see the stored resource.

A principal sees only what it may read (an elderly-care platform, only the people it serves):
a target hidden from it resolves to nothing, exactly as a missing one, so a verdict can never
hint at a resource the caller may not see.  The last versions handed out are kept, the same
object for the same version, so the validator's own memo of a target's verdict holds across
writes.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from conformance.stored_references import REFERENCE_KEYS
from gateway.fhir.errors import FhirError
from gateway.search.values import local_reference, natural_number
from gateway.security.access import Access, PersonalData
from gateway.security.principal import acting
from gateway.security.withheld import may_read
from gateway.storage.store import Store, Stored, Transaction
from mappings.engine import reference_nodes

_LITERAL = re.compile(
    r"(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?"
)
#: what precedes the "?" of a relative search URL (``Patient?identifier=…``): a type's name
_TYPE = re.compile(r"[A-Za-z]+")
#: versions kept (each a parsed resource): enough for the organisations, practitioners and
#: people one busy hour of writes points at
KEPT = 4096


def localise(document: Any, base_url: str, *, conditions: bool = True) -> None:
    """Rewrite, in place, each reference on this server's own base (``http://…/fhir/Patient/1``)
    as the relative reference it stands for (``Patient/1``).

    FHIR treats the two as the same resource; everything after the request — the search index,
    the rules on whom a write may name and which organisation owns a record, the Consent a
    person gave — reads relative references.  An absolute one left as written slipped past all
    of them: a refusal naming the organisation absolutely refused nothing.  A conditional
    reference on the own base (``http://…/fhir/Patient?identifier=…``) becomes the relative
    one too: a transaction resolves it, and any other write refuses it as unresolved, where
    the absolute search URL was stored as a reference to another server.  ``conditions=False``
    leaves such a search URL as it is: stored already, there is no write left to resolve it
    (:mod:`gateway.fhir.localise_archive`)."""
    references = (node for node in reference_nodes(document) if {key.lstrip("_") for key in node} <= REFERENCE_KEYS)
    localise_references(references, base_url, conditions=conditions)


def localise_references(references: Iterable[dict[str, Any]], base_url: str, *, conditions: bool = True) -> None:
    """:func:`localise` of References found already (a Reference's keys alone, a primitive's
    extensions' too: :class:`~conformance.stored_references.References`)."""
    for node in references:
        if "://" in node["reference"]:
            local = local_reference(node["reference"], base_url)
            if local is None and conditions:
                local = _local_condition(node["reference"], base_url)
            if local is not None:
                node["reference"] = local


def _local_condition(url: str, base_url: str) -> str | None:
    """``Type?criteria`` for a search URL on this server's base (spelt as
    :func:`local_reference` allows), or None."""
    path, mark, criteria = url.partition("?")
    if not mark or not criteria or "#" in criteria:
        return None
    local = local_reference(f"{path}/x", base_url)  # the type's path, read as an instance's
    kind, _, rest = (local or "").partition("/")
    return f"{kind}?{criteria}" if rest == "x" else None


def condition_criteria(condition: str, kind: str, base_url: str, where: str | None = None) -> str:
    """The criteria of a conditional create of ``kind`` (``If-None-Exist``, a Bundle entry's
    ``request.ifNoneExist``).  R4 has them carry the query part alone (``identifier=…``), but
    clients send the whole search URL: on this server's own base (``http://…/fhir/Patient?…``)
    or relative (``Patient?…``), of the type created, it is read as its query, as a
    conditional reference on the own base is (read whole, its ``http://…/fhir/Patient?identifier``
    was an unknown search parameter ``http``).  A search of another type, or on another
    server, is a 400 saying that the query part is expected: read as its query, it would
    select among other resources than the client meant."""
    path, mark, criteria = condition.partition("?")
    if not mark or not path or "=" in path or "&" in path:
        return condition  # the query part (whose values may hold a "?"), or "?" and the query
    if _TYPE.fullmatch(path):
        searched = path
    else:
        searched = (_local_condition(f"{path}?_", base_url) or "").partition("?")[0]
    if searched == kind:
        return criteria
    raise FhirError(400, "http.condition-not-a-query", where, condition=condition, type=kind)


class ArchiveReferences:
    def __init__(self, store: Store, base_url: str, personal: PersonalData, resource_types: frozenset[str]) -> None:
        self.store = store
        self.base = base_url.rstrip("/") + "/"
        self.personal = personal
        self.resource_types = resource_types
        self._kept: OrderedDict[tuple[str, str, int], dict[str, Any]] = OrderedDict()
        self._guard = threading.Lock()

    def named_type(self, reference: str) -> str | None:
        """The type of the resource of this archive a literal reference names (relative, or on
        this server's base), None for another server's, a contained, a conditional or a
        malformed reference."""
        match = _LITERAL.fullmatch(reference.removeprefix(self.base))
        return match["type"] if match is not None and match["type"] in self.resource_types else None

    def current_key(self, reference: str) -> tuple[str, str] | None:
        """The type and id of the resource of this archive a literal reference names at no
        version, None for any other reference (a versioned one names what that version was)."""
        match = self._archived(reference)
        return (match["type"], match["id"]) if match is not None and match["version"] is None else None

    def __call__(self, reference: str) -> dict[str, Any] | None:
        """The resource a literal reference names in this archive, if the caller may see it."""
        match = self._archived(reference)
        if match is None:
            return None  # another server's, a conditional or malformed reference: not ours to say
        version = natural_number(match["version"]) if match["version"] is not None else None
        if match["version"] is not None and version is None:
            return None
        rules = Access(acting.get(), self.personal)
        # one statement needs no snapshot; the visibility rules' own queries do
        with self.store.reading(snapshot=rules.restricted) as tx:
            if version is None:
                found = tx.resources.read(match["type"], match["id"])
            else:
                found = tx.resources.vread(match["type"], match["id"], version)
            return self._shown(tx, rules, found)

    def _archived(self, reference: str) -> re.Match[str] | None:
        match = _LITERAL.fullmatch(reference.removeprefix(self.base))
        return match if match is not None and match["type"] in self.resource_types else None

    def _shown(self, tx: Transaction, rules: Access, found: Stored | None) -> dict[str, Any] | None:
        """What a lookup hands the validator: nothing for an absent, deleted or hidden resource."""
        if found is None or found.deleted or found.resource is None:
            return None
        if rules.restricted and not rules.visible(tx, found):
            return None
        return self._kept_copy(found)

    def _read_together(self, references: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """The current versions ``references`` name in this archive (those naming no version),
        read in one statement per type: a benchmark Bundle's entries name four practitioners
        and three organisations, and on PostgreSQL each lookup alone was a round trip its
        worker waited for (a sixth of a transaction's samples)."""
        wanted: dict[str, tuple[str, str]] = {}
        for reference in references:
            match = self._archived(reference)
            if match is not None and match["version"] is None:
                wanted[reference] = (match["type"], match["id"])
        if not wanted:
            return {}
        rules = Access(acting.get(), self.personal)
        with self.store.reading(snapshot=rules.restricted) as tx:
            found = tx.resources.read_many(list(wanted.values()))
            return {reference: self._shown(tx, rules, found.get(key)) for reference, key in wanted.items()}

    def including(self, written: Mapping[str, dict[str, Any]], named: Iterable[str] = ()) -> Lookup:
        """This resolver for one transaction's validation: the resources it is about to write
        (``Type/id`` → content) are found first, since an entry's reference to another entry
        names what the archive will hold once the transaction commits, not what it holds now
        (usually nothing); and the archive is asked once, for every reference the entries
        make (``named``: their references, found with their entries), as they tend to name the
        same organisations and practitioners (14 lookups of a benchmark Bundle, of 6 distinct
        references, in 2 statements).  What the entries do not name (a target's own
        references) is looked up when asked."""
        looked_up = self._read_together(r for r in named if r.removeprefix(self.base) not in written)
        return Lookup(self, written, looked_up)

    def _kept_copy(self, found: Stored) -> dict[str, Any]:
        key = (found.type, found.id, found.version)
        with self._guard:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                return kept
            self._kept[key] = found.resource  # type: ignore[assignment]
            if len(self._kept) > KEPT:
                self._kept.popitem(last=False)
            return found.resource  # type: ignore[return-value]


class Lookup:
    """The resources one request's references name (:meth:`ArchiveReferences.including`):
    those it writes, then the archive's, each looked up once however many rules ask."""

    __slots__ = ("archive", "written", "looked_up", "only_readable")

    def __init__(
        self,
        archive: ArchiveReferences,
        written: Mapping[str, dict[str, Any]],
        looked_up: dict[str, dict[str, Any] | None],
        only_readable: bool = False,
    ) -> None:
        self.archive = archive
        self.written = written
        self.looked_up = looked_up
        self.only_readable = only_readable

    def __call__(self, reference: str) -> dict[str, Any] | None:
        found = self.written.get(reference.removeprefix(self.archive.base))
        if found is not None:
            return found
        if self.only_readable:
            kind = self.archive.named_type(reference)
            if kind is not None and not may_read(kind):
                return None
        if reference not in self.looked_up:
            self.looked_up[reference] = self.archive(reference)
        return self.looked_up[reference]

    def readable(self) -> Lookup:
        """This lookup handing over the archive's records only of the types the caller's
        scopes read, sharing what it looked up: a record of another type is a record the
        archive lacks (what the request writes itself is the client's own, and is handed
        over).  The validator's verdict on a write is the client's to read, and read in
        full, a target the client may not read told it whether that record meets the profile
        its reference demands (``profile.reference-target-profile``: a 201 or a 422 for a
        Patient it may not read)."""
        return Lookup(self.archive, self.written, self.looked_up, only_readable=True)
