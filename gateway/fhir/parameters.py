"""The parameter values every interaction reads the same way, whether from a request's query
string, a Bundle entry's URL or a Parameters body's parts: whole numbers (``_count``,
``_offset``, versions) and instants (``_since``), each a 400 OperationOutcome when it does not
parse, and type lists (``_type``); and the refusals of a parameter, or of a value, an endpoint
does not take, worded alike wherever they are raised.  Each refusal is located, as a search's are, at the parameter's
name, or ``where`` a caller says (``Bundle.entry[2].request.url``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from gateway.fhir.errors import FhirError
from gateway.search.query import IGNORED_CONTROLS
from gateway.search.values import natural_number, queried_date
from gateway.storage.resources import store_instant
from gateway.storage.store import ANY_VERSION, Expected

#: how an instant is written (with its time zone): the example a refusal gives
INSTANT_EXAMPLE = "2026-12-01T08:00:00+08:00"


def query_pairs(query: str | bytes, where: str | None = None) -> list[tuple[str, str]]:
    """The name/value pairs of a query string or a form (blank values kept), percent-decoded
    as UTF-8, which FHIR's queries are: a parameter holding bytes that are no UTF-8 is a 400
    naming it.  Python's and werkzeug's parsers put U+FFFD in their place or keep ``%FF`` as
    text, so a criterion no one wrote matched nothing and a conditional create made the
    duplicate it was sent to prevent; werkzeug read a form with one such byte as no form at
    all, and its search widened to every resource of the type."""
    raw = query if isinstance(query, bytes) else query.encode("utf-8")
    pairs: list[tuple[str, str]] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = (unquote_to_bytes(text.replace(b"+", b" ")) for text in part.partition(b"="))
        try:
            pairs.append((name.decode("utf-8"), value.decode("utf-8")))
        except UnicodeDecodeError:
            named = name.decode("utf-8", "replace")
            raise FhirError(400, "http.not-utf8", where or named, name=named) from None
    return pairs


def listed_types(value: str) -> list[str]:
    """The types one ``_type`` value lists, comma-separated, each trimmed and the empty left
    out (``Observation, Patient`` lists two).  An export's job, the scopes hook and
    ``$everything`` read them alike: the hook read `` Patient`` and refused a client holding
    both types' scopes (``system/ Patient.rs``), ``$everything`` refused it as no type."""
    return [kind for kind in (part.strip() for part in value.split(",")) if kind]


def whole_number(params: Mapping[str, str], name: str, default: int, where: str | None = None) -> int:
    """``params[name]`` as a whole number ≥ 0 the databases take, else ``default``."""
    text = params.get(name)
    if text is None:
        return default
    number = natural_number(text)
    if number is None:
        raise FhirError(400, "http.not-a-count", where or name, name=name, value=text)
    return number


def instant(params: Mapping[str, str], name: str, where: str | None = None) -> str | None:
    """``params[name]`` as an instant in the store's own form, if given."""
    text = params.get(name)
    if text is None:
        return None
    try:
        return store_instant(queried_date(text))
    except ValueError as exc:
        raise FhirError(400, "http.not-a-date", where or name, name=name, value=text, examples=INSTANT_EXAMPLE) from exc


def _codes(values: Iterable[str]) -> str:
    """Parameter names or values as a refusal lists them: codes, the same in either language."""
    return ", ".join(values)


def unsupported_parameter(name: str, where: str, supported: Iterable[str], expression: str | None = None) -> FhirError:
    """The 400 for a parameter ``where`` (an operation, an endpoint) does not take: refused
    rather than ignored, since an ignored filter would answer more than was asked; the
    answer names what it does take."""
    return FhirError(
        400, "http.unsupported-parameter", expression or name, name=name, where=where, supported=_codes(supported)
    )


def refuse_unsupported_parameters(
    names: Iterable[str], where: str, honoured: Collection[str], expression: str | None = None
) -> None:
    """Refuse the first parameter that is neither one ``where`` honours nor a control every
    answer takes (``_format``, ``_pretty``); the refusal lists only what it honours."""
    for name in names:
        if name not in honoured and name not in IGNORED_CONTROLS:
            raise unsupported_parameter(name, where, honoured, expression)


def honoured_only(
    pairs: Iterable[tuple[str, str]],
    where: str,
    honoured: Collection[str],
    lenient: bool,
    expression: str | None = None,
) -> tuple[list[tuple[str, str]], list[FhirError]]:
    """The pairs ``where`` honours, with the controls every answer takes.  Any other is
    refused, the first as :func:`refuse_unsupported_parameters` refuses it, unless ``lenient``
    (``Prefer: handling=lenient``, R4 search.html#errors: an unknown or unsupported parameter
    is ignored): then it is left out, as a search skips one, and its refusal returned for the
    answer to report (a warning, and paging links without it) where it has room to."""
    kept: list[tuple[str, str]] = []
    ignored: list[FhirError] = []
    for name, value in pairs:
        if name in honoured or name in IGNORED_CONTROLS:
            kept.append((name, value))
        elif lenient:
            ignored.append(unsupported_parameter(name, where, honoured, expression))
        else:
            raise unsupported_parameter(name, where, honoured, expression)
    return kept, ignored


def unsupported_value(name: str, value: str, supported: Iterable[str], expression: str | None = None) -> FhirError:
    """The 400 for a value outside the few a parameter takes here, naming those it takes."""
    return FhirError(
        400, "http.unsupported-value", expression or name, name=name, value=value, supported=_codes(supported)
    )


def if_match_versions(value: str) -> Expected:
    """The versions an ``If-Match`` (or a Bundle entry's ``ifMatch``) names: ``W/"3"`` → 3,
    ``*`` → :data:`ANY_VERSION` (change it only if it exists), and a list (``W/"2", W/"3"``,
    RFC 9110 §13.1.1: ``"*" / #entity-tag``, a ``*`` alone) → the set of them, any of which
    current lets the write go on.  An entity tag is compared as text (RFC 9110 §8.8.3.2), as
    ``If-None-Match`` and a vread compare it: ``W/"03"`` is not the ETag of version 3, and
    matched it."""
    if value.strip() == "*":
        return ANY_VERSION
    versions = [_tag_version(etag, value) for etag in value.split(",")]
    return versions[0] if len(versions) == 1 else frozenset(versions)


def _tag_version(etag: str, value: str) -> int:
    """The version one entity tag of ``value`` names; a 400 quoting ``value`` for no ETag of ours."""
    tag = etag.strip().removeprefix("W/").strip('"')
    version = natural_number(tag)
    if version is None or str(version) != tag:
        raise FhirError(400, "http.bad-if-match", value=value)
    return version


def refuse_nul_in(pairs: Iterable[tuple[str, str]]) -> None:
    """A NUL in search criteria names nothing, and PostgreSQL refuses the statement carrying
    one (a 503 "busy, retry" it would have been): a 400 instead."""
    if any("\x00" in name or "\x00" in value for name, value in pairs):
        raise FhirError(400, "http.nul-character", where="search")


def primitive_part(parameter: dict[str, Any], index: int) -> str:
    """A Parameters part's one primitive value, as a query string writes it (``valueCode``, as
    R4 types ``mode``, or another primitive, as every other operation takes it): a part
    without one is a 400, not a parameter the operation silently did without."""
    values = [v for k, v in parameter.items() if k.startswith("value")]
    if len(values) != 1 or isinstance(values[0], dict | list):
        raise FhirError(400, "http.parameter-needs-one-value", f"Parameters.parameter[{index}]")
    return ("true" if values[0] else "false") if isinstance(values[0], bool) else str(values[0])
