"""The gateway's one configuration: defaults here, then ``YIYANG_*`` environment variables,
then what the caller (a command-line option, a test) sets explicitly.

Nothing deeper in the gateway reads the environment; it receives a :class:`Config`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path("yiyang-data")


@dataclass(frozen=True)
class Config:
    #: sqlite:///PATH (embedded default) or postgresql://…
    database_url: str = f"sqlite:///{DEFAULT_DATA_DIR / 'archive.sqlite'}"
    #: canonical base of the provincial package (a province publishing under its own domain)
    canonical_base: str = "http://fhir.yiyang.cn"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    #: what an invalid write gets: "reject" (422) or "warn" (stored, issues returned)
    validation: str = "reject"
    #: the base URL clients see, when a proxy in front changes it (default http://HOST:PORT/fhir)
    public_base: str | None = None
    #: largest request body, JSON document or legacy file accepted (bytes)
    max_bytes: int = 64 * 1024 * 1024
    #: search page size when _count is absent, and the largest _count honoured
    page_size: int = 20
    max_page_size: int = 1000
    #: language of messages when the client does not ask (Accept-Language)
    language: str = "zh-CN"
    #: where Bulk Data $export jobs write their NDJSON files, one owner-only folder per job
    export_dir: str = str(DEFAULT_DATA_DIR / "exports")
    #: an export job whose worker has not reported for this long is failed (the worker died)
    export_stale_seconds: int = 60

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> Config:
        """Defaults, overridden by ``YIYANG_<FIELD>`` variables, overridden by ``explicit``
        values that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"YIYANG_{field.name.upper()}")
            if raw is not None:
                values[field.name] = int(raw) if field.type == "int" else raw
        values.update({k: v for k, v in explicit.items() if v is not None})
        return replace(cls(), **values)

    @property
    def base_url(self) -> str:
        return (self.public_base or f"http://{self.host}:{self.port}/fhir").rstrip("/")
