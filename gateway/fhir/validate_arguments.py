"""What a ``$validate`` request asks (R4 Resource-validate): the resource, the profiles and the
mode, read from the query string and from a Parameters body alike.  Kept apart from the HTTP
layer, which only says where the query and the body come from, so that every refusal of a
misspelt, repeated or valueless parameter is decided, and located, in one place."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.fhir.errors import FhirError
from gateway.fhir.parameters import (
    honoured_only,
    primitive_part,
    unsupported_parameter,
    unsupported_value,
)

#: R4 ResourceValidationMode: what ``$validate`` checks the resource for
VALIDATION_MODES = ("create", "update", "delete", "profile")
#: what $validate takes in the query, and as the parts of a Parameters body
VALIDATE_QUERY = ("mode", "profile")
VALIDATE_PARTS = ("resource", *VALIDATE_QUERY)


@dataclass(frozen=True)
class ValidateQuery:
    """The query string's part of the request, read before the body: whether a body is to be
    read at all depends on it (``mode=delete`` needs none)."""

    modes: tuple[str, ...]
    profiles: tuple[str, ...]
    #: the parameters ``Prefer: handling=lenient`` let pass, for the outcome to warn of
    ignored: tuple[FhirError, ...] = field(default=())

    @classmethod
    def parse(cls, pairs: Iterable[tuple[str, str]], lenient: bool = False) -> ValidateQuery:
        """A parameter $validate does not take is refused rather than ignored: a misspelt
        ``profile`` judged the resource without the profile the client meant.  Under
        ``lenient`` it is ignored, and the outcome warns of it."""
        kept, ignored = honoured_only(pairs, "$validate", VALIDATE_QUERY, lenient)
        modes = tuple(value for name, value in kept if name == "mode")
        profiles = tuple(value for name, value in kept if name == "profile")
        return cls(modes, profiles, tuple(ignored))

    @property
    def only_delete(self) -> bool:
        """Asks whether an instance may be deleted, which takes no resource to validate."""
        return self.modes == ("delete",)


@dataclass(frozen=True)
class ValidateArguments:
    """Everything the operation was asked: ``resource`` is whatever the client sent (checked
    to be a resource by the operation, which knows the type and the instance)."""

    resource: Any
    profiles: list[str]
    mode: str | None


def validate_arguments(query: ValidateQuery, document: Any) -> ValidateArguments:
    """The arguments of the query and of ``document``, the body (None when there is none).  A
    body that is a Parameters resource carries them as parts; any other body is the resource."""
    resource, profiles, modes = document, list(query.profiles), list(query.modes)
    if isinstance(document, dict) and document.get("resourceType") == "Parameters":
        resource = _parts(document, profiles, modes)
    # mode is 0..1: given twice (in the query, or there and in the body), which one counted was
    # the server's choice, and a mode=delete dropped validated the body in its place
    if len(modes) > 1:
        raise FhirError(400, "http.repeated-parameter", "mode", name="mode")
    # so is profile: given twice, the resource was judged against both, a question R4 has no
    # answer shape for (one outcome, no word of which profile each issue came from)
    if len(profiles) > 1:
        raise FhirError(400, "http.repeated-parameter", "profile", name="profile")
    mode = modes[0] if modes else None
    if mode is not None and mode not in VALIDATION_MODES:
        raise unsupported_value("mode", str(mode), VALIDATION_MODES)
    return ValidateArguments(resource, profiles, mode)


def _parts(document: dict[str, Any], profiles: list[str], modes: list[str]) -> Any:
    """The resource a Parameters body carries; its profiles and modes are added to those of
    the query."""
    parameters = document.get("parameter", [])
    if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
        raise FhirError(400, "http.parameters-not-a-list", "Parameters.parameter")
    if sum(parameter.get("name") == "resource" for parameter in parameters) > 1:  # 0..1
        raise FhirError(400, "http.repeated-parameter", "Parameters.parameter", name="resource")
    resource: Any = document  # none carried: the Parameters stands, refused as of the wrong type
    for index, parameter in enumerate(parameters):
        if parameter.get("name") == "resource":
            resource = parameter.get("resource")
        elif parameter.get("name") == "profile":
            profiles.append(_profile_part(parameter, index))
        elif parameter.get("name") == "mode":
            modes.append(primitive_part(parameter, index))
        else:  # a misspelt profile or mode, ignored, judged the resource without it
            where = f"Parameters.parameter[{index}]"
            raise unsupported_parameter(str(parameter.get("name")), "$validate", VALIDATE_PARTS, where)
    return resource


#: the value types a ``profile`` part may carry its URL in: R4 types it canonical; a URL sent as
#: uri or string (as ``mode`` is taken as a string too) is the same URL
PROFILE_VALUES = ("valueCanonical", "valueUri", "valueString")


def _profile_part(parameter: dict[str, Any], index: int) -> str:
    """The URL of the ``profile`` part at ``index``: one non-empty value of a
    :data:`PROFILE_VALUES` type, and no other value (400 at the part otherwise)."""
    values = [value for key, value in parameter.items() if key.startswith("value")]
    url = values[0] if len(values) == 1 and any(key in parameter for key in PROFILE_VALUES) else None
    if not isinstance(url, str) or not url:
        raise FhirError(400, "http.profile-parameter-without-url", f"Parameters.parameter[{index}]")
    return url
