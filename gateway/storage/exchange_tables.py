"""The exchange tables (see migrations/0006_exchanges.sql): appended in batches by the API's
buffer, the ingest pipeline and the MLLP listener; read by the auditors' report.

Rows go in and come out as plain tuples; what they mean is ``gateway/exchanges.py`` (writing)
and ``conformance/report`` (reading).  The report's figures are SQL aggregates here — grouped
counts, never one row per exchange — so a report over a million exchanges reads a few
thousand rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from conformance.report.model import ERROR_SEVERITIES, Verdict
from gateway.storage.dialect import marks
from gateway.storage.store import Executor

#: the lock under which ids are assigned, so that appends from several processes never clash
ID_LOCK = "exchange-ids"

#: (recorded, day, client, organization, source, channel, interaction, status, verdict,
#: resource_types, resources, errors, warnings)
ExchangeRow = tuple[str, str, str, str, str, str, str, int | None, Verdict, str, int, int, int]
#: (resource_type, resource_id, profile, passed, errors, warnings, resources)
VerdictRow = tuple[str, str, str, bool, int, int, int]
#: (verdict_seq or None, severity, rule, location, text_zh, text_en, the verdict of the batch
#: entry it refused when not the exchange's, or None)
IssueRow = tuple[int | None, str, str, str, str, str, Verdict | None]
#: one exchange to append: its row, its verdicts, its issues
Appended = tuple[ExchangeRow, Sequence[VerdictRow], Sequence[IssueRow]]

COLUMNS = (
    "id, recorded, day, client, organization, source, channel, interaction, status, verdict, "
    "resource_types, resources, errors, warnings"
)
_VERDICT_COLUMNS = (
    "exchange_id",
    "seq",
    "resource_type",
    "resource_id",
    "profile",
    "passed",
    "errors",
    "warnings",
    "resources",
)
_ISSUE_COLUMNS = (
    "exchange_id",
    "seq",
    "verdict_seq",
    "severity",
    "rule",
    "location",
    "text_zh",
    "text_en",
    "exchange_verdict",
)
_IN_CHUNK = 500
#: the share of the exchanges' ids a report's range holds beyond which SQLite reads its
#: issues through ``exchange_issue_groups`` (every issue, in the order of the report's groups)
#: rather than by the range (its issues only, each looked up and sorted into its group): at a
#: million issues the index reads them all in 0.2–0.45 s of CPU, the range 1.1–1.4 s, and a
#: tenth of them in 0.11–0.14 s; a day's range reads far fewer
_WIDE_RANGE = 0.25
#: the child tables whose rows an index holds in the order of a report's groups
_GROUPED_INDEXES = frozenset({"exchange_issue"})
#: an issue that is an error (or fatal), in SQL: a bounded report reads these first
_IS_ERROR = "severity IN ({})".format(", ".join(f"'{severity}'" for severity in sorted(ERROR_SEVERITIES)))
_ISSUES_READ = "exchange_id, seq, verdict_seq, severity, rule, location, text_zh, text_en, exchange_verdict"


@dataclass(frozen=True, slots=True)
class ExchangeFilter:
    """Which exchanges a report covers; None means any.  Days are inclusive, YYYY-MM-DD."""

    since: str | None = None
    until: str | None = None
    organization: str | None = None
    source: str | None = None

    def where(self, alias: str = "") -> tuple[str, list[Any]]:
        prefix = f"{alias}." if alias else ""
        clauses, params = [], []
        for column, operator, value in (
            ("day", ">=", self.since),
            ("day", "<=", self.until),
            ("organization", "=", self.organization),
            ("source", "=", self.source),
        ):
            if value is not None:
                clauses.append(f"{prefix}{column} {operator} ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class Exchanges:
    def __init__(self, sql: Executor) -> None:
        self.sql = sql

    # -- writing ---------------------------------------------------------------------------
    def append(self, exchanges: Sequence[Appended]) -> list[int]:
        """Append exchanges with their verdicts and issues; returns their ids.  The caller
        holds the transaction's :data:`ID_LOCK`."""
        if not exchanges:
            return []
        # ids continue from the highest ever given, purged ones included (0010_exchange_purges)
        highest = self.sql.all("SELECT MAX(id) FROM exchange UNION ALL SELECT MAX(last_id) FROM exchange_purge")
        last = max((int(row[0]) for row in highest if row[0] is not None), default=0)
        ids = list(range(last + 1, last + 1 + len(exchanges)))
        heads = [(exchange_id, *head) for exchange_id, (head, _, _) in zip(ids, exchanges, strict=True)]
        verdicts, issues = [], []
        for exchange_id, (head, judged, found) in zip(ids, exchanges, strict=True):
            # most exchanges (every read and search) judged nothing: no rows to make
            if judged:
                verdicts += [(exchange_id, seq, *verdict) for seq, verdict in enumerate(judged)]
            if found:
                # an issue's verdict is its exchange's, but for the reason a batch's entry was
                # refused for (error): the report counts it a refusal's, not a rule broken
                verdict = head[8]
                issues += [(exchange_id, seq, *issue[:6], issue[6] or verdict) for seq, issue in enumerate(found)]
        self.sql.insert_many("exchange", COLUMNS.split(", "), heads)
        self.sql.insert_many("exchange_verdict", _VERDICT_COLUMNS, verdicts)
        self.sql.insert_many("exchange_issue", _ISSUE_COLUMNS, issues)
        return ids

    def purge(self, before_day: str) -> int:
        """Delete every exchange of a day before ``before_day`` (and its verdicts and issues);
        returns how many exchanges went."""
        row = self.sql.one("SELECT COUNT(*), MAX(id) FROM exchange WHERE day < ?", (before_day,))
        if not row or not row[0]:
            return 0
        self.sql.execute("INSERT INTO exchange_purge (purged_before, last_id) VALUES (?, ?)", (before_day, int(row[1])))
        doomed = "SELECT id FROM exchange WHERE day < ?"
        self.sql.execute(f"DELETE FROM exchange_issue WHERE exchange_id IN ({doomed})", (before_day,))
        self.sql.execute(f"DELETE FROM exchange_verdict WHERE exchange_id IN ({doomed})", (before_day,))
        self.sql.execute("DELETE FROM exchange WHERE day < ?", (before_day,))
        return int(row[0])

    def purged_before(self) -> str | None:
        """The day before which exchanges were purged (None when none ever was)."""
        row = self.sql.one("SELECT MAX(purged_before) FROM exchange_purge")
        return str(row[0]) if row and row[0] is not None else None

    # -- the report's aggregates -----------------------------------------------------------
    def counts(self, scope: ExchangeFilter) -> list[tuple[str, str, str, str, str, int]]:
        """(client, organization, source, day, verdict, exchanges): one row per group, read
        from the ``exchange_groups`` index alone."""
        where, params = scope.where()
        return [
            (r[1], r[2], r[3], r[0], r[4], int(r[5]))
            for r in self.sql.all(
                "SELECT day, client, organization, source, verdict, COUNT(*) FROM exchange"
                f"{where} GROUP BY day, client, organization, source, verdict",
                params,
            )
        ]

    def profile_counts(self, scope: ExchangeFilter) -> list[tuple[str, str, bool, int]]:
        """(profile, resource type, passed, resources)."""
        return [
            (r[0], r[1], bool(r[2]), int(r[3]))
            for r in self._grouped(
                "c.profile, c.resource_type, c.passed, SUM(c.resources)",
                "exchange_verdict",
                scope,
                "c.profile, c.resource_type, c.passed",
            )
        ]

    def rule_counts(self, scope: ExchangeFilter) -> list[tuple[str, str, str, int, int, str, str]]:
        """(rule, severity, verdict of the exchanges, occurrences, exchanges, an example text
        in zh-CN, in en): the exchange's verdict tells a rule broken from a refusal's reason.
        The example is the group's first issue (of its first exchange in scope), both
        languages of that one issue, looked up by key once the groups are counted: the least
        text of each language (``MIN``) carried every issue's two texts through the sort into
        groups, and could pair one issue's Chinese with another's English."""
        query = self._grouped_query(
            "c.rule, c.severity, c.exchange_verdict, COUNT(*) AS occurrences, "
            "COUNT(DISTINCT c.exchange_id) AS affected, MIN(c.exchange_id) AS first",
            "exchange_issue",
            scope,
            "c.rule, c.severity, c.exchange_verdict",
        )
        if query is None:
            return []
        grouped, params = query
        rows = self.sql.all(
            "SELECT g.rule, g.severity, g.exchange_verdict, g.occurrences, g.affected, x.text_zh, x.text_en "
            f"FROM ({grouped}) g JOIN exchange_issue x ON x.exchange_id = g.first AND x.seq = ("
            "SELECT MIN(y.seq) FROM exchange_issue y WHERE y.exchange_id = g.first AND y.rule = g.rule "
            "AND y.severity = g.severity AND y.exchange_verdict = g.exchange_verdict)",
            params,
        )
        return [(r[0], r[1], r[2], int(r[3]), int(r[4]), r[5], r[6]) for r in rows]

    def location_counts(self, scope: ExchangeFilter) -> list[tuple[str, str, str, str, int]]:
        """(rule, severity, location, verdict of the exchanges, occurrences): where each rule
        was broken, at each severity."""
        return [
            (r[0], r[1], r[2], r[3], int(r[4]))
            for r in self._grouped(
                "c.rule, c.severity, c.location, c.exchange_verdict, COUNT(*)",
                "exchange_issue",
                scope,
                "c.rule, c.severity, c.exchange_verdict, c.location",  # exchange_issue_groups' order
            )
        ]

    def _grouped(self, select: str, table: str, scope: ExchangeFilter, group: str) -> list[Any]:
        """The rows of :meth:`_grouped_query`."""
        query = self._grouped_query(select, table, scope, group)
        return self.sql.all(*query) if query is not None else []

    def _grouped_query(
        self, select: str, table: str, scope: ExchangeFilter, group: str
    ) -> tuple[str, list[Any]] | None:
        """A grouped query over the rows of a child table (alias ``c``) whose exchanges are in
        scope, with its parameters (None: no exchange is).  The rows are read by their
        exchange id range; when every exchange in that range is in scope (the usual case: a
        period up to now, ids rising with time), no row needs joining to its exchange.  A
        range holding most of the ids (:data:`_WIDE_RANGE`) of a table with an index in the
        groups' order is read through that index on SQLite, whose planner does not choose it
        while the range's own index may serve (it guesses any range a small one): the id is
        compared as ``+c.exchange_id``, which no index serves.  PostgreSQL's statistics tell
        it how much the range holds, and the ``+`` would hide that from it."""
        where, params = scope.where()
        span = self.sql.one(
            f"SELECT COUNT(*), MIN(id), MAX(id), (SELECT MIN(id) FROM exchange), (SELECT MAX(id) FROM exchange) "
            f"FROM exchange{where}",
            params,
        )
        if not span or not span[0]:
            return None
        count, low, high, first, last = (int(value) for value in span)
        wide = (
            self.sql.dialect.name == "sqlite"
            and table in _GROUPED_INDEXES
            and high - low + 1 > _WIDE_RANGE * (last - first + 1)
        )
        ranged = f"FROM {table} c WHERE {'+' if wide else ''}c.exchange_id BETWEEN ? AND ?"
        if count == high - low + 1:
            return f"SELECT {select} {ranged} GROUP BY {group}", [low, high]
        joined = scope.where("e")[0].replace(" WHERE ", " AND ")
        return (
            f"SELECT {select} FROM {table} c JOIN exchange e ON e.id = c.exchange_id "
            f"WHERE c.exchange_id BETWEEN ? AND ?{joined} GROUP BY {group}",
            [low, high, *params],
        )

    # -- drilling down ---------------------------------------------------------------------
    def failing(self, scope: ExchangeFilter, limit: int) -> tuple[list[Any], int]:
        """(the newest ``limit`` failing exchanges as full rows, how many failed in all)."""
        where, params = scope.where()
        where = (where + " AND" if where else " WHERE") + f" verdict = '{Verdict.FAIL}'"
        total = int(self.sql.one(f"SELECT COUNT(*) FROM exchange{where}", params)[0])
        rows = self.sql.all(f"SELECT {COLUMNS} FROM exchange{where} ORDER BY id DESC LIMIT ?", [*params, limit])
        return rows, total

    def get(self, exchange_id: int) -> Any | None:
        return self.sql.one(f"SELECT {COLUMNS} FROM exchange WHERE id = ?", (exchange_id,))

    def verdicts_of(self, ids: Iterable[int]) -> list[Any]:
        """(exchange_id, seq, resource_type, resource_id, profile, passed, errors, warnings,
        resources) of the given exchanges."""
        return self._children(
            "exchange_id, seq, resource_type, resource_id, profile, passed, errors, warnings, resources",
            "exchange_verdict",
            ids,
        )

    def issues_of(self, ids: Iterable[int], errors: bool | None = None) -> list[Any]:
        """(exchange_id, seq, verdict_seq, severity, rule, location, text_zh, text_en,
        exchange_verdict) of the given exchanges: all their issues, or (``errors`` True or
        False) only their errors and fatal ones, or only the others."""
        kind = "" if errors is None else ("AND " if errors else "AND NOT ") + _IS_ERROR
        return self._children(_ISSUES_READ, "exchange_issue", ids, f"{kind} ORDER BY exchange_id, seq")

    def first_issues(self, exchange_id: int, errors: bool, count: int) -> list[Any]:
        """The first ``count`` errors (or other issues) one exchange recorded, as
        :meth:`issues_of`: a bounded report reads no more of an exchange than it lists."""
        kind = ("" if errors else "NOT ") + _IS_ERROR
        return self.sql.all(
            f"SELECT {_ISSUES_READ} FROM exchange_issue WHERE exchange_id = ? AND {kind} ORDER BY seq LIMIT ?",
            (exchange_id, count),
        )

    def issue_kinds(self, ids: Iterable[int]) -> dict[int, tuple[int, int]]:
        """How many errors (and fatal issues) and how many other issues each of the given
        exchanges recorded (those with none left out): what a report lists of each, and how
        many issues each recorded, in one grouped query."""
        counted = f"exchange_id, SUM(CASE WHEN {_IS_ERROR} THEN 1 ELSE 0 END), COUNT(*)"
        rows = self._children(counted, "exchange_issue", ids, "GROUP BY exchange_id")
        return {int(exchange_id): (int(errors), int(count) - int(errors)) for exchange_id, errors, count in rows}

    def _children(
        self, columns: str, table: str, ids: Iterable[int], tail: str = "ORDER BY exchange_id, seq"
    ) -> list[Any]:
        wanted = sorted(set(ids))
        found: list[Any] = []
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            found += self.sql.all(f"SELECT {columns} FROM {table} WHERE exchange_id IN ({marks(chunk)}) {tail}", chunk)
        return found

    def count(self) -> int:
        return int(self.sql.one("SELECT COUNT(*) FROM exchange")[0])
