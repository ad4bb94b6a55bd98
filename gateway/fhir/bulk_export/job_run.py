"""What one run of a job shares between the steps that write it."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.fhir.bulk_export.job import Job
from gateway.fhir.bulk_export.people import (
    _listed_people,
    _person_ids,
)
from gateway.fhir.export_filters import Filtering
from gateway.fhir.search import Searcher
from gateway.security.access import Access, PersonalData
from gateway.storage.store import Stored, Transaction


@dataclass
class _Progress:
    """Shared between the job's thread (which counts) and its heartbeat (which reports)."""

    written: int = 0


@dataclass(frozen=True)
class _JobRun:
    """What one run of a job judges a record of its scope by (:func:`.supporting._changed_supporting`,
    :func:`.deletions._deleted`): the same for each statement it reads with, so passed as one."""

    tx: Transaction
    job: Job
    access: Access
    filtering: Filtering
    halt: threading.Event
    #: the archive's compartment and references, its search parameters and types
    personal: PersonalData
    searcher: Searcher
    resource_types: frozenset[str]

    def kept(self, found: Iterable[Stored]) -> list[Stored]:
        """The records of ``found`` the export holds: its client may see them and its
        ``_typeFilter`` keeps them."""
        return self.filtering.kept(self.tx, list(self.access.among_served(self.tx, found)))

    def people(self) -> list[str] | None:
        """The export's people (None: anyone) whom its client may see, as the store looks
        records up by them (:class:`Referrers`, :meth:`Resources.in_compartment`)."""
        served = self.access.served_people(self.tx) if self.access.restricted else None
        return _listed_people(_person_ids(self.tx, self.job), served)
