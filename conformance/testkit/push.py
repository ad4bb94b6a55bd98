"""Push suite: what a hospital or community health system does — write the package examples in
one transaction, write a person again without duplicating them (conditional create on the
身份证号), and learn from an OperationOutcome exactly where a refused resource is wrong."""

from __future__ import annotations

import copy

from conformance.testkit.catalog import Context, KitTest, describe, entries, is_outcome
from conformance.testkit.examples import PATIENT, SECOND_PATIENT, id_card_query, invalid_patient, load, valid_resources


def check_transaction(ctx: Context) -> None:
    examples = valid_resources()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{ctx.http.base.rstrip('/')}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in examples
        ],
    }
    answer = ctx.http.send("POST", "", json=bundle)
    if answer.status != 200:  # the pull suite reads these examples: it skips rather than fails
        ctx.push_refused = f"the examples' transaction answered {describe(answer)}"
    ctx.require(answer.status == 200, "the transaction of the examples answers 200", f"it answered {describe(answer)}")
    body = answer.body if isinstance(answer.body, dict) else {}
    ctx.require(
        body.get("type") == "transaction-response",
        "the answer is a transaction-response Bundle",
        f"the answer is {body.get('resourceType')} of type {body.get('type')!r}",
    )
    answered = list(entries(body))
    ctx.check(
        len(answered) == len(examples),
        f"one response entry per request entry ({len(examples)})",
        f"{len(answered)} response entries for {len(examples)} request entries",
    )
    for example, entry in zip(examples, answered, strict=False):
        status = str(entry.get("response", {}).get("status", ""))
        reference = f"{example['resourceType']}/{example['id']}"
        ctx.check(status[:3] in ("200", "201"), f"{reference}: {status}", f"{reference} answered {status!r}")
    # the elder the examples are about, and two resources of other types, read back and judged
    patient = load(PATIENT)
    for example in [patient, *[e for e in examples if e["resourceType"] != "Patient"][:2]]:
        reference = f"{example['resourceType']}/{example['id']}"
        read = ctx.http.send("GET", reference)
        ctx.check(read.status == 200, f"{reference} reads back", f"reading {reference} answered {describe(read)}")
        if read.status == 200:
            ctx.validate(read.body, f"GET {reference}")


def check_conditional_create(ctx: Context) -> None:
    person = load(SECOND_PATIENT)
    person.pop("id", None)
    condition = "identifier=" + id_card_query(person)
    ids = []
    for attempt in (1, 2):
        answer = ctx.http.send("POST", "Patient", json=copy.deepcopy(person), headers={"If-None-Exist": condition})
        ctx.require(
            answer.status in (200, 201),
            f"conditional create #{attempt} answers 200 or 201",
            f"conditional create #{attempt} answered {describe(answer)}",
        )
        if attempt == 2:
            ctx.check(
                answer.status == 200,
                "the second create answers 200 (found, not created)",
                f"it answered {answer.status}: a second Patient was created",
            )
        body = answer.body if isinstance(answer.body, dict) else {}
        ids.append(body.get("id") or answer.headers.get("location", "").split("/_history")[0].rsplit("/", 1)[-1])
    ctx.check(ids[0] == ids[1], "both creates name the same Patient", f"the creates answered Patient ids {ids}")
    found = ctx.http.send("GET", "Patient", params={"identifier": id_card_query(person)})
    matches = [e for e in entries(found.body) if e.get("search", {}).get("mode", "match") == "match"]
    ctx.check(len(matches) == 1, "exactly one Patient has that 身份证号", f"{len(matches)} Patients have that 身份证号")


def check_invalid_rejected(ctx: Context) -> None:
    resource, locations = invalid_patient()
    resource.pop("id", None)
    answer = ctx.http.send("POST", "Patient", json=resource)
    ctx.require(
        answer.status in (400, 422), "the invalid Patient is refused with 400 or 422", f"it answered {describe(answer)}"
    )
    ctx.require(is_outcome(answer), "the refusal is an OperationOutcome", "the refusal is not an OperationOutcome")
    named = [x for issue in answer.body.get("issue", []) for x in issue.get("expression", []) or []]
    for location in locations:
        ctx.check(location in named, f"an issue names {location}", f"no issue names {location} (named: {named})")


TESTS = (
    KitTest(
        "push.transaction",
        "push",
        "以事务 Bundle 写入本省包全部有效示例，并可读回",
        "a transaction Bundle writes every valid package example, which reads back",
        check_transaction,
    ),
    KitTest(
        "push.conditional-create",
        "push",
        "按身份证号条件创建是幂等的（第二次不重复创建）",
        "conditional create on the 身份证 identifier is idempotent",
        check_conditional_create,
    ),
    KitTest(
        "push.invalid-rejected",
        "push",
        "不合规资源被拒绝，OperationOutcome 指明 FHIRPath 位置",
        "an invalid resource is refused with an OperationOutcome naming the FHIRPath location",
        check_invalid_rejected,
    ),
)
