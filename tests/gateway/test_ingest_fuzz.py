"""A short, bounded fuzz of the whole ingest (the readers' own is tests/mappings/test_reader_fuzz.py):
mutated samples of every source run into a real store, on both databases.  Whatever a record
holds, it lands or is quarantined with its file and location; none vanishes, and the same file
run again writes nothing new."""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_mutations import mutate
from conformance.validator import Validator
from gateway.ingest.commands import build_engine
from gateway.ingest.pipeline import Ingest, Outcome
from gateway.search.indexer import SearchIndexer
from gateway.storage import open_store
from gateway.storage.store import Store
from mappings.readers import ReaderError, read
from profiles.registry import Registry
from tests.conftest import BACKENDS, fresh_database_url
from tests.ingest_output import SAMPLES

#: (source, sample) pairs the mutations start from; the CDA with an external entity is refused whole
EXPORTS = [
    (path.parent.name, path)
    for path in sorted(SAMPLES.glob("*/*.*"))
    if path.parent.name in ("community-health", "elderly-care", "insurance", "hl7v2") and "外部实体" not in path.name
]
FUZZ = settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def engine_and_validator(validator: Validator) -> tuple[object, Validator]:
    return build_engine(Registry()), validator


def run(store: Store, source: str, path: Path, made: tuple[object, Validator]) -> list[Outcome]:
    """Every record's outcome, the file's reader error ending the list as it ends the run."""
    engine, validator = made
    pipeline = Ingest(store, validator, engine)  # type: ignore[arg-type]
    outcomes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about damaged parts
        try:
            outcomes.extend(pipeline.process(record) for record in read(path, source))
        except ReaderError:
            pass
    pipeline.finish()
    return outcomes


def mutated(seed: int, folder: Path) -> tuple[str, Path]:
    rng = random.Random(seed)
    source, sample = rng.choice(EXPORTS)
    path = folder / f"{seed}{sample.suffix}"
    data = sample.read_bytes()
    path.write_bytes(data if sample.suffix == ".xlsx" else mutate(data, rng))
    return source, path


@contextmanager
def fresh_store(backend: str, folder: Path) -> Iterator[Store]:
    with fresh_database_url(backend, folder) as url:
        store = open_store(url, SearchIndexer(Registry()).rows)
        try:
            yield store
        finally:
            store.close()


def runs(
    backend: str, factory: pytest.TempPathFactory, made: tuple[object, Validator], seed: int, times: int
) -> tuple[list[list[Outcome]], set[tuple[str, str]]]:
    """The seed's mutated export run ``times`` into a fresh store: each run's outcomes, and the
    (file, location) of every quarantine entry, open or resolved, after the last."""
    folder = factory.mktemp("fuzz")
    source, path = mutated(seed, folder)
    with fresh_store(backend, folder) as store:
        outcomes = [run(store, source, path, made) for _ in range(times)]
        with store.reading() as tx:
            kept = {(e["file"], e["location"]) for e in [*tx.quarantine.entries(), *tx.quarantine.resolved_entries()]}
    return outcomes, kept


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_every_record_read_lands_or_is_quarantined_where_it_was(
    backend: str, tmp_path_factory: pytest.TempPathFactory, engine_and_validator: tuple[object, Validator], seed: int
) -> None:
    (outcomes,), kept = runs(backend, tmp_path_factory, engine_and_validator, seed, 1)
    lost = [
        o.record.location
        for o in outcomes
        if o.status == "quarantined" and (o.record.file, o.record.location) not in kept
    ]
    assert lost == []


@pytest.mark.parametrize("backend", BACKENDS)
@FUZZ
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_the_same_file_run_again_finds_every_landed_record_unchanged(
    backend: str, tmp_path_factory: pytest.TempPathFactory, engine_and_validator: tuple[object, Validator], seed: int
) -> None:
    (first, again), _ = runs(backend, tmp_path_factory, engine_and_validator, seed, 2)
    changed = [
        (b.record.location, b.status)
        for a, b in zip(first, again, strict=True)
        if (a.status != "quarantined") != (b.status == "unchanged")
    ]
    assert changed == []
