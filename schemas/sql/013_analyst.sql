-- The analyst's view (issue 10): verdicts on alerts, and the views behind `txguard report`,
-- the dashboard and Tableau. Each view already joins what its chart needs.

-- An analyst's verdict on an alert: the latest one per transaction, with who and when.
-- The dashboard also publishes it on `labels`, so the models learn from it.
CREATE TABLE verdicts (
    trans_num  char(32)    PRIMARY KEY REFERENCES transactions (trans_num),
    verdict    text        NOT NULL CHECK (verdict IN ('confirmed_fraud', 'false_positive')),
    analyst    text        NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now()
);

-- One row per event: every detector's score, the label once known, the verdict once given.
-- (CREATE OR REPLACE VIEW may only add columns at the end.)
CREATE OR REPLACE VIEW scored_transactions AS
SELECT t.trans_num, t.event_time, t.card_token, t.card_masked, t.merchant, t.category,
       t.amt, t.gender, t.city, t.state, t.city_pop, t.birth_year,
       s.score, s.iforest_score, s.online_score, s.flagged, s.reason, s.model_version,
       l.is_fraud,
       s.supervised_score, s.threshold,
       s.learned_score, v.verdict, v.analyst AS verdict_by, v.decided_at AS verdict_at
FROM transactions t
LEFT JOIN scores s USING (trans_num)
LEFT JOIN labels l USING (trans_num)
LEFT JOIN verdicts v USING (trans_num);

CREATE OR REPLACE VIEW alerts AS
SELECT * FROM scored_transactions WHERE flagged;

-- The daily trend of anomalous (alerted) transactions.
CREATE VIEW daily_anomaly_trend AS
SELECT event_time::date                                         AS day,
       count(*)                                                 AS transactions,
       count(*) FILTER (WHERE flagged)                          AS anomalies,
       avg(score)                                               AS avg_score,
       count(*) FILTER (WHERE is_fraud)                         AS frauds,
       count(*) FILTER (WHERE flagged AND is_fraud)             AS frauds_alerted,
       count(*) FILTER (WHERE verdict = 'confirmed_fraud')      AS confirmed_frauds,
       count(*) FILTER (WHERE verdict = 'false_positive')       AS false_positives
FROM scored_transactions
GROUP BY 1;

-- The average anomaly score by merchant category.
CREATE VIEW score_by_category AS
SELECT category,
       count(*)                          AS transactions,
       avg(score)                        AS avg_score,
       count(*) FILTER (WHERE flagged)   AS anomalies,
       count(*) FILTER (WHERE is_fraud)  AS frauds
FROM scored_transactions
GROUP BY 1;

-- Anomalies by the cardholder's state (two-letter code), for the US map.
CREATE VIEW anomalies_by_state AS
SELECT state,
       count(*)                          AS transactions,
       count(*) FILTER (WHERE flagged)   AS anomalies,
       avg(score)                        AS avg_score,
       count(*) FILTER (WHERE is_fraud)  AS frauds
FROM scored_transactions
GROUP BY 1;

-- Amount against anomaly score: every alert and every labelled fraud, plus a fixed 1/256
-- of the rest (trans_num is a hash, so its first two hex digits pick an even sample that
-- the primary key reads as one range), so the view stays small on 1.3M rows.
CREATE VIEW amount_vs_score AS
SELECT trans_num, event_time, category, state, amt, score, flagged, is_fraud, verdict
FROM scored_transactions
WHERE score IS NOT NULL
  AND (flagged OR is_fraud OR trans_num < '01');

-- The funnel: events stored -> scored -> alerted -> confirmed fraud (label or verdict).
CREATE VIEW alert_funnel AS
SELECT count(*)                                                            AS events,
       count(score)                                                        AS scored,
       count(*) FILTER (WHERE flagged)                                     AS alerted,
       count(*) FILTER (WHERE flagged AND (is_fraud OR verdict = 'confirmed_fraud')) AS confirmed_fraud
FROM scored_transactions;
