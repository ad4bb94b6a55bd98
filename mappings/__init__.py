"""Legacy records → FHIR, as pure transformations (issue 3; not built yet).

Rule of this folder: no I/O beyond the file handed in, no Flask, no database, and no import
of ours except ``profiles.canonical`` for canonical URLs.
"""
