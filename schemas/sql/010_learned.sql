-- The online classifier (issue 8): the learner trains it on the labels topic and every
-- scorer scores with its latest snapshot. Its own score and the snapshot that gave it
-- are kept beside the ensemble's, so `txguard evaluate` judges it as a detector.
ALTER TABLE scores
    ADD COLUMN learned_score   double precision,
    ADD COLUMN learned_version text;
