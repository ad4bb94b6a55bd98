"""Business rules FHIRPath cannot express well: 身份证 arithmetic and its agreement with the
record, and GB/T 2260 administrative-division codes (existence and hierarchy)."""

from __future__ import annotations

import itertools
from typing import Any

from conformance import id_card
from conformance.issues import IssueList
from conformance.terminology import Terminology
from profiles.canonical import ID_CARD_SYSTEMS
from profiles.registry import Registry

# GB/T 2261.1 code → the Patient.gender values it may accompany.
GB_SEX_TO_GENDER = {"1": ("male",), "2": ("female",), "0": ("unknown", "other"), "9": ("unknown", "other")}


def _significant(code: str) -> str:
    """The prefix every subdivision shares: 410000 → 41, 410100 → 4101, 410105001 → itself."""
    if len(code) == 6:
        return code[:2] if code.endswith("0000") else code[:4] if code.endswith("00") else code
    return code


class BusinessRules:
    def __init__(self, registry: Registry, terminology: Terminology) -> None:
        self.terminology = terminology
        self.division_system = registry.url("CodeSystem", "gb-t-2260")
        self.division_extension = registry.url("StructureDefinition", "yy-ext-admin-division")
        self.gender_extension = registry.url("StructureDefinition", "yy-ext-gender-gb")

    def check(self, resource: dict[str, Any], path: str, issues: IssueList) -> None:
        for index, identifier in enumerate(_as_list(resource.get("identifier"))):
            if (
                isinstance(identifier, dict)
                and isinstance(identifier.get("system"), str)
                and identifier["system"] in ID_CARD_SYSTEMS
            ):
                value = identifier.get("value")
                if isinstance(value, str):
                    self._id_card(resource, value, f"{path}.identifier[{index}].value", path, issues)
        self._gender_code(resource, path, issues)
        for index, address in enumerate(_as_list(resource.get("address"))):
            if isinstance(address, dict):
                self._divisions(address, f"{path}.address[{index}]", issues)

    def _id_card(self, resource: dict[str, Any], value: str, where: str, path: str, issues: IssueList) -> None:
        found = id_card.problems(value)
        for message_id, params in found:
            issues.error(message_id, where, **params)
        facts = id_card.facts(value)
        if facts is None:
            return
        provinces = self.terminology.concepts(self.division_system)
        if provinces is not None and f"{facts.region[:2]}0000" not in provinces:
            issues.error("rule.id-card-region", where, value=value, region=facts.region[:2])
        if found:
            return
        birth = resource.get("birthDate")
        if isinstance(birth, str) and len(birth) == 10 and birth != facts.birth_date.isoformat():
            issues.error(
                "rule.id-card-birthdate-mismatch",
                f"{path}.birthDate",
                birthDate=birth,
                fromId=facts.birth_date.isoformat(),
            )
        gender = resource.get("gender")
        expected = "male" if facts.male else "female"
        if gender in ("male", "female") and gender != expected:
            issues.error("rule.id-card-gender-mismatch", f"{path}.gender", gender=gender, fromId=expected)

    def _gender_code(self, resource: dict[str, Any], path: str, issues: IssueList) -> None:
        """Patient.gender and its GB/T 2261.1 code (1 男, 2 女, 0/9 未知/未说明) must agree."""
        gender, extras = resource.get("gender"), resource.get("_gender")
        if not isinstance(gender, str) or not isinstance(extras, dict):
            return
        for index, extension in enumerate(_as_list(extras.get("extension"))):
            if isinstance(extension, dict) and extension.get("url") == self.gender_extension:
                coding = extension.get("valueCoding")
                code = coding.get("code") if isinstance(coding, dict) else None
                if isinstance(code, str) and gender not in GB_SEX_TO_GENDER.get(code, ()):
                    where = f"{path}.gender.extension[{index}].value"
                    issues.error("rule.gender-code-mismatch", where, gender=gender, code=code)

    def _divisions(self, address: dict[str, Any], path: str, issues: IssueList) -> None:
        codes = []
        for index, extension in enumerate(_as_list(address.get("extension"))):
            if isinstance(extension, dict) and extension.get("url") == self.division_extension:
                coding = extension.get("valueCoding")
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    codes.append((coding["code"], f"{path}.extension[{index}].value"))
        concepts = self.terminology.concepts(self.division_system)
        for code, where in codes:
            # Village codes (12 digits) are not shipped; their township must exist.
            lookup = code[:9] if len(code) == 12 else code
            if concepts is not None and code.isdigit() and lookup not in concepts:
                issues.error("rule.division-unknown", where, code=lookup)
        ordered = sorted(codes, key=lambda pair: len(_significant(pair[0])))
        for (parent, _), (child, where) in itertools.pairwise(ordered):
            if not child.startswith(_significant(parent)):
                issues.error("rule.division-hierarchy", where, child=child, parent=parent)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
