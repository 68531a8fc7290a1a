-- The analyst views under a second on 1.3M events (issue 10; measured by benchmarks/views.py).
--
-- The aggregate views joined four tables of 1.3M rows each: 4-7 s. Joining transactions to
-- scores over every event costs seconds however it is done (hash join, or merge join of
-- covering indexes: 3-5 s on two cores), so the aggregates read a rollup instead:
-- * analyst_rollup: per day, per category and per state (grouping sets, ~800 rows), what
--   transactions joined to scores give (events, scored, alerts, sums of scores and amounts),
--   for the event days before its watermark. Both tables are written once per event, so a
--   rolled-up day stays right. refresh_analyst_rollup() adds the days completed since the last
--   refresh (a whole rebuild on 1.3M events: 4 s): `txguard tableau` runs it, and so should
--   whatever shows the charts, now and then (App.refresh_analyst_views).
-- * analyst_cells(): the rollup plus the same aggregates computed live for the events from the
--   watermark on (an index range on event_time), so the views are always current; before any
--   refresh everything is live (right, and slow).
-- * the labels and verdicts are counted live from the few events that have a fraud label (a
--   partial index) or a verdict, each looked up by key: a label arriving a week later counts at once.
-- * amount_vs_score looks its sample up by key from three indexes instead of filtering every event.
-- Every view keeps its name, columns and results; only how they are computed changes.

CREATE INDEX labels_frauds ON labels (trans_num) WHERE is_fraud;
-- The primary keys carry what the per-event lookups of the views read (index-only lookups):
-- no index is added to these tables, their one unique index gets wider.
ALTER TABLE verdicts DROP CONSTRAINT verdicts_trans_num_fkey;
ALTER TABLE transactions DROP CONSTRAINT transactions_pkey,
    ADD CONSTRAINT transactions_pkey PRIMARY KEY (trans_num) INCLUDE (event_time, category, state, amt);
ALTER TABLE verdicts ADD CONSTRAINT verdicts_trans_num_fkey FOREIGN KEY (trans_num) REFERENCES transactions (trans_num);
ALTER TABLE scores DROP CONSTRAINT scores_pkey, ADD CONSTRAINT scores_pkey PRIMARY KEY (trans_num) INCLUDE (score, flagged);
ALTER TABLE labels DROP CONSTRAINT labels_pkey, ADD CONSTRAINT labels_pkey PRIMARY KEY (trans_num) INCLUDE (is_fraud);

-- Exactly one of day, category, state is set: the cell's group.
CREATE TABLE analyst_rollup (
    day          date,
    category     text,
    state        text,
    transactions bigint           NOT NULL,
    scored       bigint           NOT NULL,
    anomalies    bigint           NOT NULL,
    score_sum    double precision,
    amount_sum   numeric
);
-- One row: the rollup holds the event days before this (NULL: nothing rolled up yet).
CREATE TABLE analyst_rollup_watermark (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    watermark    date,
    refreshed_at timestamptz
);
INSERT INTO analyst_rollup_watermark DEFAULT VALUES;

-- Roll up to the day ``upto`` (excluded), by default the day before the latest event of the
-- partition that is furthest behind (a partition's events arrive in order, so the days before
-- it are complete). Incremental: only the days from the previous watermark on are added (a
-- category's or state's cells are then summed over refreshes); ``rebuild``, or a watermark
-- going back, recomputes it all. One transaction: readers see the previous rollup until it
-- commits. Returns the watermark.
CREATE FUNCTION refresh_analyst_rollup(upto date DEFAULT NULL, rebuild boolean DEFAULT false) RETURNS date
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    cut  date := upto;
    done date;
BEGIN
    SELECT watermark INTO done FROM analyst_rollup_watermark FOR UPDATE;  -- one refresh at a time
    IF cut IS NULL THEN
        SELECT min(latest)::date - 1 INTO cut
        FROM (SELECT max(event_time) AS latest FROM transactions GROUP BY kafka_partition) p;
    END IF;
    IF rebuild OR cut IS NULL OR cut < done THEN
        DELETE FROM analyst_rollup;
        done := NULL;
    END IF;
    IF cut IS NOT NULL AND (done IS NULL OR cut > done) THEN
        INSERT INTO analyst_rollup
        SELECT t.event_time::date, t.category, t.state, count(*), count(s.trans_num),
               count(*) FILTER (WHERE s.flagged), sum(s.score), sum(t.amt)
        FROM transactions t LEFT JOIN scores s USING (trans_num)
        WHERE t.event_time < cut AND t.event_time >= coalesce(done, '-infinity'::date)
        GROUP BY GROUPING SETS ((t.event_time::date), (t.category), (t.state));
    END IF;
    UPDATE analyst_rollup_watermark SET watermark = cut, refreshed_at = now();
    RETURN cut;
END $$;

-- The rollup's cells and the live ones after its watermark. The live query is planned with the
-- watermark's value (EXECUTE), so it reads only the recent events through transactions_time.
-- SECURITY DEFINER: the views that call it are read by roles that cannot read the tables.
CREATE FUNCTION analyst_cells()
RETURNS TABLE (day date, category text, state text, transactions bigint, scored bigint, anomalies bigint,
               score_sum double precision, amount_sum numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    cut timestamp := coalesce((SELECT watermark FROM analyst_rollup_watermark), '-infinity'::timestamp);
BEGIN
    RETURN QUERY SELECT r.day, r.category, r.state, r.transactions, r.scored, r.anomalies, r.score_sum,
                        r.amount_sum
                 FROM analyst_rollup r;
    RETURN QUERY EXECUTE
        'SELECT t.event_time::date, t.category, t.state, count(*), count(s.trans_num),
                count(*) FILTER (WHERE s.flagged), sum(s.score), sum(t.amt)
         FROM transactions t LEFT JOIN scores s USING (trans_num)
         WHERE t.event_time >= $1
         GROUP BY GROUPING SETS ((t.event_time::date), (t.category), (t.state))' USING cut;
END $$;

-- A SECURITY DEFINER function searches its own schema, then pg_temp last: a caller's temporary
-- table never stands in for one of its tables.
DO $$ BEGIN
    EXECUTE format('ALTER FUNCTION analyst_cells() SET search_path = %I, pg_temp', current_schema());
END $$;

-- The events that carry a fraud label or an analyst's verdict (a few per thousand), with what
-- the aggregates count of them: is_fraud is true or NULL (not labelled fraud). Each is looked up
-- by its key (OFFSET 0 keeps the lookup per event: otherwise the planner joins by scanning every
-- transaction). Not for analysts: the views below read it.
CREATE VIEW judged_transactions AS
SELECT j.trans_num, x.event_time, x.category, x.state, x.flagged, j.is_fraud, j.verdict
FROM (SELECT trans_num, bool_or(is_fraud) AS is_fraud, max(verdict) AS verdict
      FROM (SELECT trans_num, true AS is_fraud, NULL::text AS verdict FROM labels WHERE is_fraud
            UNION ALL SELECT trans_num, NULL, verdict FROM verdicts) judged
      GROUP BY trans_num) j
CROSS JOIN LATERAL (SELECT t.event_time, t.category, t.state, s.flagged
                    FROM transactions t LEFT JOIN scores s USING (trans_num)
                    WHERE t.trans_num = j.trans_num OFFSET 0) x;

CREATE OR REPLACE VIEW daily_anomaly_trend AS
WITH cells AS (
    SELECT day, sum(transactions)::bigint AS transactions, sum(anomalies)::bigint AS anomalies,
           sum(score_sum) / nullif(sum(scored), 0) AS avg_score
    FROM analyst_cells() WHERE day IS NOT NULL GROUP BY 1
), judged AS (
    SELECT event_time::date AS day,
           count(*) FILTER (WHERE is_fraud)                     AS frauds,
           count(*) FILTER (WHERE flagged AND is_fraud)         AS frauds_alerted,
           count(*) FILTER (WHERE verdict = 'confirmed_fraud')  AS confirmed_frauds,
           count(*) FILTER (WHERE verdict = 'false_positive')   AS false_positives
    FROM judged_transactions GROUP BY 1
)
SELECT day, transactions, anomalies, avg_score, coalesce(frauds, 0) AS frauds,
       coalesce(frauds_alerted, 0) AS frauds_alerted, coalesce(confirmed_frauds, 0) AS confirmed_frauds,
       coalesce(false_positives, 0) AS false_positives
FROM cells LEFT JOIN judged USING (day);

CREATE OR REPLACE VIEW score_by_category AS
WITH cells AS (
    SELECT category, sum(transactions)::bigint AS transactions, sum(score_sum) / nullif(sum(scored), 0) AS avg_score,
           sum(anomalies)::bigint AS anomalies
    FROM analyst_cells() WHERE category IS NOT NULL GROUP BY 1
), judged AS (
    SELECT category, count(*) FILTER (WHERE is_fraud) AS frauds FROM judged_transactions GROUP BY 1
)
SELECT category, transactions, avg_score, anomalies, coalesce(frauds, 0) AS frauds
FROM cells LEFT JOIN judged USING (category);

CREATE OR REPLACE VIEW anomalies_by_state AS
WITH cells AS (
    SELECT state, sum(transactions)::bigint AS transactions, sum(anomalies)::bigint AS anomalies,
           sum(score_sum) / nullif(sum(scored), 0) AS avg_score
    FROM analyst_cells() WHERE state IS NOT NULL GROUP BY 1
), judged AS (
    SELECT state, count(*) FILTER (WHERE is_fraud) AS frauds FROM judged_transactions GROUP BY 1
)
SELECT state, transactions, anomalies, avg_score, coalesce(frauds, 0) AS frauds
FROM cells LEFT JOIN judged USING (state);

-- The sample's three parts each come from an index (scores flagged, labels fraud, the primary
-- key's range), and each sampled event is looked up by its key (OFFSET 0 keeps the lookup per
-- event: otherwise the planner joins by scanning every transaction).
CREATE OR REPLACE VIEW amount_vs_score AS
SELECT x.trans_num, x.event_time, x.category, x.state, x.amt, x.score, x.flagged, x.is_fraud, x.verdict
FROM (SELECT trans_num FROM scores WHERE flagged
      UNION SELECT trans_num FROM labels WHERE is_fraud
      UNION SELECT trans_num FROM transactions WHERE trans_num < '01') p
CROSS JOIN LATERAL (SELECT * FROM scored_transactions st WHERE st.trans_num = p.trans_num OFFSET 0) x
WHERE x.score IS NOT NULL
  AND (x.flagged OR x.is_fraud OR x.trans_num < '01');

CREATE OR REPLACE VIEW alert_funnel AS
SELECT coalesce(sum(transactions), 0)::bigint AS events, coalesce(sum(scored), 0)::bigint AS scored,
       coalesce(sum(anomalies), 0)::bigint AS alerted,
       (SELECT count(*) FROM judged_transactions
         WHERE flagged AND (is_fraud OR verdict = 'confirmed_fraud'))                   AS confirmed_fraud
FROM analyst_cells() WHERE day IS NOT NULL;

CREATE OR REPLACE VIEW daily_activity AS
WITH cells AS (
    SELECT day, sum(transactions)::bigint AS transactions, sum(amount_sum) AS amount,
           sum(anomalies)::bigint AS alerts
    FROM analyst_cells() WHERE day IS NOT NULL GROUP BY 1
), judged AS (
    SELECT event_time::date AS day, count(*) FILTER (WHERE is_fraud) AS frauds,
           count(*) FILTER (WHERE flagged AND is_fraud) AS frauds_alerted
    FROM judged_transactions GROUP BY 1
)
SELECT day, transactions, amount, alerts, coalesce(frauds, 0) AS frauds, coalesce(frauds_alerted, 0) AS frauds_alerted
FROM cells LEFT JOIN judged USING (day);

CREATE OR REPLACE VIEW category_activity AS
WITH cells AS (
    SELECT category, sum(transactions)::bigint AS transactions, sum(amount_sum) / sum(transactions) AS avg_amount,
           sum(anomalies)::bigint AS alerts
    FROM analyst_cells() WHERE category IS NOT NULL GROUP BY 1
), judged AS (
    SELECT category, count(*) FILTER (WHERE is_fraud) AS frauds FROM judged_transactions GROUP BY 1
)
SELECT category, transactions, avg_amount, alerts, coalesce(frauds, 0) AS frauds
FROM cells LEFT JOIN judged USING (category);

-- labelled: the labels received (a label is sent for a stored event; one that arrives before its
-- event counts at once). The rest from the frauds and verdicts, and the alerts, looked up by key.
CREATE OR REPLACE VIEW alert_quality AS
WITH judged AS (
    SELECT count(*) FILTER (WHERE flagged AND is_fraud)      AS true_positives,
           count(*) FILTER (WHERE NOT flagged AND is_fraud)  AS missed_frauds,
           count(*) FILTER (WHERE is_fraud)                  AS frauds
    FROM judged_transactions
), alerted AS (
    SELECT count(*) FILTER (WHERE NOT x.is_fraud) AS false_positives
    FROM (SELECT trans_num FROM scores WHERE flagged) f
    CROSS JOIN LATERAL (SELECT l.is_fraud FROM transactions t JOIN labels l USING (trans_num)
                        WHERE t.trans_num = f.trans_num OFFSET 0) x
)
SELECT true_positives, false_positives, missed_frauds, (SELECT count(*) FROM labels) AS labelled,
       true_positives::float / nullif(true_positives + false_positives, 0) AS precision,
       true_positives::float / nullif(frauds, 0)                          AS recall
FROM judged, alerted;
