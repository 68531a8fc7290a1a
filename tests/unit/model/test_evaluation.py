import numpy as np
import pandas as pd
import pytest

from model.evaluation import alerts_per_day, card_precision_at_k, curves, curves_figure, plot_curves, summarise

Y = np.array([1, 0, 1, 0, 0])
SCORE = np.array([0.9, 0.8, 0.7, 0.2, 0.1])


def test_summarise_counts_alerts_and_ranks_scores():
    summary = summarise(Y, SCORE, SCORE >= 0.75)
    assert summary == {
        "rows": 5,
        "frauds": 2,
        "alerts": 2,
        "true_positives": 1,
        "precision": 0.5,
        "recall": 0.5,
        "roc_auc": pytest.approx(5 / 6),  # 5 of the 6 (fraud, legitimate) pairs are in order
        "pr_auc": pytest.approx(0.5 * 1 + 0.5 * 2 / 3),  # precision 1 at recall 1/2, then 2/3 at recall 1
    }


def test_summarise_leaves_undefined_metrics_undefined():
    no_alerts = summarise(Y, SCORE, np.zeros(5, dtype=bool))
    assert no_alerts["precision"] is None and no_alerts["recall"] == 0.0
    no_fraud = summarise(np.zeros(5), SCORE, SCORE > 0.5)
    assert no_fraud["recall"] is None and no_fraud["roc_auc"] is None and no_fraud["pr_auc"] is None
    assert no_fraud["precision"] == 0.0
    with pytest.raises(ValueError):
        summarise(Y, SCORE[:4], SCORE >= 0.75)


def transactions():
    return pd.DataFrame(
        [
            # day 1: a is top and compromised (its fraud scores low, its max does not), b second and clean
            (1, "a", 0.9, 0),
            (1, "a", 0.3, 1),
            (1, "b", 0.8, 0),
            (1, "c", 0.1, 1),
            # day 2: two cards, both compromised
            (2, "a", 0.5, 1),
            (2, "d", 0.7, 1),
        ],
        columns=["day", "card_token", "score", "is_fraud"],
    )


def test_card_precision_at_k_checks_the_k_riskiest_cards_of_each_day():
    frame = transactions()
    assert card_precision_at_k(frame, 2) == pytest.approx((1 / 2 + 2 / 2) / 2)
    assert card_precision_at_k(frame, 1) == pytest.approx((1 + 1) / 2)
    assert card_precision_at_k(frame, 3) == pytest.approx((2 / 3 + 2 / 3) / 2)  # day 2 has only 2 cards
    assert np.isnan(card_precision_at_k(frame.iloc[:0], 2))
    with pytest.raises(ValueError):
        card_precision_at_k(frame, 0)


def test_card_precision_ties_are_broken_by_card_token():
    tied = pd.DataFrame({"day": [1, 1], "card_token": ["z", "y"], "score": [0.5, 0.5], "is_fraud": [1, 0]})
    assert card_precision_at_k(tied, 1) == 0.0  # "y" comes first


def test_alerts_per_day_counts_days_without_alerts_too():
    frame = pd.DataFrame({"day": [3, 1, 1, 2, 3, 3], "flagged": [True, True, False, False, True, False]})
    counts = alerts_per_day(frame)
    assert counts.to_dict() == {1: 1, 2: 0, 3: 2}
    assert counts.name == "alerts" and counts.index.name == "day"


def test_curves_of_a_perfect_score():
    drawn = curves(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    fpr, tpr = drawn["roc"]
    recall, precision = drawn["pr"]
    assert ((fpr == 0) & (tpr == 1)).any()
    assert precision[recall == 1].max() == 1.0
    with pytest.raises(ValueError):
        curves(np.zeros(3), np.ones(3))


def test_plot_curves_draws_every_detector_with_its_auc_in_one_png(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.2
    results = {"iforest": (y, y + rng.normal(0, 1, 400)), "online v2": (y, y + rng.normal(0, 0.3, 400))}
    figure = curves_figure(results)
    roc_axes, pr_axes = figure.axes
    roc_labels = [t.get_text() for t in roc_axes.get_legend().get_texts()]
    pr_labels = [t.get_text() for t in pr_axes.get_legend().get_texts()]
    assert roc_labels[:2] == [f"{name} (ROC-AUC {summarise(*results[name], y)['roc_auc']:.3f})" for name in results]
    assert pr_labels == [f"{name} (PR-AUC {summarise(*results[name], y)['pr_auc']:.3f})" for name in results]

    path = plot_curves(results, tmp_path / "reports" / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="one-class"):
        plot_curves({"one-class": (np.zeros(4), np.ones(4))}, tmp_path / "bad.png")
