"""Regular expressions that come from definitions, run on RE2 (linear time, bounded memory).

Python's ``re`` backtracks: a profile regex with nested quantifiers such as ``(a+)+b`` takes
over two minutes on 35 characters.  Whatever a definition says, its patterns are compiled here
with RE2 (``google-re2``), which never backtracks.  A pattern RE2 cannot compile (look-around,
back-references, an oversized repetition) is *not* silently skipped and *not* handed to ``re``:
the caller reports it as a definition problem (``definition.regex-invalid``).

Profile regexes that are trivially linear (no group, no alternation, one quantifier at most:
most real ones, such as a phone number's ``[0-9+() -]{3,32}``) are still checked by RE2 but run
on ``re``, see :func:`compile_linear`.  FHIRPath ``matches()`` always runs on RE2.

The official R4 primitive-type regexes in ``profiles/base/r4-types.json`` are the exception: they
are a fixed, derived set that no ``--ig`` can change, ``re`` runs them 15x faster per call than
the RE2 binding (which re-encodes every value to UTF-8), and ``tests/conformance/
test_hostile_definitions.py`` proves each of them answers adversarial input in linear time.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import re2

from conformance.limits import DEFAULT_LIMITS

Pattern = Any  # re2._Regexp; the binding ships no type stubs


class RegexError(ValueError):
    """A definition regex RE2 refuses; the message says why."""


def _options(max_mem: int, dot_nl: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # otherwise RE2 prints every refused pattern to stderr
    options.max_mem = max_mem
    options.dot_nl = dot_nl
    return options


_CACHE: OrderedDict[tuple[str, int, bool], Pattern | RegexError] = OrderedDict()
_CACHE_SIZE = 512


def compile_regex(
    pattern: Any,
    *,
    max_length: int = DEFAULT_LIMITS.max_regex_length,
    max_mem: int = DEFAULT_LIMITS.regex_max_mem,
    dot_nl: bool = False,
) -> Pattern:
    """Compile a definition's pattern with RE2, or raise :class:`RegexError` naming the reason.

    Compiled patterns are cached (FHIRPath ``matches()`` compiles its argument on every call).
    """
    if not isinstance(pattern, str):
        raise RegexError(f"not a string: {type(pattern).__name__}")
    if len(pattern) > max_length:
        raise RegexError(f"{len(pattern)} characters, over the limit of {max_length}")
    key = (pattern, max_mem, dot_nl)
    found = _CACHE.get(key)
    if found is None:
        try:
            found = re2.compile(pattern, _options(max_mem, dot_nl))
        except re2.error as exc:
            detail = exc.args[0] if exc.args else exc
            found = RegexError(detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail))
        except (TypeError, ValueError, OverflowError) as exc:  # e.g. a lone surrogate in the pattern
            found = RegexError(f"{type(exc).__name__}: {exc}")
        _CACHE[key] = found
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    if isinstance(found, RegexError):
        raise found
    return found


_ESCAPE_OR_CLASS = re.compile(r"\\.|\[(?:\\.|[^\]\\])*\]")
_QUANTIFIER = re.compile(r"[*+?]|\{\d")


def trivially_linear(pattern: str) -> bool:
    """Whether Python's ``re`` is provably linear on ``pattern``: no group, no alternation and
    at most one quantifier (``[0-9+() -]{3,32}``, ``\\d{6}``), so there is nothing to backtrack
    into.  Such patterns (most profile regexes) run on ``re``, 15x faster per call than the RE2
    binding; everything else runs on RE2."""
    bare = _ESCAPE_OR_CLASS.sub("x", pattern)
    return "(" not in bare and "|" not in bare and len(_QUANTIFIER.findall(bare)) <= 1


def compile_linear(pattern: Any, max_length: int = DEFAULT_LIMITS.max_regex_length) -> Pattern:
    """Compile a definition's pattern for fullmatch: checked by RE2 always (so what RE2 refuses
    is reported the same way), run on ``re`` only when :func:`trivially_linear` says it is safe."""
    compiled = compile_regex(pattern, max_length=max_length)
    if trivially_linear(pattern):
        try:
            # ASCII: RE2's \d, \w and \s are ASCII classes (as Java's, the reference
            # validator's); Python's take all of Unicode, so \d{6} accepted １２３４５６ when it ran
            # on re and refused it on RE2, a verdict that hung on this optimisation
            return re.compile(pattern, re.ASCII)
        except (re.error, RecursionError):
            return compiled
    return compiled


def fullmatch(pattern: Pattern, value: str) -> bool:
    """RE2's fullmatch; a value RE2 cannot encode (a lone surrogate) simply does not match."""
    try:
        return pattern.fullmatch(value) is not None
    except (UnicodeError, TypeError):
        return False
