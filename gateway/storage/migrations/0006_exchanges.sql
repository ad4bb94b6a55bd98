-- Exchanges (gateway/exchanges.py): one row per request the gateway handled — an HTTP request,
-- an MLLP message, a file given to `yiyang ingest` — with the validation verdict of every
-- resource it carried and the issues found, for the auditors' report (`yiyang report`,
-- /reports).  Kept for `exchange_retention_days`, then purged.  No column holds an unmasked
-- 身份证号: issue texts are masked before they are written.
CREATE TABLE exchange (
    -- 1, 2, 3 … in the order rows were appended (assigned under the "exchange-ids" lock)
    id INTEGER PRIMARY KEY,
    -- when the exchange ended, in the store's fixed-width UTC instant form
    recorded TEXT NOT NULL,
    -- its calendar day in China Standard Time (UTC+8), YYYY-MM-DD: what the report groups and
    -- filters by
    day TEXT NOT NULL,
    -- the registered client (or "anonymous", or the MLLP sending application, or "yiyang-cli")
    client TEXT NOT NULL,
    -- the Organization id the client acts for (the MLLP sending facility); "" when unknown
    organization TEXT NOT NULL,
    -- the kind of system: a legacy source (community-health, elderly-care, insurance, hl7v2)
    -- or a REST client's role (hospital, elderly-care, auditor, operator)
    source TEXT NOT NULL,
    -- rest, mllp or cli
    channel TEXT NOT NULL,
    -- create, update, transaction, search-type, read, $ingest, ingest, ADT^A01 …
    interaction TEXT NOT NULL,
    -- the HTTP status (NULL for MLLP and the command line)
    status INTEGER,
    -- pass (content judged conformant), fail (content judged non-conformant), error (refused
    -- for another reason than its content), skip (nothing to judge: a read)
    verdict TEXT NOT NULL,
    -- " Patient Observation ": the resource types it carried, space-delimited
    resource_types TEXT NOT NULL,
    -- how many resources it carried (judged or returned)
    resources INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    warnings INTEGER NOT NULL
);
-- one index, since every request writes a row: led by the day (a report's period, the
-- retention's purge) and covering the report's groups, whose counts it gives without reading
-- the table (about 2 µs more per append than an index on the day alone, measured; a report
-- over a million exchanges 1.6 times faster)
CREATE INDEX exchange_groups ON exchange (day, client, organization, source, verdict);

-- The verdict on each resource an exchange carried, per profile it was held to.  A row with
-- resource_id "" stands for `resources` resources of one type and profile with the same
-- outcome (an exchange of many thousands keeps the first 10,000 one by one).
CREATE TABLE exchange_verdict (
    exchange_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    profile TEXT NOT NULL,
    passed {bool} NOT NULL,
    errors INTEGER NOT NULL,
    warnings INTEGER NOT NULL,
    resources INTEGER NOT NULL,
    PRIMARY KEY (exchange_id, seq)
);

-- The issues found (error, fatal and warning; information is left out): the stable message id
-- (the rule), the FHIRPath (or legacy field) where it was found and the masked text in both
-- languages.  verdict_seq names the resource it concerns (NULL: the exchange as a whole, e.g.
-- a record that could not be mapped or a request refused before its content was read).
-- exchange_verdict is a copy of the exchange's verdict, so that the report tells a rule broken
-- from a refusal's reason without joining every issue to its exchange.
CREATE TABLE exchange_issue (
    exchange_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    verdict_seq INTEGER,
    exchange_verdict TEXT NOT NULL,
    severity TEXT NOT NULL,
    rule TEXT NOT NULL,
    location TEXT NOT NULL,
    text_zh TEXT NOT NULL,
    text_en TEXT NOT NULL,
    PRIMARY KEY (exchange_id, seq)
);
