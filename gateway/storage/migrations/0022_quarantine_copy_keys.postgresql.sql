-- A copy of a quarantined record (the same row in each of several files of one run) and a
-- duplicate row were kept under the record's identity and location alone ("…|row 2"), so one
-- file's copy replaced another's; they are kept under the file too ("…|day.csv|row 2").  The
-- entries an earlier version kept so are renamed here, once, key and entry alike (a replay
-- groups entries by the entry's identity), their state (open or resolved) kept; the gateway
-- renamed each again at run time, one UPDATE per copy it quarantined.  An old key is the
-- record's identity (which holds a '|'), '|' and the entry's location, and not already the
-- file's form; one whose new key is taken already stays as it is, as at run time.
-- (The .sqlite.sql of this version says why; only how the entry's identity is set differs.)
UPDATE quarantine
SET identity = substr(identity, 1, length(identity) - length(location)) || file || '|' || location,
    entry = entry || jsonb_build_object(
        'identity', substr(identity, 1, length(identity) - length(location)) || file || '|' || location
    )
WHERE length(identity) > length(location) + 1
  AND substr(identity, length(identity) - length(location)) = '|' || location
  AND NOT (
      length(identity) > length(file) + length(location) + 2
      AND substr(identity, length(identity) - length(file) - length(location) - 1) = '|' || file || '|' || location
  )
  AND NOT EXISTS (
      SELECT 1 FROM quarantine AS kept
      WHERE kept.source = quarantine.source AND kept.digest = quarantine.digest
        AND kept.identity = substr(quarantine.identity, 1, length(quarantine.identity) - length(quarantine.location))
            || quarantine.file || '|' || quarantine.location
  );
