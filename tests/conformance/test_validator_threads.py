"""One validator serves every thread of a worker (gthread workers, MLLP connections, export
jobs): what it learns is shared, where it is in a walk is not."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import conformance.invariants as invariants
from conformance.fhirpath_scope import Scope
from conformance.invariants import compile_invariant
from conformance.validator import Validator
from tests.conftest import load_example


def test_a_thread_meeting_an_invariant_while_another_compiles_it_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiling = threading.Event()
    compile_expression = invariants.fhirpathpy.compile

    def slow_compile(*args: Any, **kwargs: Any) -> Any:
        compiling.set()
        time.sleep(0.2)  # the second thread checks meanwhile
        return compile_expression(*args, **kwargs)

    monkeypatch.setattr(invariants.fhirpathpy, "compile", slow_compile)
    invariant = compile_invariant("thread-1", "error", "given.exists() and family.count() < 7", "unique to this test")
    name = {"family": "王", "given": ["华"]}
    verdicts: dict[str, bool | str] = {}
    first = threading.Thread(
        target=lambda: verdicts.setdefault("first", invariant.check(name, Scope(name, name), "HumanName"))
    )
    first.start()
    assert compiling.wait(5)
    verdicts["second"] = invariant.check(name, Scope(name, name), "HumanName")
    first.join()
    assert verdicts == {"first": True, "second": True}


def test_a_walk_keeps_its_own_frames_while_another_thread_walks(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two walks are interleaved so that the patient's ends first: its frame, popped from
    a list both shared, was the bundle entry's, and the entry's second extension was judged as
    sitting on the Bundle."""
    patient = load_example("yy-patient/valid-zhang-xiuying.json")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:0c1d9e2a-2f4e-4d4b-9d1f-5f2f3c1a7e01", "resource": patient}],
    }
    paused = {"patient": threading.Event(), "bundle": threading.Event()}
    go_on = {"patient": threading.Event(), "bundle": threading.Event()}
    check = validator.structure.extensions.check

    def pausing_check(*args: object) -> None:
        walk = threading.current_thread().name
        if walk in paused and not paused[walk].is_set():
            paused[walk].set()
            assert go_on[walk].wait(5)
        check(*args)

    monkeypatch.setattr(validator.structure.extensions, "check", pausing_check)
    found: dict[str, list[str]] = {}

    def validate(walk: str, resource: dict[str, object]) -> None:
        found[walk] = [i.message_id for i in validator.validate(resource) if i.is_error]

    walks = {
        walk: threading.Thread(target=validate, args=(walk, resource), name=walk)
        for walk, resource in (("patient", patient), ("bundle", bundle))
    }
    walks["patient"].start()
    assert paused["patient"].wait(5)
    walks["bundle"].start()
    assert paused["bundle"].wait(5)
    go_on["patient"].set()
    walks["patient"].join(5)
    go_on["bundle"].set()
    walks["bundle"].join(5)
    assert found == {"patient": [], "bundle": []}
