"""txt-1 as the reference validator applies it: every element and attribute name in
Narrative.div is checked against the whitelist (conformance/narrative-xhtml.json, from
XhtmlValidator's HTML_ELEMENTS / HTML_ATTRIBUTES / HTML_COMBO_LIST).  A name outside it is an
error (XHTML_XHTML_ELEMENT_ILLEGAL, XHTML_XHTML_ATTRIBUTE_ILLEGAL), ``xml:space`` a hint
(XHTML_XHTML_ATTRIBUTE_XML_SPACE), each issue at the FHIRPath of the div."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.issues import IssueList
from conformance.narrative import ATTRIBUTES, ELEMENT_ATTRIBUTES, ELEMENTS, check_narrative
from conformance.validator import Validator
from tests.conftest import found

ROOT = Path(__file__).resolve().parents[2]
NS = 'xmlns="http://www.w3.org/1999/xhtml"'


def narrative_issues(validator: Validator, inner: str, root_attributes: str = "") -> list[tuple[str, str, str]]:
    div = f"<div {NS}{root_attributes}>{inner}</div>"
    issues = validator.validate({"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    return [(i.severity, i.message_id, i.expression) for i in issues if i.message_id.startswith("narrative.")]


def test_a_narrative_of_basic_html_formatting_passes(validator: Validator) -> None:
    inner = (
        '<h2 id="summary" class="title" style="color: navy">张秀英</h2>'
        '<p>生于 <b>1949-12-31</b>，<a href="#summary" name="top">顶部</a><br/>'
        '<img src="#photo" alt="照片" width="40" height="40"/></p>'
        '<table border="1" cellpadding="2" summary="生命体征"><caption>体征</caption>'
        '<thead><tr><th scope="col" colspan="2">体温</th></tr></thead>'
        '<tbody><tr><td align="right" nowrap="nowrap">36.5</td><td>Cel</td></tr></tbody></table>'
        '<ul><li lang="en" dir="ltr">note</li></ul><blockquote cite="urn:x">引文</blockquote>'
    )
    assert narrative_issues(validator, inner, ' xml:lang="zh-CN" lang="zh-CN"') == []


@pytest.mark.parametrize(
    ("inner", "element"),
    [
        ("<script>alert(1)</script>text", "script"),
        ("<p>文本<font color='red'>红</font></p>", "font"),
        ("<form><input name='x'/></form>text", "form"),
        ("<p>text</p><iframe src='https://example.org'/>", "iframe"),
        ("<p>text<u>下划线</u></p>", "u"),
        ("<section>text</section>", "section"),
    ],
)
def test_an_element_outside_the_whitelist_is_an_error(validator: Validator, inner: str, element: str) -> None:
    issues = narrative_issues(validator, inner)
    assert ("error", "narrative.element-not-allowed", "Patient.text.div") in issues


@pytest.mark.parametrize(
    ("inner", "attribute"),
    [
        ('<p onclick="steal()">text</p>', "onclick"),
        ('<a href="#x" target="_blank">text</a>', "target"),
        ('<span href="#x">text</span>', "href"),  # href only on a and area
        ('<a xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="#x">text</a>', "xlink:href"),
        ('<p data-id="7">text</p>', "data-id"),
    ],
)
def test_an_attribute_outside_the_whitelist_is_an_error(validator: Validator, inner: str, attribute: str) -> None:
    validator_issues = narrative_issues(validator, inner)
    assert validator_issues == [("error", "narrative.attribute-not-allowed", "Patient.text.div")]
    issues = IssueList()
    check_narrative({"div": f"<div {NS}>{inner}</div>"}, "Patient.text", issues)
    assert [issue.params["attribute"] for issue in issues] == [attribute]


@pytest.mark.parametrize(
    "inner",
    ['<a href="javascript:alert(1)">x</a>', '<a href=" JavaScript:alert(1)">x</a>', '<img src="data:text/html,x"/>'],
)
def test_a_script_url_is_an_error(validator: Validator, inner: str) -> None:
    """narrative.html: no scripts; a link that runs one is a script too."""
    assert ("error", "narrative.script-url", "Patient.text.div") in narrative_issues(validator, inner)


def test_a_div_under_a_prefix_is_an_error(validator: Validator) -> None:
    """XHTML all the same, but FHIR XML has no place for it: the XML reader refuses it."""
    div = '<x:div xmlns:x="http://www.w3.org/1999/xhtml"><x:p>张秀英</x:p></x:div>'
    issues = validator.validate({"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    assert ("narrative.invalid-xhtml", "Patient.text.div") in {(i.message_id, i.expression) for i in issues}


def test_an_event_attribute_on_the_root_div_is_an_error(validator: Validator) -> None:
    assert narrative_issues(validator, "text", ' onload="x()"') == [
        ("error", "narrative.attribute-not-allowed", "Patient.text.div")
    ]


def test_xml_space_is_only_information_as_in_the_reference(validator: Validator) -> None:
    assert narrative_issues(validator, '<pre xml:space="preserve">  x</pre>') == [
        ("information", "narrative.attribute-discouraged", "Patient.text.div")
    ]


def test_each_disallowed_name_is_reported_once_with_where_it_first_occurs() -> None:
    issues = IssueList()
    inner = "<p><font>a</font><font>b</font></p><font>c</font><p onclick='x'>d</p><p onclick='y'>e</p>"
    check_narrative({"div": f"<div {NS}>{inner}</div>"}, "Patient.text", issues)
    assert [(i.message_id, i.params.get("location")) for i in issues] == [
        ("narrative.element-not-allowed", "div/p/font"),
        ("narrative.attribute-not-allowed", "div/p"),
    ]


def test_every_problem_is_reported_not_only_the_first(validator: Validator) -> None:
    issues = narrative_issues(validator, "<script>x()</script><p onclick='y'><font>z</font></p>")
    assert sorted(message_id for _, message_id, _ in issues) == [
        "narrative.attribute-not-allowed",
        "narrative.element-not-allowed",
        "narrative.element-not-allowed",
    ]


def test_a_narrative_inside_a_bundle_is_located_by_its_entry(validator: Validator) -> None:
    div = f"<div {NS}><marquee>x</marquee></div>"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:5f0c0c57-4a43-4a4e-9c1b-6bb2b7b4a0f1",
                "resource": {"resourceType": "Patient", "text": {"status": "generated", "div": div}},
            }
        ],
    }
    issues = validator.validate(bundle)
    assert [(i.message_id, i.expression) for i in issues if i.message_id.startswith("narrative.")] == [
        ("narrative.element-not-allowed", "Bundle.entry[0].resource.text.div")
    ]


def test_the_whitelist_is_data_that_states_its_source() -> None:
    data: dict[str, Any] = json.loads((ROOT / "conformance/narrative-xhtml.json").read_text(encoding="utf-8"))
    assert "XhtmlValidator.java" in data["_source"]
    assert {"script", "form", "base", "link", "style", "iframe"}.isdisjoint(data["elements"])
    assert not any(name.startswith("on") for name in data["attributes"])


NAME = st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True).filter(lambda name: not name.startswith("xmlns"))


@settings(max_examples=150, deadline=None)
@given(element=st.one_of(st.sampled_from(sorted(ELEMENTS)), NAME))
def test_an_element_is_reported_exactly_when_the_whitelist_lacks_it(element: str) -> None:
    issues = IssueList()
    check_narrative({"div": f"<div {NS}>text<{element}>x</{element}></div>"}, "Basic.text", issues)
    reported = [i.message_id for i in issues if i.message_id == "narrative.element-not-allowed"]
    assert reported == ([] if element in ELEMENTS else ["narrative.element-not-allowed"])


@settings(max_examples=150, deadline=None)
@given(
    element=st.sampled_from(sorted(ELEMENTS)),
    attribute=st.one_of(st.sampled_from(sorted(ATTRIBUTES | {"href", "src", "onclick", "alt"})), NAME),
)
def test_an_attribute_is_reported_exactly_when_the_whitelist_lacks_it(element: str, attribute: str) -> None:
    issues = IssueList()
    check_narrative({"div": f'<div {NS}>text<{element} {attribute}="v">x</{element}></div>'}, "Basic.text", issues)
    allowed = attribute in ATTRIBUTES or attribute in ELEMENT_ATTRIBUTES.get(element, frozenset())
    reported = [i.message_id for i in issues if i.message_id == "narrative.attribute-not-allowed"]
    assert reported == ([] if allowed else ["narrative.attribute-not-allowed"])


@settings(max_examples=300, deadline=None)
@given(div=st.text(max_size=200))
def test_any_div_text_is_answered_with_issues_never_an_exception(div: str) -> None:
    issues = IssueList()
    check_narrative({"div": div}, "Basic.text", issues)
    assert all(i.message_id.startswith("narrative.") and i.expression == "Basic.text.div" for i in issues)


@pytest.mark.parametrize(
    "prolog",
    ['<?xml version="1.0"?>', "<!DOCTYPE div>", '<!DOCTYPE div SYSTEM "http://example.org/x.dtd">', "<!-- c -->"],
)
def test_nothing_may_stand_before_the_root_div(validator: Validator, prolog: str) -> None:
    """FHIR XML embeds the div as an element: a prolog has nowhere to go (and a DTD's SYSTEM id is a
    URL a reader may fetch)."""
    div = prolog + '<div xmlns="http://www.w3.org/1999/xhtml">张三</div>'
    patient = {"resourceType": "Patient", "text": {"status": "generated", "div": div}}
    assert found(validator.validate(patient), "narrative.invalid-xhtml", "Patient.text.div")


def test_a_narrative_nested_past_the_parser_limit_is_told_in_the_catalogs_words() -> None:
    """libxml2's own refusal ("Excessive depth in document: 256, use XML_PARSE_HUGE option")
    was quoted inside the Chinese message; the depth is a message of its own, in both languages."""
    issues = IssueList()
    deep = "<b>" * 300 + "x" + "</b>" * 300
    check_narrative({"div": f"<div {NS}>{deep}</div>"}, "Patient.text", issues)
    assert [(i.message_id, i.expression, i.params.get("limit")) for i in issues] == [
        ("narrative.too-deep", "Patient.text.div", 256)
    ]


@pytest.mark.parametrize(
    "div",
    [
        f"<div {NS}><p>张秀英</div>",  # a libxml2 syntax error
        f"<div {NS}><p>张秀英</p>",  # another, the data ending
        "<p>张秀英</p>",  # a root other than the XHTML div
        f"<!-- 注释 --><div {NS}>张秀英</div>",  # something beside the root div
        f"<div {NS}>张<!-- 注释 -->秀英</div>",  # a comment inside it
        f'<div {NS}><x:p xmlns:x="urn:other">张秀英</x:p></div>',  # an element of another namespace
    ],
)
def test_a_narrative_that_is_no_restricted_xhtml_is_worded_in_chinese_alone(div: str) -> None:
    """libxml2's words and the checks' own details were English inside the Chinese sentence."""
    issues = IssueList()
    check_narrative({"div": div}, "Patient.text", issues)
    worded = " ".join(issue.text("zh-CN") for issue in issues if issue.message_id == "narrative.invalid-xhtml")
    # the names it quotes (a tag, where in the div, the rule) are no words of a language
    quoted = r"<[^>]*>|（位于 [^）]*）|txt-1|XHTML|XML|DOCTYPE"
    assert (bool(worded), re.findall(r"[A-Za-z]{3,}", re.sub(quoted, "", worded))) == (True, [])
