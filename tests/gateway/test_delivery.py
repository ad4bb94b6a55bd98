"""A streamed body's delivery (``gateway/api/delivery.py``) as the WSGI server drives it: it
asks for chunks and calls ``close()`` whatever happened.  The HTTP cases (a whole download,
one the client cuts) run on a real server in ``test_bulk_export.py``."""

from __future__ import annotations

from pathlib import Path

from gateway.api.delivery import CUT, FAILED, WHOLE, Delivery, Ended, file_chunks


def driven(delivery: Delivery, chunks: int | None = None) -> Ended:
    """Drive ``delivery`` as a server does (all of it, or the first ``chunks``), close it, and
    return how it says it ended."""
    ended: list[Ended] = []
    delivery.on_end(ended.append)
    try:
        for taken, _ in enumerate(delivery, 1):
            if taken == chunks:
                break
    except OSError:
        pass
    finally:
        delivery.close()
    assert len(ended) == 1  # said once, however it ended
    return ended[0]


def test_a_body_read_to_its_end_was_sent_whole(tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson"
    path.write_bytes(b"x" * 10)
    ended = driven(Delivery(file_chunks(str(path), chunk=4), 10))
    assert (ended.how, ended.sent, ended.size) == (WHOLE, 10, 10)


def test_a_body_closed_before_its_end_was_cut_counting_only_what_was_written(tmp_path: Path) -> None:
    """The chunk the server held when it gave up (its write failed) is not counted."""
    path = tmp_path / "Patient.ndjson"
    path.write_bytes(b"x" * 10)
    ended = driven(Delivery(file_chunks(str(path), chunk=4), 10), chunks=2)
    assert (ended.how, ended.sent) == (CUT, 4)


def test_a_file_the_server_cannot_read_ends_the_body_as_failed(tmp_path: Path) -> None:
    """A folder where the file was: reading it fails with the first chunk (outcome 8)."""
    ended = driven(Delivery(file_chunks(str(tmp_path)), 10))
    assert (ended.how, ended.sent) == (FAILED, 0)
