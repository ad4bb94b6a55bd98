"""Crash harness: kill ``yiyang ingest`` and ``yiyang quarantine replay`` with SIGKILL at random
moments, run them again, and compare the archive with an uninterrupted run's.

``python -m bench.crash [--kills 50] [--rows 2000] [--seed 1]``

The promise it checks: kill at any moment, run again, and the archive equals that of an
uninterrupted run — the same resources under the same ids, none twice, no reference to a
resource that is not there, each quarantined record once — and a replay killed any number of
times loses no quarantined record.  Volatile bookkeeping (``meta.versionId``,
``meta.lastUpdated``, ``Provenance.recorded``) is left out of the comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.legacy_samples import rows, write
from mappings.engine import reference_nodes

SOURCE = "community-health"


@dataclass
class Archive:
    """What an --out folder holds, reduced to what must not depend on interruptions."""

    resources: dict[tuple[str, str], Any]
    quarantined: set[tuple[str, str, str]]
    duplicates: list[tuple[str, str]]
    dangling: list[str]


def snapshot(out: Path) -> Archive:
    resources: dict[tuple[str, str], Any] = {}
    duplicates = []
    for path in sorted(out.glob("[A-Z]*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            resource = json.loads(line)
            key = (resource["resourceType"], resource["id"])
            if key in resources:
                duplicates.append(key)
            resources[key] = _stable(resource)
    quarantined = set()
    quarantine = out / "quarantine.ndjson"
    if quarantine.exists():
        for line in quarantine.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            quarantined.add((entry["source"], entry["file"], entry["location"]))
    present = {f"{kind}/{resource_id}" for kind, resource_id in resources}
    dangling = sorted(
        {
            node["reference"]
            for resource in resources.values()
            for node in reference_nodes(resource)
            if "://" not in node["reference"] and node["reference"] not in present
        }
    )
    return Archive(resources, quarantined, duplicates, dangling)


def _stable(resource: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in resource.items() if k not in ("meta", "recorded")}
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        kept["meta"] = meta
    return kept


def command(out: Path, action: str, export: Path) -> list[str]:
    cli = [sys.executable, "-m", "gateway.cli"]
    if action == "ingest":
        return [*cli, "ingest", "--source", SOURCE, "--out", str(out), str(export)]
    return [*cli, "quarantine", "replay", "--out", str(out)]


def run(argv: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def killed(argv: list[str], after: float) -> bool:
    """Start the command and SIGKILL it after ``after`` seconds; False if it finished first."""
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        child.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.wait()
        return True


def crash_and_compare(
    folder: Path, export: Path, action: str, kills: int, rng: random.Random, per_round: int = 5
) -> tuple[int, list[Archive], Archive]:
    """Kill ``action`` at random moments, ``per_round`` times on one archive before letting it
    finish, in as many rounds (each on a fresh archive) as ``kills`` needs — so most kills
    land while the run is still writing, not on a run the earlier kills left nearly done.
    Returns the kills that landed mid-run, each round's archive and the uninterrupted one's."""
    reference = folder / "reference"
    if action == "replay":  # every run starts from the same quarantine: an ingest of the export
        run(command(reference, "ingest", export))
    duration = run(command(reference, action, export))
    landed, archives = 0, []
    for number, start in enumerate(range(0, kills, per_round)):
        victim = folder / f"victim-{number}"
        if action == "replay":
            run(command(victim, "ingest", export))
        for _ in range(min(per_round, kills - start)):
            landed += killed(command(victim, action, export), rng.uniform(0.05, 0.8) * duration)
        run(command(victim, action, export))
        archives.append(snapshot(victim))
    return landed, archives, snapshot(reference)


def differences(interrupted: Archive, uninterrupted: Archive) -> list[str]:
    problems = []
    if interrupted.duplicates:
        problems.append(f"{len(interrupted.duplicates)} duplicate ids, e.g. {interrupted.duplicates[:3]}")
    if interrupted.dangling:
        problems.append(f"{len(interrupted.dangling)} dangling references, e.g. {interrupted.dangling[:3]}")
    if interrupted.resources.keys() != uninterrupted.resources.keys():
        missing = uninterrupted.resources.keys() - interrupted.resources.keys()
        extra = interrupted.resources.keys() - uninterrupted.resources.keys()
        problems.append(f"{len(missing)} resources missing, {len(extra)} extra")
    else:
        changed = [k for k, v in interrupted.resources.items() if uninterrupted.resources[k] != v]
        if changed:
            problems.append(f"{len(changed)} resources differ, e.g. {changed[:3]}")
    if interrupted.quarantined != uninterrupted.quarantined:
        problems.append(
            f"quarantine differs: {len(uninterrupted.quarantined - interrupted.quarantined)} lost, "
            f"{len(interrupted.quarantined - uninterrupted.quarantined)} extra"
        )
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs per command")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    failed = False
    with tempfile.TemporaryDirectory(prefix="yiyang-crash-") as temporary:
        folder = Path(temporary)
        export = folder / "个人基本信息表.csv"
        write(export, rows(args.rows, seed=args.seed, broken=0.1))
        for action in ("ingest", "replay"):
            work = folder / action
            work.mkdir()
            landed, rounds, uninterrupted = crash_and_compare(work, export, action, args.kills, rng)
            problems = [problem for archive in rounds for problem in differences(archive, uninterrupted)]
            verdict = "identical" if not problems else "; ".join(problems)
            print(
                f"{action}: {args.kills} kills in {len(rounds)} rounds ({landed} mid-run), "
                f"{len(uninterrupted.resources)} resources, "
                f"{len(uninterrupted.quarantined)} quarantined: {verdict}"
            )
            failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
