-- scored_transactions exposes the supervised score and the threshold in force; the
-- alerts view is `SELECT *` of it, so it is recreated to pick the new columns up.
-- (CREATE OR REPLACE VIEW may only add columns at the end.)
CREATE OR REPLACE VIEW scored_transactions AS
SELECT t.trans_num, t.event_time, t.card_token, t.card_masked, t.merchant, t.category,
       t.amt, t.gender, t.city, t.state, t.city_pop, t.birth_year,
       s.score, s.iforest_score, s.online_score, s.flagged, s.reason, s.model_version,
       l.is_fraud,
       s.supervised_score, s.threshold
FROM transactions t
LEFT JOIN scores s USING (trans_num)
LEFT JOIN labels l USING (trans_num);

CREATE OR REPLACE VIEW alerts AS
SELECT * FROM scored_transactions WHERE flagged;
