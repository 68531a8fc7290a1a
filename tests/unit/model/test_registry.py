"""The model registry: versions, the CURRENT and SHADOW pointers, the legacy layout."""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model import registry as reg
from model.features import FEATURE_NAMES
from model.registry import ModelRegistry, Pointers, Watcher


@dataclass
class FakeModel:
    """What the registry needs of an ensemble: its metadata and version."""

    metadata: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "untrained"))


def model(version: str, rows: int = 100, roc_auc: float = 0.9) -> FakeModel:
    return FakeModel({
        "version": version, "trained_at": f"2026-11-25T{version[-6:-4]}:00:00+00:00", "features": list(FEATURE_NAMES),
        "training_data": {"source": "x.csv", "rows": rows, "start": "2019-01-01", "end": "2019-06-30",
                          "data_hash": "abc"},
        "training_quality": {"roc_auc": roc_auc, "pr_auc": 0.5, "precision": 0.3, "recall": 0.4},
    })  # fmt: skip


def test_the_first_version_becomes_current_and_later_ones_by_default(tmp_path):
    r = ModelRegistry(tmp_path)
    assert r.save(model("20261125T100000Z"), promote=False) == "20261125T100000Z"  # no current yet
    assert r.pointers() == Pointers("20261125T100000Z", None)
    assert (tmp_path / "versions/20261125T100000Z/model.joblib").exists()
    assert json.loads((tmp_path / "versions/20261125T100000Z/model.json").read_text())["training_data"]["rows"] == 100
    r.save(model("20261125T110000Z"))
    assert r.load_current().version == "20261125T110000Z"
    assert (tmp_path / "CURRENT").read_text().strip() == "20261125T110000Z"
    r.save(model("20261125T120000Z"), promote=False)
    assert r.pointers() == Pointers("20261125T110000Z", None)


def test_a_shadow_scores_until_promoted(tmp_path):
    r = ModelRegistry(tmp_path)
    r.save(model("20261125T100000Z"))
    assert r.load_shadow() is None
    assert r.save(model("20261125T110000Z"), shadow=True) == "20261125T110000Z"
    assert r.pointers() == Pointers("20261125T100000Z", "20261125T110000Z")
    assert r.load_shadow().version == "20261125T110000Z"
    assert r.load_current().version == "20261125T100000Z"
    r.promote("20261125T110000Z")
    assert r.pointers() == Pointers("20261125T110000Z", None)
    r.set_shadow("20261125T100000Z")
    assert r.pointers().shadow == "20261125T100000Z"
    with pytest.raises(ValueError):
        r.set_shadow("20261125T110000Z")  # the current one
    with pytest.raises(KeyError):
        r.promote("no-such-version")
    with pytest.raises(KeyError):
        r.set_shadow("no-such-version")


def test_list_shows_roles_training_windows_and_metrics(tmp_path):
    r = ModelRegistry(tmp_path)
    r.save(model("20261125T100000Z", rows=10, roc_auc=0.8))
    r.save(model("20261125T110000Z", rows=20), shadow=True)
    r.save(model("20261125T120000Z", rows=30), promote=False)
    (tmp_path / "versions/20261125T130000Z").mkdir()  # being written: no model.json yet
    rows = r.list()
    assert [(v["version"], v["role"], v["rows"]) for v in rows] == [
        ("20261125T100000Z", "current", 10),
        ("20261125T110000Z", "shadow", 20),
        ("20261125T120000Z", "-", 30),
    ]
    assert rows[0]["metrics"]["roc_auc"] == 0.8
    assert (rows[0]["training_start"], rows[0]["training_end"]) == ("2019-01-01", "2019-06-30")
    assert rows[0]["data_hash"] == "abc"


def test_versions_are_unique_even_when_trained_in_the_same_second(tmp_path):
    r = ModelRegistry(tmp_path)
    versions = [r.save(model("20261125T100000Z")) for _ in range(3)]
    assert versions == ["20261125T100000Z", "20261125T100000Z-2", "20261125T100000Z-3"]
    assert r.load("20261125T100000Z-2").version == "20261125T100000Z-2"  # the metadata says the version it got
    assert len({v["version"] for v in r.list()}) == 3


def test_pointers_are_replaced_whole_never_written_in_place(tmp_path, monkeypatch):
    r = ModelRegistry(tmp_path)
    r.save(model("20261125T100000Z"))
    r.save(model("20261125T110000Z"), promote=False)
    replaced = []
    real_replace = reg.os.replace
    monkeypatch.setattr(reg.os, "replace", lambda src, dst: (replaced.append((src, dst)), real_replace(src, dst)))
    r.promote("20261125T110000Z")
    assert any(str(dst).endswith("CURRENT") and str(src) != str(dst) for src, dst in replaced)
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(reg.os, "replace", crash)
    with pytest.raises(OSError):
        r.promote("20261125T100000Z")
    assert r.pointers().current == "20261125T110000Z"  # a failed write leaves the old pointer whole
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_legacy_model_is_the_current_one_and_moves_in_on_the_first_save(tmp_path):
    old = model("20261101T000000Z")
    reg.save(old, tmp_path)  # the layout before the registry: model.joblib + model.json at the top
    r = ModelRegistry(tmp_path)
    assert r.load_current().version == "20261101T000000Z"
    assert r.current_version() == "20261101T000000Z"
    assert [(v["version"], v["role"]) for v in r.list()] == [("20261101T000000Z", "current")]
    r.save(model("20261125T100000Z"), shadow=True)
    assert not (tmp_path / "model.joblib").exists()
    assert r.pointers() == Pointers("20261101T000000Z", "20261125T100000Z")
    assert r.load_current().version == "20261101T000000Z"
    assert [v["version"] for v in r.list()] == ["20261101T000000Z", "20261125T100000Z"]


def test_no_model_at_all_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="txguard train"):
        ModelRegistry(tmp_path).load_current()


def test_an_s3_location_needs_a_client_and_a_bucket(tmp_path):
    with pytest.raises(ValueError, match="needs an S3 client"):
        ModelRegistry.at("s3://bucket/models")
    with pytest.raises(ValueError, match="expected s3://bucket/prefix"):
        ModelRegistry.at("s3://", s3_client=lambda: object())
    assert ModelRegistry.at(tmp_path).location == str(tmp_path)


def test_the_watcher_looks_at_most_every_poll_and_reports_only_moves(tmp_path):
    r = ModelRegistry(tmp_path)
    r.save(model("20261125T100000Z"))
    r.save(model("20261125T110000Z"), promote=False)
    now = [0.0]
    watcher = Watcher(r.pointers, poll_s=5.0, clock=lambda: now[0])
    assert watcher.moved() is None
    r.promote("20261125T110000Z")
    now[0] = 4.0
    assert watcher.moved() is None  # not due yet
    now[0] = 5.0
    assert watcher.moved() == Pointers("20261125T110000Z", None)
    now[0] = 10.0
    assert watcher.moved() is None  # nothing moved since


def test_list_shows_held_out_metrics_and_calibration_and_marks_older_in_sample_ones(tmp_path):
    r = ModelRegistry(tmp_path)
    r.save(model("20261125T100000Z", roc_auc=0.8))  # trained before held-out metrics were recorded
    newer = model("20261125T110000Z")
    newer.metadata.update(
        threshold=0.45,
        heldout={"detectors": {"ensemble": {"roc_auc": 0.99, "pr_auc": 0.9, "precision": 0.4, "recall": 0.9},
                               "iforest": {"roc_auc": 0.98, "pr_auc": 0.2, "precision": 0.3, "recall": 0.4}}},
        calibration={"method": "isotonic", "brier": 0.0003, "brier_base_rate": 0.002,
                     "map": {"score": [0.0, 0.4, 0.5, 1.0], "probability": [0.0, 0.0, 1.0, 1.0]}},
    )  # fmt: skip
    r.save(newer)
    old, new = r.list()
    assert old["metrics_on"] == "in-sample" and old["metrics"]["roc_auc"] == 0.8
    assert new["metrics_on"] == "held-out" and new["metrics"]["roc_auc"] == 0.99
    assert new["detectors"]["iforest"]["pr_auc"] == 0.2
    assert new["calibration"]["brier"] == 0.0003
    assert new["calibration"]["probability_at_threshold"] == pytest.approx(0.5)  # halfway up the 0.4 .. 0.5 step
    assert r.metadata("20261125T110000Z")["calibration"]["brier_base_rate"] == 0.002
    with pytest.raises(KeyError):
        r.metadata("no-such-version")


def _add_to_counter(root: str, times: int) -> None:
    store = reg.LocalStore(Path(root))
    for _ in range(times):
        store.update_object("counter.joblib", lambda n: (n or 0) + 1)


def test_concurrent_updates_of_a_local_object_lose_nothing(tmp_path):
    # Four processes read-modify-write one object: the lock makes each update see the one before.
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_add_to_counter, args=(str(tmp_path), 25)) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        for w in workers:
            w.join(60)
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert reg.LocalStore(tmp_path).read_object("counter.joblib") == 100
