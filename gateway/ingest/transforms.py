"""Normalisers the gateway lends the mapping engine because they need the validator's knowledge.

The mapping layer imports nothing of ours but canonical URLs; 身份证 arithmetic lives in
``conformance.id_card``, so the 15→18 upgrade is supplied from here.
"""

from __future__ import annotations

from typing import Any

from conformance import id_card
from mappings.normalise import identifier


def id_card_number(value: Any) -> str | None:
    """Full-width folded, upper-case X, 15-digit numbers upgraded to 18; anything else is left
    as it is for the validator to judge (a bad checksum is quarantined, never "fixed")."""
    cleaned = identifier(value)
    if cleaned is not None and id_card.FIFTEEN.fullmatch(cleaned):
        return id_card.upgrade_15(cleaned)
    return cleaned


NORMALISERS = {"id_card": id_card_number}
