"""FHIRPath invariants, compiled once and evaluated on plain dicts with fhirpathpy.

Most invariants read a few named children of their context (``contained.contained.empty()``,
``name.exists() or telecom.exists()``).  When none of those children is present the answer is
the answer for an empty element, which is computed once per invariant and reused: this keeps
``dom-2`` … ``dom-5`` off the hot path for the 99 % of resources with no contained resources.
Expressions that look at the whole node (``children()``, ``%resource``, type names …) are
always evaluated.

The same reasoning memoises the rest: an invariant that reads only named children gives the
same answer for the same values of those children, so results are cached by that projection
(``gender`` and its GB code take a handful of values across a whole province).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import fhirpathpy
import orjson
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
_WHOLE_NODE = re.compile(r"children\(|descendants\(|%|resolve\(|repeat\(|conformsTo|^\s*hasValue\(")
_IDENTIFIER = re.compile(r"(?<![.\w`%$])([A-Za-z_]\w*)(?!\w)(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod", "true", "false"})


def _has_value(inputs: list[Any]) -> bool:
    """FHIRPath hasValue(), which fhirpathpy lacks: a single primitive that carries a value."""
    return len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))


_OPTIONS = {
    "traceFn": lambda *args: None,
    "userInvocationTable": {"hasValue": {"fn": _has_value, "arity": {0: []}}},
}
_MEMO_LIMIT = 50_000


def referenced_children(expression: str) -> frozenset[str] | None:
    """Child names the expression can read from its context, or None if it may read anything."""
    bare = _STRING_LITERAL.sub("''", expression)
    if _WHOLE_NODE.search(bare) or _this_at_top_level(bare):
        return None
    names = {name for name in _IDENTIFIER.findall(bare) if name not in _KEYWORDS}
    if any(name[0].isupper() for name in names):  # a type name may filter the root: evaluate
        return None
    return frozenset(names)


def _this_at_top_level(bare: str) -> bool:
    """``$this`` outside any function argument is the context itself; inside ``where(…)`` or
    ``select(…)`` it is only the item being iterated, which named children already cover."""
    depth = 0
    for index, char in enumerate(bare):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and bare.startswith("$this", index):
            return True
    return False


def presence_only(expression: str, names: frozenset[str]) -> frozenset[str]:
    """Names the expression only tests for presence (``value.empty()``, ``system.exists()``):
    for those the memo key records that a value is there, not what it is."""
    bare = _STRING_LITERAL.sub("''", expression)
    found = set()
    for name in names:
        uses = len(re.findall(rf"(?<![.\w`%$]){name}(?!\w)", bare))
        tests = len(re.findall(rf"(?<![.\w`%$]){name}\.(?:exists|empty)\(\)", bare))
        if uses and uses == tests:
            found.add(name)
    return frozenset(found)


def _key_pattern(names: frozenset[str]) -> re.Pattern[str]:
    """Matches the JSON keys holding the named children: ``name``, ``_name`` and, for choice
    elements, ``nameType`` (``value`` covers valueQuantity, valueString …)."""
    alternatives = "|".join(sorted(map(re.escape, names))) or "(?!)"
    return re.compile(rf"_?(?:{alternatives})(?:[A-Z]\w*)?")


@dataclass(slots=True)
class Invariant:
    key: str
    severity: str
    expression: str
    human: str
    _compiled: Any = None
    _names: re.Pattern[str] | None = None
    _presence: re.Pattern[str] | None = None
    _when_empty: bool | None = None
    _memo: dict[bytes, bool | str] | None = None
    error: str | None = None
    _ready: bool = False

    def _prepare(self) -> None:
        """Parse on first use: R4 has hundreds of invariants and a run meets a few dozen."""
        self._ready = True
        try:
            self._compiled = fhirpathpy.compile(self.expression, models["r4"], _OPTIONS)
        except Exception as exc:  # noqa: BLE001 - fhirpathpy raises bare Exceptions on parse errors
            self.error = f"{type(exc).__name__}: {exc}"[:200]
            return
        names = referenced_children(self.expression)
        if names is not None:
            self._names = _key_pattern(names)
            presence = presence_only(self.expression, names)
            self._presence = _key_pattern(presence) if presence else None
            outcome = self._run({}, {}, "Element")
            self._when_empty = outcome if isinstance(outcome, bool) else None
            self._memo = {}

    def _run(self, node: Any, root: dict[str, Any], base: str) -> bool | str:
        try:
            # The base type path lets fhirpathpy resolve choice names (value → valueQuantity).
            typed = ResourceNode.create_node(node, base) if isinstance(node, dict) else node
            result = self._compiled(typed, {"resource": root, "rootResource": root, "context": node})
        except Exception as exc:  # noqa: BLE001 - any failure inside the engine is reported, not raised
            return f"{type(exc).__name__}: {exc}"[:200]
        # An empty result is not a failure: e.g. ref-1 on a Reference that only has a display.
        return all(item is True for item in result) if result else True

    def check(self, node: Any, root: dict[str, Any], base: str) -> bool | str:
        """True when satisfied, False when violated, or a reason string when not evaluable.

        ``base`` is the FHIR type or element path of ``node`` (``ContactPoint``, ``Patient.contact``).
        """
        if not self._ready:
            self._prepare()
        if self.error is not None:
            return self.error
        if self._memo is None or not isinstance(node, dict):
            return self._run(node, root, base)
        matches = self._names.fullmatch
        projection = {key: value for key, value in node.items() if matches(key)}
        if not projection and self._when_empty is not None:
            return self._when_empty
        keyed = projection
        if self._presence is not None:
            present = self._presence.fullmatch
            keyed = {k: (True if present(k) else v) for k, v in projection.items()}
        try:
            key = base.encode() + orjson.dumps(keyed, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON-serialisable: cannot memoise, evaluate directly
            return self._run(node, root, base)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            found = self._memo[key] = self._run(projection, root, base)
        return found


_CACHE: dict[tuple[str, str, str], Invariant] = {}


def compile_invariant(key: str, severity: str, expression: str, human: str) -> Invariant:
    """Invariants are shared by every profile and element that repeats them."""
    cache_key = (key, severity, expression)
    found = _CACHE.get(cache_key)
    if found is None:
        found = _CACHE[cache_key] = Invariant(key, severity, expression, human)
    return found
