"""The participants' test kit (like the ONC's Inferno, for this platform): tests any FHIR server
over HTTP against the provincial platform rules and reports through ``conformance.report``.

Each suite module (``capability.py``, ``push.py``, ``pull.py``, ``security.py``) ends with a
table of :class:`~conformance.testkit.catalog.KitTest` rows — id, suite, zh-CN and en
descriptions, check function — so a test reads as one row plus one small function.
``runner.py`` runs the rows into a ``testkit`` report; ``examples.py`` supplies the package
examples pushed and then expected back.  Only ``http.py`` touches the network.
"""
