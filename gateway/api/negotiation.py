"""What a request asks for and how the answer is written: format (``_format`` / Accept and
Content-Type), language (Accept-Language), ``Prefer``, conditional headers, and the body.

Every answer is FHIR: a resource, a Bundle or an OperationOutcome, as JSON or XML.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from datetime import date
from functools import cached_property, lru_cache
from typing import IO, Any
from urllib.parse import parse_qsl

import orjson
from flask import Request, Response, current_app, g, request
from werkzeug.datastructures import Headers, ImmutableMultiDict, MIMEAccept, MultiDict
from werkzeug.exceptions import BadRequest, ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.http import parse_accept_header
from werkzeug.wsgi import LimitedStream, get_input_stream

from gateway.api.methods import allowed
from gateway.api.serving import services
from gateway.fhir.archive_references import condition_criteria, localise
from gateway.fhir.errors import FhirError
from gateway.fhir.parameters import if_match_versions, primitive_part, query_pairs
from gateway.messages import LANGUAGES
from gateway.search.values import format_instant
from gateway.storage.store import Expected, Stored
from gateway.wire import FORMATS, JSON_TYPES, XML_TYPES, WireError, parse_json, parse_xml, to_xml

_FORMAT_ALIASES = {
    "json": "json",
    "xml": "xml",
    **{media: "json" for media in JSON_TYPES},
    **{media: "xml" for media in XML_TYPES},
}
#: a URL werkzeug's IRI-to-URI conversion gives back unchanged (checked in
#: tests/gateway/test_api_location.py): a lower-case host name or IPv4 address, a port, and a
#: path of unreserved characters, ``/`` and ``$`` (the gateway's Locations: its public base,
#: then a type, an id and a version)
_PLAIN_URL = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"(?::([1-9][0-9]{0,4}))?(?:/[A-Za-z0-9._~$/-]*)?"
)
#: the answer format of each Accept header seen lately (bounded: a header is client input)
_by_accept: dict[str, str] = {}
_ACCEPT_HEADERS = 256


class Parameters(ImmutableMultiDict[str, str]):
    """Query and form parameters that answer an absent name without an exception: werkzeug's
    ``get`` raises and catches an HTTP exception for it (2 µs), and every request asks for
    several parameters it does not carry (``_format``, ``_summary``, ``_type`` …)."""

    def get(self, key: str, default: Any = None, type: Any = None) -> Any:  # noqa: A002 - werkzeug's name
        return super().get(key, default, type) if key in self else default

    def getlist(self, key: str, type: Any = None) -> list[Any]:  # noqa: A002
        return super().getlist(key, type) if key in self else []


#: the parameters of an empty query (immutable, so every request without one shares it)
NO_PARAMETERS = Parameters()


def plain_url(url: str) -> bool:
    """Whether ``url`` is a URI already, one werkzeug would give back as it is."""
    found = _PLAIN_URL.fullmatch(url)
    return found is not None and (found[1] is None or int(found[1]) <= 65535)


class FhirResponse(Response):
    """An answer whose ``Location`` werkzeug does not convert from an IRI to a URI when it is
    a plain URI already (:func:`plain_url`), as every create's and conditional write's is:
    the conversion (split the URL, encode the host to Punycode, quote each part, join them
    again) was a third of making a create's answer and its headers (62 µs, 40 µs without it;
    best of seven turns on a loaded machine).  Any other ``Location`` is converted as before."""

    def get_wsgi_headers(self, environ: dict[str, Any]) -> Headers:
        location = self.headers.get("Location")
        if location is None or not plain_url(location):
            return super().get_wsgi_headers(environ)
        del self.headers["Location"]
        try:
            headers = super().get_wsgi_headers(environ)
        finally:
            self.headers["Location"] = location
        headers["Location"] = location
        return headers


class FhirRequest(Request):
    """A request whose query and form parameters are :class:`Parameters`, and whose body is
    refused whole when it is over the size limit, however it comes."""

    parameter_storage_class = Parameters

    #: why the query is no UTF-8, once :attr:`args` has read it (:func:`refuse_unreadable_text`)
    unreadable_query: FhirError | None = None

    @cached_property
    def args(self) -> Parameters:
        """The query, read once and strictly (:func:`query_pairs`).  One whose bytes are no
        UTF-8 is read with U+FFFD in their place rather than failing whoever reads it (the 400
        refusing it reads ``_format`` too), its refusal kept in :attr:`unreadable_query`.  Most
        reads carry no query: they share one empty, immutable set of parameters."""
        if not self.query_string:
            return NO_PARAMETERS
        try:
            return Parameters(query_pairs(self.query_string))
        except FhirError as refusal:
            self.unreadable_query = refusal
            decoded = self.query_string.decode("utf-8", "replace")
            return Parameters(parse_qsl(decoded, keep_blank_values=True, errors="replace"))

    @cached_property
    def answer_format(self) -> str:
        """json or xml (:func:`_resolved_format`), resolved once: the hook refusing an
        unanswerable format, a route choosing how to write its resources and the answer
        writing them each ask, and each read ``_format`` (the query and a search's form) and
        ranked Accept again.  A refusal is not kept: it ends the request."""
        return _resolved_format(self)

    @cached_property
    def blueprints(self) -> list[str]:
        """The matched endpoint's blueprint and its parents, worked out once: Flask asks for
        them in each of its three rounds of hooks (before, after, teardown), each time through
        four properties, and the rule matched does not change once the context is pushed."""
        return super().blueprints

    def query_refusal(self) -> FhirError | None:
        """Why the query is no UTF-8, when it is not (found as :attr:`args` reads it)."""
        _ = self.args
        return self.unreadable_query

    def _load_form_data(self) -> None:
        """A form is parsed from its bytes kept (``get_data(cache=True)``), not from the stream:
        parsed from the stream, it left nothing for :func:`refuse_unreadable_text` to read.
        Authentication reads a search form first (the scopes its criteria need), so with
        security on a form holding a byte that is no UTF-8 was not refused but read as no
        criteria, and its search answered with every resource of the type."""
        if "form" not in self.__dict__ and self.mimetype == FORM:
            self.get_data(cache=True)
        super()._load_form_data()

    @cached_property
    def stream(self) -> IO[bytes]:
        """werkzeug reads a body that comes without ``Content-Length`` (chunked) up to
        ``MAX_CONTENT_LENGTH`` and stops there without a word: an ``$ingest`` of a larger file
        landed its first 64 MiB as a whole, reconciled run.  Such a body is read through
        :class:`_AtMost` instead, which refuses it (413) as soon as it proves longer."""
        limit = self.max_content_length
        length = self.content_length
        if length is None and limit is not None and self.environ.get("wsgi.input_terminated"):
            return _AtMost(self.environ["wsgi.input"], limit)
        if length is not None:
            if limit is not None and length > limit:
                raise RequestEntityTooLarge()
            return _Sized(self.environ["wsgi.input"], length)
        return get_input_stream(self.environ, max_content_length=limit)


class _Sized(LimitedStream):
    """A body of a known ``Content-Length``, read whole in reads of what is left of it.
    werkzeug read one 64 KiB at a time, each into a buffer of 64 KiB zeroed for it, and
    under gunicorn (``wsgi.input_terminated``) up to the size limit rather than the length,
    so a 1 KB create took two such buffers, the second to find the body had ended."""

    def readall(self) -> bytes:
        chunks = []
        while not self.is_exhausted:
            data = self.read(min(self.limit - self.tell(), _CHUNK))
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


#: the most a body is read at one time
_CHUNK = 1 << 16


class _AtMost(io.RawIOBase):
    """A request body of at most ``limit`` bytes: one byte more is a 413."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._stream.read(min(len(buffer), self._left + 1))
        except OSError as error:
            raise _unread(error) from error
        if len(data) > self._left:
            raise RequestEntityTooLarge()
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


class MalformedChunks(BadRequest):
    """A chunked body the client sent framed wrongly: a chunk-size line that is no hexadecimal
    number, or a chunk not ended by CRLF.  Not cut short (the client did not stop early, and
    the same bytes sent again would fail the same way)."""


def _unread(error: OSError) -> HTTPException:
    """Why a body could not be read to its end: the socket's timeout, or gunicorn's chunk
    reader finding the body ended or broken, worded as werkzeug's own streams word them
    (:class:`ClientDisconnected`), unless gunicorn found the framing itself wrong.  Its errors
    are imported here, when a read has failed: serving needs it, the app does not."""
    from gunicorn.http.errors import ChunkMissingTerminator, InvalidChunkSize

    if isinstance(error, InvalidChunkSize | ChunkMissingTerminator):
        return MalformedChunks()
    return ClientDisconnected()


def too_large() -> tuple[str, dict[str, Any]]:
    """The 413's message and its values: the body's size when its ``Content-Length`` told it;
    a body without one is read no further than the limit, so only the limit is known."""
    limit = request.max_content_length
    if request.content_length is None:
        return "http.too-large-stream", {"limit": limit}
    return "http.too-large", {"size": request.content_length, "limit": limit}


def language() -> str:
    return preferred_language(request.accept_languages, current_app.config["YIYANG"].language)


def preferred_language(accepted: Iterable[tuple[str, float]], default: str) -> str:
    """The language of :data:`LANGUAGES` that the reader's ``Accept-Language`` ranks highest
    (RFC 9110 §12.5.4): each range in order of its quality, an exact tag first, else its
    primary subtag (``en-GB`` → en, ``zh-TW`` → zh-CN); ``*`` is the configured language.
    werkzeug's ``best_match`` looked for exact tags across all ranges first, so
    ``en-GB,zh-CN;q=0.5`` was answered in Chinese, the language the reader ranked lower."""
    ranked = sorted(((tag, quality) for tag, quality in accepted if quality > 0), key=lambda pair: -pair[1])
    for tag, _ in ranked:
        if tag == "*":
            return default
        asked = tag.lower().replace("_", "-")
        exact = [lang for lang in LANGUAGES if lang.lower() == asked]
        primary = [lang for lang in LANGUAGES if lang.lower().split("-")[0] == asked.split("-")[0]]
        if exact or primary:
            return (exact or primary)[0]
    return default


#: the media type of a ``POST …/_search`` body
FORM = "application/x-www-form-urlencoded"
#: the media type of a PATCH's body (the CapabilityStatement's ``patchFormat``)
PATCH_MEDIA_TYPE = "application/json-patch+json"


def answer_format() -> str:
    """json or xml, as the request asks (resolved once per request, :attr:`FhirRequest.answer_format`)."""
    current: FhirRequest = request._get_current_object()  # type: ignore[assignment]  # the app's request_class
    return current.answer_format


def _resolved_format(current: Request) -> str:
    """json or xml: ``_format`` wins over Accept; anything else is 406."""
    asked = _asked_format(current)
    if asked:
        # a + left unencoded in the query (application/fhir+xml) reaches here as a space; a
        # media type is read without regard to case (RFC 9110 §8.3.1), as Accept is
        found = _FORMAT_ALIASES.get(asked.split(";")[0].strip().replace(" ", "+").lower())
        if found is None:
            raise FhirError(406, "http.not-acceptable", "_format", format=asked)
        return found
    accept = current.environ.get("HTTP_ACCEPT", "")  # as werkzeug's headers give it, without their key translation
    found = _by_accept.get(accept)
    if found is None:
        # parsing Accept and ranking seven media types costs more than reading a resource;
        # clients send few distinct headers, so each is ranked once
        best = _accepted(accept).best_match([*JSON_TYPES, *XML_TYPES], default=JSON_TYPES[0])
        found = _FORMAT_ALIASES.get(best or "", "json")
        if len(_by_accept) >= _ACCEPT_HEADERS:
            _by_accept.clear()
        _by_accept[accept] = found
    return found


def _asked_format(current: Request) -> str | None:
    """The ``_format`` the request names, in its query or the form of a ``POST …/_search``;
    given twice (in either, or once in each) it is a 400 ``http.repeated-parameter``: the
    first was taken, so ``_format=json&_format=xml`` answered in JSON without a word.  Checked
    before any route runs (:func:`refuse_unanswerable_format`), so a write is not made and
    then answered with the refusal."""
    asked = current.args.getlist("_format")
    if current.method == "POST":
        asked += _form_formats(current)
    if len(asked) > 1:
        raise FhirError(400, "http.repeated-parameter", "_format", name="_format")
    return asked[0] if asked else None


def refuse_unanswerable_format() -> None:
    """Before the request is served: a ``_format`` given twice is a 400 (:func:`_asked_format`)
    and, but for the reports (which have formats of their own), one naming no FHIR format a
    406 (:func:`answer_format`).  Found only when the answer was written, a write was made
    first: ``POST Basic?_format=text/csv`` created the resource and answered 406, and the
    client's retry created a second."""
    current = request._get_current_object()
    if not current.query_string and current.method != "POST":
        return  # nothing names a format (a read by id): Accept alone never refuses
    if current.blueprint == "reports":
        _asked_format(current)
    else:
        answer_format()


def _form_formats(current: Request) -> list[str]:
    """The ``_format`` of a ``POST …/_search`` form.  A form that cannot be read (over the size
    limit) names none: its 413 is being answered, in the default format."""
    if current.mimetype != FORM:
        return []
    try:
        return current.form.getlist("_format")
    except HTTPException:
        return []


def wants_raw_content() -> bool:
    """Whether a Binary read asks for the content itself rather than the resource: no
    ``_format`` and an Accept that admits no FHIR format (``text/plain``, ``application/pdf``;
    ``*/*`` admits JSON, the default)."""
    current = request._get_current_object()
    if current.args.get("_format") or not current.headers.get("Accept"):
        return False
    return _accepted(current.headers["Accept"]).best_match([*JSON_TYPES, *XML_TYPES]) is None


def _accepted(header: str) -> MIMEAccept:
    """An Accept header with its media types' parameters set aside, but their q: werkzeug
    matches ``application/fhir+xml; fhirVersion=4.0`` (http.html's own example) with no type
    offered, and the answer came back in JSON (a Binary as its raw content)."""
    return parse_accept_header(_TYPE_PARAMETER.sub("", header), MIMEAccept)


#: a media-type parameter other than q
_TYPE_PARAMETER = re.compile(r";\s*(?!q\s*=)[^;,]*")


def respond(body: dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    if body is None:  # no body (return=minimal, a delete): no media type either, not Flask's text/html
        response = _response_class(headers)(b"", status=status, headers=headers)
        del response.headers["Content-Type"]
        return response
    return encoded(encode(body, answer_format()), status, headers)


def encode(body: dict[str, Any], answer: str) -> tuple[bytes, str]:
    """``body`` in the answer format ("json" or "xml"), with its media type; 406 if it cannot be
    written as XML."""
    if answer == "xml":
        try:
            return to_xml(body), FORMATS["xml"]
        except WireError as error:  # content the R4 model has no XML for (an unknown element)
            raise FhirError(406, error.message_id, error.expression, **error.params) from error
    return orjson.dumps(body), FORMATS["json"]


def encoded(data_and_media: tuple[bytes, str], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """An answer already encoded by :func:`encode` (kept by a caller that answers it often)."""
    data, media = data_and_media
    return _response_class(headers)(data, status=status, headers=headers, content_type=f"{media}; charset=utf-8")


def _response_class(headers: dict[str, str] | None) -> type[Response]:
    """:class:`FhirResponse` for an answer naming a Location, Flask's own for every other
    (a read's): looking for the header in werkzeug's headers cost 2 µs an answer."""
    return FhirResponse if headers and "Location" in headers else Response


def outcome_response(error: FhirError) -> Response:
    g.refusal = error  # the exchange record words it in every language (gateway/api/exchanges.py)
    try:
        response = respond(error.outcome(language()), error.status)
    except FhirError:  # the client asked for a format we could not write: JSON still says why
        outcome = orjson.dumps(error.outcome(language()))
        response = Response(outcome, status=error.status, content_type=f"{FORMATS['json']}; charset=utf-8")
    if error.status == 405:  # RFC 9110 asks a 405 to name the methods the path takes
        response.headers["Allow"] = allowed()
    return response


def body() -> Any:
    """The request body as a JSON document (:func:`body_as_sent`), its references on our own
    base the relative ones they stand for (the bytes cannot tell: JSON may escape any
    character of the URL)."""
    document = body_as_sent()
    localise(document, services().config.base_url)
    return document


def body_as_sent() -> Any:
    """The request body as a JSON document (FHIR XML is converted), or a 4xx saying why not.
    A body must say what it is: without a Content-Type it is refused (415), not guessed.
    Its references as sent: a transaction or batch localises each entry's as it reads the
    entry (:meth:`~gateway.fhir.bundles.Bundles.process`), from the walk that finds them for
    its other rules, where a walk of the whole Bundle for them was 60 µs of a benchmark's; a
    create or an update, as the repository checks it (``Repository._prepared``)."""
    media = request.mimetype or "(none)"
    data = request.get_data(cache=True)
    try:
        if media in XML_TYPES:
            return parse_xml(data)
        # a JSON Patch is a PATCH's body alone: a resource sent as one was created or updated
        if media in JSON_TYPES or (media == PATCH_MEDIA_TYPE and request.method == "PATCH"):
            return parse_json(data)
    except WireError as error:
        raise FhirError(400, error.message_id, error.expression, **error.params) from error
    raise FhirError(415, "http.unsupported-media-type", type=media)


def operation_args() -> MultiDict[str, str]:
    """An operation's parameters: the query string's and, when it is invoked by POST (R4
    asks every operation to be), those of its Parameters body — each part a primitive
    ``value[x]``, written as in a query string."""
    found: MultiDict[str, str] = MultiDict(request.args.items(multi=True))
    if request.method != "POST" or not (request.content_length or request.mimetype):
        return found
    document = body()
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        kind = document.get("resourceType") if isinstance(document, dict) else None
        raise FhirError(400, "http.wrong-type", "resourceType", found=kind, expected="Parameters")
    parts = document.get("parameter", [])
    for index, part in enumerate(parts if isinstance(parts, list) else [None]):
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(name, str):
            raise FhirError(400, "http.parameter-needs-one-value", f"Parameters.parameter[{index}]")
        found.add(name, primitive_part(part, index))
    return found


def given_once(args: MultiDict[str, str], names: Iterable[str]) -> None:
    """A 400 for a parameter of one value at most given twice (in the query, or there and in a
    Parameters body): which of the two counted was the server's choice, not the client's."""
    for name in names:
        if len(args.getlist(name)) > 1:
            raise FhirError(400, "http.repeated-parameter", name, name=name)


def refuse_unreadable_text() -> None:
    """A 400 for what no FHIR string holds, before anything reads the request's parameters.
    A NUL: one in a path or a query (``%00``) made the store fail (a 503 "busy, retry") on
    PostgreSQL, and on SQLite cut a ``:contains`` pattern short at it (search criteria from
    elsewhere are refused by ``Searcher.parse``).  Bytes that are no UTF-8, raw or
    percent-encoded, in the query or a form body (:func:`query_pairs`)."""
    current = request._get_current_object()
    if "\x00" in current.path or b"%00" in current.query_string:
        raise FhirError(400, "http.nul-character", where="URL")
    if current.query_string and (refused := current.query_refusal()) is not None:
        raise refused
    # the media type is parsed only when the raw header may name a form: most requests carry
    # none, or a FHIR type (a GET sent with Content-Type application/fhir+json, as many clients do)
    if FORM in current.environ.get("CONTENT_TYPE", "").lower() and current.mimetype == FORM:
        query_pairs(current.get_data(cache=True))


def search_form() -> list[tuple[str, str]]:
    """The criteria of a ``POST …/_search`` body, which FHIR defines as a form.  Any other
    body is a 415: read as no criteria, it would widen the search to everything."""
    if request.mimetype == FORM:
        return list(request.form.items(multi=True))  # (the form may have been parsed already)
    if request.content_length or request.get_data(cache=True):
        raise FhirError(415, "http.search-form-media-type", type=request.mimetype or "(none)")
    return []


def if_none_exist(kind: str | None) -> str | None:
    """A conditional create's criteria.  WSGI hands header values over decoded as Latin-1, so
    criteria a client wrote in raw UTF-8 (``name:exact=日期测试``) are taken back to their
    bytes and read as UTF-8, as a query string is: read as Latin-1 they matched nothing, and
    the create made the duplicate it was meant to prevent.  Bytes that are no UTF-8 are a 400.
    For a create of ``kind``, a search URL of it on the own base is read as its query
    (:func:`condition_criteria`); None leaves the value as sent (another interaction's header)."""
    value = request.headers.get("If-None-Exist")
    if value is None:
        return None
    try:
        criteria = value.encode("latin-1").decode("utf-8")
    except UnicodeError as exc:
        raise FhirError(400, "http.header-not-utf8", header="If-None-Exist") from exc
    if kind is None:
        return criteria
    return condition_criteria(criteria, kind, services().config.base_url)


def if_match() -> Expected | None:
    """A write's precondition: the version ``If-Match`` names (None without one).  Every write
    route asks it, so it refuses ``If-None-Match`` there too, which FHIR defines for reads
    alone: ignored, ``PUT`` with ``If-None-Match: *`` (create only if absent, RFC 9110
    §13.1.2) replaced the existing resource, where the client asked for a 412."""
    if "HTTP_IF_NONE_MATCH" in request.environ:
        raise FhirError(400, "http.if-none-match-on-write", method=request.method)
    value = request.headers.get("If-Match")
    if not value:
        return None
    return if_match_versions(value)


#: what ends one preference of ``Prefer`` (RFC 7240 §2, and a ";" as bulk data clients write)
_PREFERENCE_SEPARATOR = re.compile("[,;]")


def preferences() -> dict[str, str]:
    """The request's ``Prefer`` header: each preference's name, lower case (RFC 7240 §2 reads
    names without regard to case), and its value ("" for a bare one such as respond-async);
    the first of a name counts.  What follows a ";" is read as a preference too: bulk data
    clients send ``respond-async; handling=lenient`` as often as with a comma.  Most requests
    send none: the environ says so without werkzeug's headers (18 of a create's µs)."""
    found: dict[str, str] = {}
    header = request.environ.get("HTTP_PREFER")
    if header is None:
        return found
    for part in _PREFERENCE_SEPARATOR.split(header):
        name, _, value = part.partition("=")
        found.setdefault(name.strip().lower(), value.strip().strip('"'))
    return found


def _preference(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = preferences().get(name)
    return value if value in allowed else default


def prefer_return() -> str:
    """minimal, representation (the default) or OperationOutcome."""
    return _preference("return", ("minimal", "representation", "OperationOutcome"), "representation")


def prefer_handling(default: str = "strict") -> str:
    """strict or lenient: what becomes of a parameter the interaction does not know (R4
    search.html: a 400, or it is skipped).  Without the preference an interaction takes its
    ``default``: strict where a skipped parameter would widen the answer (a search, whose
    searchset then says what it skipped), lenient where it cannot (a read)."""
    return _preference("handling", ("strict", "lenient"), default)


def not_modified(current: Request, stored: Stored) -> bool:
    """Whether the client holds this version already (conditional read, R4 http.html#cread):
    ``If-None-Match`` names its ETag (or ``*``), or, without one, ``If-Modified-Since`` is no
    earlier than its last update.  A platform polling its residents' records then gets a 304
    and no body for each one unchanged.  Most reads carry neither header: they cost a look
    (``current``: the request, which the read has resolved already)."""
    environ = current.environ
    if "HTTP_IF_NONE_MATCH" in environ:
        return current.if_none_match.contains_weak(str(stored.version))
    if "HTTP_IF_MODIFIED_SINCE" not in environ:
        return False
    since = current.if_modified_since
    return since is not None and stored.last_updated[:19] <= format_instant(since)[:19]


def version_headers(stored: Stored, location_base: str | None = None) -> dict[str, str]:
    """ETag and Last-Modified of a stored version, and its Location on ``location_base`` when
    one is given (a create's answer): a read, which has none, does not look the base up."""
    headers = {"ETag": f'W/"{stored.version}"', "Last-Modified": _http_date(stored.last_updated)}
    if location_base is not None:
        headers["Location"] = f"{location_base}/{stored.reference}/_history/{stored.version}"
    return headers


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _http_date(instant: str) -> str:
    """The IMF-fixdate (RFC 9110) of a stored instant, which is always UTC in one fixed width
    (``resources.now_instant``): its day written as a date (:func:`_http_day`), then its time.
    ``email.utils``, made for any aware datetime, took 4.1 µs a read against 1.8 µs."""
    return f"{_http_day(instant[:10])} {instant[11:19]} GMT"


@lru_cache(maxsize=1024)
def _http_day(day: str) -> str:
    """``Sun, 06 Dec 2026`` of ``2026-12-06``: an archive's resources were last updated on
    a few days, each worked out once (a weekday and a month name, 0.8 µs a read), memoised
    by its period as the store's instant text is (``storage/resources._second_text``)."""
    found = date.fromisoformat(day)
    return f"{_DAYS[found.weekday()]}, {found.day:02d} {_MONTHS[found.month - 1]} {found.year:04d}"
