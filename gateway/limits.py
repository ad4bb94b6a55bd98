"""The gateway's one configuration of input limits, handed to the layers that enforce them.

The readers (``mappings.readers.Limits``) and the validator (``conformance.limits.Limits``)
each keep their own defaults and read no environment; the gateway builds both from its
:class:`~gateway.config.Config`, so every limit is set in one place (``YIYANG_*``), and builds
every validator it uses here (:func:`build_validator`), so the API, ingest, replay, explain and
``yiyang validate`` judge alike.
"""

from __future__ import annotations

from conformance.limits import Limits as ValidatorLimits
from conformance.validator import Validator
from gateway.config import Config
from mappings.readers import Limits as ReaderLimits
from profiles.registry import Registry


def reader_limits(config: Config) -> ReaderLimits:
    return ReaderLimits(
        file_bytes=config.file_bytes,
        document_bytes=config.document_bytes,
        record_bytes=config.record_bytes,
        cell_chars=config.cell_chars,
        xlsx_uncompressed_bytes=config.xlsx_uncompressed_bytes,
        depth=config.json_depth,
    )


def validator_limits(config: Config) -> ValidatorLimits:
    return ValidatorLimits(
        max_depth=config.json_depth,
        max_bundle_entries=config.bundle_entries,
        max_contained=config.contained,
        max_expansion=config.expansion_codes,
    )


def build_validator(registry: Registry, config: Config) -> Validator:
    """A validator with the configured limits and the extension domains allowed without a
    definition (``YIYANG_EXTENSION_DOMAINS``)."""
    return Validator(registry, limits=validator_limits(config), extension_domains=config.extension_domain_list)
