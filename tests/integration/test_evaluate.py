"""``txguard evaluate`` against the real PostgreSQL: synthetic scores with known separations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from psycopg2.extras import execute_values
from sklearn.metrics import average_precision_score, roc_auc_score

from tests.integration.conftest import pg_query
from txguard.clients import Clients
from txguard.evaluate import detector_columns, evaluate, format_report

pytestmark = pytest.mark.integration

START = datetime(2020, 3, 1)
DAYS, CARDS, PER_DAY = 4, 20, 75
UNLABELLED_DAY = 3  # the last event-day: labels not in yet for half of it


def synthetic_events(seed: int = 7) -> pd.DataFrame:
    """300 events over 4 days; iforest is perfect, online reversed, the ensemble noisy."""
    rng = np.random.default_rng(seed)
    n = DAYS * PER_DAY
    day = np.repeat(np.arange(DAYS), PER_DAY)
    frame = pd.DataFrame(
        {
            "trans_num": [f"{i:032x}" for i in range(n)],
            "event_time": [START + timedelta(days=int(d), minutes=3 * i) for i, d in enumerate(day % DAYS)],
            "day": day,
            "card_token": [f"card{c:028d}" for c in rng.integers(0, CARDS, n)],
            "is_fraud": rng.random(n) < 0.1,
        }
    )
    fraud = frame["is_fraud"].to_numpy()
    frame["iforest_score"] = fraud + rng.uniform(0, 0.5, n)
    frame["online_score"] = -frame["iforest_score"]
    frame["score"] = 0.4 * fraud + rng.uniform(0, 1, n)
    frame["flagged"] = frame["score"] >= 0.9
    frame["threshold"] = 0.9
    frame["model_version"] = np.where(day < 2, "v1", "v2")
    # No supervised model on the first day yet.
    frame["supervised_score"] = np.where(day == 0, np.nan, 0.8 * fraud + rng.uniform(0, 0.3, n))
    frame["labelled"] = ~((day == UNLABELLED_DAY) & (np.arange(n) % 2 == 0))
    return frame


def insert(clients: Clients, frame: pd.DataFrame, *, transactions_only: int = 0) -> None:
    """Rows into transactions (plus ``transactions_only`` never scored), scores and labels."""
    conn = clients.pg()
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "ALTER TABLE scores ADD COLUMN IF NOT EXISTS supervised_score double precision NULL,"
                " ADD COLUMN IF NOT EXISTS threshold double precision"
            )
            extra = pd.DataFrame(
                {
                    "trans_num": [f"{10**6 + i:032x}" for i in range(transactions_only)],
                    "event_time": [START + timedelta(hours=i) for i in range(transactions_only)],
                    "card_token": ["c" * 32] * transactions_only,
                }
            )
            both = pd.concat([frame[["trans_num", "event_time", "card_token"]], extra])
            execute_values(
                cur,
                "INSERT INTO transactions (trans_num, event_time, card_token, card_masked, merchant, category,"
                " amt, gender, city, state, zip, lat, long, city_pop, birth_year, merch_lat, merch_long,"
                " kafka_partition, kafka_offset) VALUES %s",
                [
                    (t, e, c, "****1234", "m", "grocery_pos", 12.5, "F", "x", "NY", "10001", 40.0, -73.0, 1000,
                     1980, 40.1, -73.1, 0, i)
                    for i, (t, e, c) in enumerate(both.itertuples(index=False))
                ],
            )  # fmt: skip
            execute_values(
                cur,
                "INSERT INTO scores (trans_num, card_token, event_time, iforest_score, online_score, score,"
                " supervised_score, threshold, flagged, reason, model_version) VALUES %s",
                [
                    (r.trans_num, r.card_token, r.event_time, r.iforest_score, r.online_score, r.score,
                     None if np.isnan(r.supervised_score) else r.supervised_score, r.threshold, bool(r.flagged),
                     "", r.model_version)
                    for r in frame.itertuples()
                ],
            )  # fmt: skip
            execute_values(
                cur,
                "INSERT INTO labels (trans_num, card_token, event_time, is_fraud) VALUES %s",
                [(r.trans_num, r.card_token, r.event_time, bool(r.is_fraud)) for r in frame.itertuples() if r.labelled],
            )
    finally:
        conn.close()


@pytest.fixture(scope="module")
def events(clients: Clients) -> pd.DataFrame:
    frame = synthetic_events()
    insert(clients, frame, transactions_only=12)
    return frame


def card_precision(frame: pd.DataFrame, column: str, k: int) -> float:
    """Written out per day, apart from model.evaluation: share of the top-k cards with a fraud."""
    values = []
    for _, day in frame.groupby("day"):
        cards = day.groupby("card_token").agg(top=(column, "max"), fraud=("is_fraud", "any"))
        checked = cards.sort_values(["top"], ascending=False, kind="stable").head(k)
        values.append(checked["fraud"].sum() / k)
    return float(np.mean(values))


def test_every_detector_alerts_versions_and_curves(clients, events, tmp_path):
    png = tmp_path / "curves.png"
    conn = clients.pg()
    try:
        result = evaluate(conn, since=None, until=None, curves_png=png, k=3)
        assert detector_columns(conn) == ["score", "iforest_score", "online_score", "supervised_score", "learned_score"]
    finally:
        conn.close()
    assert json.loads(json.dumps(result)) == result  # plain JSON types only

    labelled = events[events["labelled"]]
    y = labelled["is_fraud"].to_numpy()
    assert result["counts"] == {
        "transactions": len(events) + 12,
        "scored": len(events),
        "alerts": int(events["flagged"].sum()),
        "labelled": len(labelled),
        "frauds": int(y.sum()),
        "labelled_alerts": int(labelled["flagged"].sum()),
        "confirmed_frauds": int((labelled["flagged"] & labelled["is_fraud"]).sum()),
    }
    assert [s["events"] for s in result["funnel"]] == [
        len(events) + 12,
        len(events),
        int(events["flagged"].sum()),
        int((labelled["flagged"] & labelled["is_fraud"]).sum()),
    ]

    detectors = result["detectors"]
    assert detectors["iforest_score"]["roc_auc"] == 1.0 and detectors["iforest_score"]["pr_auc"] == pytest.approx(1.0)
    assert detectors["online_score"]["roc_auc"] == 0.0
    assert detectors["score"]["ensemble"] and detectors["score"]["roc_auc"] == pytest.approx(
        roc_auc_score(y, labelled["score"])
    )
    assert detectors["score"]["pr_auc"] == pytest.approx(average_precision_score(y, labelled["score"]))
    supervised = labelled[labelled["day"] > 0]
    assert detectors["supervised_score"]["events"] == len(supervised)
    assert detectors["supervised_score"]["unscored"] == len(labelled) - len(supervised)
    assert detectors["supervised_score"]["roc_auc"] == 1.0
    assert detectors["iforest_score"]["card_precision_at_k"] == pytest.approx(card_precision(labelled, "is_fraud", 3))

    alerts = result["alerts"]
    true_positives = (labelled["flagged"] & labelled["is_fraud"]).sum()
    assert alerts["precision"] == pytest.approx(true_positives / labelled["flagged"].sum())
    assert alerts["recall"] == pytest.approx(true_positives / y.sum())
    assert alerts["threshold"] == {"min": 0.9, "max": 0.9, "latest": 0.9}
    per_day = events.groupby("day")["flagged"].sum()  # all scored events, labelled or not
    assert alerts["per_day"] == {
        "days": DAYS, "mean": pytest.approx(per_day.mean()), "min": per_day.min(), "max": per_day.max(), "budget": None
    }  # fmt: skip
    cp = alerts["card_precision_at_k"]
    assert cp["k"] == 3 and cp["days"] == DAYS
    assert cp["value"] == pytest.approx(card_precision(labelled, "score", 3))
    assert cp["best"] == pytest.approx(card_precision(labelled, "is_fraud", 3)) and cp["best"] >= cp["value"]

    assert sorted(result["model_versions"]) == ["v1", "v2"]
    v1 = labelled[labelled["model_version"] == "v1"]
    assert result["model_versions"]["v1"]["rows"] == len(v1)
    assert result["model_versions"]["v1"]["roc_auc"] == pytest.approx(roc_auc_score(v1["is_fraud"], v1["score"]))

    assert result["shadow"] == {}  # the shadow_scores view (migration 009) is empty: no shadow was set
    assert result["curves_png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = format_report(result)
    assert "iforest_score" in report and "score (ensemble)" in report and "card precision@3" in report
    assert f"supervised_score: no score for {len(labelled) - len(supervised)} of" in report


def test_since_until_window(clients, events):
    since, until = START + timedelta(days=1), START + timedelta(days=3)
    conn = clients.pg()
    try:
        result = evaluate(conn, since=since.replace(tzinfo=UTC), until=until, curves_png=None)
        with pytest.raises(ValueError):
            evaluate(conn, since=until, until=since, curves_png=None)
    finally:
        conn.close()
    inside = events[(events["event_time"] >= since) & (events["event_time"] < until)]
    assert result["window"] == {"since": since.isoformat(), "until": until.isoformat()}
    assert result["counts"]["scored"] == result["counts"]["transactions"] == len(inside)
    assert result["counts"]["labelled"] == inside["labelled"].sum()
    assert result["alerts"]["per_day"]["days"] == 2
    assert result["detectors"]["score"]["roc_auc"] == pytest.approx(roc_auc_score(inside["is_fraud"], inside["score"]))
    assert result["curves_png"] is None
    assert sorted(result["model_versions"]) == ["v1", "v2"]


def test_labels_from_a_file_replace_the_received_ones_for_one_evaluation(clients, events):
    """After a run with labels off: judged against the source file's is_fraud, the labels table untouched."""
    flipped = events.assign(is_fraud=~events["is_fraud"])  # every label the opposite of the stored one
    conn = clients.pg()
    try:
        from_file = evaluate(conn, curves_png=None, labels=flipped[["trans_num", "is_fraud"]])
        stored = evaluate(conn, curves_png=None)
    finally:
        conn.close()
    assert from_file["counts"]["labelled"] == len(events)  # the file labels every event, even the unlabelled day
    assert from_file["counts"]["frauds"] == int(flipped["is_fraud"].sum())
    expected = roc_auc_score(flipped["is_fraud"], events["iforest_score"])
    assert from_file["detectors"]["iforest_score"]["roc_auc"] == pytest.approx(expected)
    assert stored["counts"]["labelled"] == int(events["labelled"].sum())  # the table is as it was
    assert pg_query(clients, "SELECT count(*) FROM labels") == [(int(events["labelled"].sum()),)]


def test_shadow_versions_against_the_current_ensemble(fresh_clients):
    frame = synthetic_events(seed=11)
    insert(fresh_clients, frame)
    shadowed = frame[frame["labelled"] & (frame["day"] >= 2)]
    conn = fresh_clients.pg()
    try:
        with conn, conn.cursor() as cur:
            # Several shadows per event, which the scores' shadow columns cannot hold: a table in place of the view.
            cur.execute("DROP VIEW shadow_scores")
            cur.execute("CREATE TABLE shadow_scores (trans_num char(32), model_version text, score double precision,"
                        " PRIMARY KEY (trans_num, model_version))")  # fmt: skip
            execute_values(
                cur,
                "INSERT INTO shadow_scores VALUES %s",
                [(r.trans_num, "v3-perfect", float(r.is_fraud)) for r in shadowed.itertuples()]
                + [(r.trans_num, "v3-noise", r.score * 0.5) for r in shadowed.itertuples()],
            )
        result = evaluate(conn, since=None, until=None, curves_png=None)
    finally:
        conn.close()
    current_auc = roc_auc_score(shadowed["is_fraud"], shadowed["score"])
    assert result["shadow"]["v3-perfect"] == {
        "events": len(shadowed),
        "frauds": int(shadowed["is_fraud"].sum()),
        "roc_auc": 1.0,
        "pr_auc": pytest.approx(1.0),
        "current_roc_auc": pytest.approx(current_auc),
        "current_pr_auc": pytest.approx(average_precision_score(shadowed["is_fraud"], shadowed["score"])),
    }
    assert result["shadow"]["v3-noise"]["roc_auc"] == pytest.approx(current_auc)  # same ranking, other scale
    assert "v3-perfect" in format_report(result)


def test_no_labels_then_a_single_class(fresh_clients):
    frame = synthetic_events(seed=3).assign(labelled=False)
    insert(fresh_clients, frame)
    conn = fresh_clients.pg()
    try:
        result = evaluate(conn, since=None, until=None, curves_png=None)
        assert result["counts"]["labelled"] == 0 and result["counts"]["scored"] == len(frame)
        assert all(d["roc_auc"] is None for d in result["detectors"].values())
        assert result["alerts"]["precision"] is None and result["alerts"]["card_precision_at_k"]["value"] is None
        assert result["alerts"]["per_day"]["days"] == DAYS  # alert volume needs no labels
        assert result["model_versions"] == {}
        assert "No labels yet" in format_report(result)

        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO labels SELECT trans_num, card_token, event_time, false FROM scores")
        png = fresh_clients.settings.home / "never.png"
        result = evaluate(conn, since=None, until=None, curves_png=png)
        assert result["counts"]["frauds"] == 0 and result["detectors"]["score"]["roc_auc"] is None
        assert result["alerts"]["recall"] is None and result["alerts"]["precision"] == 0.0
        assert result["curves_png"] is None and not png.exists()
        assert "Every labelled event is legitimate" in format_report(result)
    finally:
        conn.close()
