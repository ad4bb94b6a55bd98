"""What a Patient or Group export without ``_type`` sends along outside the Patient
compartment, and, with ``_since``, what changed there that its records name."""

from __future__ import annotations

import itertools
from collections.abc import Container, Iterator
from dataclasses import replace
from operator import itemgetter
from typing import Any

from gateway.fhir.bulk_export.batches import BATCH, _unless_halted
from gateway.fhir.bulk_export.job_run import _JobRun
from gateway.fhir.literal_references import literal_references
from gateway.fhir.repository import READ_ONLY
from gateway.fhir.search import shaped
from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.security.access import PersonalData
from gateway.storage.resources import Referrers
from gateway.storage.store import Stored

#: the resources outside the compartment changed since an incremental export whose referrers
#: one statement reads, and how many of each target's it reads at first
_TARGETS_AT_ONCE, _FIRST_REFERRERS = 100, 10


def _outside_compartment(compartment: Container[str], resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """What an exported resource (as written: ``_elements`` may have cut a reference out)
    refers to outside the Patient compartment, as (type, id)."""
    for reference in literal_references(resource):
        kind, _, resource_id = reference.partition("/")
        if kind not in compartment:
            yield kind, resource_id


def _changed_supporting(run: _JobRun, named: Container[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    """What changed after ``_since`` outside the Patient compartment and a current resource
    of the export's scope refers to, whatever that resource's own last change, but for the
    ``named`` (coming along already), as (type, id): an Organization renamed since the last
    export, named only by a stay unchanged since, would otherwise stay stale in the
    platform's copy for good.  The scope is what the export would hold without ``_since``:
    its people's records the client may see, that ``_typeFilter`` keeps and that still name
    the target once cut by ``_elements``.  One indexed statement finds what changed outside
    the compartment (mostly nothing); those are looked up in the reference index
    :data:`_TARGETS_AT_ONCE` at a time, among the records of the export's people alone,
    and the job stops between two of those statements once it is cancelled."""
    tx = run.tx
    outside = tx.resources.current(_outside_types(run.resource_types, run.personal), run.job.since)
    candidates = ((changed.type, changed.id) for changed in outside if (changed.type, changed.id) not in named)
    first = next(candidates, None)
    if first is None:  # the usual case: nothing the export may name changed since
        return
    people = run.people()
    for kind, keys in itertools.groupby(itertools.chain([first], candidates), key=itemgetter(0)):
        ids = (resource_id for _, resource_id in keys)
        while chunk := list(itertools.islice(ids, _TARGETS_AT_ONCE)):
            _unless_halted(run.halt)
            wanted = Referrers(
                kind,
                chunk[0],
                _referring(run, kind),
                compartment=run.personal.compartment,
                people=people,
                identified=IDENTIFIED_PEOPLE,
            )
            yield from ((kind, target) for target in _named_among(run, wanted, chunk))


def _referring(run: _JobRun, kind: str) -> dict[str, list[str]]:
    """The reference parameters of the Patient compartment's types that may point at
    ``kind``, per type: where the index says a person's record names one."""
    referring: dict[str, list[str]] = {}
    for source, code in run.searcher.parameters.referring(kind):
        if source in run.personal.compartment and source not in READ_ONLY:
            referring.setdefault(source, []).append(code)
    return referring


def _named_among(run: _JobRun, wanted: Referrers, targets: list[str]) -> list[str]:
    """Those of ``targets`` (ids of ``wanted.kind``) that a record the export holds names
    as it writes it (:func:`_named_in_scope`), in their order.  The first
    :data:`_FIRST_REFERRERS` records naming each are read in one statement and judged
    together (the first usually counts); a target whose first records all fall out, and
    that has more, is paged through on its own."""
    found = run.tx.resources.referrers_of_each(wanted, targets, _FIRST_REFERRERS)
    unique = {(stored.type, stored.id): stored for page in found.values() for stored in page}
    names = {(stored.type, stored.id): frozenset(_written_names(run, stored)) for stored in run.kept(unique.values())}
    named: list[str] = []
    for target in targets:
        page = found.get(target, [])
        if any((wanted.kind, target) in names.get((stored.type, stored.id), ()) for stored in page) or (
            len(page) == _FIRST_REFERRERS
            and _named_in_scope(run, replace(wanted, resource_id=target), (page[-1].type, page[-1].id))
        ):
            named.append(target)
    return named


def _named_in_scope(run: _JobRun, wanted: Referrers, after: tuple[str, str]) -> bool:
    """Whether a record the index finds naming ``wanted``'s target (past ``after``, by type
    and id) is one the export holds and, as it writes it, names the target: read a page at
    a time, stopping at the first."""
    target = (wanted.kind, wanted.resource_id)
    while page := run.tx.resources.referrers(wanted, limit=BATCH, after=after):
        _unless_halted(run.halt)
        for stored in run.kept(page):
            if target in _written_names(run, stored):
                return True
        if len(page) < BATCH:
            return False
        after = (page[-1].type, page[-1].id)
    return False


def _written_names(run: _JobRun, stored: Stored) -> Iterator[tuple[str, str]]:
    """What a record refers to outside the compartment as the job writes it (``_elements``
    may cut a reference out)."""
    return _outside_compartment(run.personal.compartment, shaped(stored.resource, None, run.job.elements))


def _outside_types(resource_types: frozenset[str], personal: PersonalData) -> list[str]:
    """The archived types outside the Patient compartment: those of what a Patient or Group
    export without ``_type`` sends along."""
    return sorted(resource_types - personal.compartment.keys() - READ_ONLY)
