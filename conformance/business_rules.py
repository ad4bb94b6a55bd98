"""Business rules FHIRPath cannot express well: the arithmetic of the national identity
documents (身份证, 港澳台居民居住证, 外国人永久居留身份证) and their agreement with the record, the
check character of an organisation's 统一社会信用代码, and
administrative-division codes (GB/T 2260 and the 统计用区划代码: existence, level, hierarchy, and
abolished codes as warnings naming their successor)."""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any

from conformance import after_birth, credit_code, id_card
from conformance.issues import IssueList
from conformance.terminology import Terminology
from profiles.canonical import GB_SEX_SYSTEM
from profiles.registry import Registry

#: a birthDate at any of FHIR date's precisions: year, year-month, full date
PARTIAL_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")

#: the package's ConceptMap of the Patient.gender values each GB/T 2261.1 code may accompany
SEX_TO_GENDER_MAP = "gb-t-2261-1-to-administrative-gender"
ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"
#: ConceptMapEquivalence values saying a target does not stand for its source
NO_MATCH = frozenset({"unmatched", "disjoint"})


def _significant(code: str) -> str:
    """The prefix every subdivision shares: 410000 → 41, 410100 → 4101, 410105001 → itself."""
    if len(code) == 6:
        return code[:2] if code.endswith("0000") else code[:4] if code.endswith("00") else code
    return code


class BusinessRules:
    def __init__(self, registry: Registry, terminology: Terminology) -> None:
        self.registry = registry
        self.terminology = terminology
        self.sex_map = registry.url("ConceptMap", SEX_TO_GENDER_MAP)
        #: (registry generation, GB/T 2261.1 code → genders), read from the ConceptMap
        self._genders: tuple[int, dict[str, frozenset[str]] | None] | None = None
        self.division_system = registry.url("CodeSystem", "gb-t-2260")
        self.statistical_system = registry.url("CodeSystem", "nbs-division")
        self.residence_permit_system = registry.url("sid", "hmt-residence-permit")
        self.foreign_pr_system = registry.url("sid", "foreign-permanent-residence")
        self.credit_code_system = registry.url("sid", "uscc")
        self.division_extension = registry.url("StructureDefinition", "yy-ext-admin-division")
        self.gender_extension = registry.url("StructureDefinition", "yy-ext-gender-gb")
        self.health_record_extension = registry.url("StructureDefinition", "yy-ext-health-record")

    def check(self, resource: dict[str, Any], path: str, issues: IssueList) -> None:
        for index, identifier in enumerate(_as_list(resource.get("identifier"))):
            if (
                not isinstance(identifier, dict)
                or not isinstance(identifier.get("system"), str)
                or not isinstance(identifier.get("value"), str)
            ):
                continue
            system, value = identifier.get("system"), identifier["value"]
            where = f"{path}.identifier[{index}].value"
            if (self.registry.naming_system(system) or {}).get("id") == "id-card":
                self._id_card(resource, value, where, path, issues)
            elif system == self.residence_permit_system:
                self._residence_permit(resource, value, where, path, issues)
            elif system == self.foreign_pr_system:
                self._foreign_pr(resource, value, where, path, issues)
            elif system == self.credit_code_system and (expected := credit_code.checksum_problem(value)):
                issues.error("rule.uscc-checksum", where, value=value, expected=expected)
        self._gender_code(resource, path, issues)
        if resource.get("resourceType") == "Patient":
            after_birth.check_own_dates(resource, path, self.health_record_extension, issues)
        for index, address in enumerate(_as_list(resource.get("address"))):
            if isinstance(address, dict):
                self._divisions(address, f"{path}.address[{index}]", issues)

    def _id_card(self, resource: dict[str, Any], value: str, where: str, path: str, issues: IssueList) -> None:
        other = id_card.looks_like(value)
        if other is not None:
            # a 居住证 or 永居证 number filed as a 身份证: say where it belongs (its own rules then apply)
            system = self.residence_permit_system if other == "hmt-residence-permit" else self.foreign_pr_system
            issues.add("warning", "rule.id-card-other-document", where, value=value, system=system)
        found = id_card.problems(value)
        for message_id, params in found:
            issues.error(message_id, where, **params)
        if not found and value.endswith("x"):  # GB 11643 writes the check character X
            issues.add("warning", "rule.id-card-lowercase-x", where, value=value, written=value[:-1] + "X")
        facts = id_card.facts(value)
        if facts is None:
            return
        provinces = self.terminology.concepts(self.division_system)
        if provinces is not None and f"{facts.region[:2]}0000" not in provinces:
            issues.error("rule.id-card-region", where, value=value, region=facts.region[:2])
        if found:
            return
        self._agreement(resource, facts, path, issues, "rule.id-card", error=True)

    def _residence_permit(self, resource: dict[str, Any], value: str, where: str, path: str, issues: IssueList) -> None:
        """港澳台居民居住证: the 身份证's rules with the address code 810000/820000/830000."""
        found = id_card.residence_permit_problems(value)
        for message_id, params in found:
            issues.error(message_id, where, **params)
        facts = id_card.residence_permit_facts(value)
        if facts is not None and not found:
            self._agreement(resource, facts, path, issues, "rule.residence-permit", error=True)

    def _foreign_pr(self, resource: dict[str, Any], value: str, where: str, path: str, issues: IssueList) -> None:
        """外国人永久居留身份证: the leading 9 and the check character are errors; what the inner
        digits are believed to say (their layout is unconfirmed) is only warned about."""
        found = id_card.foreign_pr_problems(value)
        for severity, message_id, params in found:
            issues.add(severity, message_id, where, **params)
        facts = id_card.foreign_pr_facts(value)
        if facts is None or any(severity == "error" for severity, _, _ in found):
            return
        provinces = self.terminology.concepts(self.division_system)
        if provinces is not None and facts.region not in provinces:
            issues.add("warning", "rule.foreign-pr-province", where, value=value, province=facts.region[:2])
        self._agreement(resource, facts, path, issues, "rule.foreign-pr", error=False)

    def _agreement(
        self,
        resource: dict[str, Any],
        facts: id_card.IdCardFacts,
        path: str,
        issues: IssueList,
        prefix: str,
        *,
        error: bool,
    ) -> None:
        """birthDate and gender agreeing with what the document number encodes."""
        report = functools.partial(issues.add, "error" if error else "warning")
        birth = resource.get("birthDate")
        # a partial birthDate (1949, 1949-12) must be the number's date at that precision:
        # comparing full dates only let 1950 stand beside a number that says 1949-12-31
        if (
            isinstance(birth, str)
            and PARTIAL_DATE.fullmatch(birth)
            and not facts.birth_date.isoformat().startswith(birth)
        ):
            report(
                f"{prefix}-birthdate-mismatch",
                f"{path}.birthDate",
                birthDate=birth,
                fromId=facts.birth_date.isoformat(),
            )
        gender = resource.get("gender")
        expected = "male" if facts.male else "female"
        if gender in ("male", "female") and gender != expected:
            report(
                f"{prefix}-gender-mismatch",
                f"{path}.gender",
                gender=gender,
                fromId=expected,
                genderZh=self._sex_display(gender),
                fromIdZh=self._sex_display(expected),
            )

    def _sex_display(self, gender: str) -> str:
        """How GB/T 2261.1 names a Patient.gender to Chinese readers (男性, 女性): the display of
        the code system's code for that gender alone, so the words are the package's."""
        concepts = self.terminology.concepts(GB_SEX_SYSTEM) or {}
        genders_by_code = self._genders_by_code() or {}
        code = next((code for code, genders in genders_by_code.items() if genders == {gender}), None)
        display = concepts.get(code, {}).get("display") if code is not None else None
        return display if isinstance(display, str) else gender

    def _genders_by_code(self) -> dict[str, frozenset[str]] | None:
        """GB/T 2261.1 code → the Patient.gender values it may accompany, compiled from the
        ConceptMap once per registry generation; None when the registry holds no such map."""
        if self._genders is None or self._genders[0] != self.registry.generation:
            self._genders = (self.registry.generation, _genders_by_code(self.registry.get(self.sex_map)))
        return self._genders[1]

    def _gender_code(self, resource: dict[str, Any], path: str, issues: IssueList) -> None:
        """Patient.gender and its GB/T 2261.1 code must agree as the ConceptMap
        ``gb-t-2261-1-to-administrative-gender`` says (1 男 male, 2 女 female, 0/9 未知/未说明
        unknown or other); a code it does not list accompanies no gender."""
        gender, extras = resource.get("gender"), resource.get("_gender")
        if not isinstance(gender, str) or not isinstance(extras, dict):
            return
        genders_by_code = self._genders_by_code()
        if genders_by_code is None:
            return
        for index, extension in enumerate(_as_list(extras.get("extension"))):
            if isinstance(extension, dict) and extension.get("url") == self.gender_extension:
                coding = extension.get("valueCoding")
                code = coding.get("code") if isinstance(coding, dict) else None
                allowed = genders_by_code.get(code, frozenset()) if isinstance(code, str) else None
                if allowed is not None and gender not in allowed:
                    where = f"{path}.gender.extension[{index}].value"
                    shown = ", ".join(sorted(allowed)) or "-"
                    issues.error("rule.gender-code-mismatch", where, gender=gender, code=code, allowed=shown)

    def _divisions(self, address: dict[str, Any], path: str, issues: IssueList) -> None:
        """Each division code exists at its level in its own list (GB/T 2260: 6-digit county level
        and up; 统计用区划代码: 6-digit and 9-digit townships, a 12-digit village by its township);
        an abolished GB/T 2260 code is a warning naming its successor; the codes nest."""
        codes = []
        for index, extension in enumerate(_as_list(address.get("extension"))):
            if isinstance(extension, dict) and extension.get("url") == self.division_extension:
                coding = extension.get("valueCoding")
                if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                    codes.append((coding.get("system"), coding["code"], f"{path}.extension[{index}].value"))
        national = self.terminology.concepts(self.division_system)
        statistical = self.terminology.concepts(self.statistical_system)
        for system, code, where in codes:
            if not code.isdigit() or national is None:
                continue
            if system == self.statistical_system:
                self._statistical_code(code, where, national, statistical, issues)
            else:
                self._national_code(code, where, national, statistical, issues)
        ordered = sorted(((code, where) for _, code, where in codes), key=lambda pair: len(_significant(pair[0])))
        for (parent, _), (child, where) in itertools.pairwise(ordered):
            successor = _successor(national, parent) if national is not None else None
            if not child.startswith(_significant(parent)) and not (
                successor and child.startswith(_significant(successor))
            ):
                issues.error("rule.division-hierarchy", where, child=child, parent=parent)

    def _national_code(
        self,
        code: str,
        where: str,
        national: dict[str, dict[str, Any]],
        statistical: dict[str, dict[str, Any]] | None,
        issues: IssueList,
    ) -> None:
        if len(code) in (9, 12):
            issues.error("rule.division-level", where, code=code, system=self.statistical_system)
        elif code in national:
            self._abolished(code, code, where, national, issues)
        elif statistical is not None and code in statistical:
            issues.error("rule.division-statistics-only", where, code=code, system=self.statistical_system)
        else:
            issues.error("rule.division-unknown", where, code=code)

    def _statistical_code(
        self,
        code: str,
        where: str,
        national: dict[str, dict[str, Any]],
        statistical: dict[str, dict[str, Any]] | None,
        issues: IssueList,
    ) -> None:
        # Village codes (12 digits) are not shipped; their township must exist.
        lookup = code[:9] if len(code) == 12 else code
        if statistical is None or lookup in statistical:
            return
        if len(lookup) in (6, 9) and _successor(national, lookup[:6]):
            # an old archive's code under an abolished county: its county's successor is named
            self._abolished(code, lookup[:6], where, national, issues)
        else:
            issues.error("rule.division-unknown-statistical", where, code=lookup)

    @staticmethod
    def _abolished(code: str, county: str, where: str, national: dict[str, dict[str, Any]], issues: IssueList) -> None:
        successor = _successor(national, county)
        if successor:
            issues.add(
                "warning",
                "rule.division-abolished",
                where,
                code=code,
                name=national[county].get("display") or county,
                successor=successor,
                successorName=national.get(successor, {}).get("display") or successor,
            )


def _genders_by_code(concept_map: Any) -> dict[str, frozenset[str]] | None:
    """The Patient.gender values each GB/T 2261.1 code of a ConceptMap may accompany: its
    targets in administrative-gender but those marked unmatched or disjoint."""
    if not isinstance(concept_map, dict) or concept_map.get("resourceType") != "ConceptMap":
        return None
    found: dict[str, set[str]] = {}
    for group in _as_list(concept_map.get("group")):
        if not isinstance(group, dict) or (group.get("source"), group.get("target")) != (
            GB_SEX_SYSTEM,
            ADMINISTRATIVE_GENDER,
        ):
            continue
        for element in _as_list(group.get("element")):
            if not isinstance(element, dict) or not isinstance(element.get("code"), str):
                continue
            genders = found.setdefault(element["code"], set())
            for target in _as_list(element.get("target")):
                if (
                    isinstance(target, dict)
                    and isinstance(target.get("code"), str)
                    and target.get("equivalence") not in NO_MATCH
                ):
                    genders.add(target["code"])
    return {code: frozenset(genders) for code, genders in found.items()}


def _successor(concepts: dict[str, dict[str, Any]], code: str) -> str | None:
    """The current code of a retired GB/T 2260 code, None for a current or unknown one."""
    concept = concepts.get(code)
    if concept is None or "retired" not in concept["properties"].get("status", ()):
        return None
    return next(iter(sorted(v for v in concept["properties"].get("successor", ()) if isinstance(v, str))), None)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
