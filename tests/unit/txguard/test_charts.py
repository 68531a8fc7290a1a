"""Every chart drawn from small frames shaped as :func:`txguard.charts.chart_data` returns them."""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from txguard import charts
from txguard.evaluate import ENSEMBLE

USPS = set(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND OH "
    "OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)


def pixels(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return imread(io.BytesIO(png), format="png")


def frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(30)]
    transactions = rng.integers(900, 1100, len(days))
    anomalies = rng.integers(5, 15, len(days))
    daily = pd.DataFrame({"day": days, "transactions": transactions, "anomalies": anomalies, "avg_score": 0.2,
                          "frauds": 3, "frauds_alerted": 2, "confirmed_frauds": 0, "false_positives": 0,
                          "anomaly_rate": anomalies / transactions})  # fmt: skip
    n = 400
    fraud = rng.random(n) < 0.2
    scored = pd.DataFrame({"is_fraud": fraud.astype(float), ENSEMBLE: fraud + rng.random(n),
                           "iforest_score": rng.random(n)})  # fmt: skip
    return {
        "daily_trend": daily,
        "alerts_vs_budget": daily[["day", "anomalies", "transactions"]].rename(columns={"anomalies": "alerts"}),
        "score_by_category": pd.DataFrame(
            {
                "category": ["misc_net", "grocery_pos", "travel"],
                "transactions": [100, 300, 50],
                "avg_score": [0.4, 0.1, 0.25],
                "anomalies": [12, 3, 4],
                "frauds": [5, 1, 0],
            }
        ),  # fmt: skip
        "anomalies_by_state": pd.DataFrame(
            {
                "state": ["TX", "NY", "DC", "PR"],
                "transactions": [500, 400, 30, 10],
                "anomalies": [25, 8, 2, 1],
                "avg_score": 0.2,
                "frauds": 1,
                "anomaly_rate": [0.05, 0.02, 2 / 30, 0.1],
            }
        ),  # fmt: skip
        "amount_vs_score": pd.DataFrame(
            {
                "trans_num": [f"{i:032x}" for i in range(n)],
                "amt": rng.lognormal(4, 1, n),
                "score": rng.random(n),
                "flagged": rng.random(n) < 0.2,
                "is_fraud": pd.Series(fraud, dtype=object).where(rng.random(n) < 0.9),
            }
        ),  # fmt: skip
        "roc_pr": charts.curve_frame(scored, [ENSEMBLE, "iforest_score"]),
        "funnel": pd.DataFrame(
            {"stage": ["events", "scored", "alerted", "confirmed fraud"], "count": [1000, 990, 20, 4]}
        ),  # fmt: skip
    }


def test_every_chart_has_a_frame_here():
    assert set(frames()) == set(charts.CHARTS)
    assert set(charts.ANALYST_CHARTS) <= set(charts.CHARTS)


@pytest.mark.parametrize("name", list(charts.CHARTS))
def test_each_chart_draws_a_readable_png(name):
    data = frames()[name]
    png = charts.render_png(name, data, **({"budget": 9.0} if name == "alerts_vs_budget" else {}))
    image = pixels(png)
    height, width = image.shape[:2]
    assert 900 <= width <= 1200 and 300 <= height <= 700, (width, height)
    # Drawn, not blank: many distinct colours, and far more bytes than the "no data yet" card.
    rgb = (image[..., :3] * 255).astype(np.uint32)
    assert len(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])) > 50
    assert len(png) > 2 * len(charts.render_png(name, data.iloc[:0]))


@pytest.mark.parametrize("name", list(charts.CHARTS))
def test_an_empty_chart_says_no_data_yet(name):
    empty = frames()[name].iloc[:0]
    image = pixels(charts.render_png(name, empty))
    assert image.shape[1] >= 900
    # The text only: a nearly white card.
    assert (image[..., :3] > 0.95).mean() > 0.95


def test_the_map_holds_every_state_and_dc_as_closed_outlines_inside_its_box():
    shapes = charts.us_states()
    assert set(shapes["states"]) == USPS
    x0, y0, x1, y1 = shapes["bbox"]
    for code, state in shapes["states"].items():
        assert state["polygons"], code
        for polygon in state["polygons"]:
            outline = np.asarray(polygon[0]).reshape(-1, 2)
            assert len(outline) >= 3, code
            assert (outline[:, 0] >= x0 - 1).all() and (outline[:, 0] <= x1 + 1).all(), code
            assert (outline[:, 1] >= y0 - 1).all() and (outline[:, 1] <= y1 + 1).all(), code
    # Alaska and Hawaii are insets in the lower left, not at their longitudes.
    assert charts._label_point(shapes["states"]["AK"])[0] < charts._label_point(shapes["states"]["TX"])[0]
    assert charts._label_point(shapes["states"]["HI"])[1] > charts._label_point(shapes["states"]["WA"])[1]


def test_the_map_colours_the_states_with_data():
    """The state with the most anomalies takes the colour map's darkest red; a map with none has no red."""
    data = frames()["anomalies_by_state"]
    with_data = pixels(charts.render_png("anomalies_by_state", data))[..., :3]
    without = pixels(charts.render_png("anomalies_by_state", data.assign(anomalies=0)))[..., :3]

    def dark_red(image: np.ndarray) -> int:
        return int(((image[..., 0] > 0.45) & (image[..., 1] < 0.1) & (image[..., 2] < 0.2)).sum())

    # The colour bar holds some dark red in both; Texas adds thousands of pixels.
    assert dark_red(with_data) > dark_red(without) + 2000


def test_the_map_by_rate_and_a_bad_metric():
    data = frames()["anomalies_by_state"]
    assert pixels(charts.render_png("anomalies_by_state", data, metric="anomaly_rate")).shape[1] >= 900
    with pytest.raises(ValueError, match="metric"):
        charts.render_png("anomalies_by_state", data, metric="frauds")


def test_unknown_charts_and_filters_are_refused_before_any_query():
    with pytest.raises(charts.UnknownChart):
        charts.chart_data(None, "pie")
    with pytest.raises(charts.UnknownChart):
        charts.render_png("pie", pd.DataFrame())
    with pytest.raises(ValueError, match="no filter"):
        charts.chart_data(None, "funnel", since=date(2020, 1, 1))


def test_curves_are_thinned_along_their_length_keeping_both_ends():
    x = np.concatenate([np.zeros(5000), np.linspace(0, 1, 5000)])
    y = np.concatenate([np.linspace(0, 0.9, 5000), np.full(5000, 0.9)])
    tx, ty = charts._thin(x, y, points=100)
    assert len(tx) <= 100
    assert (tx[0], ty[0]) == (0, 0) and (tx[-1], ty[-1]) == (1, 0.9)
    # The steep start keeps about as many points as the flat end: it is as long.
    assert 30 <= (tx == 0).sum() <= 70


def test_curve_frame_holds_each_detector_with_both_classes():
    frame = frames()["roc_pr"]
    assert set(frame["detector"]) == {f"{ENSEMBLE} (ensemble)", "iforest_score"}
    assert set(frame["curve"]) == {"roc", "pr"}
    assert frame["x"].between(0, 1).all() and frame["y"].between(0, 1).all()
    one_class = pd.DataFrame({"is_fraud": [0.0, 0.0], ENSEMBLE: [0.1, 0.2]})
    assert charts.curve_frame(one_class, [ENSEMBLE]).empty
