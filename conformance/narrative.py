"""Narrative XHTML rules txt-1 and txt-2, checked natively (fhirpathpy has no htmlChecks()).

The div is parsed with a hardened lxml parser: no DTDs, no entity expansion, no network.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from conformance.issues import IssueList

XHTML = "{http://www.w3.org/1999/xhtml}"
# FHIR narrative is a safe subset of XHTML: no active content, no forms, no event handlers.
FORBIDDEN = frozenset(
    {
        "script",
        "style",
        "form",
        "input",
        "button",
        "iframe",
        "object",
        "embed",
        "applet",
        "base",
        "link",
        "meta",
        "head",
        "body",
        "html",
        "title",
        "frame",
        "frameset",
    }
)
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
        issues.error("narrative.invalid-xhtml", where, detail=str(exc)[:120])
        return
    if root.tag != f"{XHTML}div":
        issues.error("narrative.invalid-xhtml", where, detail='root must be <div xmlns="http://www.w3.org/1999/xhtml">')
        return
    for element in root.iter():
        if not isinstance(element.tag, str):
            issues.error(
                "narrative.invalid-xhtml",
                where,
                detail="comments, processing instructions and entities are not allowed",
            )
            return
        local = etree.QName(element).localname
        if (
            not element.tag.startswith(XHTML)
            or local in FORBIDDEN
            or any(a.lower().startswith("on") for a in element.attrib)
        ):
            issues.error("narrative.invalid-xhtml", where, detail=f"<{local}> is not allowed in narrative (txt-1)")
            return
    if not "".join(root.itertext()).strip() and root.find(f".//{XHTML}img") is None:
        issues.error("narrative.empty", where)
