"""A QuestionnaireResponse checked against the Questionnaire it names, as the reference validator
does (hapifhir/org.hl7.fhir.core ``QuestionnaireValidator.validateQuestionannaireResponse``, read,
not run): linkIds that exist and sit where the Questionnaire puts them, in its order, with its
text; required items answered (an error, a warning while ``in-progress``); ``repeats`` for items
and answers; answers of the item's type; ``answerOption`` and ``answerValueSet`` membership; no
answers on groups and no child items directly on questions.

The Questionnaire is found in the registry (the provincial package, ``--ig``) or among the
response's contained resources (``#id``) — never over the network.  One that cannot be found is
a warning and nothing else is checked, as in the reference.  ``enableWhen`` is evaluated where
the item sits (``conformance/enable_when.py``): a disabled item is not required and must not be
answered; when its conditions cannot be decided, it is neither demanded nor refused.
"""

from __future__ import annotations

from typing import Any

from conformance.enable_when import Verdict, enabled
from conformance.issues import IssueList
from conformance.terminology import Terminology
from profiles.registry import Registry

# R4 Questionnaire.item.type → the answer value[x] names it accepts.  choice and open-choice take
# a Coding or the primitive types an answerOption may carry (the reference's list for both).
_CHOICE = ("valueCoding", "valueDate", "valueTime", "valueInteger", "valueString")
ANSWER_TYPES: dict[str, tuple[str, ...]] = {
    "boolean": ("valueBoolean",),
    "decimal": ("valueDecimal",),
    "integer": ("valueInteger",),
    "date": ("valueDate",),
    "dateTime": ("valueDateTime",),
    "time": ("valueTime",),
    "string": ("valueString",),
    "text": ("valueString",),
    "url": ("valueUri",),
    "attachment": ("valueAttachment",),
    "reference": ("valueReference",),
    "quantity": ("valueQuantity",),
    "choice": _CHOICE,
    "open-choice": _CHOICE,
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _items(node: Any) -> list[dict[str, Any]]:
    return [i for i in _as_list(node.get("item")) if isinstance(i, dict)] if isinstance(node, dict) else []


def _value(answer: dict[str, Any]) -> tuple[str, Any] | None:
    """The answer's value[x] as (JSON name, value); None without one."""
    return next(((k, v) for k, v in answer.items() if k.startswith("value") and k != "value"), None)


def _find(items: list[dict[str, Any]], link_id: str) -> dict[str, Any] | None:
    """The Questionnaire item with this linkId anywhere below ``items``, depth first."""
    stack = list(reversed(items))
    while stack:
        item = stack.pop()
        if item.get("linkId") == link_id:
            return item
        stack.extend(reversed(_items(item)))
    return None


class QuestionnaireResponses:
    """Checks a QuestionnaireResponse against its Questionnaire; other resources pass untouched."""

    def __init__(self, registry: Registry, terminology: Terminology) -> None:
        self.registry = registry
        self.terminology = terminology

    def check(self, resource: dict[str, Any], path: str, issues: IssueList) -> None:
        if resource.get("resourceType") != "QuestionnaireResponse":
            return
        top = path or "QuestionnaireResponse"
        canonical = resource.get("questionnaire")
        if not isinstance(canonical, str) or not canonical:
            issues.add("information", "questionnaire.none", top)
            return
        questionnaire = self._resolve(resource, canonical)
        if questionnaire is None:
            issues.add("warning", "questionnaire.not-found", f"{top}.questionnaire", questionnaire=canonical)
            return
        _Walk(self.terminology, issues, questionnaire, resource.get("status") == "in-progress").items(
            resource, _items(questionnaire), top
        )

    def _resolve(self, resource: dict[str, Any], canonical: str) -> dict[str, Any] | None:
        if canonical.startswith("#"):
            found = next(
                (
                    c
                    for c in _as_list(resource.get("contained"))
                    if isinstance(c, dict) and c.get("id") == canonical[1:]
                ),
                None,
            )
        else:
            found = self.registry.get(canonical)
            url, _, version = canonical.partition("|")
            # the registry falls back to the unversioned URL; another version is not this one
            if found is not None and version and found.get("version") != version:
                found = None
            if found is not None and found.get("url") not in (url, None):
                found = None
        return found if isinstance(found, dict) and found.get("resourceType") == "Questionnaire" else None


class _Walk:
    """One response against one Questionnaire; every check appends and the walk goes on."""

    def __init__(self, terminology: Terminology, issues: IssueList, questionnaire: dict[str, Any], in_progress: bool):
        self.terminology = terminology
        self.issues = issues
        self.questionnaire = questionnaire
        self.in_progress = in_progress
        #: the response nodes enclosing the items being walked, outermost first: where
        #: enableWhen looks for the answers it depends on
        self.context: list[dict[str, Any]] = []

    def items(self, node: dict[str, Any], definitions: list[dict[str, Any]], path: str) -> None:
        """The response items under ``node`` (the response, an item or an answer) against the
        Questionnaire items ``definitions`` that belong there."""
        self.context.append(node)
        try:
            self._items(node, definitions, path)
        finally:
            self.context.pop()

    def _items(self, node: dict[str, Any], definitions: list[dict[str, Any]], path: str) -> None:
        # a malformed definition's linkId (not a string) matches nothing rather than breaking the walk
        order = {d["linkId"]: index for index, d in enumerate(definitions) if isinstance(d.get("linkId"), str)}
        grouped: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        last = -1
        for index, item in enumerate(_items(node)):
            link_id = item.get("linkId")
            where = f"{path}.item[{index}]"
            if not isinstance(link_id, str) or not link_id:
                continue  # linkId is 1..1: the base walk reports it
            if link_id not in order:
                misplaced = _find(_items(self.questionnaire), link_id)
                if misplaced is None:
                    self.issues.error("questionnaire.item-unknown", where, linkId=link_id)
                else:
                    self.issues.error("questionnaire.item-misplaced", where, linkId=link_id)
                    self.item(item, misplaced, where, None)
                continue
            if order[link_id] < last:
                self.issues.error("questionnaire.item-order", where, linkId=link_id)
            last = max(last, order[link_id])
            if "answer" in item or "item" in item:
                grouped.setdefault(link_id, []).append((index, item))
        for definition in definitions:
            link_id = definition.get("linkId")
            found = grouped.get(link_id, []) if isinstance(link_id, str) else []
            if len(found) > 1 and definition.get("repeats") is not True:
                self.issues.error(
                    "questionnaire.item-repeated", f"{path}.item[{found[1][0]}]", linkId=definition.get("linkId")
                )
            state = enabled(definition, self.context)
            for index, item in found:
                if state is False:
                    self.issues.error("questionnaire.item-not-enabled", f"{path}.item[{index}]", linkId=link_id)
                self.item(item, definition, f"{path}.item[{index}]", state)
            if not found and self._required(definition, state):
                self._missing(definition, path)

    @staticmethod
    def _required(definition: dict[str, Any], state: Verdict) -> bool:
        """Demanded only when certainly enabled: an undecided condition demands nothing."""
        return definition.get("required") is True and state is True

    def _missing(self, definition: dict[str, Any], path: str) -> None:
        severity = "warning" if self.in_progress else "error"
        self.issues.add(severity, "questionnaire.item-missing", path, linkId=definition.get("linkId"))

    def item(self, item: dict[str, Any], definition: dict[str, Any], where: str, state: Verdict) -> None:
        link_id = definition.get("linkId")
        kind = definition.get("type")
        text = item.get("text")
        if isinstance(text, str) and text and text != definition.get("text"):
            self.issues.error(
                "questionnaire.item-text", f"{where}.text", linkId=link_id, expected=definition.get("text")
            )
        answers = [a for a in _as_list(item.get("answer")) if isinstance(a, dict)]
        if not answers and kind != "group" and self._required(definition, state):
            self._missing(definition, where)
        if len(answers) > 1 and definition.get("repeats") is not True:
            self.issues.error("questionnaire.answer-repeated", f"{where}.answer[1]", linkId=link_id)
        for index, answer in enumerate(answers):
            at = f"{where}.answer[{index}]"
            if kind == "group":
                self.issues.error("questionnaire.answer-on-group", at, linkId=link_id)
                continue
            self.answer(answer, definition, at)
            self.items(answer, _items(definition), at)
        if kind == "group":
            self.items(item, _items(definition), where)
        elif _items(item):
            message = "questionnaire.items-on-display" if kind == "display" else "questionnaire.items-on-question"
            self.issues.error(message, f"{where}.item[0]", linkId=link_id)

    def answer(self, answer: dict[str, Any], definition: dict[str, Any], at: str) -> None:
        found = _value(answer)
        allowed = ANSWER_TYPES.get(definition.get("type"))
        if found is None or allowed is None:
            return  # display and question items take no typed answer; the reference checks none
        name, value = found
        if name not in allowed:
            self.issues.error(
                "questionnaire.answer-type",
                at,
                linkId=definition.get("linkId"),
                type=definition.get("type"),
                allowed=", ".join(n[len("value") :] for n in allowed),
                actual=name[len("value") :],
            )
            return
        if definition.get("type") not in ("choice", "open-choice"):
            return
        if name == "valueCoding":
            self._coding(value, definition, f"{at}.valueCoding")
        elif not (definition.get("type") == "open-choice" and name == "valueString"):
            self._option(name, value, definition, f"{at}.{name}")

    def _option(self, name: str, value: Any, definition: dict[str, Any], at: str) -> None:
        """A date, time, integer or string answer of a choice item is one of its options."""
        options = [o[name] for o in _as_list(definition.get("answerOption")) if isinstance(o, dict) and name in o]
        if not _as_list(definition.get("answerOption")):
            self.issues.add("information", "questionnaire.no-options", at, linkId=definition.get("linkId"))
        elif not options:
            self.issues.error(
                "questionnaire.no-options-of-type", at, linkId=definition.get("linkId"), type=name[len("value") :]
            )
        elif value not in options:
            self.issues.error("questionnaire.answer-not-an-option", at, linkId=definition.get("linkId"), value=value)

    def _coding(self, coding: Any, definition: dict[str, Any], at: str) -> None:
        if not isinstance(coding, dict):
            return
        system, code = coding.get("system"), coding.get("code")
        link_id = definition.get("linkId")
        options = _as_list(definition.get("answerOption"))
        if options:
            codings = [
                o["valueCoding"] for o in options if isinstance(o, dict) and isinstance(o.get("valueCoding"), dict)
            ]
            if not codings and definition.get("type") != "open-choice":
                self.issues.error("questionnaire.no-options-of-type", at, linkId=link_id, type="Coding")
            elif not any(c.get("system") == system and c.get("code") == code for c in codings):
                self.issues.error(
                    "questionnaire.answer-not-an-option", at, linkId=link_id, value=f"{system or ''}|{code or ''}"
                )
            return
        value_set = definition.get("answerValueSet")
        if not isinstance(value_set, str):
            self.issues.add("information", "questionnaire.no-options", at, linkId=link_id)
            return
        if not isinstance(code, str):
            return  # a display-only Coding: the reference lets it pass an open-choice, the base walk the rest
        expansion = None if value_set.startswith("#") else self.terminology.expand(value_set)
        if expansion is None:
            self.issues.add("warning", "questionnaire.valueset-not-found", at, linkId=link_id, valueSet=value_set)
            return
        member = None if expansion.too_large else self.terminology.contains(expansion, system, code)
        if member is False and expansion.complete:
            self.issues.error(
                "questionnaire.answer-not-in-valueset",
                at,
                linkId=link_id,
                code=f"{system or ''}|{code}",
                valueSet=value_set,
            )
        elif member is not True:
            self.issues.add(
                "information", "questionnaire.valueset-undecided", at, code=f"{system or ''}|{code}", valueSet=value_set
            )
