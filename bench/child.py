"""Measure a job in a fresh interpreter: its seconds and its own peak memory.

The peak is the child's anonymous memory (``RssAnon`` in /proc/self/status: its heap and
stacks), sampled every 20 ms by a thread of the child, because the kernel's high-water mark
(``VmHWM``) counts every page of a memory-mapped file too: the store reads its database
through ``mmap`` on each connection, and an ingest of 100,000 rows had a VmHWM of 10 GB (a
3 GB database mapped by several connections, each page counted once per mapping) while its
heap stayed near 240 MB.  Those pages are the operating system's file cache, shared and
reclaimable.  ``RUSAGE_CHILDREN`` is no alternative either: Linux carries ``ru_maxrss`` over
fork and exec, so a parent that has grown reports its own size (681 MB once, for a 151 MB
ingest).
"""

from __future__ import annotations

import subprocess
import sys

#: what the child runs around the job: the sampler, then the figures on its last stderr line
_AROUND = """import sys, threading, time
from pathlib import Path

_peak = [0]


def _sample() -> None:
    while True:
        for line in open('/proc/self/status'):
            if line.startswith('RssAnon:'):
                _peak[0] = max(_peak[0], int(line.split()[1]))
                break
        time.sleep(0.02)


threading.Thread(target=_sample, daemon=True).start()
{setup}
start = time.perf_counter()
{job}
seconds = time.perf_counter() - start
time.sleep(0.05)
sys.stderr.write(f'\\n{{seconds}} {{_peak[0] / 1024}}\\n')
"""


def measured(setup: str, job: str, *args: str) -> tuple[float, float]:
    """Seconds of ``job`` (after ``setup``, untimed) and the child's peak anonymous memory in
    MB; both are Python source run with ``sys.argv[1:]`` = ``args``, and the job's own output
    is dropped."""
    code = _AROUND.format(setup=setup, job=job)
    done = subprocess.run(
        [sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True
    )
    seconds, peak = done.stderr.split()[-2:]
    return float(seconds), float(peak)
