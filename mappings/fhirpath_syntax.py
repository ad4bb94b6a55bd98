"""Whether a FHIRPath expression parses, strictly.

fhirpathpy's parser recovers silently from syntax errors: ``identifier.first(.value`` compiles
and evaluates to whatever part it recovered, so a broken ``key`` would quietly key resources on
something else.  Here the same generated grammar runs with ANTLR's bail-out strategy and an
error listener that raises, and the parse must consume the whole text.

(The validator checks invariants the same way; mappings/ may import nothing of ours but
canonical URLs, so the check is made here from the grammar rather than shared.)
"""

from __future__ import annotations

from typing import Any

from antlr4 import CommonTokenStream, InputStream, Token
from antlr4.error.ErrorListener import ErrorListener
from antlr4.error.Errors import ParseCancellationException
from antlr4.error.ErrorStrategy import BailErrorStrategy
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser


class _Refuse(ErrorListener):
    def syntaxError(self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any) -> None:  # noqa: N802
        raise ParseCancellationException(f"column {column + 1}: {msg}")


def syntax_error(expression: str) -> str | None:
    """The first syntax error of ``expression`` (``column 7: …``), or None when it parses."""
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Refuse())
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(_Refuse())
    parser._errHandler = BailErrorStrategy()
    try:
        parser.expression()
    except ParseCancellationException as error:
        reported = str(error)
        if reported.startswith("column "):
            return reported
        token = parser.getCurrentToken()
        return f"column {token.column + 1}: unexpected {token.text!r}"
    except RecursionError:
        return "nested too deeply"
    token = parser.getCurrentToken()
    return None if token.type == Token.EOF else f"column {token.column + 1}: unexpected {token.text!r}"
