"""A short, bounded fuzz of every reader through ``read()`` (issue 12): arbitrary bytes, and
mutations of the shipped samples, either yield records or raise ReaderError — nothing else.
The long run (10,000 inputs per target) is ``python -m bench.fuzz``."""

from __future__ import annotations

import random
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz_readers import INPUTS
from mappings.readers import READERS, ReaderError, read

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_all(suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            for record in read(path, "fuzz"):
                assert isinstance(record.raw, bytes)
        except ReaderError as exc:
            assert "\n" not in str(exc).strip()


@pytest.mark.parametrize("suffix", sorted(READERS))
@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_yield_records_or_a_reader_error(suffix: str, data: bytes) -> None:
    read_all(suffix, data)


@pytest.mark.parametrize("suffix", sorted(READERS))
@FUZZ
@given(text=st.text(max_size=512))
def test_arbitrary_text_yields_records_or_a_reader_error(suffix: str, text: str) -> None:
    read_all(suffix, text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("target", sorted(INPUTS))
@FUZZ
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_mutated_samples_yield_records_or_a_reader_error(target: str, seed: int) -> None:
    read_all(*INPUTS[target](random.Random(seed)))
