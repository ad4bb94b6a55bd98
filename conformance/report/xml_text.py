"""Text a report writes into XML (JUnit, an Excel workbook's sheets): the characters XML 1.0
cannot carry, even escaped, each shown as U+FFFD.

A participant's request may hold them (a resource id, a value an issue quotes), and a report
is read because something went wrong: it must still be written, and say where.
"""

from __future__ import annotations

import re

#: characters XML 1.0 cannot carry, even escaped (C0 controls but tab and line breaks, and the
#: two noncharacters of the basic plane)
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    """``text`` with what XML cannot carry replaced by U+FFFD."""
    return NOT_XML.sub("\ufffd", text)
