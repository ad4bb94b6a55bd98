-- What purging the exchange records (the retention policy, or `yiyang exchanges purge`) deleted:
-- the day before which none is kept any more, and the last id handed out then.  A report over a
-- purged period says so, instead of reading as a period in which nothing was exchanged; and
-- ids continue from the highest ever given, so a report or a link naming an exchange never
-- comes to name another one.
CREATE TABLE exchange_purge (
    purged_before TEXT NOT NULL,
    last_id INTEGER NOT NULL
);
