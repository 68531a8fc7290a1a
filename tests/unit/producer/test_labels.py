"""The label scheduler: released when the event clock reaches them, or all at the end."""

from datetime import timedelta

from producer.labels import LabelScheduler

HOUR_MS = 3_600_000


def test_a_label_is_due_once_the_event_clock_reaches_it():
    labels = LabelScheduler(timedelta(hours=1))
    assert labels.add(0, b"a", b"A") == []
    assert labels.add(HOUR_MS - 1, b"b", b"B") == []
    assert labels.due(HOUR_MS - 1) == []
    assert labels.add(HOUR_MS, b"c", b"C") == [(HOUR_MS, b"a", b"A")]  # the first label is due now
    assert len(labels) == 2
    assert labels.due(2 * HOUR_MS - 1) == [(2 * HOUR_MS - 1, b"b", b"B")]


def test_release_all_empties_the_scheduler_oldest_first():
    labels = LabelScheduler(timedelta(days=7))
    for ms, key in ((1, b"a"), (2, b"b"), (3, b"c")):
        labels.add(ms, key, key.upper())
    assert [key for _, key, _ in labels.release_all()] == [b"a", b"b", b"c"]
    assert len(labels) == 0 and list(labels.due(float("inf"))) == []


def test_a_zero_delay_releases_each_label_with_its_event():
    labels = LabelScheduler(timedelta(0))
    assert labels.add(5, b"a", b"A") == [(5, b"a", b"A")]
    assert labels.due(5) == [] and len(labels) == 0


def test_pending_labels_survive_json():
    labels = LabelScheduler(timedelta(hours=1))
    labels.add(10, b"k1", b'{"is_fraud":true}')
    labels.add(20, b"k2", b'{"is_fraud":false}')
    saved = labels.to_json()
    assert saved == [[10 + HOUR_MS, "k1", '{"is_fraud":true}'], [20 + HOUR_MS, "k2", '{"is_fraud":false}']]
    restored = LabelScheduler.from_json(timedelta(hours=1), saved)
    assert list(restored.due(10 + HOUR_MS)) == [(10 + HOUR_MS, b"k1", b'{"is_fraud":true}')]
    assert restored.to_json() == saved[1:]
