"""Exchanges: every request the gateway handles, judged and kept for the auditors' report.

An *exchange* is one unit a participant sent or asked for: one HTTP request (a push, a pull, a
``$ingest``), one MLLP message, or one file given to ``yiyang ingest``.  Its record says who
(client and organisation), what kind of system (``source``), over which channel, which
interaction, which resource types and how many, the verdict on each resource per profile it
was held to, and every issue found (rule id, FHIRPath, severity, masked text).

The layers that validate know nothing of HTTP or MLLP, so they *note* what they judged into the
:class:`Collector` that is active in the current context (a ContextVar, as
``gateway/security/principal.py`` does for the acting principal); whoever handles the exchange
— the API's hooks, the ingest pipeline, the MLLP listener — activates a collector, and writes
the record when the exchange ends.  Noting costs nothing when no collector is active.

Writing follows the audit trail's trade-off: the API buffers records per worker and a
background thread appends them in batches (:class:`ExchangeLog`), so a read does not become a
write transaction; the ingest pipeline writes its record inside its own batch transaction.
Records older than ``exchange_retention_days`` are purged by the log (hourly) and by
``yiyang exchanges purge``.

No record holds an unmasked 身份证号 or phone number: texts are masked when noted.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, ParamSpec, Protocol, TypeVar

from conformance.issues import Issue
from conformance.report.model import Verdict
from gateway.batch_writer import BatchWriter
from gateway.masking import REPEATED_LENGTH, mask_repeated, mask_text
from gateway.security.withheld import in_full
from gateway.storage.exchange_tables import ID_LOCK, Appended, IssueRow, VerdictRow
from gateway.storage.resources import instant_at

log = logging.getLogger("yiyang.exchanges")

#: the day an exchange belongs to is its day in China Standard Time, where the auditors are
CHINA = timezone(timedelta(hours=8))
#: the profile a resource is held to when it claims none and the package has none for its type
BASE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"
#: verdicts and issues kept one by one per exchange; beyond, verdicts are counted per type,
#: profile and outcome and issues only counted (a file of 100,000 records stays small in memory)
KEEP = 10_000
#: severities recorded (information is noise to an auditor)
RECORDED = frozenset({"fatal", "error", "warning"})
#: an attempt's arguments and answer (:func:`noted_once`)
P = ParamSpec("P")
T = TypeVar("T")
#: HTTP statuses that refuse a request for its content: the exchange failed, like an invalid
#: resource; every other refusal (401, 403, 404, 429, 5xx …) is an ``error`` verdict
CONTENT_REFUSED = frozenset({400, 422})


class Refusal(Protocol):
    """What refused a request or a batch's entry (a ``FhirError``): its OperationOutcome as
    the auditors read it (the full reason of one worded for a client that may not read what
    it quotes)."""

    def audited(self, lang: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Party:
    """Who exchanged, and how: the participant and the exchange's kind."""

    client: str
    organization: str
    #: the kind of system: a legacy source (community-health, hl7v2 …) or a REST client's role
    source: str
    #: rest, mllp or cli
    channel: str
    interaction: str


_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")
#: type names already found well-shaped (every request names one: no regex each time)
_NAMES_SEEN: set[str] = set()


def type_name(value: object) -> str:
    """A resource type as recorded: what a URL or a body names is the client's text, and
    only the shape of a type name is kept ("?" otherwise), so nothing else lands there."""
    if not isinstance(value, str):
        return "?"
    if value in _NAMES_SEEN:
        return value
    if _TYPE_NAME.fullmatch(value) is None:
        return "?"
    if len(_NAMES_SEEN) < 1024:
        _NAMES_SEEN.add(value)
    return value


def claimed_profiles(resource: Mapping[str, Any]) -> list[str]:
    """The profiles a resource claims (``meta.profile``), whatever shape its meta has."""
    meta = resource.get("meta")
    # a parsed resource's meta is a dict: asked first, the ABC's isinstance is slow
    claimed = meta.get("profile") if type(meta) is dict or isinstance(meta, Mapping) else None
    return [p for p in claimed if isinstance(p, str)] if isinstance(claimed, list) else []


def today() -> date:
    """Today in China Standard Time."""
    return datetime.now(CHINA).date()


#: a collector's notes as they stood (:meth:`Collector.mark`): how many verdicts and issues,
#: the folded counts, the types, the errors, the warnings and the failures
Mark = tuple[int, int, dict[tuple[str, str, bool], list[int]], dict[str, int], int, int, int]
#: the mark of a collector that has noted nothing
NOTHING: Mark = (0, 0, {}, {}, 0, 0, 0)


class Collector:
    """What one exchange's handling judged; the layers below note into it, the handler reads it.

    Kept as tuples and counters (not the resources or Issue objects), so a long ingest's
    collector holds only what its record will contain."""

    __slots__ = ("verdicts", "issues", "folded", "types", "errors", "warnings", "failed", "source")

    def __init__(self) -> None:
        self.verdicts: list[VerdictRow] = []
        self.issues: list[IssueRow] = []
        #: (type, profile, passed) → [resources, errors, warnings] beyond KEEP
        self.folded: dict[tuple[str, str, bool], list[int]] = {}
        #: resource type → how many (a plain dict: one is made per request)
        self.types: dict[str, int] = {}
        self.errors = 0
        self.warnings = 0
        #: resources judged non-conformant, and reasons (unmappable records …) that are errors
        self.failed = 0
        #: the source the content came from, when the content says (a legacy record does)
        self.source: str | None = None

    @property
    def judged(self) -> bool:
        return bool(self.verdicts or self.folded or self.failed)

    def judge(self, resource: Mapping[str, Any], profiles: Sequence[str], issues: Sequence[Issue]) -> None:
        """One resource was validated against ``profiles`` (and those it claims)."""
        kind = type_name(resource.get("resourceType"))
        resource_id = mask_text(str(resource.get("id") or ""))
        claimed = [mask_repeated(p) for p in claimed_profiles(resource)]  # the client's text, like the id
        wanted = list(dict.fromkeys([*claimed, *profiles])) or [BASE_PROFILE + kind]
        severities = [issue.severity for issue in issues]
        errors = severities.count("error") + severities.count("fatal")
        warnings = severities.count("warning")
        passed = errors == 0
        self.types[kind] = self.types.get(kind, 0) + 1
        self.failed += not passed
        first = len(self.verdicts)
        for profile in wanted:
            if len(self.verdicts) < KEEP:
                self.verdicts.append((kind, resource_id, profile, passed, errors, warnings, 1))
            else:
                folded = self.folded.setdefault((kind, profile, passed), [0, 0, 0])
                folded[0] += 1
                folded[1] += errors
                folded[2] += warnings
        target = first if first < KEEP else None
        for told in issues:
            if told.severity in RECORDED:
                issue = in_full(told)  # the auditors read what the client may not (withheld.py)
                where = issue.expression or issue.location or ""
                self._issue(target, issue.severity, issue.message_id, where, _worded(issue))

    def reason(
        self,
        message_id: str,
        texts: Mapping[str, str],
        location: str | None,
        severity: str = "error",
        refused: Verdict | None = None,
    ) -> None:
        """An issue with the exchange as a whole (a record that could not be mapped, the
        OperationOutcome of a refused request).  ``refused``: the verdict of a batch's entry
        it refused for another reason than its content (``error``), which is not the batch's:
        the issue is kept with it, and fails nothing."""
        if severity in RECORDED:
            self.failed += refused is None and severity in ("fatal", "error")
            texts = _masked(texts.get("zh-CN", ""), texts.get("en", ""))
            self._issue(None, severity, message_id, location or "", texts, refused)

    def refusal(
        self,
        zh: Sequence[Mapping[str, Any]],
        en: Sequence[Mapping[str, Any]],
        status: int,
        since: Mark = NOTHING,
        refused: Verdict | None = None,
    ) -> None:
        """The issues of the OperationOutcome that refused a request (or a batch's entry,
        judged since ``since``) with ``status``, in both languages (the answer is in the one
        the client asked for, the auditors' reports come in both), as its reasons; but for the
        422 of content judged failing since then: its issues are the validator's, noted when
        found.  A write judged valid and refused after all (a 422 of a birth date moved past
        the visits stored, a 409 of a second record of one person) has its reasons noted."""
        if status == 422 and self.failed > since[6]:
            return
        for zh_issue, en_issue in zip(zh, en, strict=True):
            coding = ((zh_issue.get("details") or {}).get("coding") or [{}])[0]
            where = (zh_issue.get("expression") or zh_issue.get("location") or [""])[0]
            rule = str(coding.get("code") or zh_issue.get("code") or "")
            words = {"zh-CN": _words(zh_issue), "en": _words(en_issue)}
            self.reason(rule, words, str(where), str(zh_issue.get("severity") or "error"), refused)

    def entry_refused(self, since: Mark, interaction: str, status: int, refusal: Refusal) -> None:
        """A batch's entry, the ``interaction`` noted since ``since``, was refused with
        ``status``: its verdicts and reasons are recorded as its own request's would be
        (:func:`answered`, :meth:`refusal`).  Refused for its content (400, 422), it fails the
        batch, as content judged failing does; refused for anything else (403, 404, 409, 412,
        a 503 the store failed) its reasons are kept with the verdict ``error``, which the
        batch's is not: a batch is not atomic, and its other entries landed."""
        self.verdicts[since[0] :] = answered(self.verdicts[since[0] :], interaction, status)
        zh, en = refusal.audited("zh-CN")["issue"], refusal.audited("en")["issue"]
        self.refusal(zh, en, status, since, None if status in CONTENT_REFUSED else Verdict.ERROR)

    def located(self, since: Mark, where: Callable[[str], str]) -> None:
        """The issues noted since ``since`` located anew by ``where``: a batch's entry is
        judged as a request of its own, whose issues name its resource alone
        (``Patient.gender``), and the batch's record must say which entry they are of
        (``Bundle.entry[1].resource.gender``), as a transaction's does."""
        for seq in range(since[1], len(self.issues)):
            row = self.issues[seq]
            self.issues[seq] = (row[0], row[1], row[2], where(row[3]), *row[4:])

    def mark(self) -> Mark:
        """Where the notes stand, for :meth:`rewind` (the types and the folded counts copied:
        a few entries each)."""
        folded = {key: list(counts) for key, counts in self.folded.items()}
        return (len(self.verdicts), len(self.issues), folded, dict(self.types), self.errors, self.warnings, self.failed)

    def rewind(self, mark: Mark) -> None:
        """Forget the notes made since ``mark``: a record the database refused for another
        writer's sake is judged again (``Ingest._attempt``), and its exchange says what the
        attempt that stood judged, once, not what both did (:func:`noted_once`)."""
        verdicts, issues, folded, types, self.errors, self.warnings, self.failed = mark
        # copies again: the mark may be rewound to once more (a third attempt), and an
        # attempt adds to what it was handed
        self.folded, self.types = {key: list(counts) for key, counts in folded.items()}, dict(types)
        del self.verdicts[verdicts:]
        del self.issues[issues:]

    def carried(self, kind: str, count: int) -> None:
        """Resources the exchange returned without judging them (a read, a search page); a
        count of 0 names a type the exchange concerned (a search that found nothing)."""
        if type_name(kind) != "?":
            self.types[kind] = self.types.get(kind, 0) + max(count, 0)

    def _issue(
        self,
        verdict_seq: int | None,
        severity: str,
        rule: str,
        location: str,
        texts: tuple[str, str],
        refused: Verdict | None = None,
    ) -> None:
        """An issue, its texts (Chinese, English) masked already; ``refused``, the verdict of
        the batch entry it refused (:meth:`reason`): kept, and not counted against the
        exchange, whose verdict it does not make (a passing batch with errors contradicted
        itself in the report)."""
        if refused is None:
            self.errors += severity in ("fatal", "error")
            self.warnings += severity == "warning"
        if len(self.issues) < KEEP:
            # the same few paths come back on every request: masked once each
            self.issues.append((verdict_seq, severity, rule, mask_repeated(location), *texts, refused))

    def verdict(self, status: int | None) -> Verdict:
        """The exchange's verdict, stored as its text (see migrations/0006_exchanges.sql)."""
        if status is not None and status >= 400 and status not in CONTENT_REFUSED:
            return Verdict.ERROR
        if self.failed or status in CONTENT_REFUSED:
            return Verdict.FAIL
        return Verdict.PASS if self.judged else Verdict.SKIP

    def finished(self, party: Party, status: int | None = None, moment: datetime | None = None) -> Appended:
        """The record to append, as of now (or ``moment``)."""
        moment = (moment or datetime.now(UTC)).astimezone(UTC)
        # the store's fixed-width instant (search/values.format_instant), at C speed
        recorded = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
        return self.finished_at(party, status, recorded, moment.astimezone(CHINA).date().isoformat())

    def finished_at(self, party: Party, status: int | None, recorded: str, day: str) -> Appended:
        """The record to append, of an exchange that ended at ``recorded`` (the store's instant
        form), on ``day`` in China."""
        verdicts = answered(self.verdicts, party.interaction, status) + [
            (kind, "", profile, passed, errors, warnings, count)
            for (kind, profile, passed), (count, errors, warnings) in self.folded.items()
        ]
        types = sorted(self.types)
        head = (
            recorded,
            day,
            party.client,
            party.organization,
            self.source or party.source,
            party.channel,
            party.interaction,
            status,
            self.verdict(status),
            " " + " ".join(types) + " " if types else " ",
            sum(self.types.values()),
            self.errors,
            self.warnings,
        )
        return head, verdicts, self.issues


def answered(verdicts: list[VerdictRow], interaction: str, status: int | None) -> list[VerdictRow]:
    """The verdicts of a request (or a batch's entry) as answered with ``status``: a refused
    create's name no id, as the one it was given names nothing, no such resource was stored,
    and a report naming it sent auditors looking for it."""
    if status is None or status < 400 or interaction != "create":
        return verdicts
    return [(row[0], "", *row[2:]) for row in verdicts]


def _words(issue: Mapping[str, Any]) -> str:
    """An OperationOutcome issue's text."""
    return str((issue.get("details") or {}).get("text") or issue.get("diagnostics") or "")


def _masked(zh: str, en: str, mask: Callable[[str], str] = mask_repeated) -> tuple[str, str]:
    """An issue's texts as recorded: masked, the Chinese standing in for a missing English.
    The same few messages come back on every request: masked once each (``mask_repeated``
    remembers them, but for the texts :func:`_worded` keeps itself)."""
    return mask(zh), mask(en or zh)


#: issues' texts as recorded, by message id and parameters: every entry of a transaction raises
#: the same dom-6 warning, worded in both languages once, not once an entry (2.3 µs each).  Only
#: parameters that are all text, and short, are kept: 1, 1.0 and True are one key but read
#: differently, and none of them equals a text, so asking with them finds nothing kept; a
#: client's long value quoted would hold its length for each entry kept.
_WORDED: dict[tuple[Any, ...], tuple[str, str]] = {}
#: how many are kept (all are forgotten when there are more: a file of unique errors does not
#: grow the worker's memory)
WORDED_KEPT = 4096


def _worded(issue: Issue) -> tuple[str, str]:
    """The issue's texts as recorded (:func:`_masked`): those kept here are masked by
    ``mask_text`` alone, as ``mask_repeated`` would only remember them a second time."""
    key = (issue.message_id, *issue.params.items())
    try:
        found = _WORDED.get(key)
    except TypeError:  # a parameter that is a list or a dict
        found = None
    if found is not None:
        return found
    texts = issue.params.values()
    if not (all(type(value) is str for value in texts) and sum(map(len, texts)) <= REPEATED_LENGTH):
        return _masked(issue.text("zh-CN"), issue.text("en"))
    if len(_WORDED) >= WORDED_KEPT:
        _WORDED.clear()
    found = _WORDED[key] = _masked(issue.text("zh-CN"), issue.text("en"), mask_text)
    return found


# -- the collector of the current context ----------------------------------------------------------
_current: ContextVar[Collector | None] = ContextVar("exchange", default=None)


def current() -> Collector | None:
    return _current.get()


def activate(collector: Collector | None) -> Token[Collector | None]:
    """Make ``collector`` the one notes go to, until :func:`deactivate` with the token."""
    return _current.set(collector)


def deactivate(token: Token[Collector | None]) -> None:
    _current.reset(token)


def noted_once(attempt: Callable[P, T]) -> Callable[P, T]:
    """``attempt``, of a write that may run again (:func:`~gateway.storage.store.retried`, a
    store's ``atomically``, a patch another write overtook), noting into the active exchange
    what the run that stood judged, once: each run after the first forgets what the runs
    before it noted.  The mark is taken here, before the first run; whatever the runs are
    given (a number, a transaction, a version) is passed on.  No active exchange: ``attempt``."""
    collector = _current.get()
    if collector is None:
        return attempt
    before = collector.mark()
    ran = False

    def again(*args: P.args, **kwargs: P.kwargs) -> T:
        nonlocal ran
        if ran:
            collector.rewind(before)
        ran = True
        return attempt(*args, **kwargs)

    return again


def judged(resource: Mapping[str, Any], profiles: Sequence[str], issues: Sequence[Issue]) -> None:
    """Note a validation in the active exchange, if there is one."""
    collector = _current.get()
    if collector is not None:
        collector.judge(resource, profiles, issues)


def returned(bundle: Mapping[str, Any]) -> None:
    """Note the resources a Bundle answer carries (a search page, a history, $everything), by
    type, in the active exchange, if there is one."""
    collector = _current.get()
    if collector is not None:
        for entry in bundle.get("entry", ()):
            resource = entry.get("resource")
            if isinstance(resource, dict):
                collector.carried(resource["resourceType"], 1)
            elif resource is not None:  # sent as stored (JSON text): its type is in its fullUrl
                collector.carried(entry["fullUrl"].rsplit("/", 2)[-2], 1)


def reason(message_id: str, texts: Mapping[str, str], location: str | None, severity: str = "error") -> None:
    """Note an issue with the active exchange as a whole, if there is one."""
    collector = _current.get()
    if collector is not None:
        collector.reason(message_id, texts, location, severity)


def found_after(issues: Sequence[Issue]) -> None:
    """Note issues a rule found after the validation an exchange's verdicts are noted from (a
    birth date moved past what the archive holds, judged once the writes are done), as a
    reader is told them (``gateway/security/withheld.py``), if there is an active exchange."""
    collector = _current.get()
    if collector is None:
        return
    for issue in map(in_full, issues):
        where, (zh, en) = issue.expression or issue.location or "", _masked(issue.text("zh-CN"), issue.text("en"))
        if any(row[2:6] == (issue.message_id, mask_repeated(where), zh, en) for row in collector.issues):
            continue  # a write its store ran again (a deadlock given up) judged it again: noted once
        collector.reason(issue.message_id, {"zh-CN": zh, "en": en}, where, issue.severity)


# -- retention ---------------------------------------------------------------------------------
class _Writable(Protocol):
    def transaction(self) -> Any: ...


def cutoff(retention_days: int, on: date | None = None) -> str | None:
    """The first day kept under a retention of ``retention_days`` (None: keep everything)."""
    if retention_days <= 0:
        return None
    return ((on or today()) - timedelta(days=retention_days - 1)).isoformat()


def purge(store: _Writable, before_day: str) -> int:
    """Delete the exchanges of every day before ``before_day``; returns how many went."""
    with store.transaction() as tx:
        tx.lock(ID_LOCK)
        return tx.exchanges.purge(before_day)


def append(tx: Any, exchanges: Sequence[Appended]) -> list[int]:
    """Append exchanges inside the caller's write transaction."""
    tx.lock(ID_LOCK)
    return tx.exchanges.append(exchanges)


# -- buffering -----------------------------------------------------------------------------------
class Later:
    """An exchange whose record is made when the log writes it: a request ends by keeping its
    collector, party, status and the time (nanoseconds), and the formatting is the log thread's:
    the store's instant text made once a second, the day in China once an hour (an aware
    datetime's formatting and conversion were 2 µs of each record)."""

    __slots__ = ("collector", "party", "status", "at")

    def __init__(self, collector: Collector, party: Party, status: int | None) -> None:
        self.collector, self.party, self.status, self.at = collector, party, status, time.time_ns()

    def row(self) -> Appended:
        recorded = instant_at(self.at)
        return self.collector.finished_at(self.party, self.status, recorded, china_day(recorded))


def china_day(recorded: str) -> str:
    """The day in China Standard Time of an instant in the store's form (which is UTC; China
    keeps one offset all year, so an hour is on one day), worked out once an hour."""
    return _day_of_hour(recorded[:13])


@lru_cache(maxsize=2)
def _day_of_hour(hour: str) -> str:
    """The day in China of an hour (``2026-12-06T16``, UTC): memoised by its period, as the
    store's instant text is (``storage/resources._second_text``); two are kept, as the log
    may still format the last moments of an hour while requests end in the next."""
    return datetime.fromisoformat(f"{hour}:00:00+00:00").astimezone(CHINA).date().isoformat()


class ExchangeLog(BatchWriter["Appended | Later"]):
    """One worker's buffer of exchange records (see ``gateway/batch_writer.py``); the rows of
    requests are made on the log's thread, off the request's path.  Hourly, a flush also purges
    what the retention policy no longer keeps."""

    def __init__(
        self,
        store: _Writable | Callable[[], _Writable],
        retention_days: int,
        interval: float = 0.2,
        batch: int = 1000,
        limit: int = 100_000,
        purge_every: float = 3600.0,
    ) -> None:
        super().__init__("exchanges", interval, batch, limit)
        self._store = store
        self.retention_days = retention_days
        self.purge_every = purge_every
        self._next_purge = 0.0

    @property
    def store(self) -> _Writable:
        """The store, or the one a callable gives (an app's log exists before its store opens)."""
        return self._store() if callable(self._store) else self._store

    def _prepare(self, item: Appended | Later) -> Appended | Later:
        return item.row() if isinstance(item, Later) else item

    def _due(self) -> bool:
        """Time to purge (never, when the policy keeps everything)."""
        return self.retention_days > 0 and time.monotonic() >= self._next_purge

    def _write(self, rows: list[Appended | Later]) -> None:
        first_day = cutoff(self.retention_days) if self._due() else None
        with self.store.transaction() as tx:
            append(tx, rows)  # type: ignore[arg-type] - _prepare made every item a row
            if first_day is not None:
                tx.exchanges.purge(first_day)
        if first_day is not None:
            self._next_purge = time.monotonic() + self.purge_every
