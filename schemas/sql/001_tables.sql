-- Scored history. Every sink writes with ON CONFLICT (trans_num) DO NOTHING, so a
-- redelivered Kafka message never makes a second row.
CREATE TABLE transactions (
    trans_num       char(32)        PRIMARY KEY,
    event_time      timestamp       NOT NULL,
    card_token      char(32)        NOT NULL,
    card_masked     text            NOT NULL,
    merchant        text            NOT NULL,
    category        text            NOT NULL,
    amt             numeric(12, 2)  NOT NULL,
    gender          text            NOT NULL,
    city            text            NOT NULL,
    state           text            NOT NULL,
    zip             text            NOT NULL,
    lat             double precision NOT NULL,
    long            double precision NOT NULL,
    city_pop        integer         NOT NULL,
    birth_year      smallint        NOT NULL,
    merch_lat       double precision NOT NULL,
    merch_long      double precision NOT NULL,
    merch_zipcode   text,
    kafka_partition integer         NOT NULL,
    kafka_offset    bigint          NOT NULL,
    ingested_at     timestamptz     NOT NULL DEFAULT now()
);
CREATE INDEX transactions_card_time ON transactions (card_token, event_time);
CREATE INDEX transactions_time ON transactions (event_time);

CREATE TABLE scores (
    trans_num     char(32)         PRIMARY KEY,
    card_token    char(32)         NOT NULL,
    event_time    timestamp        NOT NULL,
    iforest_score double precision NOT NULL,
    online_score  double precision NOT NULL,
    score         double precision NOT NULL,
    flagged       boolean          NOT NULL,
    reason        text             NOT NULL,
    model_version text             NOT NULL,
    scored_at     timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX scores_flagged_time ON scores (event_time) WHERE flagged;

-- Ground truth as it arrives (delayed), kept apart so scoring never sees it.
CREATE TABLE labels (
    trans_num   char(32)    PRIMARY KEY,
    card_token  char(32)    NOT NULL,
    event_time  timestamp   NOT NULL,
    is_fraud    boolean     NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
