"""The analyst views on 1.3M rows: each view's typical query, timed with EXPLAIN (ANALYZE, BUFFERS).

Fills the ``bench`` namespace of the embedded PostgreSQL with synthetic transactions,
scores, labels and verdicts (server side, ``INSERT ... SELECT generate_series``: about
1,000 cards, 700 days, 14 categories, 51 states, ~0.5% fraud, ~0.5% flagged), first
with the migrations before the analyst indexes (``--before`` version), runs every
query, then applies the remaining migrations and runs them again. It also times the
persist path's insert (a 5,000-row batch, INSERT ... ON CONFLICT DO NOTHING as
consumers.postgres does) into transactions, scores and labels before and after.
Result: ``benchmarks/results/views.json``::

    PYTHONPATH=. python -m benchmarks.views [--rows 1300000] [--keep-stack]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2 import sql

from benchmarks.run import HERE, _write
from producer.generator.parameters import CATEGORY_ORDER
from txguard import stack
from txguard.clients import Clients, migrate, refresh_analyst_views
from txguard.settings import Settings

# The last migration before the analyst indexes: "before" is measured on the schema up to it.
BEFORE_VERSION = 13
RUNS = 3  # each query is run once to warm the cache, then RUNS times; the median is kept
STATES = ("AK AL AR AZ CA CO CT DC DE FL GA HI IA ID IL IN KS KY LA MA MD ME MI MN MO MS MT NC ND NE NH NJ NM NV "
          "NY OH OK OR PA RI SC SD TN TX UT VA VT WA WI WV WY").split()  # fmt: skip

# One row per event, in event-time order as a replay stores them. Hashes of the row number
# make every draw deterministic; each table is filled from the same formulas.
_FILL = """
INSERT INTO transactions (trans_num, event_time, card_token, card_masked, merchant, category, amt, gender, city,
                          state, zip, lat, long, city_pop, birth_year, merch_lat, merch_long, merch_zipcode,
                          kafka_partition, kafka_offset)
SELECT md5('tx' || i), timestamp '2019-01-01' + (i::float8 / %(rows)s * 700 * 86400) * interval '1 second',
       md5('card' || card), repeat('*', 12) || lpad(card::text, 4, '0'),
       'fraud_Merchant ' || (abs(hashint4(i * 3)) %% 693), (%(categories)s::text[])[1 + abs(hashint4(i * 5)) %% 14],
       round(exp((abs(hashint4(i * 7)) %% 1000) / 1000.0 * 7)::numeric, 2),
       CASE WHEN card %% 2 = 0 THEN 'F' ELSE 'M' END,
       'City ' || (card %% 888), (%(states)s::text[])[1 + card %% 51], lpad((10000 + card * 89 %% 89999)::text, 5, '0'),
       30 + card %% 17, -120 + card %% 45, 500 + card * 37 %% 200000, 1930 + card %% 75,
       30.5 + card %% 17, -119.5 + card %% 45, NULL, card %% 4, i
FROM generate_series(1, %(rows)s) AS i, LATERAL (SELECT abs(hashint4(i)) %% 1000 AS card) c
"""
_FILL_SCORES = """
INSERT INTO scores (trans_num, card_token, event_time, iforest_score, online_score, score, flagged, reason,
                    model_version, supervised_score, threshold, features, learned_score, learned_version)
SELECT t.trans_num, t.card_token, t.event_time, u * 0.9, u * 0.8, u ^ 4, u > 0.995,
       CASE WHEN u > 0.995 THEN 'amount 12.3x the card''s mean; night hour' ELSE '' END,
       '20261101T000000-abcdef', u ^ 3, 0.98, array_fill(u, ARRAY[28]), u ^ 2, 'learned-0001'
FROM transactions t, LATERAL (SELECT (abs(hashint4(t.kafka_offset::int * 11)) %% 1000000) / 1e6::float8 AS u) r
"""
# Every event gets its label (a replay sends one per row): fraud for a third of the alerts
# and 0.4% of the rest.
_FILL_LABELS = """
INSERT INTO labels (trans_num, card_token, event_time, is_fraud)
SELECT trans_num, card_token, event_time,
       (flagged AND abs(hashtext('f' || trans_num)) %% 3 = 0) OR abs(hashtext('l' || trans_num)) %% 1000 < 4
FROM scores
"""
# An analyst's verdict on one alert in five.
_FILL_VERDICTS = """
INSERT INTO verdicts (trans_num, verdict, analyst, decided_at)
SELECT s.trans_num, CASE WHEN l.is_fraud THEN 'confirmed_fraud' ELSE 'false_positive' END, 'analyst@example.com',
       now()
FROM scores s JOIN labels l USING (trans_num)
WHERE s.flagged AND abs(hashtext('v' || s.trans_num)) %% 5 = 0
"""


def typical_queries(conn) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each view's typical query, with parameters read from the data (the latest day, a busy card)."""
    with conn.cursor() as cur:
        cur.execute("SELECT max(event_time) FROM transactions")
        latest = cur.fetchone()[0]
        cur.execute("SELECT card_token FROM transactions ORDER BY event_time DESC LIMIT 1")
        card = cur.fetchone()[0]
    day = latest.date() - timedelta(days=1)  # the last whole day
    p = {"card": card, "day": day, "next_day": day + timedelta(days=1), "week_ago": latest - timedelta(days=7),
         "from_day": day - timedelta(days=90)}  # fmt: skip
    return {
        "scored_transactions: one card's latest 100": (
            "SELECT * FROM scored_transactions WHERE card_token = %(card)s ORDER BY event_time DESC LIMIT 100", p),
        "scored_transactions: one day": (
            "SELECT * FROM scored_transactions WHERE event_time >= %(day)s AND event_time < %(next_day)s"
            " ORDER BY event_time", p),
        "alerts: last 7 days": ("SELECT * FROM alerts WHERE event_time >= %(week_ago)s ORDER BY event_time DESC", p),
        "alerts: latest 100": ("SELECT * FROM alerts ORDER BY event_time DESC LIMIT 100", p),
        "daily_anomaly_trend: 90 days": (
            "SELECT * FROM daily_anomaly_trend WHERE day > %(from_day)s AND day <= %(day)s ORDER BY day", p),
        "daily_anomaly_trend: whole": ("SELECT * FROM daily_anomaly_trend ORDER BY day", p),
        "score_by_category: whole": ("SELECT * FROM score_by_category ORDER BY category", p),
        "anomalies_by_state: whole": ("SELECT * FROM anomalies_by_state ORDER BY state", p),
        "amount_vs_score: whole": ("SELECT * FROM amount_vs_score", p),
        "alert_funnel": ("SELECT * FROM alert_funnel", p),
        "daily_activity: whole": ("SELECT * FROM daily_activity ORDER BY day", p),
        "category_activity: whole": ("SELECT * FROM category_activity ORDER BY category", p),
        "alert_quality": ("SELECT * FROM alert_quality", p),
    }  # fmt: skip


def explain(conn, query: str, params: dict[str, Any]) -> dict[str, Any]:
    """Median execution time of RUNS runs after a warm-up, the rows, and the last run's plan (text).

    The timed runs are EXPLAIN (ANALYZE, BUFFERS, TIMING OFF): the execution time without the
    clock reads per plan node, which more than double it on joins of millions of rows.
    """
    times, planning = [], []
    with conn.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + query, params)  # warm-up
        for _ in range(RUNS):
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) " + query, params)
            result = cur.fetchone()[0][0]
            times.append(result["Execution Time"])
            planning.append(result["Planning Time"])
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params)
        plan = [row[0] for row in cur.fetchall()]
    conn.rollback()
    return {"execution_ms": round(statistics.median(times), 1), "planning_ms": round(statistics.median(planning), 1),
            "rows": int(result["Plan"]["Actual Rows"]), "plan": plan}  # fmt: skip


def run_queries(conn, label: str) -> dict[str, Any]:
    out = {}
    for name, (query, params) in typical_queries(conn).items():
        out[name] = {"query": query, **explain(conn, query, params)}
        print(f"{label:6} {out[name]['execution_ms']:>10,.1f} ms  {out[name]['rows']:>7,} rows  {name}",
              file=sys.stderr, flush=True)  # fmt: skip
    return out


def persist_cost(conn, batch: int = 5000, repeats: int = 5) -> dict[str, float]:
    """Milliseconds to insert a batch of new rows into each hot table, as the persist sink does
    (INSERT ... SELECT ... ON CONFLICT DO NOTHING from a staged batch); rolled back each time."""
    out = {}
    with conn.cursor() as cur:
        for table in ("transactions", "scores", "labels"):
            cur.execute(sql.SQL("CREATE TEMP TABLE stage AS SELECT * FROM {} LIMIT 0").format(sql.Identifier(table)))
            cur.execute(sql.SQL("INSERT INTO stage SELECT * FROM {} ORDER BY trans_num LIMIT %s")
                        .format(sql.Identifier(table)), (batch,))  # fmt: skip
            # New keys, same shape: a fresh hash each, inserted in a random order like a batch of events.
            cur.execute("UPDATE stage SET trans_num = md5('new' || trans_num)")
            times = []
            for _ in range(repeats):
                cur.execute("SAVEPOINT batch")
                t0 = time.perf_counter()
                cur.execute(sql.SQL("INSERT INTO {} SELECT * FROM stage ON CONFLICT (trans_num) DO NOTHING")
                            .format(sql.Identifier(table)))  # fmt: skip
                times.append((time.perf_counter() - t0) * 1000)
                cur.execute("ROLLBACK TO SAVEPOINT batch")
            out[f"{table}_{batch}_rows_ms"] = round(statistics.median(times), 1)
            cur.execute("DROP TABLE stage")
    conn.rollback()
    return out


def fill(clients: Clients, rows: int) -> dict[str, Any]:
    conn = clients.pg()
    t0 = time.perf_counter()
    params = {"rows": rows, "categories": list(CATEGORY_ORDER), "states": STATES}
    with conn.cursor() as cur:
        for name, statement in (("transactions", _FILL), ("scores", _FILL_SCORES), ("labels", _FILL_LABELS),
                                ("verdicts", _FILL_VERDICTS)):  # fmt: skip
            cur.execute(statement, params)
            conn.commit()
            print(f"filled {name}: {cur.rowcount:,} rows, {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        cur.execute("SELECT (SELECT count(*) FROM scores WHERE flagged), (SELECT count(*) FROM labels WHERE is_fraud),"
                    " (SELECT count(DISTINCT card_token) FROM transactions)")  # fmt: skip
        flagged, frauds, cards = cur.fetchone()
    conn.close()
    return {"rows": rows, "flagged": flagged, "frauds": frauds, "cards": cards,
            "fill_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def vacuum_analyze(clients: Clients) -> None:
    conn = clients.pg()
    conn.autocommit = True
    with conn.cursor() as cur:
        for table in ("transactions", "scores", "labels", "verdicts"):
            cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
    conn.close()


def fresh_schema(clients: Clients) -> None:
    conn = clients.pg_connect()
    with conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(clients.settings.pg_schema)))
    conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.views")
    ap.add_argument("--rows", type=int, default=1_300_000)
    ap.add_argument("--keep-stack", action="store_true", help="leave the embedded stack running afterwards")
    args = ap.parse_args(argv)
    settings = Settings(home=HERE / ".stack", namespace="bench")
    stack.down(settings)
    stack.up(settings, {name: stack.free_port() for name in stack.DEFAULT_PORTS})
    try:
        clients = Clients(settings)
        fresh_schema(clients)
        migrate(clients, upto=BEFORE_VERSION)
        data = fill(clients, args.rows)
        vacuum_analyze(clients)
        conn = clients.pg()
        before = run_queries(conn, "before")
        insert_before = persist_cost(conn)
        conn.close()
        t0 = time.perf_counter()
        applied = migrate(clients)
        migration_s = time.perf_counter() - t0
        vacuum_analyze(clients)
        t0 = time.perf_counter()
        watermark = refresh_analyst_views(clients.pg)
        refresh_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        refresh_analyst_views(clients.pg)  # nothing new: what a periodic refresh costs at least
        refresh_again_s = time.perf_counter() - t0
        conn = clients.pg()
        after = run_queries(conn, "after")
        insert_after = persist_cost(conn)
        conn.close()
    finally:
        if not args.keep_stack:
            stack.down(settings)
    summary = {name: {"before_ms": before[name]["execution_ms"], "after_ms": after[name]["execution_ms"],
                      "rows": after[name]["rows"]} for name in after}  # fmt: skip
    _write("views", {
        "data": data, "migrations_applied": applied, "migration_seconds": round(migration_s, 1),
        "rollup_refresh_seconds": round(refresh_s, 1), "rollup_watermark": str(watermark),
        "rollup_refresh_again_seconds": round(refresh_again_s, 2),
        "summary_execution_ms": summary,
        "persist_insert_ms": {"before": insert_before, "after": insert_after},
        "target_ms": 1000, "before": before, "after": after,
        "note": "execution time: median of 3 EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) runs after a warm-up; plans "
                "(with per-node timing) are a fourth run's. After: with the rollup refreshed (refresh_analyst_rollup)",
        "measured_at": datetime.now(UTC).isoformat(),
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
