"""What a finding supersedes is data in the message catalog (its entry's ``supersedes``): the
validator drops a superseded finding on the same element, so each name must be a finding."""

from __future__ import annotations

from conformance.issues import catalog, supersessions


def test_every_superseded_finding_is_another_catalogued_message() -> None:
    """A misspelt id would silently supersede nothing; an entry superseding itself, everything."""
    wrong = {
        (finding, superseded)
        for finding, superseded_ids in supersessions().items()
        for superseded in superseded_ids
        if superseded == finding or superseded not in catalog()
    }
    assert wrong == set()


def test_an_unknown_division_code_supersedes_the_generic_findings_of_its_code() -> None:
    assert supersessions()["rule.division-unknown"] == {"code.unknown-in-system", "binding.not-in-valueset"}
