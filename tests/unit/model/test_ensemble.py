"""The ensemble and its training: one scale, the supervised classifier only from labels that
had arrived, the unsupervised fallback, the alert budget, explanations from contributions."""

from __future__ import annotations

import copy
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from model.explain import PHRASES, EventContext
from model.features import FEATURE_NAMES
from model.scale import NinesScale, unit_score
from model.train import feature_matrix, train
from producer.history import load_history
from producer.source import CsvSource
from tests.unit.model.conftest import PROTECTOR


def test_nines_say_how_far_in_the_training_tail_a_score_is_and_keep_rising_beyond_it():
    reference = np.arange(100_000, dtype=np.float64)
    scale = NinesScale(reference)
    assert scale(np.array([-5.0, 0.0]))[0] == 0.0
    assert scale(np.array([99_000.0]))[0] == pytest.approx(2.0, abs=0.01)  # the top 1 %
    assert scale(np.array([99_900.0]))[0] == pytest.approx(3.0, abs=0.01)
    x = np.linspace(-10, 300_000, 5000)
    assert np.all(np.diff(scale(x)) >= 0)  # monotone: a detector's ranking is kept
    above = scale(np.array([100_000.0, 120_000.0, 200_000.0]))
    assert np.all(np.diff(above) > 0)  # beyond the training maximum, still no ties
    assert np.all(np.diff(unit_score(np.array([0.0, 1.0, 3.0, 6.0, 50.0]))) > 0)
    assert unit_score(np.array([3.0]))[0] == 0.5


def test_few_labelled_frauds_leave_the_unsupervised_ensemble_as_the_cold_start_fallback(labelled_history):
    few = labelled_history.iloc[:3000]  # the first days: a handful of frauds
    model, report = train(few)
    assert model.supervised is None and not report["supervised"]["trained"]
    assert report["supervised"]["labelled_frauds"] < 50
    X = feature_matrix(few, model.category_norms)[-500:]
    w = model.iforest_weight
    expected = unit_score(
        w * model.scales["iforest"](model.iforest.score_many(X))
        + (1 - w) * model.scales["online"](model.online.score_many(X))
    )
    result = model.score_batch(X)
    assert result.supervised is None and np.array_equal(result.score, expected)


def test_labels_off_trains_no_classifier_even_with_enough_labels(labelled_history):
    model, report = train(labelled_history, supervised=False)
    assert model.supervised is None and model.learned is None and report["supervised"]["why"] == "supervised=False"


def test_with_enough_labels_the_classifiers_alone_decide_the_score(supervised_model, labelled_history):
    model, report = supervised_model
    assert model.supervised is not None and report["supervised"]["labelled_frauds"] >= 50
    assert model.learned is not None and model.learned.ready  # the online classifier, from the same labels
    X = feature_matrix(labelled_history, model.category_norms)[-3000:]
    before = copy.deepcopy(model)
    result = model.score_batch(X)
    assert result.supervised is not None and result.learned is not None
    w = before.learned_weight
    expected = (1 - w) * before.scales["supervised"](before.supervised.score_many(X)) + w * before.learned.to_nines(
        before.learned.score_many(X)
    )
    assert np.array_equal(result.score, unit_score(expected))
    assert np.array_equal(result.online, before.online.score_many(X))  # still scored and recorded
    y = labelled_history["is_fraud"].to_numpy()[-3000:]
    assert np.median(result.score[y]) > np.quantile(result.score[~y], 0.99)


def test_a_model_trained_with_a_label_cutoff_never_sees_a_label_after_it(labelled_history, supervised_model):
    cutoff = datetime(2019, 3, 31)
    model, report = train(labelled_history, label_cutoff=cutoff)
    tampered = labelled_history.copy()
    later = tampered["event_time"] >= cutoff
    tampered.loc[later, "is_fraud"] = ~tampered.loc[later, "is_fraud"]  # every later label wrong
    other, _ = train(tampered, label_cutoff=cutoff)
    X = feature_matrix(labelled_history, model.category_norms)
    assert np.array_equal(model.supervised.score_many(X), other.supervised.score_many(X))
    assert report["supervised"]["labelled_rows"] == int((~later).sum())
    # By default the cut-off is the last event minus the 7-day label delay.
    default = supervised_model[1]["supervised"]["label_cutoff"]
    assert pd.Timestamp(default) == labelled_history["event_time"].max() - pd.Timedelta(days=7)


def test_events_whose_label_has_not_arrived_are_neither_trained_on_nor_judged(kaggle_csv):
    history = load_history(CsvSource(str(kaggle_csv)), PROTECTOR)
    partial = history.assign(is_fraud=history["is_fraud"].astype("boolean"))
    missing = np.arange(len(partial)) % 3 == 0
    partial.loc[missing, "is_fraud"] = pd.NA  # e.g. stored transactions whose label is not stored yet
    cutoff = partial["event_time"].iloc[400]
    _, report = train(partial, label_cutoff=cutoff)
    before = (partial["event_time"] < cutoff).to_numpy()
    assert report["supervised"]["labelled_rows"] == int((before & ~missing).sum())
    assert report["heldout"]["rows"] == int((~before & ~missing).sum())
    assert report["heldout"]["frauds"] == int(history["is_fraud"][~before & ~missing].sum())
    assert report["calibration"]["rows"] == report["heldout"]["rows"]


def test_events_at_or_above_the_budget_threshold_are_flagged_and_every_batch_feeds_the_budget(
    supervised_model, labelled_history
):
    model = copy.deepcopy(supervised_model[0])
    history = labelled_history.iloc[-6000:]
    X = feature_matrix(labelled_history, model.category_norms)[-6000:]
    seconds = history["event_time"].to_numpy(dtype="datetime64[s]").astype(np.int64)
    threshold = model.budget.threshold()
    assert threshold == model.current_threshold() == supervised_model[1]["threshold"]
    first = model.score_batch(X[:3000], event_times_s=seconds[:3000])
    assert first.threshold == threshold and np.array_equal(first.flagged, first.score >= threshold)
    assert model.budget.current_day_ == seconds[2999] // 86_400  # it observed the batch
    second = model.score_batch(X[3000:], event_times_s=seconds[3000:])
    assert second.threshold == model.budget.threshold() or second.threshold != threshold  # moved with the days
    fixed = model.score_batch(X[:100], threshold=0.2)
    assert fixed.threshold == 0.2 and np.array_equal(fixed.flagged, fixed.score >= 0.2)
    # The budget spends about the alerts per day it was given, on the days it learned from.
    days = (seconds // 86_400)[3000:]
    per_day = pd.Series(second.flagged).groupby(days).sum().mean()
    assert 0.3 * model.budget.alerts_per_day <= per_day <= 4 * model.budget.alerts_per_day


@pytest.mark.parametrize("labels", ["supervised", "unsupervised"])
def test_explanations_name_the_features_that_contributed_most(labels, supervised_model, labelled_history):
    model = supervised_model[0] if labels == "supervised" else train(labelled_history.iloc[:3000])[0]
    X = feature_matrix(labelled_history, model.category_norms)[-3000:]
    rows = np.flatnonzero(labelled_history["is_fraud"].to_numpy()[-3000:])[:5]
    frame = labelled_history.iloc[-3000:].iloc[rows]
    contexts = [
        EventContext(float(a), str(c), t.to_pydatetime())
        for a, c, t in zip(frame["amt"], frame["category"], frame["event_time"], strict=True)
    ]
    contributions = model.contributions(X[rows])
    texts = model.explain(X[rows], contexts)
    assert len(texts) == len(rows)
    for row, text, ctx, contribution in zip(X[rows], texts, contexts, contributions, strict=True):
        top = int(np.argmax(contribution))
        assert contribution[top] > 0
        name = FEATURE_NAMES[top]
        assert PHRASES[name](float(row[top]), dict(zip(FEATURE_NAMES, row, strict=True)), ctx) in text
    if labels == "supervised":
        raw = model.supervised.classifier_.decision_function(X[rows])
        assert np.allclose(contributions.sum(axis=1) - raw, (contributions.sum(axis=1) - raw)[0])  # additive
    else:
        used = {FEATURE_NAMES.index(f) for f in model.iforest.features} | {
            FEATURE_NAMES.index(f) for f in model.online.features
        }
        assert set(np.flatnonzero(contributions.any(axis=0))) <= used


def test_prepare_builds_each_forests_walk_ahead_of_the_first_batch_and_changes_no_score(
    supervised_model, labelled_history
):
    from model.trees import _built

    model = copy.deepcopy(supervised_model[0])  # nothing built for this copy yet
    forests = (model.iforest.forest_, model.supervised.classifier_)
    assert not any(forest in _built for forest in forests)
    X = feature_matrix(labelled_history, model.category_norms)[-500:]
    before = copy.deepcopy(model)
    assert model.prepare() is model
    assert all(forest in _built for forest in forests)
    assert all(
        np.array_equal(a, b) for a, b in zip(model.raw_scores(X), before.raw_scores(X), strict=True) if a is not None
    )
    assert model.online.scaler_.counts == before.online.scaler_.counts  # nothing learned
