"""libxml2's syntax errors worded by their code from the catalog (``xml.*`` in
``conformance/messages.json``): its own message is English, and went whole into Chinese
sentences.  Shared by the narrative check (txt-1) and the gateway's XML reader."""

from __future__ import annotations

import re

from lxml import etree

from conformance.issues import Phrase, phrase

#: the catalog's wording of libxml2's commoner syntax errors, by their code
_SYNTAX_REASONS = {
    etree.ErrorTypes.ERR_DOCUMENT_EMPTY: "xml.expecting-start-tag",
    etree.ErrorTypes.ERR_DOCUMENT_END: "xml.extra-content",
    etree.ErrorTypes.ERR_TAG_NOT_FINISHED: "xml.premature-end",
    etree.ErrorTypes.ERR_TAG_NAME_MISMATCH: "xml.tag-mismatch",
    etree.ErrorTypes.ERR_GT_REQUIRED: "xml.start-tag-unfinished",
    etree.ErrorTypes.ERR_ATTRIBUTE_NOT_STARTED: "xml.attribute-unquoted",
    etree.ErrorTypes.ERR_ATTRIBUTE_WITHOUT_VALUE: "xml.attribute-unquoted",
    etree.ErrorTypes.ERR_LT_IN_ATTRIBUTE: "xml.lt-in-attribute",
    etree.ErrorTypes.ERR_ATTRIBUTE_REDEFINED: "xml.attribute-repeated",
    etree.ErrorTypes.ERR_NAME_REQUIRED: "xml.bad-name",
    etree.ErrorTypes.ERR_UNDECLARED_ENTITY: "xml.bad-entity",
    etree.ErrorTypes.ERR_ENTITYREF_SEMICOL_MISSING: "xml.bad-entity",
    etree.ErrorTypes.NS_ERR_UNDEFINED_NAMESPACE: "xml.undeclared-prefix",
    etree.ErrorTypes.ERR_INVALID_CHAR: "xml.invalid-character",
    etree.ErrorTypes.ERR_INVALID_ENCODING: "xml.invalid-encoding",
    etree.ErrorTypes.ERR_UNSUPPORTED_ENCODING: "xml.unsupported-encoding",
    etree.ErrorTypes.ERR_COMMENT_NOT_FINISHED: "xml.section-unfinished",
    etree.ErrorTypes.ERR_CDATA_NOT_FINISHED: "xml.section-unfinished",
}
#: how much of libxml2's own message a rarer error keeps
DETAIL_LENGTH = 120
#: the position lxml appends to libxml2's message (the catalog's sentence says it)
_POSITION = re.compile(r", line \d+, column \d+$")


def syntax_problem(error: etree.XMLSyntaxError) -> Phrase:
    """Where a document stops being XML and why, in the reader's language; of a reason the
    catalog does not name (a rarer libxml2 error), libxml2's own words as a detail."""
    line, column = error.position
    known = _SYNTAX_REASONS.get(error.code)
    reason = phrase(known) if known else phrase("xml.other", detail=_POSITION.sub("", str(error.msg))[:DETAIL_LENGTH])
    return phrase("xml.syntax", reason=reason, line=line, column=column)
