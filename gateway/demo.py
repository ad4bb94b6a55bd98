"""The demo archive ``yiyang serve --demo`` starts with: the provincial package's valid
examples and every shipped sample export of the four sources.

Both loads are idempotent — an example is created under its own id only when the archive does
not hold it yet (a restart must not undo what ingest merged into it since), and the ingest
ledger skips records already landed — so a server restarted with ``--demo`` serves the same
archive.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from gateway.fhir.errors import FhirError
from gateway.ingest.commands import ingest, summary
from gateway.messages import text
from gateway.services import Services
from mappings.readers import READERS
from mappings.specs import SOURCES
from profiles.registry import examples_dir

SAMPLES = Path(__file__).resolve().parent.parent / "mappings" / "samples"
#: an invented resident population of the demo archive's counties (the denominators of the rates)
DEMO_POPULATION = SAMPLES / "population" / "常住人口-示例.csv"


def sample_files(source: str) -> list[Path]:
    """The shipped sample exports of one source, in a stable order."""
    return sorted(p for p in (SAMPLES / source).glob("*") if p.is_file() and p.suffix.lower() in READERS)


def load_demo(services: Services, lang: str) -> Iterator[str]:
    """Load the demo data; yields one line per step, for the terminal, worded in ``lang``
    (a source's summary on one line, its clauses joined as a sentence's)."""
    loaded = refused = 0
    for path in sorted(examples_dir().glob("*/valid-*.json")):
        resource = orjson.loads(path.read_bytes())
        if resource.get("resourceType") == "Bundle":
            continue  # a transaction example: its creates are not idempotent
        with services.store.reading() as tx:
            if tx.resources.read(resource["resourceType"], resource["id"]) is not None:
                continue
        try:
            services.repository.update(resource["resourceType"], resource["id"], resource)
            loaded += 1
        except FhirError:
            refused += 1
    examples = "cli.serve.demo-examples-refused" if refused else "cli.serve.demo-examples"
    yield text(examples, lang, {"loaded": loaded, "refused": refused})
    separator = text("cli.clause-separator", lang)
    for source in SOURCES:
        files = sample_files(source)
        if files:
            counts = ingest(source, files, None, services.registry, store=services.store, lang=lang)
            yield f"[{source}] " + summary(counts, lang).replace("\n", separator)


#: the development client ``serve --demo`` registers: all scopes, acting as the platform operator
DEMO_CLIENT = "demo-admin"
DEMO_ORGANIZATION = "zhengzhou-first-hospital"
DEMO_SCOPES = "system/*.cruds"
DEMO_ROLE = "operator"


def register_demo_client(services: Services) -> str | None:
    """Register (or, on a restart, re-key) the demo client and return its new random secret;
    None when it was revoked (a revocation is final, ``yiyang client rotate`` refuses it too).

    Only a hash is stored, so a restart cannot show the old secret again: it makes a new one,
    which keeps ``serve --demo`` idempotent (one client) and the printed curl always valid.  A
    revoked client's new secret would have been printed with a curl that answers 401."""
    import secrets

    from gateway.security import clients

    secret = secrets.token_urlsafe(24)
    added = clients.register(services.store, DEMO_CLIENT, DEMO_ORGANIZATION, DEMO_ROLE, DEMO_SCOPES, None, secret)
    if not added:
        _, secret_hash = clients.credentials(None, secret)
        with services.store.transaction() as tx:
            if tx.security.client_status(DEMO_CLIENT) == "revoked":
                return None
            tx.security.rotate(DEMO_CLIENT, None, secret_hash)
    return secret
