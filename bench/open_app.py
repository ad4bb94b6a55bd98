"""The gateway without its security, for ``python -m bench.server`` alone: no tokens, no rate
limits, no security headers, no audit trail — the same app otherwise, on the store named by
``YIYANG_DATABASE_URL``.  Served by gunicorn (``bench.open_app:app``; each worker loads it after
the fork, so no database connection crosses one), it gives the throughput security is measured
against (issue 9: security and audit cost at most 15 %)."""

from __future__ import annotations

from gateway import create_app

app = create_app(secure=False)
app.config["SERVICES"].settle()  # as `yiyang serve` settles each worker
