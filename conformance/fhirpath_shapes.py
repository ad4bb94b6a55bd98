"""FHIRPath invariants of a few common shapes, answered by Python instead of fhirpathpy.

fhirpathpy interprets an expression node by node, tens of microseconds for even the shortest
one.  Most invariants are answered from their memo (see :mod:`conformance.invariants`), but
one comparing a value with ``today()`` is keyed by the value, and values such as birth dates
are nearly all distinct: yy-pat-3 (``$this.toString() <= today().toString()``) ran the
interpreter on almost every Patient create, a seventh of its validation.

The expression stays data: a shape is recognised in its text when the invariant is prepared,
and only for the inputs on which the closure is known to agree with fhirpathpy; for any other
input the closure answers None and the interpreter decides.  Agreement with fhirpathpy is
tested on generated inputs (tests/conformance/test_fhirpath_shapes.py).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

#: a verdict from (value, today's date as text), or None: not this shape's input, ask fhirpathpy
Shape = Callable[[object, str], bool | None]

#: ``$this.toString() <= today().toString()``, optionally with ``.substring(0, N)`` on the value
_TODAY_COMPARISON = re.compile(
    r"\$this\.toString\(\)(?:\.substring\(\s*0\s*,\s*(\d{1,4})\s*\))?\s*(<=|>=|<|>)\s*today\(\)\.toString\(\)"
)
_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def compile_shape(expression: str) -> Shape | None:
    """The closure answering ``expression``, when it has a shape known here; else None."""
    found = _TODAY_COMPARISON.fullmatch(expression.strip())
    if found is None:
        return None
    length, compare = found.group(1), _OPERATORS[found.group(2)]
    end = int(length) if length is not None else None

    def compared_with_today(value: object, today: str) -> bool | None:
        # fhirpathpy's toString() of a JSON string is the string itself, and two strings
        # compare by code point, as Python's do.  Other JSON values (numbers, whose text it
        # writes its own way, booleans) and the empty string are left to it.
        if type(value) is not str or not value:
            return None
        return compare(value[:end], today)

    return compared_with_today
