-- A resource's own index rows by parameter name: (type, id, name) instead of (type, id).
-- Every probe of a search with several criteria ("this candidate's status is active") and
-- every per-person lookup of a measure's strata (gender, birthdate, division) asks for one
-- parameter of one resource; with the name in the index it is one seek instead of a walk
-- through all of the resource's twenty-odd rows.  Deleting a resource's rows by (type, id)
-- still uses the index's prefix.
DROP INDEX search_index_owner;
CREATE INDEX search_index_owner ON search_index (type, id, name);
