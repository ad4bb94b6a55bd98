"""The composition root of everything but the web: built once per process from a Config and
shared by the command line, the API and the tests.

Each service is built on first use, so ``yiyang validate`` never opens a database and
``yiyang serve`` compiles the validator once for all its requests.
"""

from __future__ import annotations

import gc
import threading
from functools import cached_property

import orjson

from conformance.issues import publish_messages_under
from conformance.validator import Validator
from gateway.config import Config
from gateway.fhir.bundles import Bundles
from gateway.fhir.capability import Capabilities
from gateway.fhir.repository import Repository
from gateway.fhir.search import Searcher
from gateway.limits import build_validator, reader_limits
from gateway.measures.catalog import package_measures
from gateway.measures.definition import MeasureDefinition
from gateway.measures.evaluate import MeasureEvaluator
from gateway.search.indexer import SearchIndexer
from gateway.search.parameters import SearchParameters
from gateway.security.naming_records import naming_records
from gateway.security.tokens import Authority
from gateway.storage import open_store
from gateway.storage.store import Store
from mappings.engine import MappingEngine
from mappings.readers import Limits as ReaderLimits
from profiles.registry import Registry, examples_dir


class Services:
    def __init__(self, config: Config, registry: Registry | None = None, validator: Validator | None = None) -> None:
        """``registry`` and ``validator``: built already, and settled (a serving master's,
        which its workers inherit through the fork)."""
        self.config = config
        #: set when the process is told to stop (a serving worker's SIGTERM or Ctrl-C,
        #: gateway/cli/workers.py): a ``$ingest`` under way ends before its next record, its
        #: request answered and audited, rather than be killed mid-file by gunicorn's master;
        #: a batch Bundle answers its entries not yet applied 503 (gateway/fhir/bundles.py)
        self.stopping = threading.Event()
        self._registry = registry
        self._validator = validator
        publish_messages_under(config.canonical_base)

    @cached_property
    def registry(self) -> Registry:
        return self._registry or Registry(self.config.canonical_base)

    def settle(self) -> None:
        """For a serving process, before its first request: build the definitions and the
        validator now and validate the package's valid examples with it, then put it all out
        of the garbage collector's sight.

        The examples compile the profiles, their invariants and the value sets their bindings
        expand, which the first request of each kind otherwise paid for (a first Patient
        create took 0.3–0.6 s against 3 ms, expanding GB/T 2260 among others).  Settled by
        the serving master before it forks, all this is built once and its pages shared by
        the workers; the workers' own settling then only freezes.  Frozen, its 400,000-odd
        objects are no longer walked by every full collection (140 ms, about once per 4,000
        reads, measured in process), nor written to by it, which would copy the shared pages.

        Settling again only freezes: the validator is settled now, as one given already is
        (a second settle validated every example again, about 2 s).  The rule of records
        naming records is checked against the definitions here too, so a serving master stops
        on a faulty one before any worker forks (``NamingRecordsError``)."""
        naming_records(self.registry)
        if self._validator is None:
            for path in sorted(examples_dir().glob("*/valid-*.json")):
                self.validator.validate(orjson.loads(path.read_bytes()))
            self._validator = self.validator
        gc.freeze()

    @cached_property
    def validator(self) -> Validator:
        return self._validator or build_validator(self.registry, self.config)

    @cached_property
    def engine(self) -> MappingEngine:
        from gateway.ingest.commands import build_engine

        return build_engine(self.registry)

    @cached_property
    def reader_limits(self) -> ReaderLimits:
        return reader_limits(self.config)

    @cached_property
    def parameters(self) -> SearchParameters:
        return SearchParameters(self.registry)

    @cached_property
    def indexer(self) -> SearchIndexer:
        return SearchIndexer(self.registry, self.parameters)

    @cached_property
    def store(self) -> Store:
        return open_store(
            self.config.database_url,
            self.indexer.rows,
            connections=self.config.store_connections,
            busy_timeout_s=self.config.sqlite_busy_timeout_seconds,
        )

    @cached_property
    def searcher(self) -> Searcher:
        return Searcher(self.parameters, self.config.page_size, self.config.max_page_size, self.config.base_url)

    @cached_property
    def repository(self) -> Repository:
        return Repository(self.store, self.validator, self.registry, self.config, self.searcher)

    @cached_property
    def bundles(self) -> Bundles:
        return Bundles(self.repository, self.searcher, self.config.base_url, self.stopping, self.capabilities)

    @cached_property
    def capabilities(self) -> Capabilities:
        """The CapabilityStatement ``/metadata`` and a Bundle's ``GET metadata`` answer."""
        return Capabilities(self.registry, self.parameters, self.repository.resource_types, self.config)

    @cached_property
    def measures(self) -> MeasureEvaluator:
        return MeasureEvaluator(self.store, self.parameters)

    @cached_property
    def measure_definitions(self) -> tuple[MeasureDefinition, ...]:
        """The package's Measures, checked once (a broken one fails here, not mid-report)."""
        return package_measures(self.registry)

    @cached_property
    def authority(self) -> Authority:
        """Issues and checks tokens; built per worker, its signing key shared through the store."""
        return Authority(self.store, self.config)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
            del self.__dict__["store"]
