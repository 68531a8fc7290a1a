"""What training records about a model: its data, its quality on later events, its calibration."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from model.calibration import probability
from model.evaluation import summarise
from model.train import feature_matrix, frame_hash, train


def test_the_data_hash_is_recorded_whoever_calls_train(labelled_history, supervised_model):
    model, report = supervised_model
    assert (
        report["training_data"]["data_hash"]
        == frame_hash(labelled_history)
        == model.metadata["training_data"]["data_hash"]
    )
    assert len(frame_hash(labelled_history)) == 64
    assert frame_hash(labelled_history.iloc[1:]) != frame_hash(labelled_history)
    changed = labelled_history.copy()
    changed.loc[0, "amt"] += 0.01
    assert frame_hash(changed) != frame_hash(labelled_history)


def test_every_detector_is_judged_on_the_later_events_whose_labels_the_classifier_never_saw(
    labelled_history, supervised_model
):
    model, report = supervised_model
    heldout = report["heldout"]
    cutoff = pd.Timestamp(report["supervised"]["label_cutoff"])
    later = (labelled_history["event_time"] >= cutoff).to_numpy()
    assert heldout["since"] == str(cutoff) and heldout["rows"] == later.sum() > 0
    assert heldout["frauds"] == labelled_history["is_fraud"][later].sum() > 0
    assert set(heldout["detectors"]) == {"iforest", "online", "supervised", "learned", "ensemble"}  # learned:
    assert model.learned is not None and model.learned.ready  # the online classifier, once ready
    for figures in heldout["detectors"].values():
        assert {"roc_auc", "pr_auc", "precision", "recall", "alerts", "alerts_per_day"} <= set(figures)
        assert figures["rows"] == heldout["rows"] and 0.5 < figures["roc_auc"] <= 1.0
    # The ensemble's figures are those of its scores on exactly these events, at the alert threshold.
    score = model.score_many(feature_matrix(labelled_history, model.category_norms)[later])
    y = labelled_history["is_fraud"].to_numpy()[later]
    expected = summarise(y, score, score >= report["threshold"])
    assert {k: heldout["detectors"]["ensemble"][k] for k in expected} == pytest.approx(expected)
    assert "training_quality" not in report  # no in-sample figures for a model that fitted the labels
    json.dumps(report)


def test_the_calibration_maps_the_score_to_the_fraud_rate_seen_on_the_later_events(supervised_model):
    _, report = supervised_model
    calibration = report["calibration"]
    assert calibration["rows"] == report["heldout"]["rows"]
    assert sum(row["events"] for row in calibration["reliability"]) == calibration["rows"]
    assert calibration["method"] == "isotonic", calibration.get("why")
    p = probability(calibration, np.array([0.0, report["threshold"], 0.99]))
    assert 0.0 <= p[0] <= p[1] <= p[2] <= 1.0
    assert calibration["brier"] < calibration["brier_base_rate"]  # out of fold: better than the fraud rate alone


def test_without_labels_there_is_nothing_to_judge_against(labelled_history):
    _, report = train(labelled_history.drop(columns="is_fraud").iloc[:5000], supervised=False)
    assert "heldout" not in report and "calibration" not in report
    assert len(report["training_data"]["data_hash"]) == 64
