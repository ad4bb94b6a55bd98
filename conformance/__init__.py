"""Validation of FHIR R4 instances against the base spec, loaded profiles and business rules.

Rule of this folder: it reads definitions through ``profiles`` and returns issues; it never
imports Flask, never touches the database and never opens a network connection.
"""
