-- The organisation that created a resource, for the write rule: a client writes only its own
-- organisation's records.  A resource may name its owner (Encounter.serviceProvider,
-- Observation.performer as an Organization …); one that names none (a Condition, an Observation
-- performed by a Practitioner) is owned by the organisation of the client that created it.
-- NULL for resources the command line or the platform's operator wrote, and for those written
-- before this column existed: any client with the scope may change those, as before.
ALTER TABLE resource ADD COLUMN owner TEXT;
