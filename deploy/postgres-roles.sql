-- PostgreSQL / Amazon RDS roles for txguard, least privilege. Run with psql as a role that may
-- create roles (the RDS master user), once before `txguard setup` and once after it (and after an
-- upgrade whose migrations add a table): it is safe to run again.
--
--   psql "$ADMIN_DSN" -v schema=public -v database=txguard -f deploy/postgres-roles.sql
--
-- schema: the PostgreSQL schema txguard uses (TXGUARD_NAMESPACE, or public without one).
-- Then give the login roles a password (\password txguard_writer) or, with RDS IAM
-- authentication (TXGUARD_POSTGRES_IAM_AUTH=true), `GRANT rds_iam TO txguard_owner, txguard_writer;`.
--
-- txguard_owner    `txguard setup` logs in as it: it owns the schema and what the migrations in
--                  schemas/sql create, and grants the analysts their views.
-- txguard_writer   the services (TXGUARD_POSTGRES_DSN of `txguard run`) and the other commands
--                  (dashboard, report, evaluate, retrain, refresh-views): reads its schema, and
--                  writes only what each service writes (below). No DDL, DELETE or TRUNCATE of events.
-- txguard_analyst  Tableau and analysts: read-only, on the analyst views only. `txguard setup`
--                  grants those (txguard/clients.py grant_analyst, the views of schemas/analyst.py;
--                  the views run with their owner's rights), so this file only creates the role.

\set ON_ERROR_STOP on
SELECT set_config('txguard.schema', :'schema', false), set_config('txguard.database', :'database', false);

DO $roles$
DECLARE
    target   text := current_setting('txguard.schema');
    database text := current_setting('txguard.database');
    role     text;
BEGIN
    FOREACH role IN ARRAY ARRAY['txguard_owner', 'txguard_writer', 'txguard_analyst'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION', role);
        END IF;
    END LOOP;

    -- The owner creates the namespaces' schemas (txguard setup); the services' staging table
    -- for COPY is a temporary table.
    EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO txguard_owner', database);
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO txguard_writer', database);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO txguard_analyst', database);

    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = target) THEN
        EXECUTE format('CREATE SCHEMA %I AUTHORIZATION txguard_owner', target);
    ELSIF (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = target) <> 'txguard_owner' THEN
        -- public (owned by the database owner): the owner may create in it and grant its use.
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO txguard_owner WITH GRANT OPTION', target);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO txguard_writer', target);

    -- After `txguard setup`: the writer's rights on the tables it made.
    IF to_regclass(format('%I.transactions', target)) IS NULL THEN
        RAISE NOTICE 'no txguard tables in schema % yet: run `txguard setup` as txguard_owner, then this file again',
            target;
        RETURN;
    END IF;
    -- Granting on the owner's tables takes its rights (RDS: the master user created the role).
    IF NOT pg_has_role(current_user, 'txguard_owner', 'USAGE') THEN
        EXECUTE format('GRANT txguard_owner TO %I', current_user);
    END IF;
    -- Reads: every txguard command reads its schema (report, evaluate, retrain, dashboard; the
    -- learner looks up scores' features).
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO txguard_writer', target);
    -- persist: COPY of every event (INSERT ... ON CONFLICT DO NOTHING when a batch is redelivered), nothing else.
    EXECUTE format('GRANT INSERT ON %1$I.transactions, %1$I.scores, %1$I.labels, %1$I.drift_events '
                   'TO txguard_writer', target);
    -- The dashboard: an analyst's verdict (one per alert, the latest kept).
    EXECUTE format('GRANT INSERT, UPDATE (verdict, analyst, decided_at) ON %I.verdicts TO txguard_writer', target);
    -- refresh_analyst_rollup() (dashboard, refresh-views): rolls the analysts' aggregates forward.
    EXECUTE format('GRANT INSERT, DELETE ON %I.analyst_rollup TO txguard_writer', target);
    EXECUTE format('GRANT UPDATE ON %I.analyst_rollup_watermark TO txguard_writer', target);
    -- The scorer keeps its state in DynamoDB and the retrainer its models in the registry: no more.
END
$roles$;
