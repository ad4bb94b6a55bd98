"""How the archive holds a FHIR decimal: as a float (JSON's number, the stores' JSON).

A float keeps 15 to 17 significant digits, so a decimal written with more would come back as
another value (1.00000000000000001 as 1.0, 12345678901234567890.5 as 1.2345678901234567e+19).
The JSON and XML readers refuse such a decimal rather than store a value nobody sent.  Its
written precision is not kept either way: 82.50 is read as 82.5, the same value.
"""

from __future__ import annotations

from decimal import Decimal


def keeps_value(text: str, value: float) -> bool:
    """Whether ``value``, the float read from ``text``, is the decimal ``text`` as written."""
    return Decimal(repr(value)) == Decimal(text)
