"""Portable SQL for "whom an organisation serves", from the search index alone.

An elderly-care organisation serves a person when one of these is active, found through the
search index rows (see ``search_sql.py`` for their encoding), so no JSON is read:

- a 养老 stay: an Encounter whose ``service-provider`` is the organisation, status planned,
  arrived, in-progress or on leave;
- a 医养签约: an active CarePlan the organisation authored or contributes to;
- a family-doctor contract: an active CarePlan whose ``care-team`` the organisation manages;
- an active Consent (yy-consent) permitting sharing with the organisation;

unless an active Consent refuses it: one naming the organisation, or one naming no
organisation at all (a refusal to share with every elderly-care organisation).  A Consent
counts, either way, only while it is in force: its ``provision.period`` (search parameter
``period``) holds the moment of the request, or it has none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.storage.dialect import FENCE, PLANNED_PER_CALL, marks

Sql = tuple[str, list[Any]]
#: the condition that the person whose id a column (given) holds is served
Served = Callable[[str], Sql]

ACTIVE_STAY = ("planned", "arrived", "in-progress", "onleave")


def _rows(kind: str, name: str, system: str | None = None) -> str:
    """Ids of resources of ``kind`` with an index row ``name`` (= ?, or IN (…) given after)."""
    target = f" AND x.system = '{system}'" if system else ""
    return f"SELECT x.id FROM search_index x WHERE x.type = '{kind}' AND x.name = '{name}'{target}"


def _people(kind: str, name: str, conditions: list[str]) -> str:
    """The Patient ids the ``name`` reference of resources of ``kind`` meeting every condition
    points at."""
    where = "".join(f" AND p.id IN ({condition})" for condition in conditions)
    return (
        f"SELECT p.value FROM search_index p WHERE p.type = '{kind}' AND p.name = '{name}' "
        f"AND p.system = 'Patient'{where}"
    )


def _holds(consent: str) -> str:
    """The Consent whose id is ``{consent}.id`` is active and in force at the moment given twice
    after: a period holding it, or no period at all (an open end is indexed as the far past or
    future, so it holds).  Correlated on that one Consent's own index rows, so its cost does not
    grow with the number of Consents in the archive."""
    owner = f"{consent}.id"
    active = _row("h", "Consent", owner, "status", "h.value = 'active'")
    in_force = _row("h", "Consent", owner, "period", "h.low <= ? AND h.high >= ?")
    return f"{active} AND ({in_force} OR NOT {_row('h', 'Consent', owner, 'period')})"


def _consent_says(provision: str) -> str:
    """The Consent whose id is ``c.id`` is of ``provision`` type (permit, deny)."""
    return _row("t", "Consent", "c.id", "provision-type", f"t.value = '{provision}'")


def _refused(person: str) -> str:
    """A Consent of ``person`` (a column) in force at the moment given twice after refuses the
    organisation given third: naming it, or naming no organisation at all."""
    return (
        "SELECT 1 FROM search_index c WHERE c.type = 'Consent' AND c.name = 'patient' AND c.system = 'Patient' "
        f"AND c.value = {person} AND {_consent_says('deny')} AND {_holds('c')} "
        f"AND ({_row('a', 'Consent', 'c.id', 'actor', 'a.value = ?', 'Organization')} "
        f"OR NOT {_row('a', 'Consent', 'c.id', 'actor')})"
    )


def served_patients(organization: str, now: str) -> Sql:
    """A subquery selecting the ids of the Patients ``organization`` serves at ``now`` (a store
    instant: ``resources.now_instant()``)."""
    status_in = marks(ACTIVE_STAY)
    stays = _people(
        "Encounter",
        "subject",
        [
            _rows("Encounter", "service-provider", "Organization") + " AND x.value = ?",
            _rows("Encounter", "status") + f" AND x.value IN ({status_in})",
        ],
    )
    plans = _people(
        "CarePlan",
        "subject",
        [
            "SELECT x.id FROM search_index x WHERE x.type = 'CarePlan' AND x.name IN ('author', 'contributor') "
            "AND x.system = 'Organization' AND x.value = ?",
            _rows("CarePlan", "status") + " AND x.value = 'active'",
        ],
    )
    contracts = _people(
        "CarePlan",
        "subject",
        [
            _rows("CarePlan", "care-team", "CareTeam")
            + " AND x.value IN (SELECT t.id FROM search_index t WHERE t.type = 'CareTeam' "
            "AND t.name = 'organization' AND t.system = 'Organization' AND t.value = ?)",
            _rows("CarePlan", "status") + " AND x.value = 'active'",
        ],
    )
    # permits are found from the organisation's own Consents (the index rows naming it as
    # actor); a refusal is looked for only among the Consents of each person otherwise served,
    # so neither grows with the Consents of everyone else in the archive
    permits = (
        "SELECT p.value FROM search_index c JOIN search_index p ON p.type = 'Consent' AND p.id = c.id "
        "AND p.name = 'patient' AND p.system = 'Patient' WHERE c.type = 'Consent' AND c.name = 'actor' "
        f"AND c.system = 'Organization' AND c.value = ? AND {_consent_says('permit')} AND {_holds('c')}"
    )
    sql = (
        f"SELECT s.value FROM ({stays} UNION {plans} UNION {contracts} UNION {permits}) s "
        f"WHERE NOT EXISTS ({_refused('s.value')})"
    )
    moment = [now, now]  # each Consent's period is asked about the moment
    params = [organization, *ACTIVE_STAY, organization, organization, organization, *moment, *moment, organization]
    return sql, params


def serves(organization: str, now: str) -> Served:
    """The condition that ``organization`` serves at ``now`` the one person whose id a column
    holds: the rule of :func:`served_patients`, asked of that person alone.

    Every part starts from the person's own index rows (the stays, plans and Consents naming
    them, through ``search_index_value``) and probes those few resources' rows, so the cost
    is that of one person's record.  Judging one resource (a read, an included resource) by
    ``IN (served_patients)`` made both databases list everyone the organisation serves first:
    about 200 ms a resource on SQLite with 6,667 people served among 20,000."""

    def condition(person: str) -> Sql:
        status_in = marks(ACTIVE_STAY)
        active = _own("CarePlan", "status", "x.value = 'active'")
        stays = _naming(
            "Encounter",
            "subject",
            person,
            [
                _own("Encounter", "service-provider", "x.value = ?", "Organization"),
                _own("Encounter", "status", f"x.value IN ({status_in})"),
            ],
        )
        authored = _row("x", "CarePlan", "p.id", ("author", "contributor"), "x.value = ?", "Organization")
        plans = _naming("CarePlan", "subject", person, [authored, active])
        managed = _row("t", "CareTeam", "x.value", "organization", "t.value = ?", "Organization")
        contracts = _naming("CarePlan", "subject", person, [_own("CarePlan", "care-team", managed, "CareTeam"), active])
        actor = _row("a", "Consent", "c.id", "actor", "a.value = ?", "Organization")
        permits = (
            "EXISTS (SELECT 1 FROM search_index c WHERE c.type = 'Consent' AND c.name = 'patient' "
            f"AND c.system = 'Patient' AND c.value = {person} AND {actor} AND {_consent_says('permit')} "
            f"AND {_holds('c')})"
        )
        sql = f"(({stays} OR {plans} OR {contracts} OR {permits}) AND NOT EXISTS ({_refused(person)}))"
        params = [organization, *ACTIVE_STAY, organization, organization, organization, now, now, now, now]
        return sql, [*params, organization]

    return condition


def person_served(served: Served, person: str) -> Sql:
    """A statement selecting a row when ``served`` (see :func:`serves`) accepts ``person``: for
    judging by content the few resources one person's answer holds (``$everything``), each
    person they name asked alone rather than everyone served listed first.

    Not :data:`PLANNED_PER_CALL`: the one person's rows are read first whatever the values,
    and each resource's own rows behind a fence (:func:`_row`), so PostgreSQL's one generic
    plan is the plan planned for the values (``test_access.py`` pins it on a home serving
    many), and planning it for each call cost 4–5 ms against 0.05–0.2 ms to run it."""
    sql, params = served("one.id")
    return f"SELECT 1 FROM (SELECT ? AS id) one WHERE {sql}", [person, *params]


def served_among(people: Sql) -> Served:
    """The condition that a person is among ``people`` (a subquery selecting ids)."""
    return lambda person: (f"{person} IN ({people[0]})", list(people[1]))


def _naming(kind: str, name: str, person: str, conditions: list[str]) -> str:
    """A resource of ``kind`` whose ``name`` reference points at ``person`` (a column) exists
    and meets every condition (each correlated on its id, ``p.id``)."""
    where = "".join(f" AND {condition}" for condition in conditions)
    return (
        f"EXISTS (SELECT 1 FROM search_index p WHERE p.type = '{kind}' AND p.name = '{name}' "
        f"AND p.system = 'Patient' AND p.value = {person}{where})"
    )


def _own(kind: str, name: str, test: str, system: str | None = None) -> str:
    """The resource ``p`` (of ``kind``) has an index row ``name`` (alias ``x``) meeting ``test``."""
    return _row("x", kind, "p.id", name, test, system)


def _row(
    alias: str, kind: str, owner: str, name: str | tuple[str, ...], test: str = "", system: str | None = None
) -> str:
    """The resource of ``kind`` whose id the column ``owner`` holds has an index row ``name``
    (one of them, given several) meeting ``test`` (on ``alias``'s value, low and high).  Its
    own rows are selected first, behind a :data:`FENCE`, and tested after: a plan made for
    any values (PostgreSQL's generic plan of a prepared statement) otherwise guessed that an
    organisation's value matches a row or two, and walked every stay of the organisation for
    each of the person's instead of the stay's own few rows; nor can the test become a hashed
    list of every resource meeting it (every Consent in force)."""
    names = f"= '{name}'" if isinstance(name, str) else "IN (" + ", ".join(f"'{n}'" for n in name) + ")"
    target = f" AND {alias}.system = '{system}'" if system else ""
    return (
        f"EXISTS (SELECT 1 FROM (SELECT {alias}.value, {alias}.low, {alias}.high FROM search_index {alias} "
        f"WHERE {alias}.type = '{kind}' AND {alias}.id = {owner} AND {alias}.name {names}{target} {FENCE}) {alias}"
        + (f" WHERE {test})" if test else ")")
    )


def newly_served(organization: str, since: str, now: str) -> Sql:
    """A subquery selecting the Patients whose service relationship with ``organization`` may
    have begun after ``since``: a stay or 签约 written since then, a contract (its CarePlan or
    its team) written since then, or a Consent of theirs written since then (a permit given, a
    refusal withdrawn) or whose period began or ended since then (a permit in force, a refusal
    lapsed); a Consent deleted since then has no index rows left, and
    ``Access.newly_served_people`` adds its people from its last version.  An incremental
    export sends such a person's whole record: their older resources were hidden from the
    organisation's previous export.  Whether a relation written since then
    is new or only changed is not told apart; sending a record twice is harmless, missing it is
    not."""
    written = "SELECT w.id FROM resource w WHERE w.type = '{kind}' AND w.last_updated > ?"
    stays = _people(
        "Encounter",
        "subject",
        [
            _rows("Encounter", "service-provider", "Organization") + " AND x.value = ?",
            written.format(kind="Encounter"),
        ],
    )
    plans = _people(
        "CarePlan",
        "subject",
        [
            "SELECT x.id FROM search_index x WHERE x.type = 'CarePlan' AND x.name IN ('author', 'contributor') "
            "AND x.system = 'Organization' AND x.value = ?",
            written.format(kind="CarePlan"),
        ],
    )
    teams = _people(
        "CarePlan",
        "subject",
        [
            _rows("CarePlan", "care-team", "CareTeam")
            + " AND x.value IN (SELECT t.id FROM search_index t WHERE t.type = 'CareTeam' "
            "AND t.name = 'organization' AND t.system = 'Organization' AND t.value = ?) "
            f"AND (x.id IN ({written.format(kind='CarePlan')}) OR x.value IN ({written.format(kind='CareTeam')}))",
        ],
    )
    consents = _people(
        "Consent",
        "patient",
        [
            written.format(kind="Consent")
            + " UNION SELECT x.id FROM search_index x WHERE x.type = 'Consent' AND x.name = 'period' "
            "AND ((x.low > ? AND x.low <= ?) OR (x.high > ? AND x.high <= ?))",
        ],
    )
    sql = f"{stays} UNION {plans} UNION {teams} UNION {consents}"
    moments = [since, now, since, now]
    return sql, [organization, since, organization, since, organization, since, since, since, *moments]


def visible_condition(
    kind: str,
    compartment_params: Sequence[str],
    served: Served,
    naming_params: Sequence[str] = (),
    one: bool = False,
    identified: str | None = None,
    placed: Sql | None = None,
) -> Sql | None:
    """The condition on ``resource r`` of type ``kind`` that keeps only what concerns served
    people alone: a Patient served; any other resource naming no one unserved through
    ``naming_params`` (its references that may point at a Patient) and, in the Patient
    compartment, a served person through ``compartment_params``.  None when the type holds no
    one's personal data (an Organization).  The "no one unserved" test looks at the one
    resource's own index rows (``search_index_owner``), never at the whole type's.  ``one``:
    for a statement about one resource or a few candidates each judged alone (see
    :func:`serves`), whose compartment is then looked up from its own rows rather than from
    those of everyone served; its plan does not depend on the values (each candidate's own
    rows are probed, behind fences), so it is prepared once, whereas one over everyone served
    is :data:`PLANNED_PER_CALL`.  ``identified``: the index
    name of the people it names by number alone (their match keys, each row's system the
    parameter naming them): each must be held in the identity index (``person_key``) by a
    served person, asked as it is read, so a number no one holds yet hides the resource and
    one registered later is judged by its holder; one a compartment parameter names places
    it in that person's compartment as a reference by id does.  ``placed``: the condition
    that places it among a served person's records otherwise (:func:`names_records`, whose
    records the caller judges with :func:`targets_shown`)."""
    planned = "" if one else f"{PLANNED_PER_CALL} "
    if kind == "Patient":
        sql, params = served("r.id")
        return f"{planned}{sql}", params
    conditions: list[str] = []
    params: list[Any] = []
    if compartment_params:
        sql, compartment = _in_served_compartment(kind, compartment_params, served, one, identified)
        if placed is not None:
            sql, compartment = f"({sql} OR {placed[0]})", [*compartment, *placed[1]]
        conditions.append(sql)
        params += compartment
    if naming_params:
        stranger, stranger_params = _names_unserved(
            "vn", "vn.type = ? AND vn.id = r.id", [kind], naming_params, (), served, identified
        )
        conditions.append(f"NOT {stranger}")
        params += stranger_params
    if not conditions:
        return None
    return planned + " AND ".join(conditions), params


def _in_served_compartment(
    kind: str, compartment_params: Sequence[str], served: Served, one: bool, identified: str | None
) -> Sql:
    """The condition that ``resource r`` (of ``kind``) is in the Patient compartment of a
    served person: a compartment parameter names them by id (``one``: looked up from the
    resource's own rows; otherwise from the served people's, listed first) or, given
    ``identified``, by number (its row's system is the parameter's code).  Whether whoever
    holds that number, or is named so by id for ``one``, is served is
    :func:`visible_condition`'s test of everyone the resource names, which a resource with
    such a row always meets (its compartment parameters may point at a Patient, so they are
    among its naming ones): here its own rows are probed for one alone, so the served
    people's rule is not planned again (PostgreSQL plans these statements for each call's
    values, each copy anew)."""
    names = marks(compartment_params)
    if one:
        by_id = (
            f"EXISTS (SELECT 1 FROM search_index vc WHERE vc.type = ? AND vc.id = r.id AND vc.name IN ({names}) "
            "AND vc.system = 'Patient')"
        )
        params = [kind, *compartment_params]
    else:
        person, person_params = served("vc.value")
        by_id = (
            f"r.id IN (SELECT vc.id FROM search_index vc WHERE vc.type = ? AND vc.name IN ({names}) "
            f"AND vc.system = 'Patient' AND {person})"
        )
        params = [kind, *compartment_params, *person_params]
    if identified is None:
        return by_id, params
    by_number = (
        "EXISTS (SELECT 1 FROM search_index vp WHERE vp.type = ? AND vp.id = r.id AND vp.name = ? "
        f"AND vp.system IN ({names}))"
    )
    return f"({by_id} OR {by_number})", [*params, kind, identified, *compartment_params]


def names_records(kind: str, names: Sequence[str], types: Sequence[str]) -> Sql:
    """The condition that ``resource r`` of ``kind`` names, through ``names``, a record of one
    of ``types`` that the archive holds (its own index rows, as the owner index finds them):
    what places a Provenance of a resident's reading alone among her records, once
    :func:`targets_shown` has judged every record it names.  One never stored places it
    nowhere, as it hides nothing."""
    return (
        f"EXISTS (SELECT 1 FROM search_index vr WHERE vr.type = ? AND vr.id = r.id AND vr.name IN ({marks(names)}) "
        f"AND vr.system IN ({marks(types)}) AND EXISTS (SELECT 1 FROM resource vh WHERE vh.type = vr.system "
        "AND vh.id = vr.value))",
        [kind, *names, *types],
    )


def targets_shown(
    kind: str,
    names: Sequence[str],
    served: Served,
    compartment: Mapping[str, Sequence[str]],
    naming: Mapping[str, Sequence[str]],
    hidden: Sequence[str],
    identified: str,
) -> Sql:
    """The condition that every personal record (other than a Patient, whom
    :func:`visible_condition` judges as a person named) that ``resource r`` of ``kind`` names
    through ``names`` is shown by the rule :func:`visible_condition` applies, judged from that
    record's own index rows: in the Patient compartment of a served person (by id or by
    number, through ``compartment``'s parameters of its type), naming no one unserved (through
    ``naming``'s, by id, and by number as ``identified`` rows), whatever records it names in
    turn (one level).  ``hidden``: types never shown this way (opaque ones).  A record
    deleted has no rows, and hides ``r`` if its type is in the compartment; one never stored
    (no ``resource`` row) hides nothing, its id telling nothing about anyone.  A
    Provenance's target, a reading's members: their ids tell whose records these are.

    ``served`` is asked once, of everyone a record names (:func:`_names_unserved`): a record
    is in someone's compartment when it names anyone there (a compartment parameter is among
    the naming ones, so whoever it names is asked as they are).  Three copies of the served
    people's rule, each planned anew for each call's values on PostgreSQL, doubled a home's
    CarePlan and Encounter searches there."""
    personal = sorted({*compartment, *naming, *hidden} - {"Patient"})
    placing = [f"{target} {name}" for target, params in compartment.items() for name in params]
    naming_pairs = [f"{target} {name}" for target, params in naming.items() for name in params]
    # the rows' names listed too, so the owner index (type, id, name) finds them
    placing_names = sorted({name for params in compartment.values() for name in params})
    naming_names = sorted({name for params in naming.values() for name in params})
    own = "{a}.type = vt.system AND {a}.id = vt.value"
    in_compartment = (
        f"(vt.system NOT IN ({marks(compartment)}) "
        f"OR EXISTS (SELECT 1 FROM search_index tc WHERE {own.format(a='tc')} AND tc.name IN ({marks(placing_names)}) "
        f"AND tc.system = 'Patient' AND tc.type || ' ' || tc.name IN ({marks(placing)})) "
        f"OR EXISTS (SELECT 1 FROM search_index tp WHERE {own.format(a='tp')} AND tp.name = ? "
        f"AND tp.type || ' ' || tp.system IN ({marks(placing)})))"
    )
    shown = f"vt.system NOT IN ({marks(hidden)}) AND {in_compartment}"
    stranger, stranger_params = _names_unserved(
        "tn", own.format(a="tn"), [], naming_names, naming_pairs, served, identified
    )
    # two tests of the records, not one test of either: PostgreSQL planned the served people's
    # rule under an OR about ten times as long (26 ms against 3 for a home's CarePlan); each
    # behind a fence, so that it probes each candidate's own few targets: PostgreSQL otherwise
    # joined the targets of every record of the type, 1,000 candidates against 4,000 others'
    # visits (1.4 s of a home's page of all Observations among 5,000 people)
    targets = (
        f"NOT EXISTS (SELECT 1 FROM search_index vt WHERE vt.type = ? AND vt.id = r.id "
        f"AND vt.name IN ({marks(names)}) AND vt.system IN ({marks(personal)}) "
        "AND EXISTS (SELECT 1 FROM resource vs WHERE vs.type = vt.system AND vs.id = vt.value) AND "
    )
    found = [kind, *names, *personal]
    sql = f"{targets}NOT ({shown}) {FENCE}) AND {targets}{stranger} {FENCE})"
    params = [
        *found,
        *hidden,
        *compartment,
        *placing_names,
        *placing,
        identified,
        *placing,
        *found,
        *stranger_params,
    ]
    return sql, params


def _names_unserved(
    alias: str,
    owner: str,
    owner_params: list[Any],
    names: Sequence[str],
    pairs: Sequence[str],
    served: Served,
    identified: str | None,
) -> Sql:
    """The condition that a resource (its rows ``alias`` meeting ``owner``) names someone
    ``served`` does not accept: by id, through ``names`` (narrowed to ``pairs``, "type name",
    when given), or by number as ``identified`` rows, the holder of each asked (no holder is
    the id '', which no one served has: a NULL would be unknown, not unserved).  One scan of
    its own rows, whoever they name asked about together: on PostgreSQL each copy of the
    served people's rule is planned anew for each call's values."""
    by_id = f"{alias}.system = 'Patient'"
    if pairs:
        by_id += f" AND {alias}.type || ' ' || {alias}.name IN ({marks(pairs)})"
    listed, person, holders, rows = [*names], f"{alias}.value", "", by_id
    if identified is not None:
        number = f"{alias}.name = '{identified}'"
        listed.append(identified)
        person = f"CASE WHEN {number} THEN COALESCE(pk.person_id, '') ELSE {alias}.value END"
        holders = f" LEFT JOIN person_key pk ON {number} AND pk.key = {alias}.value"
        rows = f"({number} OR ({by_id}))"
    unserved, unserved_params = served(person)
    sql = (
        f"EXISTS (SELECT 1 FROM search_index {alias}{holders} WHERE {owner} AND {alias}.name IN ({marks(listed)}) "
        f"AND {rows} AND NOT ({unserved}))"
    )
    return sql, [*owner_params, *listed, *pairs, *unserved_params]
