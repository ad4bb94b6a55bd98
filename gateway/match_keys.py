"""A person's match keys: the identity numbers a Patient is known by, strongest first.

The identity index merges people on them (``gateway/ingest/identity.py``), the search index
writes a ``_person`` row of each for a reference naming a person by number alone
(``gateway/search/indexer.py``), the read rule counts a person by them
(``gateway/security/access.py``) and a REST write locks them (``gateway/fhir``).  A leaf:
it imports nothing of the gateway, so each of those rooms reads the one rule without
importing another's.
"""

from __future__ import annotations

from typing import Any

from profiles.canonical import HEALTH_RECORD_SYSTEM
from profiles.registry import identity_documents

#: the 医保人员编号 (national healthcare security person number), under any canonical base
PSN_NO_SUFFIX = "/sid/nhsa-psn-no"
#: a hospital's own patient number (HIS 患者ID): unique within the hospital its system names
HIS_PATIENT_ID = "/sid/his-patient-id/"
#: the national identity documents (身份证, 港澳台居民居住证, 外国人永久居留身份证), each number
#: naming one person: their systems and match-key kinds are the profile package's data
#: (``profiles/identity-documents.json``); the 居住证 and 永居证 are matched by system suffix,
#: like the 医保人员编号, so they hold under any canonical base
DOCUMENTS = identity_documents()
#: the match keys' kinds of the national identity documents
DOCUMENT_KINDS = frozenset({*DOCUMENTS.exact.values(), *DOCUMENTS.suffixes.values()})


def as_keyed(system: str | None, value: str) -> str:
    """An identifier's value as the keys read it: a national identity document's number
    upper-cased (a 身份证号's check character X is written x as often, one person either way),
    any other number as written.  The search index and its queries read it so too: a
    conditional create by ``…10011.1.3|…x`` found no one, and the keys then refused its
    create as the holder's second record."""
    if system and DOCUMENTS.kind(system) is not None:
        return value.upper()
    return value


def keyed_anywhere(value: str) -> str | None:
    """The value a system-less token search (``identifier=…725x``) must also find under a
    national identity document's system, where :func:`as_keyed` stores it upper-cased (None
    when that is the value itself).  Only those systems are read so: under any other a
    number's case counts, and ``abc`` must not find another system's ``ABC``.  A value
    without a digit is no document's number (``male``, ``active``), and is searched as
    written alone."""
    upper = value.upper()
    return upper if upper != value and any(c.isdigit() for c in value) else None


def match_keys(patient: dict[str, Any]) -> list[str]:
    """Keys in order of trust: the national identity documents (身份证号, 居住证号, 永居证号),
    then the record numbers: 医保人员编号, 健康档案编号 and a hospital's HIS 患者ID.  A number
    no longer in use (``use: old``: the HIS record an ADT^A40 merged away) names nobody."""
    strong, weak = [], []
    for identifier in patient.get("identifier", []):
        system, value = identifier.get("system"), identifier.get("value")
        if not system or not value or identifier.get("use") == "old":
            continue
        if (document := DOCUMENTS.kind(system)) is not None:
            strong.append(f"{document}|{value.upper()}")
        elif system.endswith(PSN_NO_SUFFIX) or system == HEALTH_RECORD_SYSTEM or HIS_PATIENT_ID in system:
            weak.append(f"{system}|{value}")
    return strong + weak


def is_document(key: str) -> bool:
    """Whether a match key is a national identity document's: one person's, whoever holds it
    (a 医保人员编号 or 健康档案编号 can be mistyped or reissued and stays a weaker hint)."""
    return key.split("|", 1)[0] in DOCUMENT_KINDS
