"""The gunicorn workers' connections (gateway/cli/workers.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.cli.workers import SWITCH_INTERVAL_S, time_out


def test_a_connection_times_out_in_the_kernel_without_python_polling_it() -> None:
    """A worker's connection is bounded by the kernel's timeouts, the socket left blocking:
    Python's own timeout polled it before every read and write, each poll a hand-off of the
    interpreter lock between a gthread worker's request threads.  A silent peer's read still
    ends, after the limit, as the kernel's EAGAIN."""
    ours, peer = socket.socketpair()
    with ours, peer:
        time_out(ours, 1)
        with pytest.raises(OSError) as ended:
            ours.recv(1)
    assert (ours.gettimeout(), type(ended.value)) == (None, BlockingIOError)


def switch_interval_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A WSGI app answering the interpreter switch interval of the worker serving it."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(sys.getswitchinterval()).encode()]


def test_a_threaded_worker_hands_the_interpreter_lock_on_within_a_millisecond() -> None:
    """A gthread worker's loop and request threads wait for the thread holding the interpreter
    lock at each hand-off of a request; at Python's 5 ms such waits made the tail of threaded
    reads, so the worker lets another thread in after :data:`SWITCH_INTERVAL_S`."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "2"]
    command += ["--worker-class", "gateway.cli.workers.OutcomeThreadWorker", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, "tests.gateway.test_workers:switch_interval_app"],
        cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "gunicorn did not answer within 60 s"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert float(answer.text) == SWITCH_INTERVAL_S < sys.getswitchinterval()
