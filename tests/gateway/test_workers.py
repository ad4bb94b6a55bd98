"""The gunicorn workers' connections (gateway/cli/workers.py)."""

from __future__ import annotations

import socket

import pytest

from gateway.cli.workers import time_out


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
