"""Code translation with FHIR ConceptMaps kept as data in ``mappings/conceptmaps/``.

Legacy codes arrive in many spellings (男 / 男性 / 1 / M); a ConceptMap lists them all as
source codes of one group, so a new spelling is a data change.  Lookups fold full-width
characters and surrounding space first, as every other field is.

A source code whose targets are all ``unmatched`` has no code to translate to.  When its element
gives the source's own ``display`` (a form's 其他 or 职业病, no category of the target system), the
choice is still known: as a CodeableConcept it is that text alone, never an invented code.  Without
a display, and as a bare code or Coding, it is refused, but not as a code the map does not list
(``mapping.unknown-code``, which sends staff looking for a typo): ``mapping.unmatched-code`` says
the code is known and has no target here, and why, in the words of the target's ``comment``
(its Chinese before `` / ``, its English after).  A code the map does not list at all is refused
naming the spellings it does accept (all of them, or the first ``KNOWN_SHOWN`` and how many there
are), so the message says what a correct value looks like.
"""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

from mappings.normalise import MappingError

FOLDER = Path(__file__).parent / "conceptmaps"
MESSAGES = Path(__file__).parent / "messages.json"
#: how many accepted spellings a refusal of an unknown code names
KNOWN_SHOWN = 16


@cache
def message_catalog() -> dict[str, dict[str, str]]:
    """Wording of mapping problems and of what readers refuse (zh-CN and en), keyed by
    message id; read once, since readers word a message per refused record."""
    entries = json.loads(MESSAGES.read_text(encoding="utf-8"))
    entries.pop("_about")
    return entries


def _fold(code: Any) -> str:
    if isinstance(code, float) and code.is_integer():
        code = int(code)
    return unicodedata.normalize("NFKC", str(code)).strip()


def _reason(comment: str) -> Any:
    """Why a code has no target, from its ConceptMap comment: the package writes comments as
    "中文 / English", so each language gets its own half (the whole comment when it is not
    bilingual); without a comment, that the map gives no reason."""
    from mappings.records import Message  # records words messages from this module's catalog

    if not comment:
        return Message("mapping.unmatched-no-reason")
    zh, sep, en = comment.partition(" / ")
    return Message("mapping.conceptmap-comment", {"zh": zh.strip(), "en": en.strip() if sep else comment})


class UnmatchedCode(MappingError):
    """``mapping.unmatched-code``: a code the map knows and deliberately gives no target, which
    a leaf may choose to leave out (``unmatched: omit``) where an unknown code stays an error."""


class ConceptMaps:
    def __init__(self, resources: list[dict[str, Any]], canonical_base: str) -> None:
        self._tables: dict[str, dict[str, dict[str, Any]]] = {}
        #: per map: source codes known to have no target, with the text the source gives them
        self._texts: dict[str, dict[str, str]] = {}
        #: per map: source codes listed only as ``unmatched``, with the comment saying why
        self._unmatched: dict[str, dict[str, str]] = {}
        #: per map: every source code it accepts, in the map's order
        self._known: dict[str, list[str]] = {}
        self.resources = {}
        for resource in resources:
            resource = json.loads(json.dumps(resource).replace("{base}", canonical_base))
            table: dict[str, dict[str, Any]] = {}
            texts: dict[str, str] = {}
            unmatched: dict[str, str] = {}
            known: list[str] = []
            for group in resource.get("group", []):
                for element in group.get("element", []):
                    targets = [
                        t for t in element.get("target", []) if t.get("equivalence", "equivalent") != "unmatched"
                    ]
                    if not targets and element.get("display"):
                        texts[_fold(element["code"])] = element["display"]
                    if not targets and element.get("target"):
                        comments = [t["comment"] for t in element.get("target", []) if t.get("comment")]
                        unmatched[_fold(element["code"])] = comments[0] if comments else ""
                    if (targets or element.get("display")) and _fold(element["code"]) not in known:
                        known.append(_fold(element["code"]))
                    if targets:
                        target = targets[0]
                        table[_fold(element["code"])] = {
                            "system": group.get("target"),
                            "code": target["code"],
                            "display": target.get("display"),
                        }
            self._tables[resource["id"]] = table
            self._texts[resource["id"]] = texts
            self._unmatched[resource["id"]] = unmatched
            self._known[resource["id"]] = known
            self.resources[resource["id"]] = resource

    @classmethod
    def load(cls, canonical_base: str, folder: Path | None = None) -> ConceptMaps:
        folder = folder or FOLDER
        resources = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("ConceptMap-*.json"))]
        return cls(resources, canonical_base)

    def has(self, map_id: str) -> bool:
        return map_id in self._tables

    def known_codes(self, map_id: str) -> list[str]:
        """The source codes the map accepts, in its order."""
        return self._known[map_id]

    def _accepted(self, map_id: str) -> dict[str, str]:
        """The accepted spellings as the refusal of an unknown code words them, per language."""
        known = self._known[map_id]
        shown = known[:KNOWN_SHOWN]
        if len(known) <= KNOWN_SHOWN:
            return {"knownZh": f"可用的值：{'、'.join(shown)}", "knownEn": f"accepted values: {', '.join(shown)}"}
        return {
            "knownZh": f"可用的值如：{'、'.join(shown)} …（共 {len(known)} 个）",
            "knownEn": f"accepted values include: {', '.join(shown)} … ({len(known)} in all)",
        }

    def translate(self, map_id: str, code: Any, shape: str = "code") -> Any:
        """The target as a bare ``code``, a ``coding`` or a ``codeable`` concept (for a known
        choice without a target, a concept of its text alone)."""
        found = self._tables[map_id].get(_fold(code))
        text = self._texts[map_id].get(_fold(code))
        if found is None and text is not None and shape == "codeable":
            return {"text": text}
        if found is None and _fold(code) in self._unmatched[map_id]:
            raise UnmatchedCode(
                "mapping.unmatched-code",
                value=_fold(code),
                conceptMap=map_id,
                reason=_reason(self._unmatched[map_id][_fold(code)]),
            )
        if found is None:
            raise MappingError("mapping.unknown-code", value=_fold(code), conceptMap=map_id, **self._accepted(map_id))
        coding = {k: v for k, v in found.items() if v is not None}
        if shape == "coding":
            return coding
        if shape == "codeable":
            return {"coding": [coding]}
        return found["code"]
