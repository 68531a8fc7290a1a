"""The plain-text report of ``txguard evaluate``, from hand-made results (no database)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from txguard.evaluate import DETECTOR_TABLE_TITLE, _assemble, format_report

RESULT = {
    "window": {"since": "2020-03-01T00:00:00", "until": None},
    "k": 5,
    "counts": {"transactions": 1200, "scored": 1000, "alerts": 40, "labelled": 900, "frauds": 30,
               "labelled_alerts": 36, "confirmed_frauds": 18},
    "funnel": [
        {"stage": "transactions", "events": 1200},
        {"stage": "scored", "events": 1000},
        {"stage": "alerted", "events": 40},
        {"stage": "confirmed fraud", "events": 18},
    ],
    "detectors": {
        "score": {"ensemble": True, "events": 900, "unscored": 0, "frauds": 30, "roc_auc": 0.9351,
                  "pr_auc": 0.25, "precision": 0.5, "recall": 0.6, "alerts_per_day": 4.0,
                  "card_precision_at_k": 0.4},
        "iforest_score": {"ensemble": False, "events": 900, "unscored": 0, "frauds": 30, "roc_auc": 0.9,
                          "pr_auc": 0.2, "precision": 0.25, "recall": 0.3, "alerts_per_day": 4.0,
                          "card_precision_at_k": 0.3},
        "supervised_score": {"ensemble": False, "events": 600, "unscored": 300, "frauds": 0, "roc_auc": None,
                             "pr_auc": None, "precision": 0.0, "recall": None, "alerts_per_day": 3.5,
                             "card_precision_at_k": 0.0},
    },
    "alerts": {
        "precision": 0.5,
        "recall": 0.6,
        "threshold": {"min": 0.81, "max": 0.93, "latest": 0.9},
        "per_day": {"days": 10, "mean": 4.0, "min": 1, "max": 9, "budget": 5.0},
        "card_precision_at_k": {"k": 5, "days": 9, "value": 0.4, "best": 0.6},
    },
    "model_versions": {
        "v1": {"rows": 500, "frauds": 10, "alerts": 20, "true_positives": 8, "precision": 0.4, "recall": 0.8,
               "roc_auc": 0.91, "pr_auc": 0.2},
        "v2": {"rows": 400, "frauds": 20, "alerts": 16, "true_positives": 10, "precision": 0.625, "recall": 0.5,
               "roc_auc": 0.95, "pr_auc": 0.3},
    },
    "shadow": {"v3": {"events": 400, "frauds": 20, "roc_auc": 0.99, "pr_auc": 0.8, "current_roc_auc": 0.95,
                      "current_pr_auc": 0.3}},
    "drift": {"events": 3, "by_quantity": {"log_amt": 1, "score": 2}},
    "curves_png": "/tmp/curves.png",
}  # fmt: skip


@pytest.fixture
def result() -> dict:
    return copy.deepcopy(RESULT)


def line_with(report: str, start: str) -> str:
    return next(line for line in report.splitlines() if line.strip().startswith(start))


def test_full_report_names_every_figure(result):
    report = format_report(result)
    assert json.loads(json.dumps(result)) == result
    assert report.splitlines()[0] == "txguard evaluate: event time 2020-03-01T00:00:00 .. end"
    assert (
        "funnel: transactions 1,200 -> scored 1,000 (83.3%) -> alerted 40 (4.0%) -> confirmed fraud 18 (45.0%)"
        in report
    )
    assert "labelled 900 of 1,000 scored events; 30 fraud (3.3%)" in report
    assert line_with(report, "score (ensemble)").split() == ["score", "(ensemble)", "900", "30", "0.935", "0.250",
                                                             "0.500", "0.600", "4.000", "0.400"]  # fmt: skip
    assert line_with(report, "supervised_score").split()[-6:] == ["-", "-", "0.000", "-", "3.500", "0.000"]
    assert "supervised_score: no score for 300 of 900 labelled events; evaluated on the 600 it scored" in report
    assert "precision 0.500 (18 fraud of 36 labelled alerts), recall 0.600 (18 of 30 frauds)" in report
    assert "threshold 0.8100 .. 0.9300, latest 0.9000" in report
    assert "alerts per event-day: mean 4.0, min 1, max 9 over 10 days (budget 5: 0.80x)" in report
    assert "card precision@5 per day: 0.400 (best achievable 0.600, over 9 labelled days)" in report
    assert line_with(report, "v2").split() == ["v2", "400", "20", "16", "0.625", "0.500", "0.950", "0.300"]
    assert line_with(report, "v3").split() == ["v3", "400", "20", "0.990", "0.950", "0.800", "0.300"]
    assert "drift events stored: 3 (log_amt 1, score 2)" in report
    assert report.endswith("ROC and precision-recall curves: /tmp/curves.png")


def test_columns_line_up(result):
    lines = format_report(result).splitlines()
    start = lines.index(DETECTOR_TABLE_TITLE) + 1
    table = lines[start : start + 4]  # header and three detectors
    assert table[0].split()[0] == "detector" and len({len(line) for line in table}) == 1


def test_no_labels_says_so_instead_of_showing_zeros(result):
    result["counts"] |= {"labelled": 0, "frauds": 0, "labelled_alerts": 0, "confirmed_frauds": 0}
    result["funnel"][-1]["events"] = 0
    for detector in result["detectors"].values():
        detector |= {"events": 0, "unscored": 0, "frauds": 0, "roc_auc": None, "pr_auc": None,
                     "card_precision_at_k": None}  # fmt: skip
    result["alerts"] |= {"precision": None, "recall": None}
    result["alerts"]["card_precision_at_k"] |= {"value": None, "best": None, "days": 0}
    result |= {"model_versions": {}, "shadow": None, "curves_png": None}
    report = format_report(result)
    assert "No labels yet for the 1,000 scored events in this window" in report
    assert "ROC-AUC" in report and "per detector" not in report and "precision 0" not in report
    assert "alerts per event-day: mean 4.0" in report  # needs no labels
    assert "card precision@" not in report and "shadow" not in report and "curves" not in report


def test_single_class_is_named(result):
    result["counts"] |= {"frauds": 0, "confirmed_frauds": 0}
    assert "Every labelled event is legitimate: ROC-AUC and PR-AUC need both classes." in format_report(result)
    result["counts"] |= {"frauds": 900}
    assert "Every labelled event is fraud" in format_report(result)


def test_empty_window_and_no_budget(result):
    result["counts"] = dict.fromkeys(result["counts"], 0)
    result["funnel"] = [{**stage, "events": 0} for stage in result["funnel"]]
    result["alerts"]["per_day"] = {"days": 0, "mean": None, "min": None, "max": None, "budget": None}
    result["alerts"]["threshold"] = None
    report = format_report(result)
    assert "funnel: transactions 0 -> scored 0 (-) -> alerted 0 (-)" in report
    assert "alerts per event-day" not in report and "threshold" not in report


def test_drift_events_are_counted_when_the_table_exists(result):
    result["drift"] = {"events": 0, "by_quantity": {}}
    assert "drift events stored: 0" in format_report(result).splitlines()
    result["drift"] = None  # no drift_events table
    assert "drift" not in format_report(result)
    del result["drift"]  # a result saved before drift events were stored
    assert "drift" not in format_report(result)


def test_each_detector_is_judged_with_the_ensembles_alerts_per_day():
    """Day 0: the ensemble flags 2 events, day 1: 1. iforest ranks fraud first, online ranks it last."""
    frame = pd.DataFrame({
        "card_token": ["a", "b", "c", "d", "e", "f"],
        "day": ["2020-03-01"] * 3 + ["2020-03-02"] * 3,
        "flagged": [1, 1, 0, 0, 1, 0],
        "model_version": "v1",
        "is_fraud": [1, 0, 0, 1, np.nan, 0],  # e: no label yet
        "score": [0.9, 0.8, 0.1, 0.2, 0.7, 0.3],
        "iforest_score": [5.0, 1.0, 2.0, 9.0, 3.0, 1.0],
        "online_score": [0.0, 1.0, 2.0, 0.0, 1.0, np.nan],  # f: not scored
    })  # fmt: skip
    result = _assemble(frame, ["score", "iforest_score", "online_score"], 6, None,
                       {"since": None, "until": None}, None, 1, None)  # fmt: skip
    ensemble, iforest, online = (result["detectors"][n] for n in ("score", "iforest_score", "online_score"))
    assert (ensemble["precision"], ensemble["recall"], ensemble["alerts_per_day"]) == (0.5, 0.5, 1.5)  # its alerts
    # iforest flags a and c on day 0, d on day 1: 1 of 2 labelled alerts is fraud on day 0, d is fraud.
    assert (iforest["precision"], iforest["recall"], iforest["alerts_per_day"]) == (pytest.approx(2 / 3), 1.0, 1.5)
    # online flags c and b on day 0 (no fraud), e on day 1 (unlabelled).
    assert (online["precision"], online["recall"], online["alerts_per_day"]) == (0.0, 0.0, 1.5)
