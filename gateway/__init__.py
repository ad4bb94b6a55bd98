"""The gateway: command line (and, later, the REST API, storage and ingest pipeline).

The only layer that does I/O; it composes ``profiles``, ``conformance`` and ``mappings``.
"""
