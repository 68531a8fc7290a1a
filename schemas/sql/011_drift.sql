-- Drift detected by the scorers (issue 8): one row per detection, from the `drift`
-- topic. drift_id is a hash of the detection, and the sink inserts with
-- ON CONFLICT (drift_id) DO NOTHING, so a redelivered message never makes a second row.
CREATE TABLE drift_events (
    drift_id      char(32)         PRIMARY KEY,
    detected_at   timestamp        NOT NULL,
    quantity      text             NOT NULL,
    mean_before   double precision NOT NULL,
    mean_after    double precision NOT NULL,
    model_version text             NOT NULL,
    scorer        text             NOT NULL,
    received_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX drift_events_time ON drift_events (detected_at);
