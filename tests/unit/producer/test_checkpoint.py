"""The replay checkpoint reads what it writes, and only for its own source."""

import json
from datetime import timedelta

from producer.checkpoint import ReplayCheckpoint
from producer.labels import LabelScheduler


def test_written_then_read(tmp_path):
    path = tmp_path / "replay.default.checkpoint.json"
    saved = ReplayCheckpoint("data/a.csv", 251, [[1.5e12, "key", '{"is_fraud":false}']])
    saved.save(path)
    assert ReplayCheckpoint.load(path, "data/a.csv") == saved
    assert not path.with_suffix(".tmp").exists()
    # The format the resume of earlier versions wrote and read.
    assert json.loads(path.read_text()) == {
        "source": "data/a.csv", "line": 251, "pending_labels": [[1.5e12, "key", '{"is_fraud":false}']],
    }  # fmt: skip


def test_another_source_or_no_file_gives_nothing_to_resume(tmp_path):
    path = tmp_path / "checkpoint.json"
    assert ReplayCheckpoint.load(path, "a.csv") is None
    ReplayCheckpoint("a.csv", 10).save(path)
    assert ReplayCheckpoint.load(path, "s3://bucket/a.csv") is None
    assert ReplayCheckpoint.load(path, "a.csv") == ReplayCheckpoint("a.csv", 10, [])


def test_labels_pending_at_the_checkpoint_are_released_on_time_after_resume(tmp_path):
    path = tmp_path / "checkpoint.json"
    delay = timedelta(hours=1)
    before = LabelScheduler(delay)
    before.add(1_000, b"k1", b"L1")
    before.add(2_000, b"k2", b"L2")
    ReplayCheckpoint("a.csv", 3, before.to_json()).save(path)

    resumed = ReplayCheckpoint.load(path, "a.csv")
    assert resumed is not None and resumed.line == 3
    after = LabelScheduler.from_json(delay, resumed.pending_labels)
    hour = 3_600_000
    assert list(after.due(1_000 + hour - 1)) == []
    assert list(after.due(1_000 + hour)) == [(1_000 + hour, b"k1", b"L1")]
    assert list(after.release_all()) == [(2_000 + hour, b"k2", b"L2")]
