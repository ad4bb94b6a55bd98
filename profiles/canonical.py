"""Canonical URLs of the provincial package.

Every provincial artefact (profiles, extensions, local code systems, value sets, identifier
systems) lives under one base URL.  The package is authored with ``DEFAULT_BASE``; a province
that publishes under its own domain passes its base to the registry, which rewrites the
package on load, so a new province is configuration rather than a copy of the package.
National code systems keep their ``urn:oid:`` URIs: they are the same in every province.
"""

from __future__ import annotations

DEFAULT_BASE = "http://fhir.yiyang.cn"


def structure_definition(slug: str, base: str = DEFAULT_BASE) -> str:
    return f"{base}/StructureDefinition/{slug}"


def code_system(slug: str, base: str = DEFAULT_BASE) -> str:
    return f"{base}/CodeSystem/{slug}"


def value_set(slug: str, base: str = DEFAULT_BASE) -> str:
    return f"{base}/ValueSet/{slug}"


def identifier_system(slug: str, base: str = DEFAULT_BASE) -> str:
    return f"{base}/sid/{slug}"


# Identifier systems the gateway matches people and organisations on (see NamingSystem-*.json).
ID_CARD_SYSTEM = "urn:oid:2.16.156.10011.1.3"
HEALTH_RECORD_SYSTEM = "urn:oid:2.16.156.10011.1.2"
# GB/T 2261.1 sex codes; the 身份证 business rules compare it with the number's sequence digit.
GB_SEX_SYSTEM = "urn:oid:2.16.156.10011.2.3.3.4"
