"""A write's refusal quotes no value of a record the client may not read.

Some rules judge what a client writes by another record: a reading dated before the birth of
the Patient it names (that Patient's ``birthDate``), a birth date moved past the visits the
archive holds of the person (their ids), a Patient merged away (its survivor).  They run
whatever the client's scopes, as the archive must keep no contradiction, but their refusals
quoted the other record: a device holding ``system/Observation.c`` alone learnt a person's
birth date by posting a reading dated 1900.  Each such message says in its catalog entry the
type of the record it quotes (``quotes``) and has a sibling there, ``<id>-unseen``, worded
without those values; a client whose scopes do not read the quoted record's type is given the
sibling, at the same FHIRPath, with only the parameters the sibling's template names.  The
auditors' exchange record keeps the full message: the sibling carries it (:class:`Withheld`,
and a refusal's ``FhirError.in_full``).  (A record the organisation rule hides is never
quoted: the archive's resolver hands it to no rule, and a write naming it is refused first,
403.)"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from string import Formatter
from typing import Any

from conformance.issues import Issue
from gateway import messages
from gateway.security.principal import acting
from gateway.security.scopes import Grants

#: how a message's sibling without the quoted values is named
UNSEEN = "-unseen"
#: a catalog entry's ``quotes`` when the records it quotes are of any type (those naming the
#: written one): its rule names their types when it speaks
ANY_TYPE = "*"


@cache
def quoting() -> dict[str, str]:
    """The messages quoting values of the record a written resource names, by that record's
    type: each catalog entry's ``quotes``, which stands beside its ``-unseen`` sibling (those
    quoting :data:`ANY_TYPE` left out: their rule names the types)."""
    return {
        message_id: entry["quotes"]
        for message_id, entry in messages.catalog().items()
        if entry.get("quotes", ANY_TYPE) != ANY_TYPE
    }


def may_read(kind: str) -> bool:
    """Whether the principal this request acts for reads ``kind`` (the command line reads all)."""
    principal = acting.get()
    return principal is None or _reads(principal.scopes, kind)


@lru_cache(maxsize=4096)
def _reads(scopes: frozenset[str], kind: str) -> bool:
    """Asked for each reference a write's validator resolves: the scopes parsed once."""
    return Grants(scopes).allows(kind, "r")


def told_in_full(message_id: str, quoted: Collection[str] | None = None) -> bool:
    """Whether the client may be told the message as it is: it reads every type of record
    the message quotes.  ``quoted``: those types (by default what :func:`quoting` says; none
    for a message quoting no other record)."""
    if quoted is None:
        kind = quoting().get(message_id)
        quoted = (kind,) if kind is not None else ()
    return all(may_read(kind) for kind in quoted)


def unseen_message(message_id: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The message's sibling without the quoted values, with only the parameters its template
    names."""
    sibling = message_id + UNSEEN
    named = {name for _, name, _, _ in Formatter().parse(messages.catalog()[sibling]["en"]) if name}
    return sibling, {key: value for key, value in params.items() if key in named}


@dataclass(slots=True)
class Withheld(Issue):
    """An issue worded for a client that may not read what it quotes (the ``-unseen``
    sibling).  ``in_full``: the message and parameters a reader is told, at the same place,
    which the auditors' exchange record keeps (:func:`in_full`): they are entitled to the
    whole reason, and saw less than the rule knew."""

    in_full: tuple[str, dict[str, Any]] = field(kw_only=True)


def withheld(issue: Issue, quoted: Collection[str] | None = None) -> Issue:
    """``issue`` as the client may be told it (:func:`told_in_full`), or its sibling keeping
    it in full."""
    if told_in_full(issue.message_id, quoted):
        return issue
    message_id, params = unseen_message(issue.message_id, issue.params)
    kept = (issue.message_id, issue.params)
    return Withheld(issue.severity, message_id, issue.expression, params, issue.location, in_full=kept)


def in_full(issue: Issue) -> Issue:
    """``issue`` as a reader is told it: what the auditors' record keeps."""
    if not isinstance(issue, Withheld):
        return issue
    message_id, params = issue.in_full
    return Issue(issue.severity, message_id, issue.expression, params, issue.location)


def withheld_issues(issues: Iterable[Issue], written: str) -> list[Issue]:
    """Each of the issues of a resource of type ``written`` as :func:`withheld` words it.  A
    message quoting a record of the written type quotes the written resource itself, what its
    writer sent (a Patient's death before its own birth date), and is told as it is."""
    return [issue if quoting().get(issue.message_id) == written else withheld(issue) for issue in issues]
