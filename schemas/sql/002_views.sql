-- Views for SQL, Tableau and `txguard report`. Tableau: connect to PostgreSQL and
-- drag these in; they already join what an analyst needs.

CREATE VIEW scored_transactions AS
SELECT t.trans_num, t.event_time, t.card_token, t.card_masked, t.merchant, t.category,
       t.amt, t.gender, t.city, t.state, t.city_pop, t.birth_year,
       s.score, s.iforest_score, s.online_score, s.flagged, s.reason, s.model_version,
       l.is_fraud
FROM transactions t
LEFT JOIN scores s USING (trans_num)
LEFT JOIN labels l USING (trans_num);

CREATE VIEW alerts AS
SELECT * FROM scored_transactions WHERE flagged;

CREATE VIEW daily_activity AS
SELECT date_trunc('day', event_time)::date      AS day,
       count(*)                                 AS transactions,
       sum(amt)                                 AS amount,
       count(*) FILTER (WHERE flagged)          AS alerts,
       count(*) FILTER (WHERE is_fraud)         AS frauds,
       count(*) FILTER (WHERE flagged AND is_fraud) AS frauds_alerted
FROM scored_transactions
GROUP BY 1;

CREATE VIEW category_activity AS
SELECT category,
       count(*)                          AS transactions,
       avg(amt)                          AS avg_amount,
       count(*) FILTER (WHERE flagged)   AS alerts,
       count(*) FILTER (WHERE is_fraud)  AS frauds
FROM scored_transactions
GROUP BY 1;

-- Precision and recall of the alerts against the labels received so far.
CREATE VIEW alert_quality AS
SELECT count(*) FILTER (WHERE flagged AND is_fraud)          AS true_positives,
       count(*) FILTER (WHERE flagged AND NOT is_fraud)      AS false_positives,
       count(*) FILTER (WHERE NOT flagged AND is_fraud)      AS missed_frauds,
       count(*) FILTER (WHERE is_fraud IS NOT NULL)          AS labelled,
       (count(*) FILTER (WHERE flagged AND is_fraud))::float
           / nullif(count(*) FILTER (WHERE flagged AND is_fraud IS NOT NULL), 0) AS precision,
       (count(*) FILTER (WHERE flagged AND is_fraud))::float
           / nullif(count(*) FILTER (WHERE is_fraud), 0)                        AS recall
FROM scored_transactions;
