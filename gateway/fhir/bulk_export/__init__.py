"""FHIR Bulk Data export (``$export``, Bulk Data Access IG v2) without HTTP.

:mod:`.jobs` kicks jobs off and answers for them; :mod:`.writing` runs one, with the
modules that each find one part of what it writes (:mod:`.people`, :mod:`.newcomers`,
:mod:`.provenance`, :mod:`.supporting`, :mod:`.deletions`) into :mod:`.files`.
"""

from gateway.fhir.bulk_export.job import COMPLETED, FAILED, IN_PROGRESS, Job
from gateway.fhir.bulk_export.jobs import BulkExports
from gateway.fhir.bulk_export.manifest import manifest

__all__ = ["COMPLETED", "FAILED", "IN_PROGRESS", "BulkExports", "Job", "manifest"]
