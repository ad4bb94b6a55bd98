"""Security suite: archives of older people are health data — nothing without a token, nothing
beyond the token's scopes, and an elderly-care platform sees only the people it serves."""

from __future__ import annotations

from conformance.testkit.catalog import Context, KitTest, Skip, describe, is_outcome, resources
from conformance.testkit.examples import PATIENT, id_card_query, load

#: a scope that allows reading Observations but not Patients
NARROW_SCOPE = "system/Observation.rs"


def check_no_token(ctx: Context) -> None:
    query = {"identifier": id_card_query(load(PATIENT))}
    for token, what in ((None, "no token"), ("not-a-valid-token", "an invalid token")):
        answer = ctx.http.send("GET", "Patient", token=token, params=query)
        ctx.check(
            answer.status == 401, f"a search with {what} answers 401", f"with {what} it answered {describe(answer)}"
        )
        ctx.check(
            is_outcome(answer),
            f"the 401 for {what} is an OperationOutcome",
            f"the answer to {what} is no OperationOutcome",
        )


def check_scope(ctx: Context) -> None:
    if ctx.credentials is None:
        raise Skip("a narrower token needs --client-id and --key")
    status, token, body = ctx.http.backend_token(ctx.credentials, NARROW_SCOPE)
    ctx.require(
        token is not None, f"a token for {NARROW_SCOPE} is granted", f"the token request answered HTTP {status}: {body}"
    )
    granted = body.get("scope", "") if isinstance(body, dict) else ""
    ctx.check(
        "Patient" not in granted and "*" not in granted,
        "the granted scope is no wider than asked",
        f"granted {granted!r}",
    )
    person = load(PATIENT)
    answer = ctx.http.send("GET", f"Patient/{person['id']}", token=token)
    ctx.check(
        answer.status == 403, f"reading a Patient with {NARROW_SCOPE} answers 403", f"it answered {describe(answer)}"
    )
    ctx.check(is_outcome(answer), "the refusal is an OperationOutcome", "the refusal is no OperationOutcome")
    allowed = ctx.http.send("GET", "Observation", token=token, params={"_count": "1"})
    ctx.check(
        allowed.status == 200,
        f"searching Observations with {NARROW_SCOPE} answers 200",
        f"it answered {describe(allowed)}",
    )


def check_cross_organisation(ctx: Context) -> None:
    token = ctx.elderly_token
    if token is None and ctx.elderly is not None:
        status, token, body = ctx.http.backend_token(ctx.elderly, "system/Patient.rs")
        ctx.require(
            token is not None,
            "the elderly-care client gets a token",
            f"the token request answered HTTP {status}: {body}",
        )
    if token is None:
        raise Skip(
            "needs an elderly-care client's credentials (--elderly-client-id and --elderly-key, or --elderly-token)"
        )
    person = load(PATIENT)
    present = ctx.http.send("GET", f"Patient/{person['id']}")
    if present.status != 200:
        # a 404 and an empty search for someone the server does not hold prove nothing
        raise Skip(
            f"needs Patient/{person['id']} on the server (the push suite writes it); "
            f"reading it with the kit's token answered {describe(present)}"
        )
    read = ctx.http.send("GET", f"Patient/{person['id']}", token=token)
    ctx.check(
        read.status in (403, 404),
        "reading a person the organisation does not serve answers 403 or 404",
        f"it answered {describe(read)}",
    )
    found = ctx.http.send("GET", "Patient", token=token, params={"identifier": id_card_query(person)})
    ctx.check(
        found.status in (200, 403), "a search for that person is answered or refused", f"it answered {describe(found)}"
    )
    ctx.check(
        not resources(found.body, "match"), "the search does not reveal that person", "the search returned that person"
    )


TESTS = (
    KitTest(
        "security.no-token",
        "security",
        "无令牌或令牌无效时返回 401 OperationOutcome",
        "no or an invalid token answers 401 with an OperationOutcome",
        check_no_token,
    ),
    KitTest(
        "security.scope",
        "security",
        "权限范围不足时返回 403（可获取较窄令牌时）",
        "insufficient scope answers 403 (when a narrower token can be obtained)",
        check_scope,
    ),
    KitTest(
        "security.cross-organisation",
        "security",
        "养老机构不能读取其未服务对象的档案",
        "an elderly-care client cannot read a person it does not serve",
        check_cross_organisation,
    ),
)
