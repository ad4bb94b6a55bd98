"""What differs between the databases (gateway/storage/dialect.py)."""

from __future__ import annotations

from gateway.storage.dialect import OWNER_PROBE, POSTGRES, SQLITE


def test_a_statement_translated_for_one_database_is_written_anew_for_the_other() -> None:
    """Translations are kept per text: SQLite's must not answer PostgreSQL's, whose
    placeholders differ."""
    text = f"SELECT 1 FROM search_index s {OWNER_PROBE} WHERE s.type = ?"
    SQLITE.sql(text)
    assert POSTGRES.sql(text) == "SELECT 1 FROM search_index s  WHERE s.type = %s"
