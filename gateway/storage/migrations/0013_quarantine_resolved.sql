-- A quarantine entry whose record a later one with the same source key replaced (the clinic's
-- corrected export of the same 个人档案编号 landed) is resolved, not removed: it stays for the
-- audit of what was refused and why, but is no longer open — not replayed, not listed in
-- quarantine.ndjson — and says when it was resolved and by which record (file and location).
ALTER TABLE quarantine ADD COLUMN resolved TEXT;
ALTER TABLE quarantine ADD COLUMN resolved_by {json};
