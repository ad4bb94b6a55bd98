"""The CapabilityStatement at ``/metadata``: what this server really does, derived, not typed.

Resource types come from the R4 base model, search parameters from the ones the indexer could
compile for each type (a definition fhirpathpy cannot evaluate is left out rather than
advertised and silently ignored), profiles from the provincial package.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from gateway.config import Config
from gateway.fhir.errors import FhirError
from gateway.fhir.export_parameters import EXPORT_OPERATIONS
from gateway.fhir.parameters import refuse_unsupported_parameters, unsupported_value
from gateway.fhir.patient_merge import DEFINITION as MERGE_DEFINITION
from gateway.fhir.search import READ_HONOURED, read_controls, shaped_read
from gateway.search.parameters import SearchParameters
from gateway.security.audit import TRAIL_SEARCH_PARAMETERS
from profiles.registry import Registry

INTERACTIONS = [
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
#: R4 http.html#capabilities: the whole statement, or its normative parts, which are all of it
#: (CapabilityStatement is normative in R4); ``terminology`` would be a TerminologyCapabilities
CAPABILITY_MODES = ("full", "normative")
#: the parameters the capabilities interaction honours: its mode, and what a read honours
CAPABILITY_HONOURED = ("mode", *READ_HONOURED)
#: the SearchParameter types the store indexes and the SQL builder searches
SEARCHABLE = {"token", "string", "date", "reference", "quantity", "number", "uri"}
VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
DOCUMENT = "http://hl7.org/fhir/OperationDefinition/Composition-document"
#: the id of R4's definition as the gateway implements it (profiles/package, its ``base`` R4's):
#: what the operation takes is read from it
EVALUATE_MEASURE = "Measure-evaluate-measure"


AUDIT_TRAIL_NOTE = (
    "审计记录：只读，只可按所列参数检索，不带修饰符；_sort 只接受 date 或 -date。"
    " / The audit trail: read-only, searched by the parameters listed only, without modifiers; _sort takes date or -date alone."
)
AUDIT_PARAM_NOTE = "不带修饰符（如 :missing、:exact） / without modifiers (such as :missing, :exact)"
#: R4's restful-security-service code system: how a client gets through (docs/security.md)
SECURITY_SERVICES = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def _security(config: Config) -> dict[str, Any]:
    """Every request but these public ones needs a SMART Backend Services token: said where a
    client reads what the server asks of it (``rest.security``), as R4 and SMART have it, with
    the token endpoint and the discovery document the test kit reads.  No CORS headers are
    sent, so ``cors`` is false: a browser application on another origin cannot call the API."""
    discovery = f"{config.base_url}/.well-known/smart-configuration"
    return {
        "cors": False,
        "service": [
            {
                "coding": [{"system": SECURITY_SERVICES, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                "text": "SMART Backend Services",
            }
        ],
        "description": (
            "除 metadata、SMART 配置与令牌端点外，每个请求都须带 SMART Backend Services 令牌（client_credentials）："
            f"令牌端点 {config.token_url}，认证方式与权限范围见 {discovery}。"
            " / Every request but metadata, the SMART configuration and the token endpoint needs a SMART Backend Services"
            f" token (client_credentials): token endpoint {config.token_url}; authentication methods and"
            f" scopes at {discovery}."
        ),
    }


def _audit_trail(parameters: SearchParameters) -> dict[str, Any]:
    """AuditEvent is the audit trail, served from its own append-only table
    (``gateway/api/audit.py``): read and search by its few parameters, nothing else."""
    known = parameters.for_type("AuditEvent")
    return {
        "type": "AuditEvent",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        # the definitions are R4's, whose modifiers (:missing, :exact …) the trail's own search
        # does not take: said where a client reads what each parameter offers
        "documentation": AUDIT_TRAIL_NOTE,
        "searchParam": [
            {"name": code, "definition": known[code].url, "type": known[code].type, "documentation": AUDIT_PARAM_NOTE}
            for code in TRAIL_SEARCH_PARAMETERS
            if code in known
        ],
    }


def _references_to(parameters: SearchParameters, resource_types: frozenset[str]) -> dict[str, list[str]]:
    """Type → the ``_revinclude`` values that may add resources pointing at it (``Source:param``
    for each reference parameter whose targets include it).  ``_revinclude=*`` is not among
    them: without a source type and parameter no index narrows the search."""
    found: dict[str, list[str]] = {}
    for source in sorted(resource_types - {"AuditEvent"}):
        for code, parameter in sorted(parameters.for_type(source).items()):
            if parameter.type == "reference":
                for target in parameter.targets:
                    found.setdefault(target, []).append(f"{source}:{code}")
    return found


def _exports(registry: Registry) -> dict[str, str]:
    """Where each of the Bulk Data IG's ``$export`` operations is served (a resource type, or
    ``system``) → its canonical, as the registry's definitions (``profiles/bulkdata``) say."""
    found: dict[str, str] = {}
    for url in EXPORT_OPERATIONS:
        definition = registry.get(url) or {}
        for scope in definition.get("resource") or (["system"] if definition.get("system") else []):
            found[scope] = url
    return found


def capability_statement(
    registry: Registry,
    parameters: SearchParameters,
    resource_types: frozenset[str],
    config: Config,
    version: str,
    published: str,
) -> dict[str, Any]:
    profiles: dict[str, list[str]] = {}
    for definition in registry.all("StructureDefinition"):
        if definition.get("kind") == "resource" and definition.get("derivation") == "constraint":
            profiles.setdefault(definition["type"], []).append(definition["url"])
    pointing = _references_to(parameters, resource_types)
    exports = _exports(registry)
    resources = []
    for kind in sorted(resource_types):
        if kind == "AuditEvent":
            resources.append(_audit_trail(parameters))
            continue
        entry: dict[str, Any] = {
            "type": kind,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "multiple",
            "searchInclude": ["*"],
            "searchRevInclude": pointing.get(kind, []),
            "searchParam": [
                {"name": code, "definition": parameter.url, "type": parameter.type}
                for code, parameter in sorted(parameters.for_type(kind).items())
                if parameter.type in SEARCHABLE
            ],
        }
        if kind in profiles:
            entry["supportedProfile"] = sorted(profiles[kind])
        entry["operation"] = [{"name": "validate", "definition": VALIDATE}]
        if kind == "Patient":
            entry["operation"].append({"name": "everything", "definition": EVERYTHING})
            entry["operation"].append(
                {"name": "merge", "definition": registry.url("OperationDefinition", MERGE_DEFINITION)}
            )
        if kind == "Composition":
            entry["operation"].append({"name": "document", "definition": DOCUMENT})
        if kind == "Measure":
            measure = registry.url("OperationDefinition", EVALUATE_MEASURE)
            entry["operation"].append({"name": "evaluate-measure", "definition": measure})
        if kind in exports:
            entry["operation"].append({"name": "export", "definition": exports[kind]})
        resources.append(entry)
    implementation_guides = [ig["url"] for ig in registry.all("ImplementationGuide")]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "Yiyang Gateway",
        "kind": "instance",
        "software": {"name": "Yiyang Gateway 医养互联网关", "version": version},
        "implementation": {"description": "医养互联网关 FHIR R4 服务", "url": config.base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+xml"],
        "patchFormat": ["application/json-patch+json"],
        "implementationGuide": implementation_guides,
        "rest": [
            {
                "mode": "server",
                "security": _security(config),
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
                "operation": [
                    {"name": "ingest", "definition": f"{config.canonical_base}/OperationDefinition/ingest"},
                    {
                        "name": "identity-conflicts",
                        "definition": f"{config.canonical_base}/OperationDefinition/identity-conflicts",
                    },
                    {"name": "export", "definition": exports["system"]},
                ],
            }
        ],
    }


class Capabilities:
    """The server's CapabilityStatement, one per process (``Services.capabilities``):
    ``/metadata`` answers it, and so does a Bundle's ``GET metadata`` entry.  Built on first
    use (the command line never asks for it), dated then, and kept."""

    def __init__(
        self, registry: Registry, parameters: SearchParameters, resource_types: frozenset[str], config: Config
    ) -> None:
        self.registry = registry
        self.parameters = parameters
        self.resource_types = resource_types
        self.config = config

    @cached_property
    def statement(self) -> dict[str, Any]:
        published = datetime.now(UTC).isoformat(timespec="seconds")
        return capability_statement(
            self.registry, self.parameters, self.resource_types, self.config, _software_version(), published
        )


def _software_version() -> str:
    """The installed gateway's version, which the statement's ``software`` names."""
    try:
        return version("yiyang-gateway")
    except PackageNotFoundError:
        return "0+unknown"


def check_mode(pairs: Iterable[tuple[str, str]], where: str | None = None) -> None:
    """400 for a ``mode`` given twice (``mode=full&mode=terminology`` was answered by the
    first) or other than :data:`CAPABILITY_MODES`: ``terminology`` asks for a
    TerminologyCapabilities, which this server does not publish, and a CapabilityStatement in
    its place would be a resource of another type than asked.  ``where`` locates it (a Bundle
    entry's URL), else the parameter's name does."""
    modes = [value for name, value in pairs if name == "mode"]
    if len(modes) > 1:
        raise FhirError(400, "http.repeated-parameter", where or "mode", name="mode")
    if modes and modes[0] not in CAPABILITY_MODES:
        raise unsupported_value("mode", modes[0], CAPABILITY_MODES, where)


def capabilities_entry(
    statement: dict[str, Any], pairs: list[tuple[str, str]], strict: bool, where: str
) -> dict[str, Any]:
    """The statement a Bundle entry ``GET metadata`` reads, as ``/metadata`` answers it: R4
    lets a batch or transaction hold any interaction of http.html, and capabilities is one.
    ``strict``: the client prefers ``handling=strict``, and a parameter it does not know is a
    400 rather than ignored, as at ``/metadata``."""
    if strict:
        refuse_unsupported_parameters((name for name, _ in pairs), "capabilities", CAPABILITY_HONOURED, where)
    check_mode(pairs, where)
    summary, elements = read_controls(pairs, where)
    return shaped_read(statement, summary, elements, where)
