"""Pull suite: what an elderly-care platform does — find a person by 身份证号 or by name and
birth date, page through results, bring referenced resources along, take a person's whole
archive, pull only what changed, and synchronise in bulk.  Every resource returned is held to
the provincial profiles: a platform must receive what the rules promise."""

from __future__ import annotations

import json
import time
from typing import Any

from conformance.testkit.catalog import Context, KitTest, describe, resources
from conformance.testkit.examples import PATIENT, id_card, id_card_query, load

#: how long a bulk export may take before the test gives up, and the longest pause between polls
EXPORT_WAIT, EXPORT_POLL = 120.0, 2.0
PAST, FUTURE = "2000-01-01T00:00:00+08:00", "2100-01-01T00:00:00+08:00"


def searched(ctx: Context, path: str, params: dict[str, str], what: str) -> list[dict[str, Any]]:
    """A search's matches, each validated; the test stops when the answer is no searchset."""
    answer = ctx.http.send("GET", path, params=params)
    body = answer.body if isinstance(answer.body, dict) else {}
    ctx.require(
        answer.status == 200 and body.get("type") == "searchset",
        f"{what} answers 200 with a searchset Bundle",
        f"{what} answered {describe(answer)}",
    )
    found = resources(body, "match")
    for resource in found:
        ctx.validate(resource, what)
    return found


def check_identifier(ctx: Context) -> None:
    person = load(PATIENT)
    found = searched(ctx, "Patient", {"identifier": id_card_query(person)}, "search by 身份证号")
    ctx.require(len(found) == 1, "exactly one Patient matches the 身份证号", f"{len(found)} Patients match")
    values = [i.get("value") for i in found[0].get("identifier", [])]
    ctx.check(
        id_card(person) in values, "the Patient carries the 身份证号 searched for", f"its identifiers are {values}"
    )


def check_name_birthdate(ctx: Context) -> None:
    person = load(PATIENT)
    family = person["name"][0].get("family") or person["name"][0]["text"]
    found = searched(ctx, "Patient", {"name": family, "birthdate": person["birthDate"]}, "search by name and birthdate")
    ctx.check(
        any(r.get("id") == person["id"] for r in found),
        f"Patient/{person['id']} is among the matches",
        f"Patient/{person['id']} is not among {[r.get('id') for r in found]}",
    )
    ctx.check(
        all(r.get("birthDate") == person["birthDate"] for r in found),
        "every match has that birth date",
        f"matches have birth dates {[r.get('birthDate') for r in found]}",
    )


def check_paging(ctx: Context) -> None:
    answer = ctx.http.send("GET", "Observation", params={"_count": "2"})
    links = {link.get("relation"): link.get("url") for link in (answer.body or {}).get("link", [])}
    ctx.require(bool(links.get("next")), "a page of 2 Observations links to the next page", f"links are {links}")
    first = {r.get("id") for r in resources(answer.body, "match")}
    ctx.check(len(first) == 2, "the first page holds 2 matches", f"it holds {len(first)}")
    following = ctx.http.send("GET", links["next"])
    second = {r.get("id") for r in resources(following.body, "match")}
    ctx.check(
        following.status == 200 and bool(second), "the next page answers matches", f"it answered {describe(following)}"
    )
    ctx.check(not first & second, "the pages do not repeat a resource", f"both pages hold {sorted(first & second)}")


def check_include(ctx: Context) -> None:
    person = load(PATIENT)
    params = {"subject": f"Patient/{person['id']}", "_include": "Encounter:subject"}
    answer = ctx.http.send("GET", "Encounter", params=params)
    ctx.require(
        answer.status == 200, "Encounter?_include=Encounter:subject answers 200", f"it answered {describe(answer)}"
    )
    included = resources(answer.body, "include")
    ctx.check(bool(resources(answer.body, "match")), "Encounters of the person match", "no Encounter matched")
    ctx.check(
        any(r.get("resourceType") == "Patient" and r.get("id") == person["id"] for r in included),
        "the subject Patient is included (search.mode include)",
        f"included were {[r.get('resourceType') + '/' + str(r.get('id')) for r in included]}",
    )
    for resource in included:
        ctx.validate(resource, "_include")


def check_everything(ctx: Context) -> None:
    person = load(PATIENT)
    answer = ctx.http.send("GET", f"Patient/{person['id']}/$everything")
    ctx.require(answer.status == 200, "Patient/$everything answers 200", f"it answered {describe(answer)}")
    found = resources(answer.body)
    kinds = {r.get("resourceType") for r in found}
    for kind in ("Patient", "Encounter", "Observation"):
        ctx.check(kind in kinds, f"the archive holds {kind}", f"the archive holds only {sorted(kinds)}")
    for resource in found:
        ctx.validate(resource, "$everything")


def check_since(ctx: Context) -> None:
    person = load(PATIENT)
    path = f"Patient/{person['id']}/$everything"
    everything = ctx.http.send("GET", path, params={"_since": PAST})
    ctx.require(
        everything.status == 200, f"$everything?_since={PAST} answers 200", f"it answered {describe(everything)}"
    )
    stamps = sorted(r.get("meta", {}).get("lastUpdated", "") for r in resources(everything.body))
    ctx.require(bool(stamps) and all(stamps), "every resource has meta.lastUpdated", f"lastUpdated values {stamps}")
    since = stamps[-1]
    later = ctx.http.send("GET", path, params={"_since": since})
    newer = [r.get("meta", {}).get("lastUpdated", "") for r in resources(later.body)]
    ctx.check(later.status == 200, f"$everything?_since={since} answers 200", f"it answered {describe(later)}")
    ctx.check(
        all(s >= since for s in newer), "only resources changed since then return", f"returned lastUpdated {newer}"
    )
    future = ctx.http.send("GET", path, params={"_since": FUTURE})
    ctx.check(
        future.status == 200 and not resources(future.body),
        f"_since={FUTURE} returns nothing: nothing changed after it",
        f"_since={FUTURE} answered {describe(future)} with {len(resources(future.body))} resources",
    )


def check_bulk_export(ctx: Context) -> None:
    kickoff = ctx.http.send("GET", "Patient/$export", headers={"Prefer": "respond-async"})
    status_url = kickoff.headers.get("content-location", "")
    ctx.require(kickoff.status == 202, "the kick-off answers 202", f"it answered {describe(kickoff)}")
    ctx.require(bool(status_url), "the kick-off gives a Content-Location", "no Content-Location header")
    manifest = poll(ctx, status_url)
    outputs = manifest.get("output", [])
    ctx.require(bool(outputs), "the manifest lists output files", "the manifest lists no output")
    types = set()
    for output in outputs:
        answer = ctx.http.send("GET", output["url"], headers={"Accept": "application/fhir+ndjson"})
        ctx.check(answer.status == 200, f"{output.get('type')} NDJSON is served", f"it answered HTTP {answer.status}")
        for number, line in enumerate(answer.text.splitlines(), 1):
            if line.strip():
                resource = json.loads(line)
                types.add(resource.get("resourceType"))
                ctx.validate(resource, f"{output.get('type')}.ndjson line {number}")
    ctx.check("Patient" in types, "the export holds Patients", f"the export holds {sorted(types)}")


def poll(ctx: Context, status_url: str) -> dict[str, Any]:
    """The manifest once the export is done, waiting as Retry-After says (within bounds)."""
    deadline = time.monotonic() + EXPORT_WAIT
    while True:
        answer = ctx.http.send("GET", status_url, headers={"Accept": "application/json"})
        if answer.status != 202:
            break
        if time.monotonic() >= deadline:  # a check only when it fails: one per poll said nothing
            ctx.require(False, "", f"the export was still running after {EXPORT_WAIT:.0f} s")
        time.sleep(min(EXPORT_POLL, float(answer.headers.get("retry-after", "1") or 1)))
    ctx.require(answer.status == 200, "the status answers 200 with a manifest", f"it answered {describe(answer)}")
    return answer.body if isinstance(answer.body, dict) else json.loads(answer.text)


TESTS = (
    KitTest(
        "pull.search-identifier",
        "pull",
        "按身份证号检索恰好得到此人，结果合规",
        "search by 身份证 identifier finds exactly that person, conformant",
        check_identifier,
    ),
    KitTest(
        "pull.search-name-birthdate",
        "pull",
        "按姓名与出生日期检索得到此人",
        "search by name and birthdate finds the person",
        check_name_birthdate,
    ),
    KitTest(
        "pull.paging",
        "pull",
        "分页：next 链接给出不重复的下一页",
        "paging: the next link gives a further page without repeats",
        check_paging,
    ),
    KitTest(
        "pull.include", "pull", "_include 带回引用的患者", "_include brings the referenced Patient along", check_include
    ),
    KitTest(
        "pull.everything",
        "pull",
        "Patient/$everything 返回此人的完整档案，结果合规",
        "Patient/$everything returns the person's archive, conformant",
        check_everything,
    ),
    KitTest(
        "pull.since",
        "pull",
        "_since 增量拉取只返回其后变更的资源",
        "_since incremental pulls return only what changed since",
        check_since,
    ),
    KitTest(
        "pull.bulk-export",
        "pull",
        "批量导出：启动、轮询、下载 NDJSON，结果合规",
        "bulk $export: kick-off, poll, NDJSON retrieval, conformant",
        check_bulk_export,
    ),
)
