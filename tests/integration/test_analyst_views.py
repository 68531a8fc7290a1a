"""The analyst views give what their first definitions (013, over scored_transactions) gave,
whether the rollup behind them was refreshed or not."""

from __future__ import annotations

from datetime import date

import pytest

from tests.integration.scored_data import replay_scored
from txguard.app import App

pytestmark = pytest.mark.integration

# The definitions of schemas/sql/002 and 013: what each view must keep answering.
REFERENCE = {
    "daily_anomaly_trend": """
        SELECT event_time::date AS day, count(*), count(*) FILTER (WHERE flagged), round(avg(score)::numeric, 9),
               count(*) FILTER (WHERE is_fraud), count(*) FILTER (WHERE flagged AND is_fraud),
               count(*) FILTER (WHERE verdict = 'confirmed_fraud'), count(*) FILTER (WHERE verdict = 'false_positive')
        FROM scored_transactions GROUP BY 1""",
    "score_by_category": """
        SELECT category, count(*), round(avg(score)::numeric, 9), count(*) FILTER (WHERE flagged),
               count(*) FILTER (WHERE is_fraud)
        FROM scored_transactions GROUP BY 1""",
    "anomalies_by_state": """
        SELECT state, count(*), count(*) FILTER (WHERE flagged), round(avg(score)::numeric, 9),
               count(*) FILTER (WHERE is_fraud)
        FROM scored_transactions GROUP BY 1""",
    "amount_vs_score": """
        SELECT trans_num, event_time, category, state, amt, score, flagged, is_fraud, verdict
        FROM scored_transactions WHERE score IS NOT NULL AND (flagged OR is_fraud OR trans_num < '01')""",
    "alert_funnel": """
        SELECT count(*), count(score), count(*) FILTER (WHERE flagged),
               count(*) FILTER (WHERE flagged AND (is_fraud OR verdict = 'confirmed_fraud'))
        FROM scored_transactions""",
    "daily_activity": """
        SELECT date_trunc('day', event_time)::date, count(*), sum(amt), count(*) FILTER (WHERE flagged),
               count(*) FILTER (WHERE is_fraud), count(*) FILTER (WHERE flagged AND is_fraud)
        FROM scored_transactions GROUP BY 1""",
    "category_activity": """
        SELECT category, count(*), round(avg(amt), 9), count(*) FILTER (WHERE flagged), count(*) FILTER (WHERE is_fraud)
        FROM scored_transactions GROUP BY 1""",
    "alert_quality": """
        SELECT count(*) FILTER (WHERE flagged AND is_fraud), count(*) FILTER (WHERE flagged AND NOT is_fraud),
               count(*) FILTER (WHERE NOT flagged AND is_fraud), count(*) FILTER (WHERE is_fraud IS NOT NULL),
               round(((count(*) FILTER (WHERE flagged AND is_fraud))::float
                      / nullif(count(*) FILTER (WHERE flagged AND is_fraud IS NOT NULL), 0))::numeric, 9),
               round(((count(*) FILTER (WHERE flagged AND is_fraud))::float
                      / nullif(count(*) FILTER (WHERE is_fraud), 0))::numeric, 9)
        FROM scored_transactions""",
}
# The same columns read from the views, floats rounded alike.
VIEWS = {
    "daily_anomaly_trend": "SELECT day, transactions, anomalies, round(avg_score::numeric, 9), frauds, "
                           "frauds_alerted, confirmed_frauds, false_positives FROM daily_anomaly_trend",
    "score_by_category": "SELECT category, transactions, round(avg_score::numeric, 9), anomalies, frauds "
                         "FROM score_by_category",
    "anomalies_by_state": "SELECT state, transactions, anomalies, round(avg_score::numeric, 9), frauds "
                          "FROM anomalies_by_state",
    "amount_vs_score": "SELECT * FROM amount_vs_score",
    "alert_funnel": "SELECT * FROM alert_funnel",
    "daily_activity": "SELECT * FROM daily_activity",
    "category_activity": "SELECT category, transactions, round(avg_amount, 9), alerts, frauds FROM category_activity",
    "alert_quality": "SELECT true_positives, false_positives, missed_frauds, labelled, "
                     "round(precision::numeric, 9), round(recall::numeric, 9) FROM alert_quality",
}  # fmt: skip


@pytest.fixture(scope="module")
def scored(clients, services, tmp_path_factory):
    replay_scored(clients, services, tmp_path_factory.mktemp("q") / "q.jsonl")
    conn = clients.pg()
    with conn, conn.cursor() as cur:  # a fraud label with a verdict, and a confirmed one: every count has rows
        cur.execute("INSERT INTO verdicts (trans_num, verdict, analyst) SELECT trans_num, 'confirmed_fraud', 'a'"
                    " FROM labels WHERE is_fraud ORDER BY trans_num LIMIT 2 ON CONFLICT DO NOTHING")  # fmt: skip
    conn.close()
    return clients


def _rows(clients, query: str) -> list[tuple]:
    conn = clients.pg()
    with conn.cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall()
    conn.close()
    return sorted(rows, key=repr)


def _assert_views_match_their_definitions(clients) -> None:
    for view, query in VIEWS.items():
        got, expected = _rows(clients, query), _rows(clients, REFERENCE[view])
        assert got == expected, view
        assert got, view


def test_the_views_are_right_before_any_refresh(scored):
    _assert_views_match_their_definitions(scored)


def test_the_views_are_right_with_the_rollup_and_stay_current_after_it(scored):
    # The slice spans 14 hours (2019-01-01 23:02 .. 01-02 12:57): by default only the days before
    # the day before the latest are rolled up, none of its events, so a day is named.
    assert App(scored.settings).refresh_analyst_views() == date(2019, 1, 1)
    _assert_views_match_their_definitions(scored)
    watermark = App(scored.settings).refresh_analyst_views(date(2019, 1, 2))  # adds 2019-01-01
    assert watermark == date(2019, 1, 2)
    _assert_views_match_their_definitions(scored)
    assert App(scored.settings).refresh_analyst_views(date(2019, 1, 2), rebuild=True) == watermark
    conn = scored.pg()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FILTER (WHERE event_time < %s), count(*) FROM transactions", (watermark,))
        rolled_up, total = cur.fetchone()
    conn.close()
    assert 0 < rolled_up < total  # both parts in use: the rollup and the live days after it
    _assert_views_match_their_definitions(scored)
    assert App(scored.settings).refresh_analyst_views(date(2019, 1, 3)) == date(2019, 1, 3)  # all, incrementally
    _assert_views_match_their_definitions(scored)
    assert App(scored.settings).refresh_analyst_views(watermark) == watermark  # back: rebuilt
    conn = scored.pg()
    with conn, conn.cursor() as cur:  # a verdict and a label change after the refresh count at once
        cur.execute("INSERT INTO verdicts (trans_num, verdict, analyst) SELECT trans_num, 'false_positive', 'b'"
                    " FROM scores WHERE NOT flagged AND event_time < %s ORDER BY trans_num LIMIT 3",
                    (watermark,))  # fmt: skip
        cur.execute("UPDATE labels SET is_fraud = true WHERE trans_num IN (SELECT trans_num FROM labels"
                    " WHERE NOT is_fraud AND event_time < %s ORDER BY trans_num LIMIT 2)", (watermark,))  # fmt: skip
    conn.close()
    _assert_views_match_their_definitions(scored)
