"""FHIR R4 XML in and out (gateway/fhir_xml.py through gateway/wire.py): every example of the
package survives the round trip, the R4 XML rules hold, and what JSON refuses XML refuses."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.messages import text
from gateway.wire import WireError, parse_json, parse_xml, to_xml
from profiles.registry import examples_dir, r4_base_types

EXAMPLES = sorted(path for path in examples_dir().rglob("*.json") if not path.name.endswith(".manifest.json"))
F = "{http://hl7.org/fhir}"
NS = "http://hl7.org/fhir"


def xml(body: str) -> bytes:
    return f'<Patient xmlns="http://hl7.org/fhir">{body}</Patient>'.encode()


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if not p.name.startswith("invalid")], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_valid_package_example_survives_the_round_trip(path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    assert parse_xml(to_xml(resource)) == resource


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if p.name.startswith("invalid")], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_an_invalid_package_example_survives_the_round_trip_or_is_refused_as_xml(path: Path) -> None:
    """Some faults have no XML form at all (a value[x] given with two types)."""
    resource = json.loads(path.read_text(encoding="utf-8"))
    try:
        assert parse_xml(to_xml(resource)) == resource
    except WireError as refused:
        assert refused.message_id == "http.not-xml"


def test_an_r4_resource_r4b_removed_is_written_and_read() -> None:
    product = {"resourceType": "MedicinalProduct", "id": "m1", "name": [{"productName": "阿司匹林肠溶片"}]}
    assert parse_xml(to_xml(product)) == product


def test_elements_are_written_in_the_definitions_order() -> None:
    patient = {"resourceType": "Patient", "gender": "female", "name": [{"text": "张秀英"}], "id": "p1"}
    root = etree.fromstring(to_xml(patient))
    assert [etree.QName(child).localname for child in root] == ["id", "name", "gender"]


def test_element_ids_are_attributes_on_complex_and_primitive_elements() -> None:
    patient = {"resourceType": "Patient", "name": [{"id": "n1", "given": ["秀英"], "_given": [{"id": "g1"}]}]}
    name = etree.fromstring(to_xml(patient)).find(f"{F}name")
    assert (name.get("id"), name.find(f"{F}given").get("id")) == ("n1", "g1")


def test_element_ids_are_read_back() -> None:
    read = parse_xml(xml('<name id="n1"><given id="g1" value="秀英"/></name>'))
    assert read["name"] == [{"id": "n1", "given": ["秀英"], "_given": [{"id": "g1"}]}]


def test_a_narrative_keeps_its_characters_as_written() -> None:
    patient = {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">张秀英，女</div>'},
    }
    written = to_xml(patient)
    assert ("张秀英".encode() in written, parse_xml(written)) == (True, patient)


def test_a_repeating_primitive_with_an_extension_only_aligns_with_its_values() -> None:
    extension = {"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "CL"}
    name = {"given": ["秀英", None], "_given": [None, {"extension": [extension]}]}
    patient = {"resourceType": "Patient", "name": [name]}
    assert parse_xml(to_xml(patient)) == patient


#: Patient contents that JSON would refuse too
REFUSED = [
    '<active value="no"/>',
    '<active value="1"/>',
    '<multipleBirthInteger value="+3"/>',
    '<multipleBirthInteger value="2.0"/>',
    "<favouriteColour/>",
    '<name><id value="n1"/></name>',
    "<gender>female</gender>",
    '<gender value="female"/><gender value="male"/>',
    '<name colour="red"/>',
]


@pytest.mark.parametrize("depth", [100, 5000])
def test_xml_nested_too_deep_is_refused_as_json_is_however_deep(depth: int) -> None:
    """libxml2 stops a document at 2,048 levels on its own, and that refusal was told as XML
    the client had written wrong ("use XML_PARSE_HUGE option"), not as the depth limit a body
    nested 100 levels meets (``http.too-deep``), the id clients match on."""
    nested = '<extension url="http://x">' * depth + "</extension>" * depth
    with pytest.raises(WireError) as refused:
        parse_xml(xml(nested))
    assert refused.value.message_id == "http.too-deep"


@pytest.mark.parametrize("body", REFUSED)
def test_what_json_refuses_xml_refuses(body: str) -> None:
    with pytest.raises(WireError):
        parse_xml(xml(body))


@pytest.mark.parametrize("body", REFUSED)
def test_an_xml_refusal_is_worded_in_chinese_too(body: str) -> None:
    """Not an English reason inside the Chinese sentence of ``http.not-xml``."""
    with pytest.raises(WireError) as refused:
        parse_xml(xml(body))
    assert re.search(r"[\u4e00-\u9fff]", refused.value.params["detail"].text("zh-CN"))


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('<active value="1"/>', "Patient.active"),
        ("<favouriteColour/>", "Patient.favouriteColour"),
        ('<name colour="red"/>', "Patient.name[0]"),
        ('<name><given value="x" colour="red"/></name>', "Patient.name[0].given[0]"),
        ('<name/><name><given value="x"/><given value="y" colour="red"/></name>', "Patient.name[1].given[1]"),
        ('<name><given><id value="g"/></given></name>', "Patient.name[0].given[0].id"),
        ('<contained><Organization><active value="1"/></Organization></contained>', "Patient.contained[0].active"),
        ('<contained><Organization colour="red"/></contained>', "Patient.contained[0]"),
        ('<name><given xmlns="urn:not-fhir" value="x"/></name>', "Patient.name[0].given[0]"),
        ('<text><status value="generated"/><div>x</div></text>', "Patient.text.div"),
    ],
)
def test_a_refusal_names_the_element_at_fault(body: str, where: str) -> None:
    """As a JSON body's issues do, in ``expression`` (the API's OperationOutcome)."""
    with pytest.raises(WireError) as refused:
        parse_xml(xml(body))
    assert refused.value.expression == where


def test_a_refusal_in_a_bundle_entry_names_the_entry() -> None:
    """Located from the document's root, as the JSON validator locates a transaction's issues:
    "Patient.active" alone did not say which of the entries was at fault."""
    entries = '<entry><resource><Basic><code><text value="t"/></code></Basic></resource></entry>'
    entries += '<entry><resource><Patient><active value="maybe"/></Patient></resource></entry>'
    body = f'<Bundle xmlns="http://hl7.org/fhir"><type value="batch"/>{entries}</Bundle>'
    with pytest.raises(WireError) as refused:
        parse_xml(body.encode())
    assert refused.value.expression == "Bundle.entry[1].resource.active"


def test_a_resource_outside_the_fhir_namespace_is_refused() -> None:
    with pytest.raises(WireError):
        parse_xml(b'<Patient xmlns="urn:not-fhir"><active value="true"/></Patient>')


def test_a_large_document_reads_in_linear_time() -> None:
    """20,000 names: the R4B models took seconds on a tenth of this."""
    body = xml('<name><given value="x"/></name>' * 20_000)
    assert len(parse_xml(body)["name"]) == 20_000


def test_contained_resources_and_bundle_entries_are_wrapped() -> None:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "id": "o"}]}}
        ],
    }
    entry = etree.fromstring(to_xml(bundle)).find(f"{F}entry/{F}resource")
    assert ([etree.QName(c).localname for c in entry], parse_xml(to_xml(bundle))) == (["Patient"], bundle)


PRINTABLE = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=30).filter(str.strip)


@settings(max_examples=200, deadline=None)
@given(
    text=PRINTABLE,
    family=PRINTABLE,
    active=st.booleans(),
    births=st.integers(min_value=1, max_value=9),
    value=st.floats(allow_nan=False, allow_infinity=False, width=32),
)
def test_any_values_survive_the_round_trip(text: str, family: str, active: bool, births: int, value: float) -> None:
    patient = {"resourceType": "Patient", "active": active, "name": [{"text": text, "family": family}]}
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": text}}
    observation["valueQuantity"] = {"value": value, "unit": family}
    assert parse_xml(to_xml({**patient, "multipleBirthInteger": births})) == {**patient, "multipleBirthInteger": births}
    assert parse_xml(to_xml(observation)) == observation


def test_a_schema_location_on_the_root_is_no_content() -> None:
    body = (
        b'<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        b'xsi:schemaLocation="http://hl7.org/fhir fhir-single.xsd"><active value="true"/></Patient>'
    )
    assert parse_xml(body) == {"resourceType": "Patient", "active": True}


@pytest.mark.parametrize(
    "body",
    [
        '<multipleBirthBoolean value="true"/><multipleBirthInteger value="2"/>',
        '<deceasedBoolean value="false"/><deceasedDateTime value="2020-01-01"/>',
        '<multipleBirthBoolean id="b"/><multipleBirthInteger value="2"/>',
    ],
)
def test_a_choice_given_with_two_types_is_refused(body: str) -> None:
    with pytest.raises(WireError):
        parse_xml(xml(body))


@pytest.mark.parametrize("value", ["1E400", "99999999999999999999"])
def test_a_decimal_the_stores_cannot_hold_is_refused(value: str) -> None:
    body = f'<Observation xmlns="http://hl7.org/fhir"><valueQuantity><value value="{value}"/></valueQuantity></Observation>'
    with pytest.raises(WireError):
        parse_xml(body.encode())


@pytest.mark.parametrize("value", ["1.00000000000000001", "12345678901234567890.5"])
def test_a_decimal_with_more_digits_than_the_archive_keeps_is_refused_in_json_and_xml(value: str) -> None:
    """Read as a float, it was stored as another value (1.0, 1.2345678901234567e+19)."""
    body = f'<Observation xmlns="http://hl7.org/fhir"><valueQuantity><value value="{value}"/></valueQuantity></Observation>'
    with pytest.raises(WireError) as in_json:
        parse_json(f'{{"valueQuantity": {{"value": {value}}}}}'.encode())
    with pytest.raises(WireError) as in_xml:
        parse_xml(body.encode())
    assert (in_json.value.message_id, in_xml.value.params["detail"].message_id) == (
        "http.decimal-too-precise",
        "xml.decimal-too-precise",
    )


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_decimal_a_float_holds_is_read_as_written(number: float) -> None:
    assert parse_json(repr(number).encode()) == number


@pytest.mark.parametrize("text", ["a\ufffeb", "a\uffffb", "a\x01b"])
def test_text_xml_cannot_hold_is_written_as_a_replacement_character(text: str) -> None:
    """An error message may echo such text from a request's URL: the answer is still written."""
    written = parse_xml(to_xml({"resourceType": "OperationOutcome", "issue": [{"diagnostics": text}]}))
    assert written["issue"][0]["diagnostics"] == "a\ufffdb"


@pytest.mark.parametrize(
    "body", ['<multipleBirthInteger value="1' + "0" * 5000 + '"/>', "<active/>", "<name><given/></name>"]
)
def test_primitives_json_would_refuse_are_refused(body: str) -> None:
    with pytest.raises(WireError):
        parse_xml(xml(body))


def test_a_narrative_keeps_no_namespace_of_the_document_around_it() -> None:
    body = (
        b'<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><text>'
        b'<status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">x</div></text></Patient>'
    )
    assert parse_xml(body)["text"]["div"] == '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'


def test_a_comment_in_a_narrative_is_markup_left_out_as_everywhere_else() -> None:
    """Kept in the div, it made the validator refuse (txt-1) a resource JSON takes."""
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>张<!-- 草稿 -->秀英<?pi x?></p></div>'
    read = parse_xml(xml(f'<text><status value="generated"/>{div}</text>'))
    assert read["text"]["div"] == '<div xmlns="http://www.w3.org/1999/xhtml"><p>张秀英</p></div>'


def test_a_narrative_under_a_prefix_is_refused() -> None:
    body = xml('<text><status value="generated"/><h:div xmlns:h="http://www.w3.org/1999/xhtml">x</h:div></text>')
    with pytest.raises(WireError):
        parse_xml(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"resourceType": "Basic", "id": "a\\ud800b"}',
        b'{"a": "\\uffff"}',
        b'{"value": 1e400}',
        b'{"value": 99999999999999999999}',
    ],
)
def test_json_no_fhir_format_can_carry_is_refused(body: bytes) -> None:
    with pytest.raises(WireError):
        parse_json(body)


def test_a_value_over_libxml2s_default_text_limit_is_read() -> None:
    """The base64 of an 8 MB scan is 10.7 MB of text: JSON takes it, so must XML."""
    data = base64.b64encode(bytes(8_000_000)).decode()
    body = f'<Binary xmlns="{NS}"><contentType value="application/pdf"/><data value="{data}"/></Binary>'
    assert len(parse_xml(body.encode())["data"]) == len(data)


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_a_doctype_is_refused_whatever_the_encoding(codec: str) -> None:
    body = f'<?xml version="1.0" encoding="{codec}"?><!DOCTYPE p [<!ENTITY x "y">]><Patient xmlns="{NS}"/>'
    with pytest.raises(WireError) as refused:
        parse_xml(body.encode(codec))
    detail = refused.value.params["detail"]
    assert "DOCTYPE" in detail.text("en")
    assert re.search(r"[\u4e00-\u9fff]", detail.text("zh-CN"))  # not an English reason in Chinese


def test_a_body_that_is_no_json_is_refused_in_the_readers_language() -> None:
    """The JSON decoder's English ("Expecting value") went whole into the Chinese text."""
    with pytest.raises(WireError) as refused:
        parse_json(b'{"a": }')
    assert text(refused.value.message_id, "zh-CN", refused.value.params) == (
        "请求体不是合法的 JSON：第 1 行第 7 列处应为一个值"
    )


@pytest.mark.parametrize(
    "body",
    [
        b'<Patient xmlns="http://hl7.org/fhir"><name>',
        b'<Patient xmlns="http://hl7.org/fhir"><name></Patient>',
        b"",
        b'<Patient xmlns="http://hl7.org/fhir">&nbsp;</Patient>',
        b'<Patient xmlns="http://hl7.org/fhir" id=p1/>',
        b'<Patient xmlns="http://hl7.org/fhir"/><Patient/>',
    ],
)
def test_xml_that_is_not_well_formed_is_explained_in_chinese(body: bytes) -> None:
    """libxml2's English message ("Premature end of data in tag name line 1") sat inside the
    Chinese sentence: the catalog words the reason, with its line and column."""
    with pytest.raises(WireError) as refused:
        parse_xml(body)
    assert re.search(r"[A-Za-z]{6,}", refused.value.params["detail"].text("zh-CN")) is None


def test_a_narrative_that_is_not_well_formed_is_explained_in_chinese() -> None:
    div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>张</div>'
    with pytest.raises(WireError) as refused:
        to_xml({"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    reason = refused.value.params["detail"].params["reason"]
    assert re.search(r"[A-Za-z]{6,}", reason.text("zh-CN")) is None


def test_a_value_xml_cannot_carry_is_explained_in_chinese() -> None:
    """A number where a HumanName belongs (stored with YIYANG_VALIDATION=warn) was refused
    with Python's own English words ("'int' object has no attribute 'items'"); the element's
    FHIRPath, which it names now, is the only Latin text."""
    with pytest.raises(WireError) as refused:
        to_xml({"resourceType": "Patient", "name": [5]})
    worded = refused.value.params["detail"].text("zh-CN").replace("Patient.name[0]", "")
    assert re.search(r"[A-Za-z]{6,}", worded) is None


# -- generated resources: JSON → XML → JSON ---------------------------------------------------------------
MODEL = r4_base_types()
#: resource types whose elements the generator walks (people, events, plans, a questionnaire's nesting)
GENERATED_TYPES = ("Patient", "Observation", "Encounter", "CarePlan", "Coverage", "Questionnaire")
_WHOLE = {"integer": 0, "unsignedInt": 0, "positiveInt": 1}


def _primitive(code: str) -> st.SearchStrategy[Any]:
    if code == "boolean":
        return st.booleans()
    if code in _WHOLE:
        return st.integers(min_value=_WHOLE[code], max_value=2**31 - 1)
    if code == "decimal":
        return st.integers(min_value=-(10**12), max_value=10**12) | st.floats(
            allow_nan=False, allow_infinity=False, width=32
        )
    return PRINTABLE


def _narrative(text: str) -> str:
    return f'<div xmlns="http://www.w3.org/1999/xhtml">{escape(text)}</div>'


@st.composite
def _element(draw: st.DrawFn, owner: str, path: str, depth: int) -> dict[str, Any]:
    """Some elements of a node of the R4 model, each with a value of its type: primitives
    (now and then only their ``_element`` id or extension, or a repeating one's aligned list),
    complex and backbone elements down to ``depth``, a narrative."""
    specs, found = MODEL[owner]["nodes"][path], {}
    names = [n for n in MODEL[owner]["order"][path] if n != "contained" and specs[n].get("types")]
    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        spec = specs[name]
        code = draw(st.sampled_from([t["code"] for t in spec["types"]]))
        key = name.removesuffix("[x]") + (code[0].upper() + code[1:] if name.endswith("[x]") else "")
        repeats = spec.get("max") != "1"
        kind = MODEL.get(code, {}).get("kind")
        if code == "xhtml":
            found[key] = _narrative(draw(PRINTABLE))
        elif kind == "primitive-type":
            values = [draw(_primitive(code)) for _ in range(draw(st.integers(1, 3) if repeats else st.just(1)))]
            # an element's id and an extension's url are attributes in XML, strings with no
            # _element of their own in JSON
            plain = name in ("id", "url") and not (path == owner and MODEL[owner]["kind"] == "resource")
            shadow = None if plain else draw(st.sampled_from([None, {"id": draw(PRINTABLE)}]))
            if repeats:
                found[key] = values
                if shadow is not None:
                    found["_" + key] = [shadow] + [None] * (len(values) - 1)
            elif shadow is not None and draw(st.booleans()):
                found["_" + key] = shadow  # the value absent: only its id
            else:
                found[key] = values[0]
        elif kind in ("complex-type", None) and depth > 0 and code not in ("Resource", "Extension"):
            node = (owner, spec["node"]) if "node" in spec else (code, code)
            value = draw(_element(*node, depth - 1))
            if code == "Extension" or not value:
                continue
            found[key] = [value] if repeats else value
    return found


@st.composite
def generated_resources(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(GENERATED_TYPES))
    resource = {"resourceType": kind, **draw(_element(kind, kind, 2))}
    if draw(st.booleans()):  # an extension on a primitive, JSON's _birthDate form
        resource["_language"] = {"extension": [{"url": "http://fhir.yiyang.cn/x", "valueString": draw(PRINTABLE)}]}
    return resource


@settings(max_examples=300, deadline=None)
@given(generated_resources())
def test_any_resource_of_the_model_survives_the_round_trip(resource: dict[str, Any]) -> None:
    assert parse_xml(to_xml(resource)) == resource


# -- attributes of XML's own and of XML Schema's, which are no FHIR content ------------------
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@settings(max_examples=200, deadline=None)
@given(generated_resources(), st.data())
def test_xsi_attributes_anywhere_and_xml_lang_on_the_root_are_no_content(
    resource: dict[str, Any], data: st.DataObject
) -> None:
    """A schema-driven writer puts xsi:schemaLocation (or xsi:type) where it likes, and
    xml:lang on the root: the resource read is the one written without them."""
    root = etree.fromstring(to_xml(resource))
    root.set(XML_LANG, data.draw(st.sampled_from(["zh-CN", "en", "zh"])))
    for element in root.iter(f"{{{NS}}}*"):
        name = data.draw(st.sampled_from([None, "schemaLocation", "type", "noNamespaceSchemaLocation"]))
        if name is not None:
            element.set(XSI + name, data.draw(PRINTABLE))
    assert parse_xml(etree.tostring(root)) == resource


def test_xml_lang_below_the_root_is_still_refused() -> None:
    """Only a resource's element takes it: on an element, it would say a language no JSON holds."""
    body = f'<Patient xmlns="{NS}"><active xml:lang="zh" value="true"/></Patient>'
    with pytest.raises(WireError) as refused:
        parse_xml(body.encode())
    assert refused.value.params["detail"].message_id == "xml.unexpected-attribute"


def test_an_entity_in_an_xml_lang_is_still_refused_with_its_doctype() -> None:
    body = f'<!DOCTYPE p [<!ENTITY x "zh">]><Patient xmlns="{NS}" xml:lang="&x;"><active value="true"/></Patient>'
    with pytest.raises(WireError) as refused:
        parse_xml(body.encode())
    assert refused.value.params["detail"].message_id == "xml.doctype"


# -- stored JSON of another shape than the model's (kept under YIYANG_VALIDATION=warn) --------
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | PRINTABLE,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["id", "family", "x"]), inner, max_size=2)
    ),
    max_leaves=6,
)


@st.composite
def misshapen_resources(draw: st.DrawFn) -> dict[str, Any]:
    """A generated resource with one element, or its ``_element``, of any JSON at all: a
    repeating element given once, a primitive as a list or of another JSON type, a null."""
    resource = draw(generated_resources())
    kind = resource["resourceType"]
    names = [n.removesuffix("[x]") for n in MODEL[kind]["order"][kind] if n not in ("id", "contained")]
    name = draw(st.sampled_from(names))
    key = draw(st.sampled_from([name, "_" + name])) if not name.endswith("]") else name
    specs = MODEL[kind]["nodes"][kind]
    spec = specs.get(name) or specs[name + "[x]"]
    if name + "[x]" in specs:
        code = draw(st.sampled_from([t["code"] for t in spec["types"]]))
        key = key + code[0].upper() + code[1:]
        for other in list(resource):  # one type of the choice at a time
            if other.lstrip("_").startswith(name) and other.lstrip("_") != key.lstrip("_"):
                del resource[other]
    resource[key] = draw(ANY_JSON)
    return resource


@settings(max_examples=400, deadline=None)
@given(misshapen_resources())
def test_json_xml_cannot_carry_is_refused_never_written_as_another_resource(resource: dict[str, Any]) -> None:
    """Under ``warn`` the archive keeps what the model refuses: ``name`` as one object,
    ``birthDate`` as a list.  Its XML dropped the name and wrote the list's Python repr as the
    date (``value="['1945-01-01']"``): an answer must be the stored resource, or a 406."""
    try:
        written = to_xml(resource)
    except WireError:
        return
    assert parse_xml(written) == _holding_something(resource)


def _holding_something(value: Any) -> Any:
    """The JSON as XML writes it: a null or an empty array, as an element's value, holds
    nothing, and XML has no form for it."""
    if isinstance(value, dict):
        return {key: _holding_something(item) for key, item in value.items() if item not in ([], None)}
    if isinstance(value, list):
        return [_holding_something(item) for item in value]
    return value


@pytest.mark.parametrize(
    "div",
    [
        "<div>x</div>",
        '<p xmlns="http://www.w3.org/1999/xhtml">x</p>',
        '<h:div xmlns:h="http://www.w3.org/1999/xhtml">x</h:div>',
    ],
)
def test_a_stored_narrative_no_fhir_xml_reader_takes_is_not_written(div: str) -> None:
    """Kept under ``warn`` (txt-1 refuses it), ``<div>x</div>`` was written as is inside the
    FHIR namespace: a div of FHIR's, which the reader refuses, not XHTML."""
    with pytest.raises(WireError) as refused:
        to_xml({"resourceType": "Basic", "text": {"status": "generated", "div": div}})
    assert refused.value.params["detail"].message_id == "xml.narrative-div"
