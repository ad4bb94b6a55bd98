"""The package's Measures (read once by gateway/services.py) and the names reports print
beside division codes."""

from __future__ import annotations

from gateway.measures.definition import MeasureDefinition, read_measure
from gateway.measures.evaluate import MeasureError
from profiles.registry import Registry


def package_measures(registry: Registry) -> tuple[MeasureDefinition, ...]:
    """Every Measure the registry knows, in url order (a broken one raises at startup)."""
    found = [read_measure(resource, registry.canonical_base) for resource in registry.all("Measure")]
    return tuple(sorted(found, key=lambda m: m.url))


def select(measures: tuple[MeasureDefinition, ...], wanted: str) -> list[MeasureDefinition]:
    """``all``, or the Measure with this canonical url (``|version`` ignored) or id."""
    if wanted == "all":
        return list(measures)
    url = wanted.split("|", 1)[0]
    chosen = [m for m in measures if url in (m.url, m.id)]
    if not chosen:
        raise MeasureError("measure.unknown", measure=wanted)
    return chosen


def division_names(registry: Registry) -> dict[str, str]:
    """County code → name, from whichever package CodeSystem lists the divisions."""
    names: dict[str, str] = {}

    def walk(concepts: list[dict]) -> None:
        for concept in concepts:
            code = str(concept.get("code", ""))
            if len(code) == 6 and code.isdigit() and concept.get("display"):
                names[code] = str(concept["display"])
            walk(concept.get("concept") or [])

    for system in registry.all("CodeSystem"):
        if "2260" in str(system.get("url", "")):
            walk(system.get("concept") or [])
    return names
