"""FHIR R4 XML to and from the JSON form every other layer works with, driven by the R4 base
model (``profiles/base/r4-types.json``).

Why not the XML of fhir.resources: its models are R4B's.  The 19 R4 resources R4B removed
(MedicinalProduct …) and those it changed (Evidence) could not be written as XML at all, it
coerced invalid primitives that JSON refuses (``<active value="no"/>`` became false), dropped
element ids and wrote them as child elements, rewrote narratives as numeric character
references, and parsed a few megabytes in quadratic time.  The R4 rules themselves are few
(R4 xml.html), and the model already says, for every element, its type, its cardinality and —
kept for this purpose — its place in the definition's order:

- a primitive is an element with a ``value`` attribute; its id is an ``id`` attribute and its
  extensions are child elements (JSON's ``_element``); a repeating primitive aligns the two;
- a complex element's ``id``, and an extension's ``url``, are attributes;
- a resource is an element of its type's name; where an element holds a resource
  (``contained``, ``Bundle.entry.resource``), it wraps that element;
- a choice element is named by its stem and its type (``valueQuantity``), as in JSON;
- the narrative ``div`` is XHTML, embedded as is (in JSON, that XHTML as a string);
- elements follow the definition's order on output; input in another order is accepted.

Everything the JSON reader refuses, this one refuses too: an unknown element or attribute,
text where FHIR has none, a boolean other than ``true``/``false``, an integer that is not one,
an element repeated where the model allows one.  Two kinds of attribute are XML's, not FHIR's,
and are left out as comments are: the XML Schema instance's (``xsi:*``), wherever they are,
and ``xml:lang`` on a resource's element.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from lxml import etree

from conformance.xml_syntax import syntax_problem
from gateway.decimals import keeps_value
from gateway.messages import Worded
from profiles.registry import r4_base_types

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
#: ``xml:lang``, XML's own attribute (its namespace needs no declaration)
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_F = f"{{{FHIR_NS}}}"
#: the numeric primitives, read from their lexical form (the base model's regexes) into numbers
_NUMBERS = ("integer", "positiveInt", "unsignedInt", "decimal")


class XmlError(Worded, ValueError):
    """The document is no FHIR XML this model can read: ``where`` (the FHIRPath of the element
    at fault, empty for the document itself) and why, a catalogued message (``xml.*`` in
    ``gateway/messages.json``, libxml2's syntax errors in ``conformance/messages.json``)
    worded in the reader's language."""

    def __init__(self, where: str, message_id: str, **params: Any) -> None:
        super().__init__(message_id, where=where or Worded("xml.the-document"), **params)
        self.where = where


class _Slot:
    """One element of a node: its JSON name, type codes, repetition and child node."""

    __slots__ = ("codes", "is_choice", "name", "node", "repeats")

    def __init__(self, name: str, spec: Mapping[str, Any], owner: str) -> None:
        self.name = name.removesuffix("[x]")
        #: named by its type in JSON and XML alike (``valueQuantity``), even with one type
        self.is_choice = name.endswith("[x]")
        self.codes = [t["code"] for t in spec.get("types", [])]
        self.repeats = spec.get("max") != "1"
        #: a backbone element's own node (``Patient.contact``), within the type ``owner``
        self.node = (owner, spec["node"]) if "node" in spec else None


class FhirXml:
    """Reads and writes FHIR XML with one base model; build once (``fhir_xml()``)."""

    def __init__(self, types: Mapping[str, Any]) -> None:
        self.types = types
        self.resources = frozenset(n for n, t in types.items() if t["kind"] == "resource" and not t["abstract"])
        self._lexical = {code: re.compile(types[code]["regex"]) for code in _NUMBERS}
        self._nodes: dict[tuple[str, str], tuple[list[_Slot], dict[str, tuple[_Slot, str]]]] = {}

    # -- the model ---------------------------------------------------------------------------
    def _node(self, owner: str, path: str) -> tuple[list[_Slot], dict[str, tuple[_Slot, str]]]:
        """A node's slots in definition order, and every name an element of it may have
        (``valueQuantity`` for ``value[x]``) → (slot, type code)."""
        key = (owner, path)
        if key not in self._nodes:
            definition = self.types[owner]
            specs = definition["nodes"][path]
            slots = [_Slot(name, specs[name], owner) for name in definition["order"][path]]
            names: dict[str, tuple[_Slot, str]] = {}
            for slot in slots:
                if slot.is_choice:
                    names.update((slot.name + code[0].upper() + code[1:], (slot, code)) for code in slot.codes)
                else:
                    names[slot.name] = (slot, slot.codes[0] if slot.codes else "Element")
            self._nodes[key] = (slots, names)
        return self._nodes[key]

    def _child_node(self, slot: _Slot, code: str) -> tuple[str, str]:
        return slot.node or (code, code)

    def _kind(self, code: str) -> str:
        if code == "xhtml":
            return "xhtml"
        if code in ("Resource", "DomainResource") or code in self.resources:
            return "resource"
        return "primitive" if self.types[code]["kind"] == "primitive-type" else "complex"

    # -- JSON → XML --------------------------------------------------------------------------
    def dumps(self, resource: Mapping[str, Any]) -> bytes:
        root = self._resource_element(resource, "")
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def _resource_element(self, resource: Mapping[str, Any], where: str) -> etree._Element:
        kind = resource.get("resourceType")
        if kind not in self.resources:
            raise XmlError(where, "xml.not-a-resource-type", kind=kind)
        element = etree.Element(_F + kind, nsmap={None: FHIR_NS})
        self._fill(element, resource, (kind, kind), kind, is_resource=True)
        return element

    def _fill(
        self, element: etree._Element, value: Mapping[str, Any], node: tuple[str, str], path: str, is_resource: bool
    ) -> None:
        slots, _ = self._node(*node)
        known = {"resourceType"} if is_resource else set()
        for slot in slots:
            if not is_resource and slot.name == "id" and "id" in value:
                element.set("id", value["id"])
                known.add("id")
                continue
            if node == ("Extension", "Extension") and slot.name == "url" and "url" in value:
                element.set("url", value["url"])
                known.add("url")
                continue
            for name, code in self._present(slot, value):
                known.update((name, "_" + name))
                item, shadow = value.get(name), value.get("_" + name)
                if item is not None or shadow is not None:  # a JSON null is nothing, as absent
                    self._write(element, slot, code, name, item, shadow, f"{path}.{name}")
        unknown = [key for key in value if key not in known]
        if unknown:
            raise XmlError(f"{path}.{unknown[0]}", "xml.not-an-element", type=node[1])

    def _present(self, slot: _Slot, value: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        if not slot.is_choice:
            if slot.name in value or "_" + slot.name in value:
                yield slot.name, slot.codes[0] if slot.codes else "Element"
            return
        for code in slot.codes:
            name = slot.name + code[0].upper() + code[1:]
            if name in value or "_" + name in value:
                yield name, code

    def _write(
        self, parent: etree._Element, slot: _Slot, code: str, name: str, value: Any, shadow: Any, path: str
    ) -> None:
        kind = self._kind(code)
        if kind != "primitive" and shadow is not None:  # only a primitive has an _element
            raise XmlError(path, "xml.wrong-shape")
        for index, (item, extra) in enumerate(_aligned(value, shadow, slot.repeats, path)):
            where = f"{path}[{index}]" if slot.repeats else path
            if not _carried(kind, code, item, extra):
                raise XmlError(where, "xml.wrong-shape")
            if kind == "xhtml":
                parent.append(_xhtml_element(item, where))
                continue
            child = etree.SubElement(parent, _F + name)
            if kind == "primitive":
                if item is not None:
                    child.set("value", _primitive_text(item))
                if extra is not None:
                    self._fill(child, extra, ("Element", "Element"), where, is_resource=False)
                    if not len(child) and set(child.attrib) <= {"value"}:  # an _element of nothing
                        raise XmlError(where, "xml.wrong-shape")
            elif kind == "resource":
                child.append(self._resource_element(item, where))
            else:
                self._fill(child, item, self._child_node(slot, code), where, is_resource=False)

    # -- XML → JSON --------------------------------------------------------------------------
    def loads(self, root: etree._Element) -> dict[str, Any]:
        return self._read_resource(root, "")

    def _read_resource(self, element: etree._Element, where: str) -> dict[str, Any]:
        qname = etree.QName(element)
        if qname.namespace != FHIR_NS:
            raise XmlError(where, "xml.wrong-namespace", name=qname.localname, namespace=FHIR_NS)
        kind = qname.localname
        if kind not in self.resources:
            raise XmlError(where, "xml.not-a-resource-type", kind=kind)
        foreign = list(_content_attributes(element, resource=True))
        if foreign:
            raise XmlError(where or kind, "xml.resource-attribute", attribute=foreign[0])
        resource: dict[str, Any] = {"resourceType": kind}
        # a resource held by another (contained, Bundle.entry.resource) is located from the
        # document's root, as the JSON validator locates it: "Patient.active" named no entry
        # of a transaction of hundreds
        self._read_children(element, resource, (kind, kind), where or kind)
        return resource

    def _read_children(self, element: etree._Element, into: dict[str, Any], node: tuple[str, str], path: str) -> None:
        _, names = self._node(*node)
        is_resource = node[0] == node[1] and node[0] in self.resources
        attributes_only = () if is_resource else ("id", "url") if node == ("Extension", "Extension") else ("id",)
        shadows: dict[str, list[Any]] = {}
        _no_text(element.text, path)
        for child in element:
            _no_text(child.tail, path)
            if not isinstance(child.tag, str):
                continue  # a comment or processing instruction
            qname = etree.QName(child)
            name = qname.localname
            found = names.get(name)
            if found is None:
                raise XmlError(f"{path}.{name}", "xml.not-an-element", type=node[1])
            slot, code = found
            where = f"{path}.{name}"
            if slot.repeats:  # indexed as JSON's issues are: name.given[1], not every given
                where += f"[{len(into.get(name, ()))}]"
            if qname.namespace != (XHTML_NS if code == "xhtml" else FHIR_NS):  # located at the element itself
                raise XmlError(
                    where, "xml.wrong-namespace", name=name, namespace=XHTML_NS if code == "xhtml" else FHIR_NS
                )
            if name in attributes_only:
                raise XmlError(where, "xml.attribute-as-element", name=name)
            kind = self._kind(code)
            if kind == "primitive":
                item, extra = self._read_primitive(child, code, where)
            elif kind == "xhtml":
                item, extra = _xhtml_text(child, where), None
            elif kind == "resource":
                item, extra = self._read_contained(child, where), None
            else:
                item, extra = self._read_complex(child, self._child_node(slot, code), where), None
            if slot.is_choice and any(
                other in into or "_" + other in into for other in names if names[other][0] is slot and other != name
            ):
                raise XmlError(where, "xml.two-types", element=f"{node[1]}.{slot.name}")
            if slot.repeats:
                values = into.setdefault(name, [])
                values.append(item)
                shadows.setdefault(name, []).append(extra)
            else:
                if name in into or "_" + name in into:
                    raise XmlError(where, "xml.repeated", element=f"{node[1]}.{slot.name}")
                if item is not None:
                    into[name] = item
                if extra is not None:
                    into["_" + name] = extra
        for name, extras in shadows.items():
            if any(extra is not None for extra in extras):
                into["_" + name] = extras
            if all(item is None for item in into[name]):
                del into[name]  # the values are all absent: only their extensions are there

    def _read_primitive(self, element: etree._Element, code: str, where: str) -> tuple[Any, dict[str, Any] | None]:
        attributes = _content_attributes(element)
        text = attributes.pop("value", None)
        extra: dict[str, Any] = {}
        if "id" in attributes:
            extra["id"] = attributes.pop("id")
        if attributes:
            raise XmlError(where, "xml.unexpected-attribute", attribute=next(iter(attributes)))
        self._read_children(element, extra, ("Element", "Element"), where)
        if text is None and not extra:  # JSON has no such thing: null is refused there too
            raise XmlError(where, "xml.empty-element")
        value = None if text is None else self._primitive_value(text, code, where)
        return value, (extra or None)

    def _primitive_value(self, text: str, code: str, where: str) -> Any:
        """The JSON value of a primitive's ``value`` attribute: booleans and numbers as JSON has
        them, checked as the JSON reader and the validator would."""
        if code == "boolean":
            if text not in ("true", "false"):
                raise XmlError(where, "xml.not-boolean", value=text)
            return text == "true"
        if code not in self._lexical:
            return text
        if not self._lexical[code].fullmatch(text):
            raise XmlError(where, "xml.not-of-type", value=text[:40], type=code)
        if code != "decimal":
            if len(text) > 11 or not -(2**31) <= int(text) < 2**31:  # R4 integers are 32-bit
                raise XmlError(where, "xml.beyond-32-bit", value=text[:40], type=code)
            return int(text)
        if not math.isfinite(value := float(text)):
            raise XmlError(where, "xml.decimal-unholdable", value=text[:40])
        if any(c in text for c in ".eE"):
            if not keeps_value(text, value):
                raise XmlError(where, "xml.decimal-too-precise", value=text[:40])
            return value
        if not -(2**63) <= (whole := int(text)) < 2**64:  # what the stores' JSON encoder writes
            raise XmlError(where, "xml.decimal-beyond-64-bit", value=text[:40])
        return whole

    def _read_complex(self, element: etree._Element, node: tuple[str, str], where: str) -> dict[str, Any]:
        attributes = _content_attributes(element)
        found: dict[str, Any] = {}
        if "id" in attributes:
            found["id"] = attributes.pop("id")
        if node == ("Extension", "Extension") and "url" in attributes:
            found["url"] = attributes.pop("url")
        if attributes:
            raise XmlError(where, "xml.unexpected-attribute", attribute=next(iter(attributes)))
        self._read_children(element, found, node, where)
        return found

    def _read_contained(self, element: etree._Element, where: str) -> dict[str, Any]:
        inner = [child for child in element if isinstance(child.tag, str)]
        _no_text(element.text, where)
        if len(inner) != 1 or _content_attributes(element):
            raise XmlError(where, "xml.one-resource")
        _no_text(inner[0].tail, where)
        return self._read_resource(inner[0], where)


def _content_attributes(element: etree._Element, resource: bool = False) -> dict[str, str]:
    """The attributes of a FHIR element that may be content, which the caller reads or refuses:
    not the XML Schema instance's (``xsi:schemaLocation``, ``xsi:type`` …), hints to a schema
    validator wherever a schema-driven writer put them, nor, on a resource's element,
    ``xml:lang``, the XML document's language, which FHIR says in ``Resource.language``
    instead; JSON can carry neither, so both are left out rather than refused."""
    return {
        name: value
        for name, value in element.attrib.items()
        if not name.startswith(f"{{{XSI_NS}}}") and not (resource and name == XML_LANG)
    }


def _aligned(value: Any, shadow: Any, repeats: bool, path: str) -> list[tuple[Any, Any]]:
    """(value, its ``_element`` object) per item: a repeating primitive's two arrays align.
    An element given as one value where the model repeats it, or as an array where it does
    not, is refused (``xml.wrong-shape``): the archive keeps such JSON under ``warn``, and
    its XML dropped a ``name`` given as one object and wrote a ``birthDate`` given as an
    array as the array's Python text."""
    if not repeats:
        if isinstance(value, list) or isinstance(shadow, list):
            raise XmlError(path, "xml.wrong-shape")
        return [(value, shadow)]
    if not all(isinstance(given, list) for given in (value, shadow) if given is not None):
        raise XmlError(path, "xml.wrong-shape")
    values = value or []
    shadows = shadow or []
    return [
        (values[i] if i < len(values) else None, shadows[i] if i < len(shadows) else None)
        for i in range(max(len(values), len(shadows)))
    ]


#: the JSON types of the primitives whose JSON value is no string (R4 json.html)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "positiveInt": (int,),
    "unsignedInt": (int,),
    "decimal": (int, float),
}


def _carried(kind: str, code: str, item: Any, extra: Any) -> bool:
    """Whether XML carries one item of an element as JSON holds it, the reader giving it back:
    a primitive's value of its JSON type (a boolean, not the text "true"), or absent beside its
    ``_element`` object; any other element an object (a resource, a datatype)."""
    if kind != "primitive":
        return kind == "xhtml" or isinstance(item, Mapping)
    if extra is not None and not isinstance(extra, Mapping):
        return False
    if item is None:
        return extra is not None
    types = _JSON_TYPES.get(code, (str,))
    return isinstance(item, types) and (bool in types or not isinstance(item, bool))


#: characters XML 1.0 cannot hold (control characters, lone surrogates, U+FFFE/U+FFFF)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _primitive_text(value: Any) -> str:
    """A JSON primitive as an XML attribute value.  Text XML cannot hold — which the JSON
    reader refuses, but an error message may echo from a request's URL — becomes U+FFFD,
    so the answer can still be written."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return _NOT_XML.sub("\ufffd", text) if _NOT_XML.search(text) else text


def _no_text(text: str | None, where: str) -> None:
    if text is not None and text.strip():
        raise XmlError(where, "xml.stray-text", text=text.strip()[:40])


def _xhtml_text(element: etree._Element, where: str) -> str:
    """The narrative as JSON has it: the div alone in the XHTML namespace, without the
    declarations it inherited from the document (the FHIR namespace, xsi), and without the
    comments and processing instructions in it.  Those are the document's markup, as
    everywhere else in it, which the reader passes over: kept in the div, they made the
    narrative the validator refuses (txt-1): the same resource JSON took was refused as XML
    for a comment that is no part of it."""
    if etree.QName(element).namespace != XHTML_NS or element.prefix is not None:
        raise XmlError(where, "xml.narrative-div", namespace=XHTML_NS)
    alone = copy.deepcopy(element)
    alone.tail = None
    etree.strip_tags(alone, etree.Comment, etree.ProcessingInstruction)  # their text around them kept
    etree.cleanup_namespaces(alone, top_nsmap={None: XHTML_NS})
    return etree.tostring(alone, encoding="unicode")


def _xhtml_element(text: Any, where: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    if not isinstance(text, str):  # a number or an object where the div's text belongs
        raise XmlError(where, "xml.narrative-malformed", reason=Worded("xml.narrative-not-text"))
    try:
        div = etree.fromstring(text.encode(), parser=parser)
    except etree.XMLSyntaxError as exc:
        raise XmlError(where, "xml.narrative-malformed", reason=syntax_problem(exc)) from exc
    # as the reader demands (:func:`_xhtml_text`): kept under warn, ``<div>x</div>`` was
    # written inside the FHIR namespace, a div of FHIR's rather than XHTML
    if div.tag != f"{{{XHTML_NS}}}div" or div.prefix is not None:
        raise XmlError(where, "xml.narrative-div", namespace=XHTML_NS)
    return div


@cache
def fhir_xml() -> FhirXml:
    """The reader and writer over the R4 base model, built once per process."""
    return FhirXml(r4_base_types())
