"""The test kit's catalog and runner without a network: every test is well described, and a
test's checks, skips and crashes become the right verdicts in a report every renderer accepts
(the JSON one against the report schema)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import jsonschema
import pytest

from conformance.report.render_html import render_html
from conformance.report.render_json import render_json, schema
from conformance.report.render_junit import render_junit
from conformance.testkit.catalog import SUITES, Context, KitTest, Skip, resources
from conformance.testkit.http import Http, KeyCredentials
from conformance.testkit.runner import CATALOG, run, run_test, selected
from conformance.validator import Validator
from gateway.reporting import words_in

ID = re.compile(r"(capability|push|pull|security)\.[a-z-]+")


def test_every_test_has_a_unique_id_of_its_suite_and_both_descriptions() -> None:
    ids = [test.id for test in CATALOG]
    assert len(ids) == len(set(ids))
    for test in CATALOG:
        assert ID.fullmatch(test.id) and test.id.startswith(test.suite + ".")
        assert test.zh and test.en and test.zh != test.en
    assert {test.suite for test in CATALOG} == set(SUITES)


def test_suites_select_their_tests_in_catalog_order() -> None:
    assert [t.suite for t in selected(["security"])] == ["security"] * 3
    assert selected(["all"]) == list(CATALOG)
    assert selected(["pull", "push"]) == [t for t in CATALOG if t.suite in ("push", "pull")]


@pytest.fixture
def ctx(validator: Validator) -> Context:
    return Context(Http("http://127.0.0.1:9/fhir"), validator, {})


def failing(ctx: Context) -> None:
    ctx.check(True, "the answer is 200")
    ctx.check(False, "", "the Patient lost its 身份证号 410105194912310020")


def skipped(ctx: Context) -> None:
    raise Skip("needs an elderly-care client's credentials")


def crashing(ctx: Context) -> None:
    raise KeyError("entry")


def unreachable(ctx: Context) -> None:
    ctx.http.send("GET", "metadata")


@pytest.mark.parametrize(
    ("check", "verdict", "first"),
    [
        (failing, "fail", "the Patient lost its 身份证号 410105********0020"),
        (skipped, "skip", "needs an elderly-care client's credentials"),
        (crashing, "error", "KeyError: 'entry'"),
    ],
)
def test_checks_skips_and_crashes_become_verdicts_with_their_reason(
    ctx: Context, check: Callable[[Context], None], verdict: str, first: str
) -> None:
    from gateway.masking import mask_text

    test = KitTest("push.example", "push", "示例", "an example", check)
    result = run_test(test, ctx, "en", mask_text)
    assert (result.id, result.verdict, result.note) == ("push.example", verdict, "an example")
    assert result.findings[0].text == first


def test_a_pull_test_skips_when_push_could_not_write_its_data(ctx: Context) -> None:
    """They failed, blaming the server for data the kit never wrote ("Patient/… 不存在")."""
    ctx.push_refused = "the examples' transaction answered HTTP 409"
    result = run_test(KitTest("pull.example", "pull", "示例", "an example", failing), ctx, "en", str)
    assert (result.verdict, "HTTP 409" in result.findings[0].text) == ("skip", True)


def test_a_server_that_does_not_answer_is_an_error_showing_the_request(ctx: Context) -> None:
    test = KitTest("capability.example", "capability", "示例", "an example", unreachable)
    result = run_test(test, ctx, "zh-CN", str)
    assert (result.verdict, result.note) == ("error", "示例")
    sent = [f for f in result.findings if f.rule == "testkit.request"]
    assert [(f.location, f.text) for f in sent] == [("GET http://127.0.0.1:9/fhir/metadata", "-")]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_run_renders_in_every_format(ctx: Context, lang: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import conformance.testkit.runner as runner

    tests = (KitTest("push.a", "push", "甲", "a", failing), KitTest("security.b", "security", "乙", "b", skipped))
    monkeypatch.setattr(runner, "CATALOG", tests)
    report = run(ctx, ["all"], lang, [("testkit.scope.base-url", "http://x/fhir")], "2026-12-02T12:00:00+08:00")
    words = words_in(lang)
    document = json.loads(render_json(report, words, lang))
    jsonschema.validate(document, schema())
    assert document["kind"] == "testkit" and document["summary"]["failed"] == 1
    assert [s["title"] for s in document["sections"]] == [words("testkit.suite.push"), words("testkit.suite.security")]
    assert 'name="push.a"' in render_junit(report, words)
    page = render_html(report, words, lang)
    assert words("report.title.testkit") in page and words("testkit.column.description") in page


def test_the_assertion_is_signed_rs384_with_an_rsa_key_and_es384_with_an_ec_key(client_key: object) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def pem(key: object) -> str:
        return key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    assert KeyCredentials("a", pem(client_key)).algorithm == "RS384"
    assert KeyCredentials("a", pem(ec.generate_private_key(ec.SECP384R1()))).algorithm == "ES384"
    with pytest.raises(ValueError):
        _ = KeyCredentials("a", "not a key").algorithm


def test_a_search_entry_without_a_mode_is_counted_as_a_match() -> None:
    """search.mode is optional: a server leaving it out must not pass "reveals nothing"."""
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {"resourceType": "Patient"}}]}
    assert resources(bundle, "match") == [{"resourceType": "Patient"}]


@pytest.mark.parametrize(("lang", "skip", "error"), [("zh-CN", "跳过", "出错"), ("en", "Skipped", "Error")])
def test_a_kit_report_words_its_skips_and_errors_as_the_kit_means_them(
    ctx: Context, lang: str, skip: str, error: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test not run was labelled 无需校验 / "Nothing to judge" and one that could not be
    completed 被拒绝/出错 / "Refused / error", the exchange report's words, while the page's own
    definition speaks of 跳过 and 出错; JUnit gave a skip no reason."""
    import conformance.testkit.runner as runner

    tests = (KitTest("push.a", "push", "甲", "a", crashing), KitTest("security.b", "security", "乙", "b", skipped))
    monkeypatch.setattr(runner, "CATALOG", tests)
    report = run(ctx, ["all"], lang, [("testkit.scope.base-url", "http://x/fhir")], "2026-12-02T12:00:00+08:00")
    words = words_in(lang)
    page = render_html(report, words, lang)
    assert f'<span class="verdict v-skip">{skip}</span>' in page
    assert f'<span class="verdict v-error">{error}</span>' in page
    assert f"<b>1</b><span>{skip}</span>" in page and f"<b>1</b><span>{error}</span>" in page
    assert words("report.verdict.skip") not in page and words("report.verdict.error") not in page
    assert '<skipped message="needs an elderly-care client\'s credentials"' in render_junit(report, words)
