"""Portable SQL for measure populations: which subjects a criterion selects, and how many
subjects of a population fall in each stratum — counted by the database, so an archive of a
million people is never loaded into the process.

A criterion is a parsed search (``search_sql.where_sql`` gives its condition on
``resource r``).  It selects subjects of the measure's basis type: the matches themselves,
or the resources a reference parameter of the matches names (an Encounter's ``patient``).
A population is the subjects of the basis type meeting all its criteria; its count is
grouped by county (the first six digits of a GB/T 2260 code), sex and age band, computed
per subject from its own index rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.search.parameters import IDENTIFIED_PEOPLE
from gateway.search.query import SearchQuery
from gateway.storage.dialect import FENCE, LISTED, PLANNED_PER_CALL, listed
from gateway.storage.search_sql import PAST_EVERY_PREFIX, Sql, current_matching_sql, where_sql
from profiles.canonical import ID_CARD_SYSTEM

#: the index parameter holding a subject's division codes (Patient and Organization addresses)
DIVISION = "admin-division"


@dataclass(frozen=True)
class Selection:
    """A criterion: the search, and the reference parameter leading from its matches to the
    subjects (None when the matches are the subjects)."""

    query: SearchQuery
    via: str | None
    restriction: Sql | None = None
    #: a search the latest match of each subject (by its ``date``) must meet too
    latest: SearchQuery | None = None
    #: the matches naming their Patient by number alone, each (match id, Patient id), as
    #: :func:`named_sql` resolved them beforehand: they lead to their people too
    named: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Place:
    """How a subject's division is found: on its own index rows, or on those of the
    resource its reference parameter ``via`` names."""

    via: str | None = None


def _matches(selection: Selection, condition: Sql | None = None) -> Sql:
    """The ids of the current resources a criterion's search (``condition``: its condition,
    when not the search's own) and restriction match."""
    where, params = where_sql(selection.query) if condition is None else condition
    if selection.restriction is not None:
        where = f"({where}) AND ({selection.restriction[0]})"
        params = [*params, *selection.restriction[1]]
    return current_matching_sql("r.id", selection.query.resource_type, (where, params))


def named_sql(selection: Selection) -> Sql:
    """The (record id, Patient id) of every current record of the criterion's type naming its
    Patient by number alone through ``selection.via``: its ``IDENTIFIED_PEOPLE`` rows (system
    the parameter, value the person's match key) whose key the identity index says a Patient
    holds.  Asked before the counts, from those rows alone (one index range, empty in an
    archive no hospital writes so): which of them the criterion matches is
    :func:`named_matches_sql`'s, and what is left joins the count as a list, so that the
    count's own statement keeps its plan (a UNION of the by-number rows beside the reference
    rows made PostgreSQL rescan it for every candidate: one rate on 10,000 people went from
    1.1 s to 37-60 s)."""
    if selection.via is None:
        raise ValueError("only matches of another type than the subjects name them by number")
    return (
        f"SELECT s.id, pk.person_id {_BY_NUMBER}",
        [selection.query.resource_type, IDENTIFIED_PEOPLE, selection.via],
    )


#: the index rows of records (type, ``IDENTIFIED_PEOPLE``, the parameter) naming a person by a
#: number the identity index says they hold, joined to its holder: one shape for listing them
#: beforehand (:func:`named_sql`) and for ranking them among a person's matches
#: (:func:`_latest_subjects`)
_BY_NUMBER = (
    "FROM search_index s JOIN person_key pk ON pk.key = s.value WHERE s.type = ? AND s.name = ? AND s.system = ?"
)


def named_matches_sql(selection: Selection, ids: Sequence[str]) -> Sql:
    """The ids among ``ids`` (records of the criterion's type) that the criterion matches,
    each listed record tested on its own rows: every criterion probed
    (``where_sql(probed=True)``), behind a :data:`FENCE` and planned for its values
    (:data:`PLANNED_PER_CALL`).  Listing every match of the criterion first cost a rate a
    fifth more on SQLite, and PostgreSQL, even planning for the values, joined the list to
    every match (up to 1.5 s for 800 listed among 5,000 matches; 2.6 s by a plan for any
    values)."""
    where, params = where_sql(selection.query, probed=True)
    match, match_params = _matches(selection, (f"r.id = o.id AND {where}", params))
    return (
        f"{PLANNED_PER_CALL}SELECT o.id FROM resource o WHERE o.type = ? AND o.id IN ({LISTED}) "
        f"AND EXISTS (SELECT 1 FROM ({match} {FENCE}) y)",
        [selection.query.resource_type, listed(ids), *match_params],
    )


def subjects_sql(selection: Selection, basis: str) -> Sql:
    """The ids of the basis-type subjects a criterion selects (those its matches name by
    number, :attr:`Selection.named`, aside: :func:`_selected` adds them)."""
    matches = _matches(selection)
    if selection.via is None:
        return matches
    if selection.latest is not None:
        return _latest_subjects(selection, basis, matches)
    return (
        f"SELECT s.value FROM search_index s WHERE s.type = ? AND s.name = ? AND s.system = ? AND s.id IN ({matches[0]})",
        [selection.query.resource_type, selection.via, basis, *matches[1]],
    )


def _chosen(selection: Selection, basis: str) -> Sql:
    """The ids of the subjects a criterion selects: named by one of its matches' reference
    rows or, resolved beforehand, by number (a latest match's ranking takes those in itself)."""
    sql, params = subjects_sql(selection, basis)
    if not selection.named or selection.latest is not None:
        return sql, params
    people = sorted({person for _, person in selection.named})
    return f"{sql} UNION ALL {LISTED}", [*params, listed(people)]


#: the parameter a subject's matches are ordered by, for the latest of them
LATEST_BY = "date"


def _latest_subjects(selection: Selection, basis: str, matches: Sql) -> Sql:
    """The subjects whose latest match meets ``selection.latest`` as well, the latest of each
    person (two records of one person are judged together, as they are counted).  Latest by
    the match's ``date`` (its start; one without comes last), then by when it was written:
    two assessments of one day are told apart by the one recorded last.  The matches naming
    their person by number (:attr:`Selection.named`) are among each person's, found by id."""
    if selection.latest is None or selection.via is None:
        raise ValueError("a latest-match selection leads from its matches to their subjects")
    kind = selection.query.resource_type
    latest, latest_params = where_sql(selection.latest)
    rows = (
        "SELECT s.value AS subject, s.id AS id FROM search_index s "
        f"WHERE s.type = ? AND s.name = ? AND s.system = ? AND s.id IN ({matches[0]})"
    )
    rows_params: list[Any] = [kind, selection.via, basis, *matches[1]]
    if selection.named:
        rows += f" UNION ALL SELECT pk.person_id, s.id {_BY_NUMBER} AND s.id IN ({LISTED})"
        rows_params += [kind, IDENTIFIED_PEOPLE, selection.via, listed(sorted({m for m, _ in selection.named}))]
    person, person_params = _person("?", "u.subject") if basis == "Patient" else ("u.subject", [])
    ranked = (
        f"SELECT u.subject AS subject, u.id AS id, ROW_NUMBER() OVER (PARTITION BY {person} ORDER BY "
        "(SELECT MAX(d.low) FROM search_index d WHERE d.type = ? AND d.id = u.id AND d.name = ?) DESC NULLS LAST, "
        "(SELECT w.last_updated FROM resource w WHERE w.type = ? AND w.id = u.id) DESC, u.id DESC) AS turn "
        f"FROM ({rows}) u"
    )
    basis_params = [basis] if basis == "Patient" else []
    return (
        f"SELECT k.subject FROM ({ranked}) k WHERE k.turn = 1 "
        f"AND k.id IN (SELECT r.id FROM resource r WHERE r.type = ? AND {latest})",
        [*basis_params, *person_params, kind, LATEST_BY, kind, *rows_params, kind, *latest_params],
    )


def tally_sql(
    basis: str,
    selections: Sequence[Selection],
    *,
    within: str | None,
    place: Place,
    bands: Sequence[tuple[str, str]] = (),
) -> Sql:
    """Rows of (county, sex, age band, count) for the subjects meeting every selection.

    ``bands`` are (band, latest birth instant) from the oldest band down, the last one (the
    youngest) with bound ``""``.  Without bands (a basis other than Patient) the sex and band
    columns are NULL."""
    entries, entry_params = _chosen_entries(basis, selections, within, place)
    county, county_params = _county(place)
    person, person_params = "p.id", []
    if bands:
        sex = "(SELECT MIN(g.value) FROM search_index g WHERE g.type = p.type AND g.id = p.id AND g.name = 'gender')"
        born = "(SELECT MIN(b.low) FROM search_index b WHERE b.type = p.type AND b.id = p.id AND b.name = 'birthdate')"
        cases = " ".join("WHEN born <= ? THEN ?" for _, bound in bands if bound)
        band = f"CASE {cases} ELSE ? END"
        band_params: list[Any] = [value for name, bound in bands if bound for value in (bound, name)]
        band_params.append(bands[-1][0])
        person, person_params = _person()
    else:
        sex, born, band, band_params = "NULL", "NULL", "NULL", []
    # MATERIALIZED: computed once per subject (inlined, the planner repeats ``born`` in every
    # WHEN and again in the GROUP BY).  Then one row per person, whose records may disagree on
    # county, sex or birth date (the least of each is taken), so no person is in two strata.
    sql = (
        f"WITH {entries}, s AS MATERIALIZED (SELECT {county} AS county, {sex} AS sex, {born} AS born, "
        f"{person} AS person FROM resource p WHERE {_AMONG_CHOSEN}), "
        "t AS (SELECT MIN(county) AS county, MIN(sex) AS sex, MIN(born) AS born FROM s GROUP BY person) "
        f"SELECT county, sex, {band} AS band, COUNT(*) FROM t GROUP BY county, sex, band"
    )
    return sql, [*entry_params, *county_params, *person_params, basis, *band_params]


def _person(kind: str = "p.type", record: str = "p.id") -> Sql:
    """Who a Patient (``kind``/``record``, SQL expressions) is: its 身份证号 when it has one,
    else the record itself.  Two records of one person (written before the archive refused a
    second, or by a client that may not see the first) are one person in an indicator, which
    counts people."""
    id_card = (
        f"(SELECT MIN(c.value) FROM search_index c WHERE c.type = {kind} AND c.id = {record} "
        "AND c.name = 'identifier' AND c.system = ?)"
    )
    return f"COALESCE({id_card}, 'record:' || {record})", [ID_CARD_SYSTEM]


def members_sql(basis: str, selections: Sequence[Selection], *, within: str | None, place: Place) -> Sql:
    """The current content of the subjects meeting every selection (for a measure
    observation computed per subject, such as bed-days)."""
    entries, params = _chosen_entries(basis, selections, within, place)
    return f"WITH {entries} SELECT p.id, p.content FROM resource p WHERE {_AMONG_CHOSEN} ORDER BY p.id", [
        *params,
        basis,
    ]


def _chosen_entries(basis: str, selections: Sequence[Selection], within: str | None, place: Place) -> Sql:
    """``WITH`` entries ending in ``chosen``: the subjects meeting every selection (and lying
    ``within``), for a statement on ``resource p`` to keep those of them current
    (:data:`_AMONG_CHOSEN`).

    Each criterion's subjects are computed once, by themselves, and intersected (a set
    operation, which no plan nests per candidate).  Written as a condition on each candidate
    (``p.id IN (…)``), PostgreSQL's generic plan, which guesses that a code matches a row or
    two, walked a criterion's index rows once per candidate subject (10,000 people: one count
    over 60 s against 0.25 s now); each materialised alone and tested on the candidates, it
    scanned a whole set once per candidate (7.3 s for 10,000 × 5,000 rows)."""
    sets = [_chosen(selection, basis) for selection in selections]
    if within:
        sets.append(_located(place, basis, within))
    if not sets:
        raise ValueError("a population is chosen by one criterion at least")
    every = " INTERSECT ".join(f"SELECT subject FROM c{number}" for number in range(len(sets)))
    entries = [f"c{number}(subject) AS ({sql})" for number, (sql, _) in enumerate(sets)]
    entries.append(f"chosen(subject) AS MATERIALIZED ({every})")
    return ", ".join(entries), [value for _, params in sets for value in params]


#: the condition on ``resource p`` (its one parameter the basis type) that it is a current
#: subject :func:`_chosen_entries` chose
_AMONG_CHOSEN = "p.type = ? AND NOT p.deleted AND p.id IN (SELECT subject FROM chosen)"


def _county(place: Place) -> Sql:
    if place.via is None:
        return (
            "(SELECT MIN(SUBSTR(d.value, 1, 6)) FROM search_index d WHERE d.type = p.type AND d.id = p.id "
            "AND d.name = ?)",
            [DIVISION],
        )
    return (
        "(SELECT MIN(SUBSTR(d.value, 1, 6)) FROM search_index v JOIN search_index d ON d.type = v.system "
        "AND d.id = v.value AND d.name = ? WHERE v.type = p.type AND v.id = p.id AND v.name = ?)",
        [DIVISION, place.via],
    )


def _located(place: Place, basis: str, within: str) -> Sql:
    """The ids of the basis-type subjects with a division code starting with ``within`` (on
    their own rows or on those of the resource ``place.via`` names)."""
    prefix = [DIVISION, within, within + PAST_EVERY_PREFIX]
    if place.via is None:
        return (
            "SELECT d.id FROM search_index d WHERE d.type = ? AND d.name = ? AND d.value >= ? AND d.value < ?",
            [basis, *prefix],
        )
    inside = "SELECT d.type, d.id FROM search_index d WHERE d.name = ? AND d.value >= ? AND d.value < ?"
    return (
        f"SELECT v.id FROM search_index v WHERE v.type = ? AND v.name = ? AND (v.system, v.value) IN ({inside})",
        [basis, place.via, *prefix],
    )
