"""Conformance reports: what was checked, with which verdict, for people and for machines.

A report is data (``model.py``): sections of results, each with a verdict — pass, fail, error
or skip — and, where it applies, counts, the issues found and a link to drill down to.  The
auditors' report over recorded exchanges, the check of exported files and the participants'
test kit all build one, and the same renderers write it: ``render_html`` (one self-contained
page with inline SVG charts), ``render_json`` (``conformance/report.schema.json``),
``render_junit`` (JUnit XML for CI) and ``render_tabular`` (CSV and Excel).

Building (``aggregate.py``) takes plain rows — grouped counts from the store's SQL, or the
records themselves — and rendering takes the report and a wording function (message id →
text in the reader's language, from the gateway's catalog).  Nothing here does I/O.
"""
