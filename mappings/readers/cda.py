"""CDA R2 documents (the national 健康档案 / 电子病历 sharing documents, WS/T 483 / WS/T 500),
read safely and flattened into fields a mapping spec can name.

Safety.  A CDA file comes from outside, so it is read as hostile: at most ``MAX_BYTES``, a
document carrying a DOCTYPE (and with it any entity declaration — the XXE and "billion
laughs" vectors) is refused before parsing, and the parser itself resolves no entities,
loads no DTD, opens no network connection and keeps libxml2's limits on depth and text size
(``huge_tree=False``).  After parsing, the document is checked once more for a DTD or an
entity reference, so a DOCTYPE hidden from the byte scan (UTF-16, say) is refused too.  A
refused file raises :class:`~mappings.readers.ReaderError`: the run reports it as a file
error, and nothing in it is expanded, mapped or written.

Field keys.  Each value in the document becomes one field whose key is an XPath-like path
from the document element (``ClinicalDocument`` itself is left out):

* steps are element names; elements in the CDA namespace ``urn:hl7-org:v3`` use their bare
  name, others their usual prefix (``sdtc:birthTime``) or ``{namespace}name``;
* an element with a ``root`` attribute (an ``II``: ``id``, ``templateId`` …) is told apart by
  it: ``id[@root='2.16.156.10011.1.3']``;
* a repeated step is numbered from its second occurrence (XPath-style, 1-based), so the
  plain step always means the first: ``addr``, ``addr[2]``; ``id[@root='…'][2]``;
* an attribute adds ``/@name`` (``@xsi:type`` for the schema-instance namespace); the
  ``root`` already in a step is not repeated as ``/@root``;
* an element's own text is the value of the element's key; text of mixed content is joined;
* the ``value`` of a time element (``TS_ELEMENTS``: ``birthTime``, ``effectiveTime``, ``low`` …)
  is an HL7 TS, given in ISO form as the HL7 v2 reader gives its TS fields
  (:func:`~mappings.readers.hl7v2.iso_timestamp`): ``19491231`` → ``1949-12-31``,
  ``19491231083000+0800`` → ``1949-12-31 08:30:00``, another UTC offset moved to Beijing time,
  so the shared ``date`` and ``datetime`` normalisers read a birth time written with its time of
  day as they read one written as a day.

So the 身份证号 of the patient in a WS/T 500 header is
``recordTarget/patientRole/patient/id[@root='2.16.156.10011.1.3']/@extension``, the name is
``recordTarget/patientRole/patient/name`` and the sex code
``recordTarget/patientRole/patient/administrativeGenderCode/@code``.  Values are text,
stripped of surrounding white space; empty values are left out.

The record's shape (what ``match:`` in a spec is checked against) is the document element's
name, each document-level template as ``templateId[@root='…']`` and the document type as
``code[@code='…']``.  One file is one record at location ``document``; its raw form is the
file's bytes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from lxml import etree

from mappings.readers import Limits, ReaderError, check_file_size
from mappings.readers.hl7v2 import iso_timestamp
from mappings.records import SourceRecord

CDA_NAMESPACE = "urn:hl7-org:v3"
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
#: the largest document read; health-record CDA documents are tens of kilobytes
MAX_BYTES = 8 * 1024 * 1024
#: a DOCTYPE or entity declaration in an ASCII-compatible encoding
_DECLARATION = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
#: an XML declaration naming GB 2312 or GBK: Chinese systems write those names over text that
#: holds characters GB 2312 lacks (喆, 镕, 堃 …, common in names), which libxml2's strict GB 2312
#: refused as a document "not well-formed" at its declaration; read as GB 18030, the superset of
#: both, as the HL7 v2 reader reads an MSH-18 of GB2312 or GBK
_GB_DECLARED = re.compile(
    rb"""\A(<\?xml\s[^>]*?\bencoding\s*=\s*["'])(?:GB2312|GB_2312-80|GBK|CP936|EUC-CN|X-GBK)(["'])""",
    re.IGNORECASE,
)
#: elements whose ``value`` is an HL7 TS (a point in time or an interval's bound)
TS_ELEMENTS = frozenset({"birthTime", "deceasedTime", "effectiveTime", "time", "low", "high", "center"})


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _name(qualified: str, prefixes: dict[str, str], own_prefix: str | None = None) -> str:
    """``{urn:hl7-org:v3}patient`` → ``patient``; other namespaces keep a prefix (the one the
    document element declares, else the element's own)."""
    if not qualified.startswith("{"):
        return qualified
    namespace, local = qualified[1:].split("}", 1)
    if namespace == CDA_NAMESPACE:
        return local
    if namespace == XSI_NAMESPACE:
        return f"xsi:{local}"
    prefix = prefixes.get(namespace) or own_prefix
    return f"{prefix}:{local}" if prefix else qualified


def _step(element: etree._Element, prefixes: dict[str, str]) -> str:
    step = _name(element.tag, prefixes, element.prefix)
    root = element.get("root")
    return f"{step}[@root='{root}']" if root is not None else step


def _own_text(element: etree._Element) -> str | None:
    if len(element) == 0:
        text = (element.text or "").strip()
    elif (element.text or "").strip() or any((child.tail or "").strip() for child in element):
        text = " ".join(part.strip() for part in element.itertext() if part.strip())
    else:
        return None
    return text or None


def flatten(root: etree._Element) -> dict[str, str]:
    """Every attribute and text of the document under an XPath-like key (see module doc)."""
    prefixes = {uri: prefix for prefix, uri in root.nsmap.items() if prefix}
    fields: dict[str, str] = {}

    def attributes(element: etree._Element, path: str, in_step: str | None = None) -> None:
        timed = etree.QName(element).localname in TS_ELEMENTS
        for attribute, value in element.attrib.items():
            if attribute != in_step and value.strip():
                key = f"@{_name(attribute, prefixes)}"
                text = iso_timestamp(value.strip()) if timed and attribute == "value" else value.strip()
                fields[f"{path}/{key}" if path else key] = text

    def walk(element: etree._Element, prefix: str) -> None:
        seen: Counter[str] = Counter()
        for child in element:
            if not isinstance(child.tag, str):  # comments and PIs are removed; entities refused
                continue
            step = _step(child, prefixes)
            seen[step] += 1
            if seen[step] > 1:
                step = f"{step}[{seen[step]}]"
            path = f"{prefix}/{step}" if prefix else step
            attributes(child, path, "root" if child.get("root") is not None else None)
            text = _own_text(child)
            if text is not None:
                fields[path] = text
            walk(child, path)

    attributes(root, "")
    walk(root, "")
    return fields


def shape_of(root: etree._Element) -> frozenset[str]:
    """Document element name, document-level templateIds and document type code."""
    shape = {etree.QName(root).localname}
    for child in root:
        if not isinstance(child.tag, str) or etree.QName(child).namespace != CDA_NAMESPACE:
            continue
        local = etree.QName(child).localname
        if local == "templateId" and child.get("root"):
            shape.add(f"templateId[@root='{child.get('root')}']")
        elif local == "code" and child.get("code"):
            shape.add(f"code[@code='{child.get('code')}']")
    return frozenset(shape)


def parse_document(data: bytes, name: str) -> etree._Element:
    """The document element of a CDA document, or ReaderError for anything unsafe or not CDA."""
    if _DECLARATION.search(data):
        raise ReaderError("reader.xml-declaration", file=name)
    try:
        root = etree.fromstring(_GB_DECLARED.sub(rb"\1GB18030\2", data, count=1), _parser())
    except etree.XMLSyntaxError as exc:
        raise ReaderError("reader.xml-not-well-formed", file=name, error=str(exc.msg)) from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise ReaderError("reader.xml-doctype", file=name)
    if any(True for _ in root.iter(etree.Entity)):
        raise ReaderError("reader.xml-entity", file=name)
    if root.tag != f"{{{CDA_NAMESPACE}}}ClinicalDocument":
        raise ReaderError("reader.not-cda", file=name)
    return root


def read_cda(path: Path, source: str, limits: Limits | None = None) -> Iterator[SourceRecord]:
    """The document as one record; at most ``MAX_BYTES``, or ``limits.document_bytes`` when the
    caller gives limits (whichever is smaller: a CDA is parsed whole, tree and all)."""
    limit = MAX_BYTES if limits is None else min(MAX_BYTES, limits.document_bytes)
    check_file_size(path, limit)
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew while we looked
        raise ReaderError("reader.over-limit", file=path.name, limit=limit)
    root = parse_document(data, path.name)
    yield SourceRecord(source, path.name, "document", flatten(root), data, "XPath", shape_of(root))
