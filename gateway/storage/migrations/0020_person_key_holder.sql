-- The identity index by holder: the match keys one person holds.  A record naming the person
-- by number alone (a Reference carrying only their 身份证号) is in their Patient compartment
-- (Patient/$everything, a Patient export), found from their keys' index rows; without this
-- index each such lookup, and a Patient/$merge's list of the keys the retired record held,
-- read the whole table (one row per key of every person in the province).
CREATE INDEX person_key_person ON person_key (person_id);
