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
    as it is for the validator to judge (a bad checksum is quarantined, never "fixed").  A
    15-digit number whose birth date does not exist is left as the export wrote it: upgraded,
    its reason would quote an 18-digit number the clerk cannot find in the export."""
    cleaned = identifier(value)
    if cleaned is not None and id_card.FIFTEEN.fullmatch(cleaned):
        upgraded = id_card.upgrade_15(cleaned)
        return upgraded if id_card.facts(upgraded) is not None else cleaned
    return cleaned


NORMALISERS = {"id_card": id_card_number}
