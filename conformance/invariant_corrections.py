"""Published R4 invariants that are wrong as written, and the expressions actually evaluated.

A few core R4 constraints were published with FHIRPath that does not say what their ``human``
text says: ``answer is Boolean`` names no FHIR type (the type is ``boolean``), con-3 compares a
CodeableConcept with a string, ras-2 fails when there is no probability, vs-1 fails on an
``effectivePeriod`` it does not concern.  The reference HL7
validator evaluates corrected expressions for exactly these (its ``FHIRPathExpressionFixer``),
so an instance it accepts must not fail here on a typo in the specification.

One more is right as written but beyond the evaluator: rng-2 compares a Range's ``low`` and
``high`` Quantities, which fhirpathpy compares as JSON objects (a TypeError), so every Range
with both ends was refused as not evaluable.  Its correction compares the values where the two
ends share a unit (the same code and system, or, without codes, the same unit text, or none),
as R4 asks of a Range's ends; ends in different units are left unjudged, as FHIRPath leaves
Quantities it cannot compare (empty).

A correction applies only to the exact published expression under its key: a profile that
reuses the key with an expression of its own is evaluated as written.
"""

from __future__ import annotations

CORRECTIONS: dict[tuple[str, str], str] = {
    ("que-7", "operator = 'exists' implies (answer is Boolean)"): "operator = 'exists' implies (answer is boolean)",
    (
        "ras-2",
        "probability is decimal implies (probability as decimal) <= 100",
    ): "(probability.exists() and (probability is decimal)) implies ((probability as decimal) <= 100)",
    (
        "con-3",
        "clinicalStatus.exists() or verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/"
        "condition-ver-status' and code = 'entered-in-error').exists() or category.select($this='problem-list-item')"
        ".empty()",
    ): "(verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and "
    "code = 'entered-in-error').exists() and category.coding.exists(system='http://terminology.hl7.org/CodeSystem/"
    "condition-category' and code ='problem-list-item').empty()) implies (clinicalStatus.exists())",
    # vital signs: "if effective[x] is dateTime …", but ``as dateTime`` of a Period is empty,
    # which fails, so a vital sign measured over a period (allowed: dateTime or Period) was refused
    ("vs-1", "($this as dateTime).toString().length() >= 8"): "($this is dateTime) implies "
    "(($this as dateTime).toString().length() >= 8)",
    ("rng-2", "low.empty() or high.empty() or (low <= high)"): "low.value.empty() or high.value.empty() or "
    "((low.system ~ high.system and low.code ~ high.code and (low.code.exists() or low.unit ~ high.unit)) "
    "implies low.value <= high.value)",
}


def corrected(key: str, expression: str) -> str:
    """The expression to evaluate for a constraint: its correction when it is a known erratum."""
    return CORRECTIONS.get((key, expression), expression)
