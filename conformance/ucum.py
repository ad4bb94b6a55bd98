"""Comparing quantities across UCUM units, for ``minValueQuantity`` / ``maxValueQuantity``.

ucumvert parses UCUM with the official grammar (generated from ``ucum-essence.xml``) and maps
each unit onto pint, which converts.  Its pint definitions are not all UCUM's: auditing them
against the ``ucum-essence.xml`` it ships found ``[Cal]`` a thousandth of UCUM's, ``[LPF]`` a
hundredth, ``[cft_i]`` read as centi-foot, ``'`` as a minute of time, and the arbitrary units
(``[IU]``, ``[arb'U]``) dimensionless, so commensurable with ``%``.  So nothing it says is
taken on trust: every atom and prefix a unit uses is first checked against its UCUM definition
(recursively, down to the base units), once, and a unit with any atom that disagrees by more
than ``AUDIT_TOLERANCE`` is not converted.  What is converted and how:

- Quantities compare in pint's root units, where the offsets of ``Cel`` and ``[degF]`` vanish.
  Those two are UCUM's special units defined by functions, checked here at two fixed points
  each; every other special unit (``[pH]``, ``dB``…) is never converted.
- ``mol`` is a base dimension, as in pint (UCUM makes it the count 6.02214076×10²³), so amounts
  convert among themselves (mmol/L ↔ umol/L, meq, mosm, kat, U) but never to counts, and
  mass never to amount: ``mg/dL`` and ``mmol/L`` stay incomparable, as they need a molar mass.
- UCUM's base units must stay distinct dimensions; pint makes ``rad`` dimensionless, so angles
  are not converted.
- UCUM ignores annotations; here two units compare only with the same annotations
  (``mL/min/{1.73_m2}`` is not ``mL/min``, ``{score}`` is not ``1``), and arbitrary units only
  with the same arbitrary atoms to the same powers (``m[IU]/L`` ↔ ``[IU]/L`` converts; ``[IU]``
  and ``%`` do not).
- A converted value is reported only when it is outside the bound by more than what the atoms'
  measured disagreement with UCUM's table (and floating point) could explain.

Units are parsed once per code (``lru_cache``); ucumvert and pint are imported on first use,
so validation that never compares two different units does not load them.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from lxml import etree

UCUM = "http://unitsofmeasure.org"
AUDIT_TOLERANCE = 1e-5  # relative; pint's mm[Hg] differs from UCUM's 133.3220 Pa by 2.9e-6
_FLOAT_SLACK = 1e-12
_TINY = 1e-300  # below this (in root units) floats are subnormal and lose their relative precision
_ESSENCE_NS = "{http://unitsofmeasure.org/ucum-essence}"
# UCUM's base units plus mol (see above): each must be its own dimension in pint.
_ROOTS = ("m", "s", "g", "rad", "K", "C", "cd", "mol")
# UCUM's special units that convert linearly, as (value, kelvin) pairs their functions define.
_OFFSET_POINTS = {"Cel": ((0, 273.15), (100, 373.15)), "[degF]": ((32, 273.15), (212, 373.15))}


@dataclass(frozen=True)
class Unit:
    """A parsed, audited UCUM unit: how to reach pint's root units, and what must match."""

    dimensionality: Any  # pint's UnitsContainer of root dimensions
    signature: tuple[tuple[str, int], ...]  # annotations and arbitrary atoms, with powers
    factor: float | None  # root magnitude of 1 unit; None for an offset unit (Cel, [degF])
    units: Any  # pint units, used for offset units
    deviation: float  # bound on the relative disagreement with UCUM's own definitions


def compare(value: float, code: str, bound: float, bound_code: str) -> int | None:
    """-1 when ``value code`` is certainly below ``bound bound_code``, 1 when certainly above, 0
    when within the uncertainty; None when the units cannot be compared (unparsable, not
    commensurable, different annotations, or an atom that failed the audit)."""
    if not isinstance(code, str) or not isinstance(bound_code, str):
        return None
    mine, theirs = unit(code), unit(bound_code)
    if mine is None or theirs is None:
        return None
    if mine.dimensionality != theirs.dimensionality or mine.signature != theirs.signature:
        return None
    try:
        a, b = _root_magnitude(mine, value), _root_magnitude(theirs, bound)
    except Exception:  # pint's offset and overflow errors: not comparable, never a crash
        return None
    if math.isnan(a) or math.isnan(b):
        return None
    margin = (mine.deviation + theirs.deviation + _FLOAT_SLACK) * max(abs(a), abs(b)) + _TINY
    return -1 if a < b - margin else 1 if a > b + margin else 0


@lru_cache(maxsize=4096)
def is_code(code: str) -> bool:
    """Whether ``code`` is a UCUM expression — the ``ucum-units`` value set is every one — by
    UCUM's grammar and atom table as ucumvert's parser holds them (no conversion, so no audit)."""
    if not isinstance(code, str) or not code or len(code) > 200:
        return False
    try:
        _engine().parse(code)
    except Exception:  # lark's errors of many kinds: all mean "not UCUM"
        return False
    return True


@lru_cache(maxsize=4096)
def unit(code: str) -> Unit | None:
    """The audited unit for a UCUM code, or None when it cannot be converted safely."""
    if not isinstance(code, str) or not code or len(code) > 200:
        return None
    engine = _engine()
    try:
        tree = engine.parse(code)
        quantity = engine.to_pint(tree)
    except Exception:  # ucumvert raises lark and pint errors of many kinds: all mean "no"
        return None
    leaves = _leaves(tree)
    if leaves is None:
        return None
    deviation, signature = 0.0, Counter()
    for kind, text, power in leaves:
        if kind == "annotation":
            signature[text] += 1
            continue
        prefix, atom = text
        atom_deviation = _atom_deviation(atom)
        prefix_deviation = _prefix_deviation(prefix, atom) if prefix else 0.0
        if atom_deviation is None or prefix_deviation is None:
            return None
        deviation += (atom_deviation + prefix_deviation) * abs(power)
        if atom in _essence().arbitrary:
            signature[atom] += power
    try:
        magnitude = float(quantity.magnitude)
        zero = engine.registry.Quantity(0, quantity.units).to_root_units()
        root = engine.registry.Quantity(magnitude, quantity.units).to_root_units()
    except Exception:
        return None
    offset = float(zero.magnitude) != 0.0
    return Unit(
        dimensionality=root.dimensionality,
        signature=tuple(sorted((key, count) for key, count in signature.items() if count)),
        factor=None if offset else float(root.magnitude),
        units=quantity.units,
        deviation=deviation,
    )


def _root_magnitude(parsed: Unit, value: float) -> float:
    if parsed.factor is not None:
        return float(value) * parsed.factor
    return float(_engine().registry.Quantity(float(value), parsed.units).to_root_units().magnitude)


# -- the audit ------------------------------------------------------------------------------


@cache
def _atom_deviation(atom: str) -> float | None:
    """How far ucumvert's atom is from its UCUM definition (relative), including the atoms that
    definition uses; None when it disagrees or cannot be checked."""
    essence, engine = _essence(), _engine()
    if atom in _ROOTS:
        return 0.0 if atom in _distinct_roots() else None
    if atom in _OFFSET_POINTS:
        return _offset_deviation(atom)
    definition = essence.units.get(atom)
    if definition is None or definition.special:
        return None
    if atom in essence.arbitrary and definition.unit == "1":
        return 0.0  # an arbitrary unit of its own: compared only with itself (the signature)
    try:
        mine = engine.to_pint(engine.parse(atom))
        reference_tree = engine.parse(definition.unit)
        reference = engine.to_pint(reference_tree)
        ratio = float((mine / reference).to("dimensionless").magnitude) / definition.value
    except Exception:
        return None
    if mine.dimensionality != reference.dimensionality:
        return None
    own = abs(ratio - 1.0)
    if not own <= AUDIT_TOLERANCE:
        return None
    inherited = unit(definition.unit)
    if inherited is None or (atom in essence.arbitrary) != bool(inherited.signature):
        return None
    return own + inherited.deviation


def _offset_deviation(atom: str) -> float | None:
    registry = _engine().registry
    try:
        units = _engine().to_pint(_engine().parse(atom)).units
        worst = max(
            abs(float(registry.Quantity(value, units).to("kelvin").magnitude) / kelvin - 1.0)
            for value, kelvin in _OFFSET_POINTS[atom]
        )
    except Exception:
        return None
    return worst if worst <= AUDIT_TOLERANCE else None


@cache
def _prefix_deviation(prefix: str, atom: str) -> float | None:
    """ucumvert joins prefix and atom into a pint name, which pint may read as another unit."""
    essence, engine = _essence(), _engine()
    factor = essence.prefixes.get(prefix)
    if factor is None:
        return None
    try:
        joined = engine.to_pint(engine.parse(prefix + atom))
        alone = engine.to_pint(engine.parse(atom))
        ratio = float((joined / alone).to("dimensionless").magnitude) / factor
    except Exception:
        return None
    own = abs(ratio - 1.0)
    return own if own <= AUDIT_TOLERANCE else None


@lru_cache(maxsize=1)
def _distinct_roots() -> frozenset[str]:
    """The base units that pint keeps as distinct, non-dimensionless dimensions."""
    engine = _engine()
    seen: dict[Any, list[str]] = {}
    for atom in _ROOTS:
        try:
            dimensionality = engine.to_pint(engine.parse(atom)).dimensionality
        except Exception:
            continue
        seen.setdefault(dimensionality, []).append(atom)
    return frozenset(atoms[0] for dims, atoms in seen.items() if len(atoms) == 1 and dims)


def _leaves(tree: Any) -> list[tuple[str, Any, int]] | None:
    """("unit", (prefix, atom), power) and ("annotation", text, 1) of a parse tree, with the
    powers that exponents and divisions give; None for a tree of unexpected shape."""
    from lark import Token, Tree

    found: list[tuple[str, Any, int]] = []

    def walk(node: Any, power: int) -> bool:
        if isinstance(node, Token):
            if node.type == "ANNOTATION":
                found.append(("annotation", str(node), 1))
            return True
        if not isinstance(node, Tree):
            return False
        children = node.children
        if node.data == "simple_unit":
            kinds = [child.type for child in children if isinstance(child, Token)]
            if kinds == ["FACTOR"]:
                return True
            if kinds[-1:] not in (["UNIT_METRIC"], ["UNIT_NON_METRIC"]) or len(kinds) != len(children):
                return False
            if len(kinds) == 2 and not kinds[0].startswith("PREFIX_") or len(kinds) > 2:
                return False
            prefix = str(children[0]) if len(kinds) == 2 else ""
            found.append(("unit", (prefix, str(children[-1])), power))
            return True
        if node.data == "annotatable" and len(children) == 2:
            return walk(children[0], power * int(children[1]))
        if node.data == "main_term" and len(children) == 2:
            return walk(children[1], -power)
        if node.data == "term" and len(children) == 3:
            divided = str(children[1]) == "/"
            return walk(children[0], power) and walk(children[2], -power if divided else power)
        return all(walk(child, power) for child in children)

    return found if walk(tree, 1) else None


# -- ucumvert and UCUM's own table, loaded on first use ---------------------------------------


@dataclass(frozen=True)
class _Definition:
    unit: str
    value: float
    special: bool


@dataclass(frozen=True)
class _Essence:
    units: dict[str, _Definition]
    prefixes: dict[str, float]
    arbitrary: frozenset[str]


class _Engine:
    def __init__(self) -> None:
        from ucumvert import PintUcumRegistry, get_ucum_parser
        from ucumvert.ucum_pint import UcumToPintTransformer

        self.registry = PintUcumRegistry()
        self._parser = get_ucum_parser()
        self._transformer = UcumToPintTransformer(self.registry)

    def parse(self, code: str) -> Any:
        return self._parser.parse(code)

    def to_pint(self, tree: Any) -> Any:
        """A pint Quantity; ucumvert returns a bare token or number for annotation-only units."""
        result = self._transformer.transform(tree)
        if hasattr(result, "units"):
            return result
        magnitude = result if isinstance(result, (int, float)) else 1
        return self.registry.Quantity(magnitude, "dimensionless")


_LOCK = threading.Lock()
_loaded: dict[str, Any] = {}


def _engine() -> _Engine:
    if "engine" not in _loaded:
        with _LOCK:
            if "engine" not in _loaded:
                _loaded["engine"] = _Engine()
    return _loaded["engine"]


@lru_cache(maxsize=1)
def _essence() -> _Essence:
    """The ucum-essence.xml that ucumvert ships (the official UCUM table it built its grammar from)."""
    path = resources.files("ucumvert") / "vendor" / "ucum-essence.xml"
    # a file shipped with the library, parsed as hardened as any input: no entities, no DTD, no network
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(path.read_bytes(), parser)
    units, arbitrary = {}, set()
    for element in root.iter(f"{_ESSENCE_NS}unit"):
        value = element.find(f"{_ESSENCE_NS}value")
        code = element.get("Code")
        if value is None or code is None:
            continue
        special = element.get("isSpecial") == "yes" or value.find(f"{_ESSENCE_NS}function") is not None
        try:
            number = float(value.get("value") or "nan")
        except ValueError:
            number = math.nan
        units[code] = _Definition(value.get("Unit") or "", number, special or math.isnan(number))
        if element.get("isArbitrary") == "yes":
            arbitrary.add(code)
    prefixes = {}
    for element in root.iter(f"{_ESSENCE_NS}prefix"):
        value = element.find(f"{_ESSENCE_NS}value")
        if value is not None and element.get("Code"):
            prefixes[element.get("Code")] = float(value.get("value") or "nan")
    return _Essence(units, prefixes, frozenset(arbitrary))
