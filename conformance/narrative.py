"""Narrative XHTML rules txt-1 and txt-2, checked natively (fhirpathpy has no htmlChecks()).

The div is parsed with a hardened lxml parser: no DTDs, no entity expansion, no network.
txt-1 ("only the basic html formatting elements and attributes", narrative.html#xhtml) is the
whitelist in ``narrative-xhtml.json``, the reference validator's element and attribute lists
kept as data: every element and attribute name in the div is checked against it, each name
outside it an error (``xml:space`` only information), reported once per element and attribute
name.  That covers active content too: script, forms, base, link, event attributes and the
xlink namespace are all outside the list.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lxml import etree

from conformance.issues import IssueList, phrase
from conformance.xml_syntax import syntax_problem

XHTML = "{http://www.w3.org/1999/xhtml}"
_XML = "{http://www.w3.org/XML/1998/namespace}"


def _whitelist() -> tuple[frozenset[str], frozenset[str], dict[str, frozenset[str]], frozenset[str]]:
    data = json.loads(Path(__file__).with_name("narrative-xhtml.json").read_text(encoding="utf-8"))
    per_element = {name: frozenset(names) for name, names in data["elementAttributes"].items()}
    return frozenset(data["elements"]), frozenset(data["attributes"]), per_element, frozenset(data["hintAttributes"])


ELEMENTS, ATTRIBUTES, ELEMENT_ATTRIBUTES, HINT_ATTRIBUTES = _whitelist()
#: how deep libxml2 nests elements without XML_PARSE_HUGE, which the parser leaves off (a
#: hostile div of a million levels would otherwise be walked)
MAX_DEPTH = 256
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


def check_narrative(node: dict[str, Any], path: str, issues: IssueList) -> None:
    div = node.get("div")
    if not isinstance(div, str):
        return
    where = f"{path}.div"
    try:
        root = etree.fromstring(div.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        if exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:  # libxml2's words are English alone
            line, column = exc.position
            issues.error("narrative.too-deep", where, limit=MAX_DEPTH, line=line, column=column)
        else:
            issues.error("narrative.invalid-xhtml", where, detail=syntax_problem(exc))
        return
    if root.tag != f"{XHTML}div" or root.prefix is not None:
        # a prefixed <x:div xmlns:x=…> is XHTML too, but FHIR XML carries the div in the default
        # namespace: stored so, the resource could not be written as XML that reads back
        issues.error("narrative.invalid-xhtml", where, detail=phrase("narrative.root-not-div"))
        return
    if _outside_root(div, root):
        # FHIR XML carries the div as an element of the resource: an XML declaration, a DOCTYPE
        # (whose SYSTEM id a reader may fetch) or a comment beside the div has nowhere to go
        issues.error("narrative.invalid-xhtml", where, detail=phrase("narrative.outside-root"))
        return
    reported: set[tuple[str, ...]] = set()
    for element in root.iter():
        if not isinstance(element.tag, str):
            issues.error("narrative.invalid-xhtml", where, detail=phrase("narrative.markup-inside"))
            return
        if not element.tag.startswith(XHTML):
            key = ("namespace", element.tag)
            if key not in reported:
                reported.add(key)
                detail = phrase("narrative.foreign-element", element=element.tag, location=_location(element))
                issues.error("narrative.invalid-xhtml", where, detail=detail)
            continue
        _check_names(element, where, reported, issues)
    if not "".join(root.itertext()).strip() and root.find(f".//{XHTML}img") is None:
        issues.error("narrative.empty", where)


def _outside_root(div: str, root: Any) -> bool:
    """Whether the parsed text holds anything but its root element (and whitespace)."""
    return (
        div.lstrip().startswith(("<?", "<!"))
        or bool(root.getroottree().docinfo.doctype)
        or next(root.itersiblings(), None) is not None
        or next(root.itersiblings(preceding=True), None) is not None
    )


def _check_names(element: Any, where: str, reported: set[tuple[str, ...]], issues: IssueList) -> None:
    name = element.tag[len(XHTML) :]
    if name not in ELEMENTS and ("element", name) not in reported:
        reported.add(("element", name))
        issues.error("narrative.element-not-allowed", where, element=name, location=_location(element))
    allowed = ELEMENT_ATTRIBUTES.get(name, frozenset())
    for qualified, value in element.attrib.items():
        attribute = _attribute_name(element, qualified)
        if _SCRIPT_URL.match(value):  # narrative.html: no scripts, and a script URL is one
            issues.error("narrative.script-url", where, attribute=attribute, element=name, location=_location(element))
        if attribute in ATTRIBUTES or attribute in allowed or ("attribute", name, attribute) in reported:
            continue
        reported.add(("attribute", name, attribute))
        if attribute in HINT_ATTRIBUTES:
            issues.add("information", "narrative.attribute-discouraged", where, attribute=attribute, element=name)
        else:
            issues.error(
                "narrative.attribute-not-allowed", where, attribute=attribute, element=name, location=_location(element)
            )


#: a URL that runs a script when followed (browsers ignore the spaces and controls before it)
_SCRIPT_URL = re.compile(r"[\x00-\x20]*(?:javascript|vbscript|data\s*:\s*text/html)", re.IGNORECASE)


def _attribute_name(element: Any, qualified: str) -> str:
    """The name as written: ``xml:lang``, ``xlink:href``, ``onclick``."""
    if not qualified.startswith("{"):
        return qualified
    namespace, local = qualified[1:].split("}", 1)
    if namespace == _XML[1:-1]:
        return f"xml:{local}"
    prefix = next((p for p, uri in element.nsmap.items() if uri == namespace and p), namespace)
    return f"{prefix}:{local}"


def _location(element: Any) -> str:
    """Where in the div, as the reference names it: ``div/p/font``."""
    steps = [element, *element.iterancestors()]
    return "/".join(etree.QName(step).localname for step in reversed(steps))
