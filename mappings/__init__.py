"""Legacy records → FHIR, as pure transformations: readers, declarative specs, ConceptMaps and the engine.

Rule of this folder: no I/O beyond the file handed in, no Flask, no database, and no import
of ours except ``profiles.canonical`` for canonical URLs.
"""
