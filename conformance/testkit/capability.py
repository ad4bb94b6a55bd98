"""Capability suite: the CapabilityStatement and SMART discovery declare what the provincial
platform relies on, so participants can find the profiles, interactions and search parameters
before they exchange anything."""

from __future__ import annotations

from typing import Any

from conformance.testkit.catalog import Context, KitTest
from profiles.canonical import DEFAULT_BASE
from profiles.registry import Registry

#: the interactions the platform's exchanges use, per resource type the examples hold
INTERACTIONS = ("read", "create", "update", "search-type")
CORE_SEARCH = {"Patient": ("identifier", "name", "birthdate"), "Encounter": ("subject", "patient")}


def statement(ctx: Context) -> dict[str, Any]:
    answer = ctx.http.send("GET", "metadata", token=None)
    body = answer.body if isinstance(answer.body, dict) else {}
    ctx.require(
        answer.status == 200 and body.get("resourceType") == "CapabilityStatement",
        "GET metadata answers 200 with a CapabilityStatement",
        f"GET metadata answered HTTP {answer.status} with {body.get('resourceType') or 'no FHIR JSON'}",
    )
    return body


def declared(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r.get("type", ""): r for rest in body.get("rest", []) for r in rest.get("resource", [])}


def check_statement(ctx: Context) -> None:
    body = statement(ctx)
    ctx.check(body.get("fhirVersion") == "4.0.1", "fhirVersion is 4.0.1", f"fhirVersion is {body.get('fhirVersion')!r}")
    formats = body.get("format", [])
    ctx.check(any("json" in f for f in formats), "JSON is a declared format", f"format {formats} declares no JSON")


def check_profiles(ctx: Context) -> None:
    resources = declared(statement(ctx))
    for profile in provincial_profiles(ctx.validator.registry):
        kind, url = profile
        listed = resources.get(kind, {}).get("supportedProfile", []) + [resources.get(kind, {}).get("profile")]
        ctx.check(url in listed, f"{kind} declares {url}", f"{kind} does not declare supportedProfile {url}")


def check_interactions(ctx: Context) -> None:
    body = statement(ctx)
    resources = declared(body)
    for kind in sorted({k for k, _ in provincial_profiles(ctx.validator.registry)}):
        codes = {i.get("code") for i in resources.get(kind, {}).get("interaction", [])}
        missing = [c for c in INTERACTIONS if c not in codes]
        ctx.check(not missing, f"{kind} declares {', '.join(INTERACTIONS)}", f"{kind} lacks interactions {missing}")
    system = {i.get("code") for rest in body.get("rest", []) for i in rest.get("interaction", [])}
    ctx.check("transaction" in system, "the system declares transaction", f"system interactions {sorted(system)}")


def check_search_params(ctx: Context) -> None:
    resources = declared(statement(ctx))
    wanted = {(kind, code) for kind, codes in CORE_SEARCH.items() for code in codes}
    for parameter in ctx.validator.registry.all("SearchParameter"):
        if str(parameter.get("url", "")).startswith(DEFAULT_BASE):
            wanted |= {(kind, parameter["code"]) for kind in parameter.get("base", [])}
    for kind, code in sorted(wanted):
        names = {p.get("name") for p in resources.get(kind, {}).get("searchParam", [])}
        ctx.check(code in names, f"{kind} declares search parameter {code}", f"{kind} lacks searchParam {code}")


def check_smart(ctx: Context) -> None:
    answer = ctx.http.send("GET", ".well-known/smart-configuration", token=None)
    body = answer.body if isinstance(answer.body, dict) else {}
    ctx.require(answer.status == 200, "smart-configuration answers 200", f"it answered HTTP {answer.status}")
    ctx.check(bool(body.get("token_endpoint")), "token_endpoint is given", "no token_endpoint")
    methods = body.get("token_endpoint_auth_methods_supported", [])
    ctx.check("private_key_jwt" in methods, "private_key_jwt is supported", f"auth methods {methods}")
    algorithms = body.get("token_endpoint_auth_signing_alg_values_supported", [])
    ctx.check(
        bool({"RS384", "ES384"} & set(algorithms)), "RS384 or ES384 signing is supported", f"algorithms {algorithms}"
    )


def provincial_profiles(registry: Registry) -> list[tuple[str, str]]:
    """(resource type, profile URL) of every provincial resource profile."""
    return sorted(
        (d["type"], d["url"])
        for d in registry.all("StructureDefinition")
        if d.get("kind") == "resource" and d.get("derivation") == "constraint" and d["url"].startswith(DEFAULT_BASE)
    )


TESTS = (
    KitTest(
        "capability.statement",
        "capability",
        "元数据接口返回 FHIR R4 能力声明（JSON）",
        "metadata returns an R4 CapabilityStatement in JSON",
        check_statement,
    ),
    KitTest(
        "capability.profiles",
        "capability",
        "能力声明列出本省全部资源规范",
        "the CapabilityStatement lists every provincial profile",
        check_profiles,
    ),
    KitTest(
        "capability.interactions",
        "capability",
        "能力声明为本省资源类型声明读、建、改、查与事务交互",
        "read, create, update, search and transaction are declared for the provincial types",
        check_interactions,
    ),
    KitTest(
        "capability.search-params",
        "capability",
        "能力声明列出本省检索参数与身份证、姓名、出生日期检索",
        "the provincial search parameters and identifier, name, birthdate are declared",
        check_search_params,
    ),
    KitTest(
        "capability.smart",
        "capability",
        "SMART 配置声明令牌端点与 private_key_jwt（RS384/ES384）",
        "SMART configuration declares the token endpoint and private_key_jwt (RS384/ES384)",
        check_smart,
    ),
)
