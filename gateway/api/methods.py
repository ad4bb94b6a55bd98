"""The methods a path takes, for the ``Allow`` header of every 405 (RFC 9110 §15.5.6).

Some routes exist only to refuse: a write to ``/metadata`` must not reach the conditional
delete of a type "metadata", nor a ``PUT $export`` the update of a type "$export".  The URL
map lists their methods beside the real ones, so werkzeug's own list (and any list written
by hand at each refusal) said a path took methods it only refuses, or left out HEAD, which
every GET route answers.  The list is therefore read from the URL map in one place, leaving
out what a route marked with :func:`refusing` matches, and HEAD where GET is not safe to
run for it (:func:`without_head`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RoutingException

from gateway.fhir.errors import FhirError

View = TypeVar("View", bound=Callable[..., object])
#: the methods a route may take, in the order ``Allow`` names them (OPTIONS is no FHIR
#: interaction: no route takes it)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def refusing(view: View) -> View:
    """Marks a view that only answers 405: the methods its routes match are none the path takes."""
    view.refuses = frozenset(METHODS)  # type: ignore[attr-defined]
    return view


def without_head(view: View) -> View:
    """A GET view whose GET changes something (an export's kick-off starts a job): HEAD, which
    must have no effect (RFC 9110 §9.2.1) and which Flask answers by running the GET view,
    is refused with 405 instead, and left out of ``Allow``."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if request.method == "HEAD":
            raise method_refused()
        return view(*args, **kwargs)

    guarded.refuses = frozenset({"HEAD"})  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]


def method_refused() -> FhirError:
    """The 405 of this request, naming its method and its path as requested (``/fhir/metadata``),
    whoever refuses it: werkzeug (no route takes the method), a route that only refuses
    (:func:`refusing`) or a HEAD refused (:func:`without_head`).  The refusing routes named the
    path without the base (``metadata``) and the others with it; the response's ``Allow`` says
    the methods the path takes."""
    return FhirError(405, "http.method-not-allowed", method=request.method, path=request.path)


def allowed() -> str:
    """The methods this request's path takes, as ``Allow`` lists them (empty when none)."""
    taken = [
        m for m, endpoint in _routes() if m not in getattr(current_app.view_functions.get(endpoint), "refuses", ())
    ]
    return ", ".join(taken)


def endpoints() -> frozenset[str]:
    """The endpoints of the routes this request's path matches, whatever their method: whether
    a method the path does not take may be refused before authentication depends on them all."""
    return frozenset(endpoint for _, endpoint in _routes())


def _routes() -> Iterator[tuple[str, str]]:
    """(method, endpoint) of each method a route of this request's path matches."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in METHODS:
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except (HTTPException, RoutingException):  # no route, or only a redirect to another path
            continue
        yield method, endpoint
