"""Ingest throughput against validation alone, and memory as the input grows.

    python -m bench.ingest [--rows 100000]

Generates community-health 个人基本信息表 CSV rows (bench.legacy_samples, 2 % broken), ingests
them with the real pipeline in a child process (its peak memory measured there, see
bench/child.py), then validates the resources it wrote with the validator alone, in this same
run, and prints records/s, resources/s, the ratio ingest/validation-only (goal ≥ 50 %) and
peak memory for the full file and for a fifth of it (flat memory means the two are close;
goal < 300 MB).  Ingest and
validation alternate for ``--rounds`` rounds and the best of each is kept, so a busy
neighbour on the shared machine slows both contenders rather than one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson

from bench.child import measured
from bench.legacy_samples import rows, write
from conformance.validator import Validator


def ingest_in_child(csv_path: Path, out: Path) -> tuple[float, float]:
    """Seconds and peak anonymous memory (MB) of the ingest of the file, in a fresh interpreter."""
    return measured(
        "from gateway.ingest.commands import ingest\nfrom profiles.registry import Registry",
        "ingest('community-health', [Path(sys.argv[1])], Path(sys.argv[2]), Registry(), bundle=False)",
        str(csv_path),
        str(out),
    )


def validate_only(out: Path, provenance: bool) -> tuple[int, float]:
    """Validate what the ingest wrote, with or without the Provenance it generated (ingest
    validates the mapped resources, not the Provenance it builds itself)."""
    validator = Validator()
    skip = set() if provenance else {"Provenance.ndjson"}
    # resource files are named after their type (not the quarantine or the conflict report)
    documents = [line for f in sorted(out.glob("[A-Z]*.ndjson")) if f.name not in skip for line in f.open("rb")]
    validator.validate(orjson.loads(documents[0]))
    start = time.perf_counter()
    for document in documents:
        validator.validate(orjson.loads(document))
    return len(documents), len(documents) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        small = root / "个人基本信息表-small.csv"
        write(small, rows(args.rows // 5, seed=11, broken=0.02))
        _, small_peak = ingest_in_child(small, root / "out-small")
        full = root / "个人基本信息表.csv"
        write(full, rows(args.rows, seed=11, broken=0.02))
        seconds, peak, validation_rate, mapped_rate = float("inf"), 0.0, 0.0, 0.0
        for round_ in range(args.rounds):
            out = root / f"out-{round_}"
            took, used = ingest_in_child(full, out)
            seconds, peak = min(seconds, took), max(peak, used)
            resources, rate = validate_only(out, provenance=True)
            mapped, rate_mapped = validate_only(out, provenance=False)
            validation_rate, mapped_rate = max(validation_rate, rate), max(mapped_rate, rate_mapped)
        quarantined = sum(1 for _ in (out / "quarantine.ndjson").open("rb"))
    print(
        f"{args.rows} community-health rows ({quarantined} quarantined), {resources} resources written "
        f"({mapped} mapped + {resources - mapped} Provenance)"
    )
    print(
        f"  ingest end to end        {args.rows / seconds:>9,.0f} records/s  {resources / seconds:>9,.0f} resources/s "
        f"({mapped / seconds:,.0f} mapped resources/s)"
    )
    print(f"  validation only, all     {'':>19}  {validation_rate:>9,.0f} resources/s")
    print(f"  validation only, mapped  {'':>19}  {mapped_rate:>9,.0f} resources/s")
    print(f"  ratio, all resources     {resources / seconds / validation_rate:.0%}  (goal >= 50%)")
    print(f"  ratio, mapped resources  {mapped / seconds / mapped_rate:.0%}")
    print(
        f"  peak memory (RssAnon) {small_peak:.0f} MB for {args.rows // 5} rows, {peak:.0f} MB for {args.rows} rows "
        f"(goal < 300 MB, flat); best of {args.rounds} alternating rounds"
    )


if __name__ == "__main__":
    main()
