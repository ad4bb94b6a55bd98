"""The floor of ``python -m bench.server``: the smallest Flask app, served by gunicorn with
the gateway's workers (``gateway/cli/workers.py``: sync, or gthread with ``YIYANG_THREADS``
above 1, as ``yiyang serve`` runs them; no access log).

Whatever a gateway request costs above this app's is the gateway's own work: HTTP parsing,
the pre-fork accept loop, Flask's dispatch and wrk's loopback share are all in the floor.
It answers a tiny FHIR JSON document so the response path (headers, body) matches in kind.
"""

from __future__ import annotations

from flask import Flask, Response

app = Flask("yiyang-floor")
_BODY = b'{"resourceType":"Basic","id":"floor","code":{"text":"floor"}}'


@app.get("/fhir/floor")
def floor() -> Response:
    return Response(_BODY, mimetype="application/fhir+json")
