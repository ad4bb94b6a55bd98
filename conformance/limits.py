"""Every limit the validator enforces, in one place.

Hostile or simply huge input must end in an issue within bounded time and memory, never in a
traceback or an endless run.  Each bound lives here with its default, and the gateway passes
its configured values (``gateway/limits.py``)::

    Validator(registry, limits=Limits(max_depth=48, fhirpath_seconds=0.5))

The definition loader's own bound (``profiles.registry.MAX_DEFINITION_DEPTH``) is not here:
``profiles`` sits below ``conformance`` and cannot read it.

The defaults are generous for real data (the deepest provincial example is 9 levels deep, the
largest Bundle a few hundred entries) and tight enough that every case of issue 12 answers within
2 s and 300 MB on a 2-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one validation (per instance) and on the definitions it compiles."""

    #: JSON nesting depth of one instance (objects and arrays both count); deeper input is
    #: refused with ``input.too-deep`` before any recursive walk can overflow the stack
    max_depth: int = 64
    #: JSON values (objects, arrays, scalars) in one instance; beyond it ``input.too-many-nodes``
    max_nodes: int = 2_000_000
    #: entries of one Bundle; beyond it the Bundle is refused with ``input.too-many-entries``
    #: (the R4 bdl-* invariants cost about 0.3 ms an entry, so 5,000 stay within the 2 s promise;
    #: bulk data belongs in NDJSON, one resource per line)
    max_bundle_entries: int = 5_000
    #: contained resources of one resource (``input.too-many-contained``)
    max_contained: int = 10_000
    #: FHIRPath evaluation steps (evaluator calls) for all invariants of one instance: a
    #: deterministic budget, the same verdict on every machine (``invariant.budget-exceeded``).
    #: The instance gets ``fhirpath_steps + fhirpath_steps_per_value × its JSON values``: a
    #: legitimate Bundle spends about 20 steps per value (its bdl-* invariants walk every entry)
    fhirpath_steps: int = 1_000_000
    fhirpath_steps_per_value: int = 100
    #: CPU-time backstop for the same budget (the validating thread's time inside the engine
    #: only), for single steps that are slow on their own; also scaled by size.  About 36 µs
    #: per value are normal on a fast machine and four times that on a slow one: 100 µs
    #: refused a valid 581-entry Bundle of 体检 Observations on a slow machine
    fhirpath_seconds: float = 0.5
    fhirpath_seconds_per_value: float = 0.000_5
    #: codes in one ValueSet expansion; a larger one is not expanded (``binding.expansion-too-large``)
    max_expansion: int = 200_000
    #: length of a regular expression taken from a definition (``definition.regex-invalid``)
    max_regex_length: int = 10_000
    #: memory RE2 may use for one compiled definition regex, in bytes
    regex_max_mem: int = 8 << 20
    #: issues kept for one instance; the rest are counted in ``input.too-many-issues``
    max_issues: int = 10_000


DEFAULT_LIMITS = Limits()
