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

import gc
import re
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn

import fhirpathpy
import orjson
from fhirpathpy.engine.evaluators import evaluators as _evaluators
from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.engine.nodes import FP_DateTime, ResourceNode, TypeInfo
from fhirpathpy.models import models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from conformance import fhirpath_linear
from conformance.clock import validation_day, validation_moment
from conformance.fhirpath_scope import Scope
from conformance.fhirpath_shapes import Shape, compile_shape
from conformance.invariant_corrections import corrected
from conformance.limits import DEFAULT_LIMITS, Limits
from conformance.regexes import RegexError, compile_regex

R4 = models["r4"]
# fhirpathpy keeps the model behind is/as/ofType in a class attribute that only ``is``/``as``
# set, so an ``ofType(Resource)`` evaluated first would compare type names without the R4
# type hierarchy; the validator is R4 throughout, so it is set once here.
TypeInfo.model = R4

_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
_WHOLE_NODE = re.compile(r"children\(|descendants\(|%|resolve\(|repeat\(|conformsTo|^\s*hasValue\(")
_IDENTIFIER = re.compile(r"(?<![.\w`%$])([A-Za-z_]\w*)(?!\w)(?!\s*\()")
_EXTENSION_CALL = re.compile(r"(?<![.\w`%$])extension\s*\(")
#: calls whose answer changes from moment to moment: an invariant using them is never memoised
_MOMENT_CALL = re.compile(r"\b(?:now|timeOfDay)\s*\(")
#: today() changes with the day: an invariant using it is memoised for that day
_TODAY_CALL = re.compile(r"\btoday\s*\(")
_KEYWORDS = frozenset({"and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod", "true", "false"})


def _has_value(inputs: list[Any]) -> bool:
    """FHIRPath hasValue(), which fhirpathpy lacks: a single primitive that carries a value."""
    return len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))


#: CPU time each thread has spent in full (generation 2) garbage collections
_collections = threading.local()


def _time_full_collections(phase: str, info: dict[str, int]) -> None:
    """Why: a full collection in a long-lived process (a worker after hours, a test session
    holding thousands of tests' objects) can take a second on its own, and it runs in whichever
    thread allocates the object that triggers it, often one inside an invariant.  That second is
    the collector's, not the engine's: charged to the budget it refused the two valid example
    document Bundles of a clean-clone test run.  Younger generations take microseconds."""
    if info["generation"] != 2:
        return
    if phase == "start":
        _collections.started = time.thread_time()
    elif (started := getattr(_collections, "started", None)) is not None:
        _collections.spent = getattr(_collections, "spent", 0.0) + time.thread_time() - started
        _collections.started = None


gc.callbacks.append(_time_full_collections)


def engine_clock() -> float:
    """The clock of the budget's time bound: the validating thread's CPU time, less what full
    garbage collections took of it (see :class:`Budget`)."""
    return time.thread_time() - getattr(_collections, "spent", 0.0)


class BudgetExceeded(BaseException):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside fhirpathpy when an instance's FHIRPath budget is spent.

    A BaseException so that no ``except Exception`` inside the engine can swallow it; only
    :meth:`Invariant._run` catches it.
    """


class Budget:
    """FHIRPath work allowed for one instance, across all its invariants.

    The primary bound is a count of evaluation steps (one per FHIRPath node evaluated): it is
    deterministic, so a verdict never depends on how busy the machine is.  A bound on the CPU
    time this thread spends inside the engine backs it up for single steps that are slow on
    their own (``descendants()`` of a huge resource); CPU time, not the wall clock, which a
    loaded machine stretches (a clean-clone test run refused the two valid example document
    Bundles once), nor the garbage collector's (:func:`engine_clock`).  It is read every 256 steps, so it costs nothing.
    No threads and no signals: the check runs inline, in whatever thread validates.
    """

    __slots__ = ("steps", "steps_left", "seconds", "used", "started", "exhausted", "reported", "skipped", "limits")

    def __init__(self, limits: Limits = DEFAULT_LIMITS, size: int = 0) -> None:
        """``size`` is the instance's count of JSON values: bigger instances get more budget."""
        self.limits = limits
        self.steps = self.steps_left = limits.fhirpath_steps + limits.fhirpath_steps_per_value * size
        self.seconds = limits.fhirpath_seconds + limits.fhirpath_seconds_per_value * size
        self.used = 0.0
        self.started = 0.0
        self.exhausted = False
        #: the one issue reporting exhaustion, so later skipped invariants can be counted on it
        self.reported: Any = None
        self.skipped = 0

    def step(self) -> None:
        self.steps_left -= 1
        if self.steps_left <= 0 or (
            not self.steps_left & 255 and self.used + engine_clock() - self.started > self.seconds
        ):
            self._spent()

    def charge(self, steps: int) -> None:
        """Counts ``steps`` of work one step does inside fhirpathpy, where :meth:`step` cannot
        stop it (:func:`_charged_by_pairs`)."""
        self.steps_left -= steps
        if self.steps_left <= 0:
            self._spent()

    def _spent(self) -> NoReturn:
        self.exhausted = True
        raise BudgetExceeded


_BUDGET: ContextVar[Budget | None] = ContextVar("fhirpath_budget", default=None)


def set_budget(budget: Budget | None) -> Any:
    """Install the budget for the instance being validated; returns the token to reset it."""
    return _BUDGET.set(budget)


def reset_budget(token: Any) -> None:
    _BUDGET.reset(token)


def current_budget() -> Budget | None:
    return _BUDGET.get()


def _metered(evaluate: Any) -> Any:
    def metered(ctx: Any, parent: Any, node: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
        return evaluate(ctx, parent, node)

    metered.__wrapped__ = evaluate  # type: ignore[attr-defined]
    return metered


# fhirpathpy dispatches every node through this table; metering it once, here, is the only hook
# that sees every step of every expression (function tables only see function calls).  Outside
# a validation no budget is installed and the wrapper is a single ContextVar read.
for _name, _evaluate in list(_evaluators.items()):
    if not hasattr(_evaluate, "__wrapped__"):
        _evaluators[_name] = _metered(_evaluate)
fhirpath_linear.install()


def _charged_by_pairs(function: Any) -> Any:
    """fhirpathpy's ``exclude()``, ``intersect()``, ``subsetOf()`` and ``supersetOf()`` compare
    each item of one collection with each of the other, in Python, inside one step: a hostile
    ``name.exclude(name.family)`` of 10,000 names took 8.4 s, of 40,000 140 s.  Each is charged
    a step per pair before it starts, so the budget refuses what it could not stop; a profile's
    own use (a few items each side) costs a few steps."""

    def charged(ctx: Any, first: Any, second: Any) -> Any:
        budget = _BUDGET.get()
        if budget is not None:
            budget.charge(_count(first) * _count(second))
        return function(ctx, first, second)

    charged.__wrapped__ = function  # type: ignore[attr-defined]
    return charged


def _count(collection: Any) -> int:
    return len(collection) if isinstance(collection, list) else 1


for _name in ("exclude", "intersect", "subsetOf", "supersetOf"):
    _invocation = invocation_registry[_name]
    if not hasattr(_invocation["fn"], "__wrapped__"):
        _invocation["fn"] = _charged_by_pairs(_invocation["fn"])


def _single_string(inputs: list[Any], function: str) -> str | None:
    if not inputs:
        return None
    if len(inputs) > 1:
        raise ValueError(f"{function}() expects a single string, got {len(inputs)} items")
    if not isinstance(inputs[0], str):
        raise ValueError(f"{function}() expects a string, got {type(inputs[0]).__name__}")
    return inputs[0]


def _matches(inputs: list[Any], regex: Any) -> Any:
    """FHIRPath matches() on RE2: same semantics as fhirpathpy's (search, dot matches newline)."""
    string = _single_string(inputs, "matches")
    if string is None or not regex:
        return []
    pattern = compile_regex(regex, dot_nl=True)
    try:
        return pattern.search(string) is not None
    except UnicodeError:
        return False


def _replace_matches(inputs: list[Any], regex: Any, replacement: Any) -> Any:
    """FHIRPath replaceMatches() on RE2 (``$1`` in the replacement is group 1)."""
    string = _single_string(inputs, "replaceMatches")
    if string is None or not isinstance(regex, str) or not isinstance(replacement, str):
        return []
    pattern = compile_regex(regex)
    return pattern.sub(re.sub(r"\$(\d+)", r"\\\1", replacement), string)


def _today(inputs: list[Any]) -> FP_DateTime:
    """FHIRPath today(): the Beijing date of the validation (conformance.clock)."""
    return FP_DateTime(validation_moment().date().isoformat())


def _now(inputs: list[Any]) -> FP_DateTime:
    """FHIRPath now(): the validation's moment, in Beijing time with its +08:00 offset."""
    return FP_DateTime(validation_moment().isoformat(timespec="milliseconds"))


#: the scope of the invariant being evaluated, for resolve() (set only around expressions using it)
_SCOPE: ContextVar[Scope | None] = ContextVar("fhirpath_scope", default=None)


def _resolve(inputs: list[Any]) -> list[Any]:
    """FHIRPath resolve(), which fhirpathpy lacks: each Reference (or canonical/uri string) that
    names a resource inside the instance — a contained resource, or an entry of the enclosing
    Bundle — becomes that resource, typed; references to elsewhere resolve to nothing."""
    scope = _SCOPE.get()
    found = []
    for item in inputs:
        reference = item.get("reference") if isinstance(item, dict) else item
        if scope is None or not isinstance(reference, str):
            continue
        target = scope.resolve(reference)
        if target is not None:
            found.append(ResourceNode.create_node(target, target.get("resourceType")))
    return found


_OPTIONS = {
    "traceFn": lambda *args: None,
    "userInvocationTable": {
        "hasValue": {"fn": _has_value, "arity": {0: []}},
        "resolve": {"fn": _resolve, "arity": {0: []}},
        # fhirpathpy's read the machine's local clock; ours read conformance.clock
        "today": {"fn": _today, "arity": {0: []}},
        "now": {"fn": _now, "arity": {0: []}},
        # fhirpathpy runs these on Python's backtracking re; ours run on RE2 (linear time)
        "matches": {"fn": _matches, "arity": {1: ["String"]}, "nullable_input": True},
        "replaceMatches": {"fn": _replace_matches, "arity": {2: ["String", "String"]}, "nullable_input": True},
    },
}
#: regex literals handed to matches()/replaceMatches(), checked with RE2 when an invariant is compiled
_REGEX_LITERAL = re.compile(r"\b(?:matches|replaceMatches)\(\s*'((?:[^'\\]|\\.)*)'")
#: the verdict of an invariant not evaluated because the instance's FHIRPath budget is spent
OVER_BUDGET = "\0over-budget"
_MEMO_LIMIT = 50_000
#: distinct JSON keys an invariant learns to admit or pass over (see KeyFilter)
_KEYS_LEARNT = 4096


def _all_names(expression: str) -> frozenset[str]:
    """Every identifier the expression names, at the root or after a dot (not functions)."""
    bare = _STRING_LITERAL.sub("''", expression)
    return frozenset(n for n in re.findall(r"(?<![\w`%$])([A-Za-z_]\w*)(?!\w)(?!\s*\()", bare) if n not in _KEYWORDS)


def referenced_children(expression: str) -> frozenset[str] | None:
    """Child names the expression can read from its context, or None if it may read anything
    or reads the moment (now()): either way it is evaluated each time, never answered from the
    memo."""
    bare = _STRING_LITERAL.sub("''", expression)
    if _WHOLE_NODE.search(bare) or _MOMENT_CALL.search(bare) or _this_at_top_level(bare):
        return None
    names = {name for name in _IDENTIFIER.findall(bare) if name not in _KEYWORDS}
    if _EXTENSION_CALL.search(bare):  # extension('url') reads the extension child as a function
        names.add("extension")
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


def presence_only(expression: str, names: frozenset[str], *, nested: bool = False) -> frozenset[str]:
    """Names the expression only tests for presence (``value.empty()``, ``system.exists()``):
    for those the memo key records that a value is there, not what it is.  ``nested`` counts
    uses after a dot too (``identifier.where(value.exists())``), so the key may say at any
    depth that such a value is there: people differing only in identifier numbers then share
    one verdict."""
    bare = _STRING_LITERAL.sub("''", expression)
    before = r"(?<![\w`%$])" if nested else r"(?<![.\w`%$])"
    found = set()
    for name in names:
        uses = len(re.findall(rf"{before}{name}(?!\w)", bare))
        tests = len(re.findall(rf"{before}{name}\.(?:exists|empty)\(\)", bare))
        if uses and uses == tests:
            found.add(name)
    return frozenset(found)


def presence_of_children(expression: str, names: frozenset[str]) -> dict[str, re.Pattern[str]]:
    """Names the expression reads only for whether they, or some of their children, are there
    (``period.end.exists()``, ``period.end.empty()``), each with the pattern of those
    children's keys: for those the memo key keeps each item with only those children, marked
    present.  Why: yy-enc-1 asks whether an Encounter's period has an end, and a key holding
    the period's times made every Encounter a new key (one evaluation of 0.3 ms each)."""
    bare = _STRING_LITERAL.sub("''", expression)
    found = {}
    for name in names:
        uses = re.findall(
            rf"(?<![.\w`%$]){name}(?!\w)(?:\.(?!(?:exists|empty)\()(\w+))?(\.(?:exists|empty)\(\))?", bare
        )
        if uses and all(test for _, test in uses) and any(child for child, _ in uses):
            found[name] = key_pattern(frozenset(child for child, _ in uses if child))
    return found


def read_under(expression: str, names: frozenset[str], parents: frozenset[str]) -> frozenset[str]:
    """Those of ``names`` the expression reads only as children of ``parents`` (yy-enc-1's
    ``end``, read only as ``period.end``): when the parents are the names of
    :func:`presence_of_children`, their pruning marks such a child present already, and
    looking for it through the rest of the element (:func:`_present`) only cost time."""
    if not parents:
        return frozenset()
    bare = _STRING_LITERAL.sub("''", expression)
    under = "|".join(sorted(map(re.escape, parents)))
    found = set()
    for name in names:
        uses = len(re.findall(rf"(?<![\w`%$]){name}(?!\w)", bare))
        if uses and uses == len(re.findall(rf"(?<![.\w`%$])(?:{under})\.{name}(?!\w)", bare)):
            found.add(name)
    return frozenset(found)


def _with_children_present(value: Any, children: re.Pattern[str]) -> Any:
    """``value`` (an element or a list of them) with each element's children that ``children``
    admits marked present, the others left out."""
    if isinstance(value, dict):
        return {key: True for key in value if children.fullmatch(key)}
    if isinstance(value, list):
        return [_with_children_present(item, children) for item in value]
    return value


def _present(value: Any, marked: frozenset[str]) -> Any:
    """``value`` with every key in ``marked`` (the names and their ``_`` twins, see
    :func:`_with_twins`), at any depth, replaced by True.  Scalars are taken as they are, not
    passed to a call of their own: most values are scalars, and those calls were a third of
    keying yy-enc-1 (which reads whether a period has an ``end``)."""
    if isinstance(value, dict):
        return {
            k: True if k in marked else (_present(v, marked) if isinstance(v, (dict, list)) else v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_present(item, marked) if isinstance(item, (dict, list)) else item for item in value]
    return value


def _with_twins(names: frozenset[str]) -> frozenset[str]:
    """The names and their primitive extensions' keys (``end``, ``_end``)."""
    return names | {"_" + name for name in names}


def key_pattern(names: frozenset[str]) -> re.Pattern[str]:
    """Matches the JSON keys holding the named children: ``name``, ``_name`` and, for choice
    elements, ``nameType`` (``value`` covers valueQuantity, valueString …)."""
    alternatives = "|".join(sorted(map(re.escape, names))) or "(?!)"
    return re.compile(rf"_?(?:{alternatives})(?:[A-Z]\w*)?")


class KeyFilter:
    """The JSON keys a :func:`key_pattern` admits, learnt key by key.  Why: an invariant is
    checked on every element of its type and the elements of a type share a handful of keys, so
    a set lookup replaces a regex match per key.  Learning stops at :data:`_KEYS_LEARNT` (a
    hostile instance may bring any number of distinct keys); later ones are matched each time.
    Nothing learnt is ever forgotten, so threads sharing a filter never see a shrinking set."""

    __slots__ = ("_pattern", "_known", "_admitted")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._pattern = pattern
        self._known: set[str] = set()
        self._admitted: set[str] = set()

    def admitted(self, node: dict[str, Any]) -> set[str]:
        """The keys among ``node``'s (and perhaps others) that the pattern admits."""
        if node.keys() <= self._known:  # the usual case, told without building a set
            return self._admitted
        unknown = node.keys() - self._known
        fullmatch = self._pattern.fullmatch
        if len(self._known) + len(unknown) > _KEYS_LEARNT:
            return self._admitted | {key for key in unknown if fullmatch(key)}
        self._admitted.update([key for key in unknown if fullmatch(key)])  # decided before known
        self._known.update(unknown)
        return self._admitted


@dataclass(slots=True)
class Invariant:
    key: str
    severity: str
    expression: str
    human: str
    #: an empty result fails (a profile's invariant, as the reference judges it) or passes (core)
    empty_fails: bool = False
    #: the Chinese of ``human`` (a profile's own, or its zh-CN translation); "" for the core's
    #: invariants, whose Chinese is ours (invariants.zh-CN.json)
    human_zh: str = ""
    _compiled: Any = None
    #: the expression evaluated: the published one, or the reference validator's correction of it
    _evaluated: str = ""
    _uses_resolve: bool = False
    _names: KeyFilter | None = None
    _presence: KeyFilter | None = None
    #: keys read only for presence at any depth, with their `_` twins (see :func:`_present`)
    _nested_presence: frozenset[str] = frozenset()
    #: names read only for the presence of some children (see :func:`presence_of_children`)
    _children_presence: dict[str, re.Pattern[str]] | None = None
    _when_empty: bool | None = None
    _memo: dict[bytes, bool | str] | None = None
    #: verdicts on primitive values (a birthDate), when nothing but the value is read
    _value_memo: dict[tuple[Any, ...], bool | str] | None = None
    #: whether the verdict depends on the day (today()): the day is part of each memo key
    _reads_today: bool = False
    #: the expression answered in Python for the inputs it knows (see conformance.fhirpath_shapes)
    _shape: Shape | None = None
    error: str | None = None
    _ready: bool = False
    #: () when the expression is usable, else (message id, detail); None until checked
    _parse_problem: tuple[str, str] | tuple[()] | None = None

    def _prepare(self) -> None:
        """Parse on first use: R4 has hundreds of invariants and a run meets a few dozen.

        Once per invariant, under :data:`_PREPARING`, and marked ready only when every field is
        set: threads validating at once (gthread workers, export jobs) share the invariants,
        and one that saw it ready while another was still compiling it called no expression
        (a false ``invariant.not-evaluable``, so a 422 for a valid resource)."""
        with _PREPARING:
            if not self._ready:
                self._compile_for_use()
                self._ready = True

    def _compile_for_use(self) -> None:
        problem = self.definition_problem()
        if problem is not None:
            self.error = problem[1]
            return
        bare = _STRING_LITERAL.sub("''", self._evaluated)
        self._reads_today = bool(_TODAY_CALL.search(bare))
        self._shape = compile_shape(self._evaluated)
        if not _WHOLE_NODE.search(bare) and not _MOMENT_CALL.search(bare):
            self._value_memo = {}
        names = referenced_children(self._evaluated)
        if names is not None:
            self._names = KeyFilter(key_pattern(names))
            presence = presence_only(self._evaluated, names)
            self._presence = KeyFilter(key_pattern(presence)) if presence else None
            children = presence_of_children(self._evaluated, names - presence)
            nested = presence_only(self._evaluated, _all_names(self._evaluated), nested=True)
            self._nested_presence = _with_twins(nested - read_under(self._evaluated, nested, frozenset(children)))
            self._children_presence = children or None
            token = set_budget(None)  # the answer for an empty element is not the instance's cost
            try:
                outcome = self._run({}, _NO_SCOPE, "Element")
            finally:
                reset_budget(token)
            self._when_empty = outcome if isinstance(outcome, bool) else None
            self._memo = {}

    def definition_problem(self) -> tuple[str, str] | None:
        """(message id, detail) when the expression cannot be used at all, else None.

        Called when a profile is compiled, so an invariant that does not parse, or whose
        ``matches()`` regex RE2 refuses, is reported as a broken definition (an error naming
        the constraint and the profile), never silently skipped.
        """
        if self._parse_problem is None:
            self._parse_problem = self._check_definition()
        return self._parse_problem or None

    def _check_definition(self) -> tuple[str, str] | tuple[()]:
        if not isinstance(self.expression, str) or not self.expression.strip():
            return ("definition.invariant-unparsable", "empty expression")
        if len(self.expression) > _MAX_EXPRESSION:
            return ("definition.invariant-unparsable", f"{len(self.expression)} characters, over {_MAX_EXPRESSION}")
        self._evaluated = corrected(self.key, self.expression)
        self._uses_resolve = "resolve(" in self._evaluated
        try:
            error = syntax_error(self._evaluated)
            if error is not None:
                return ("definition.invariant-unparsable", error[:200])
            self._compiled = fhirpathpy.compile(self._evaluated, R4, _OPTIONS)
        except RecursionError:
            return ("definition.invariant-unparsable", "nested too deeply")
        except Exception as exc:  # noqa: BLE001 - fhirpathpy raises bare Exceptions on parse errors
            return ("definition.invariant-unparsable", _failure(exc))
        for literal in _REGEX_LITERAL.findall(self.expression):
            try:
                compile_regex(_unescape(literal), dot_nl=True)
            except RegexError as exc:
                return ("definition.regex-invalid", f"{literal[:80]}: {exc}"[:200])
        return ()

    def _run(self, node: Any, scope: Scope, base: str, extension: dict[str, Any] | None = None) -> bool | str:
        budget = _BUDGET.get()
        if budget is not None:
            if budget.exhausted:
                return OVER_BUDGET
            budget.started = engine_clock()
        token = _SCOPE.set(scope) if self._uses_resolve else None
        try:
            # Every value carries its FHIR type (the base type or element path), so is/as/ofType
            # and type() see FHIR types and choice names resolve (value → valueQuantity).
            typed = ResourceNode.create_node(node, base) if not isinstance(node, list) else node
            variables = {"resource": _typed(scope.resource), "context": typed}
            variables["rootResource"] = variables["resource"] if scope.root is scope.resource else _typed(scope.root)
            if extension is not None:  # a context invariant's %extension
                variables["extension"] = ResourceNode.create_node(extension, "Extension")
            result = self._compiled(typed, variables)
        except BudgetExceeded:
            return OVER_BUDGET
        except RecursionError:
            return "RecursionError: nested too deeply"
        except Exception as exc:  # noqa: BLE001 - any failure inside the engine is reported, not raised
            return _failure(exc)
        finally:
            if token is not None:
                _SCOPE.reset(token)
            if budget is not None:
                budget.used += engine_clock() - budget.started
        if not result:
            # The reference validator counts an empty result as false.  A profile's invariant is
            # judged so; a core one passes, because fhirpathpy propagates empty where the
            # reference's engine answers false (ref-1 on a Reference that only has a display).
            return not self.empty_fails
        return all(item is True for item in result)

    def check(self, node: Any, scope: Scope, base: str, extension: dict[str, Any] | None = None) -> bool | str:
        """True when satisfied, False when violated, or a reason string when not evaluable.

        ``base`` is the FHIR type or element path of ``node`` (``ContactPoint``, ``Patient.contact``);
        ``scope`` names %resource and %rootResource and is where resolve() looks; ``extension``
        is %extension, for an extension definition's context invariant evaluated on the element
        the extension sits on.
        """
        if not self._ready:
            self._prepare()
        if self.error is not None:
            return self.error
        day = validation_day().isoformat() if self._reads_today else ""
        if self._shape is not None and extension is None:
            verdict = self._shape(node, day)
            if verdict is not None:
                return verdict
        if extension is None and self._value_memo is not None and isinstance(node, (str, int, float, bool)):
            return self._remembered(self._value_memo, (base, day, type(node), node), node, scope, base)
        if self._memo is None or not isinstance(node, dict) or extension is not None:
            return self._run(node, scope, base, extension)
        admitted = self._names.admitted(node)
        if self._when_empty is not None and admitted.isdisjoint(node):
            return self._when_empty
        projection = {key: value for key, value in node.items() if key in admitted}
        keyed = projection
        if self._presence is not None:
            present = self._presence.admitted(projection)
            keyed = {k: (True if k in present else v) for k, v in projection.items()}
        if self._nested_presence:
            keyed = _present(keyed, self._nested_presence)
        if self._children_presence is not None:
            pruned = self._children_presence
            keyed = {k: _with_children_present(v, pruned[k]) if k in pruned else v for k, v in keyed.items()}
        try:
            key = (day + base).encode() + orjson.dumps(keyed, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON-serialisable: cannot memoise, evaluate directly
            return self._run(node, scope, base)
        return self._remembered(self._memo, key, projection, scope, base)

    def _remembered(self, memo: dict[Any, bool | str], key: Any, node: Any, scope: Scope, base: str) -> bool | str:
        found = memo.get(key)
        if found is None:
            found = self._run(node, scope, base)
            if found is not OVER_BUDGET:  # not a verdict: the next instance has its own budget
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[key] = found
        return found


class _Strict:
    """An ANTLR error listener that records the first syntax error instead of recovering."""

    def __init__(self) -> None:
        self.error: str | None = None

    def syntaxError(self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any) -> None:  # noqa: N802
        if self.error is None:
            self.error = f"column {column + 1}: {msg}"

    def reportAmbiguity(self, *args: Any) -> None:  # noqa: N802
        pass

    def reportAttemptingFullContext(self, *args: Any) -> None:  # noqa: N802
        pass

    def reportContextSensitivity(self, *args: Any) -> None:  # noqa: N802
        pass


def syntax_error(expression: str) -> str | None:
    """The first FHIRPath syntax error, or None.

    fhirpathpy's parser recovers silently from errors (``name.where(`` compiles and evaluates
    to something), so a broken invariant would quietly check something else; this strict pass
    with the same grammar, which must also consume the whole text, tells them apart.
    """
    from antlr4 import CommonTokenStream, InputStream, Token

    listener = _Strict()
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(listener)
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    parser.expression()
    if listener.error is None and parser.getCurrentToken().type != Token.EOF:
        listener.error = f"unexpected {parser.getCurrentToken().text!r}"
    return listener.error


def _unescape(literal: str) -> str:
    """A FHIRPath string literal's value, unescaped as fhirpathpy does."""
    for escaped, plain in (("\\'", "'"), ('\\"', '"'), ("\\`", "`"), ("\\\\", "\\")):
        literal = literal.replace(escaped, plain)
    return literal


def _typed(resource: dict[str, Any]) -> Any:
    return ResourceNode.create_node(resource, resource.get("resourceType"))


_NO_SCOPE = Scope({}, {})
#: held while an invariant is prepared (see :meth:`Invariant._prepare`); re-entrant, as a
#: preparation evaluates its own expression once
_PREPARING = threading.RLock()
_MAX_EXPRESSION = 20_000
_CACHE_LIMIT = 20_000
_CACHE: dict[tuple[str, str, str, bool], Invariant] = {}


#: how Python writes an object that has no text of its own (``<fhirpathpy.engine.nodes.
#: ResourceNode object at 0x7f31…>``), inside the messages fhirpathpy's exceptions carry
_OBJECT_REPR = re.compile(r"<(?:\w+\.)*(\w+) object at 0x[0-9a-fA-F]+>")


def _failure(exc: Exception) -> str:
    """What an issue says of an engine failure: its kind and message, any object in it named
    by its class alone.  Its memory address differed from one run to the next, so the same
    resource got a different issue each time (and a client read the engine's insides)."""
    return _OBJECT_REPR.sub(r"\1", f"{type(exc).__name__}: {exc}")[:200]


def compile_invariant(
    key: str, severity: str, expression: str, human: str, empty_fails: bool = False, human_zh: str = ""
) -> Invariant:
    """Invariants are shared by every profile and element that repeats them."""
    cache_key = (str(key), str(severity), str(expression), empty_fails, human, human_zh)
    found = _CACHE.get(cache_key)
    if found is None:
        if len(_CACHE) >= _CACHE_LIMIT:  # definitions loaded at run time must not grow it forever
            _CACHE.clear()
        found = _CACHE[cache_key] = Invariant(key, severity, expression, human, empty_fails, human_zh)
    return found
