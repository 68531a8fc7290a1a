-- Shadow models: a candidate version scores the same events as the current one,
-- stored beside its score; it raises no alerts. `txguard evaluate` compares the two.

ALTER TABLE scores
    ADD COLUMN shadow_score   double precision,
    ADD COLUMN shadow_version text;

CREATE VIEW shadow_scores AS
SELECT trans_num, shadow_version AS model_version, shadow_score AS score, event_time
FROM scores
WHERE shadow_version IS NOT NULL;
