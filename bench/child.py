"""Measure a job in a fresh interpreter: its seconds and its own peak RSS.

The peak is the child's high-water mark (VmHWM in /proc/self/status), read by the child just
before it exits: Linux carries ``ru_maxrss`` over fork and exec, so ``RUSAGE_CHILDREN`` of a
parent that has grown reports the parent's size (681 MB once, for a 151 MB ingest).
"""

from __future__ import annotations

import subprocess
import sys


def measured(setup: str, job: str, *args: str) -> tuple[float, float]:
    """Seconds of ``job`` (after ``setup``, untimed) and the child's peak RSS in MB; both are
    Python source run with ``sys.argv[1:]`` = ``args``, and the job's own output is dropped."""
    code = (
        f"import sys, time\nfrom pathlib import Path\n{setup}\n"
        "start = time.perf_counter()\n"
        f"{job}\n"
        "seconds = time.perf_counter() - start\n"
        "status = Path('/proc/self/status').read_text().splitlines()\n"
        "peak = next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))\n"
        "sys.stderr.write(f'\\n{seconds} {peak / 1024}\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True
    )
    seconds, peak = done.stderr.split()[-2:]
    return float(seconds), float(peak)
