"""A visit written while its person's birth date is moved later: the two writes conflict, so
the archive never keeps a visit dated before the birth it ends up with.  The visit is judged
against the birth date its transaction finds (its validation ran before, against the one
before the move), and on PostgreSQL, where the two transactions run side by side, the visit
holds its person's row until it commits: a move waits for it and then finds it, and a visit
waiting for a move reads the moved birth date.  Each race is made with two threads paused at
a chosen step, on real databases."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from gateway.fhir.errors import FhirError
from gateway.fhir.repository import Repository, Written
from gateway.storage.store import Transaction
from tests.conftest import MakeServices
from tests.gateway.test_birth_date_moved import person, visit

PERSON_ID = "zhang-xiuying"  # born 1949-12-31
VISITED = "1960-03-01T09:30:00+08:00"
LATER = "1965-01-01"


def status_of(write: Callable[[], Written]) -> int:
    """The write's status, or the status refusing it."""
    try:
        return write().status
    except FhirError as refused:
        return refused.status


def write_visit(repository: Repository) -> Written:
    return repository.create(visit(VISITED))


def move_birth(repository: Repository) -> Written:
    return repository.update("Patient", PERSON_ID, person(LATER))


@pytest.fixture
def repository(make_services: MakeServices) -> Repository:
    made = make_services("reject").repository
    made.update("Patient", PERSON_ID, person())
    return made


class Pause:
    """Holds the thread named ``name`` at a step until :meth:`release`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reached, self.released = threading.Event(), threading.Event()
        #: the PostgreSQL backend of the held transaction, when it pauses in one
        self.backend: int | None = None

    def hold(self, tx: Transaction | None = None) -> None:
        if threading.current_thread().name != self.name:
            return
        if tx is not None:
            self.backend = tx.sql.one("SELECT pg_backend_pid()")[0]
        self.reached.set()
        self.released.wait(30)

    def release(self) -> None:
        self.released.set()


def run(name: str, write: Callable[[], Written], results: dict[str, int]) -> threading.Thread:
    def target() -> None:
        results[name] = status_of(write)

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


def moved_while_validated(repository: Repository, monkeypatch: pytest.MonkeyPatch) -> Written:
    """The visit validated against 1949-12-31 and held; the move to 1965 then finds no visit;
    then the visit goes on, and is returned as written (a refusal is raised)."""
    pause, checked = Pause("visit"), repository.checked

    def validated_then_held(resource: dict[str, Any], path: str = "", references: Any = None) -> Any:
        issues = checked(resource, path, references)
        pause.hold()
        return issues

    monkeypatch.setattr(repository, "checked", validated_then_held)
    written: list[Written | FhirError] = []

    def visiting() -> None:
        try:
            written.append(write_visit(repository))
        except FhirError as refused:
            written.append(refused)

    thread = threading.Thread(target=visiting, name="visit")
    thread.start()
    assert pause.reached.wait(30)
    assert move_birth(repository).status == 200
    pause.release()
    thread.join(30)
    [visited] = written
    if isinstance(visited, FhirError):
        raise visited
    return visited


def test_a_visit_validated_before_its_persons_birth_date_moved_is_refused(
    repository: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert status_of(lambda: moved_while_validated(repository, monkeypatch)) == 422


def test_a_visit_validated_before_the_move_is_written_with_its_issue_under_warn(
    make_services: MakeServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted with warnings, the visit carries the rule's verdict against the moved date."""
    lenient = make_services("warn").repository
    lenient.update("Patient", PERSON_ID, person())
    issues = moved_while_validated(lenient, monkeypatch).issues
    assert [(i.message_id, i.params["birthDate"]) for i in issues] == [("rule.before-birth", LATER)]


def blocked_or_done(database_url: str, pause: Pause, thread: threading.Thread) -> None:
    """Wait until ``thread`` waits for a lock the paused transaction holds, or has ended."""
    with psycopg.connect(database_url, autocommit=True) as watcher:
        while thread.is_alive():
            query = "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
            if watcher.execute(query, (pause.backend,)).fetchone()[0]:
                return
            time.sleep(0.005)


def race_in_transactions(
    repository: Repository, monkeypatch: pytest.MonkeyPatch, database_url: str, first: str
) -> dict[str, int]:
    """``first`` (``visit`` or ``move``) pauses inside its transaction once its work is done,
    before it commits; the other runs until it waits for it (or ends), then the first commits."""
    pause, atomically = Pause(first), repository.store.atomically

    def held_before_commit(work: Callable[[Transaction], Any]) -> Any:
        def worked(tx: Transaction) -> Any:
            done = work(tx)
            pause.hold(tx)
            return done

        return atomically(worked)

    monkeypatch.setattr(repository.store, "atomically", held_before_commit)
    writes = {"visit": lambda: write_visit(repository), "move": lambda: move_birth(repository)}
    second = "move" if first == "visit" else "visit"
    results: dict[str, int] = {}
    holding = run(first, writes[first], results)
    assert pause.reached.wait(30)
    waiting = run(second, writes[second], results)
    blocked_or_done(database_url, pause, waiting)
    pause.release()
    holding.join(30)
    waiting.join(30)
    return results


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_visit_committing_after_a_move_that_judged_without_it_is_refused(
    repository: Repository, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """The move judged the stored visits and has not committed; the visit, validated against
    the old birth date, waits for it and is judged against the new one."""
    assert race_in_transactions(repository, monkeypatch, database_url, "move") == {"move": 200, "visit": 422}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_move_while_a_visit_is_uncommitted_waits_and_is_refused(
    repository: Repository, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """The visit is written and judged, not committed; the move waits for it, then finds it."""
    assert race_in_transactions(repository, monkeypatch, database_url, "visit") == {"visit": 201, "move": 422}
