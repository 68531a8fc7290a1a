"""The retrainer: when it retrains (event-day schedule, drift, minimum interval) and what it survives."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError

from consumers.retrainer import RetrainerService, RetrainPolicy
from schemas.events import DriftEventRecord
from streaming.service import Decoded
from tests.unit.streaming.kafka_fakes import FakeMessage

T0 = datetime(2019, 7, 1)
DAY = timedelta(days=1)


class Trainer:
    """The injected training: records each call, or fails as told."""

    def __init__(self, fail: list[Exception] | None = None):
        self.calls: list[tuple[datetime, str]] = []
        self.fail = fail or []

    def __call__(self, until: datetime, why: str) -> str:
        self.calls.append((until, why))
        if self.fail:
            raise self.fail.pop(0)
        return f"v{len(self.calls)}"


def transaction(at: datetime, offset: int = 0) -> FakeMessage:
    # Only the event time matters to the retrainer; the rest of the event is not its business.
    return FakeMessage("transactions", 0, offset, orjson.dumps({"trans_num": "x", "event_time": at}))


def drift(at: datetime, quantity: str = "score") -> FakeMessage:
    record = DriftEventRecord.of(detected_at=at, quantity=quantity, mean_before=0.2, mean_after=0.3,
                                 model_version="v0", scorer="host:1")  # fmt: skip
    return FakeMessage("drift", 0, 0, record.to_json(), quantity.encode())


def feed(service: RetrainerService, *messages: FakeMessage) -> None:
    service.process([Decoded(m, service.decode(m)) for m in messages])


def retrainer(trainer: Trainer, trained_until: datetime | None = T0, **policy) -> RetrainerService:  # noqa: ANN003
    return RetrainerService("transactions", "drift", trainer, RetrainPolicy(**policy), trained_until=trained_until)


def test_the_schedule_retrains_every_n_event_days_after_the_last_training():
    trainer = Trainer()
    service = retrainer(trainer, every=3 * DAY)
    for hours in range(0, 8 * 24, 6):  # eight event-days in batches of two transactions
        at = T0 + timedelta(hours=hours)
        feed(service, transaction(at), transaction(at + timedelta(hours=3)))
    # Due in the batch whose latest event reaches 3 days past the cut-off, then 3 days after that.
    assert [until for until, _ in trainer.calls] == [T0 + timedelta(days=3, hours=3), T0 + timedelta(days=6, hours=3)]
    assert all(why.startswith("schedule: 3 days") for _, why in trainer.calls)
    assert service.retrained == [("v1", *trainer.calls[0]), ("v2", *trainer.calls[1])]
    assert service.trained_until == T0 + timedelta(days=6, hours=3)


def test_a_burst_of_drift_retrains_once_and_a_drift_inside_the_minimum_interval_waits_for_its_end():
    trainer = Trainer()
    service = retrainer(trainer, on_drift=True, min_interval=DAY)
    at = T0 + 2 * DAY
    feed(service, transaction(at), drift(at), drift(at, "log_amt"), drift(at + timedelta(minutes=5)))
    assert trainer.calls == [(at + timedelta(minutes=5), f"drift in score at {at}")]
    later = at + timedelta(hours=6)
    feed(service, transaction(later), drift(later, "amt_category_logz"))  # inside the interval: kept, not run
    assert len(trainer.calls) == 1 and service.pending_drift is not None
    feed(service, transaction(at + timedelta(hours=20)))
    assert len(trainer.calls) == 1
    feed(service, transaction(at + timedelta(days=1, hours=1)))  # the interval has passed
    assert trainer.calls[1] == (at + timedelta(days=1, hours=1), f"drift in amt_category_logz at {later}")
    assert service.pending_drift is None and service.drift_seen == 4


def test_drift_already_inside_the_last_training_window_or_not_asked_for_retrains_nothing():
    trainer = Trainer()
    old = retrainer(trainer, trained_until=T0 + 5 * DAY, on_drift=True)
    feed(old, transaction(T0 + 6 * DAY), drift(T0 + 4 * DAY))  # detected before the latest cut-off
    unasked = retrainer(trainer, every=10 * DAY)
    feed(unasked, transaction(T0 + 6 * DAY), drift(T0 + 6 * DAY))
    assert trainer.calls == [] and unasked.drift_seen == 1


def test_a_restarted_retrainer_resumes_the_schedule_from_the_registered_models_cut_off():
    trainer = Trainer()
    service = retrainer(trainer, trained_until=T0 + 2 * DAY, every=3 * DAY)  # from the registry at start
    feed(service, transaction(T0 + 4 * DAY))  # redelivered after a restart: 2 days since the last training
    assert trainer.calls == []
    feed(service, transaction(T0 + 5 * DAY))
    assert [until for until, _ in trainer.calls] == [T0 + 5 * DAY]


def test_without_any_trained_model_the_schedule_starts_with_the_stream():
    trainer = Trainer()
    service = retrainer(trainer, trained_until=None, every=2 * DAY)
    feed(service, transaction(T0 + DAY))
    feed(service, transaction(T0 + 2 * DAY))
    assert trainer.calls == []
    feed(service, transaction(T0 + 3 * DAY))
    assert [until for until, _ in trainer.calls] == [T0 + 3 * DAY]


def test_a_failed_retrain_is_logged_and_retried_after_the_minimum_interval(caplog):
    trainer = Trainer(fail=[ValueError("no rows")])
    service = retrainer(trainer, on_drift=True, min_interval=DAY)
    with caplog.at_level(logging.ERROR, logger="consumers.retrainer"):
        feed(service, drift(T0 + 2 * DAY))
    assert service.failed == 1 and service.retrained == [] and "no rows" in caplog.text
    feed(service, transaction(T0 + 2 * DAY + timedelta(hours=12)))
    assert len(trainer.calls) == 1  # not before the interval
    feed(service, transaction(T0 + 3 * DAY))
    assert [until for until, _ in trainer.calls] == [T0 + 2 * DAY, T0 + 3 * DAY]
    assert service.retrained == [("v2", T0 + 3 * DAY, trainer.calls[1][1])]


def test_a_transient_failure_goes_to_the_loop_which_retries_the_batch():
    trainer = Trainer(fail=[ConnectionError("postgres down")])
    service = RetrainerService("transactions", "drift", trainer, RetrainPolicy(on_drift=True), trained_until=T0,
                               is_transient=lambda exc: isinstance(exc, ConnectionError))  # fmt: skip
    batch = [Decoded(m, service.decode(m)) for m in (drift(T0 + 2 * DAY),)]
    with pytest.raises(ConnectionError):
        service.process(batch)
    assert service.is_transient(ConnectionError()) and service.failed == 0
    service.process(batch)  # the retry: the same batch, now with PostgreSQL back
    assert [until for until, _ in trainer.calls] == [T0 + 2 * DAY] * 2 and len(service.retrained) == 1


def test_a_bad_transaction_is_left_to_its_owners_but_a_bad_drift_record_is_refused():
    service = retrainer(Trainer(), every=DAY)
    for value in (b"not json", b"[]", b'{"event_time": 5}', b""):
        assert service.decode(FakeMessage("transactions", value_=value)) is None
    with pytest.raises(ValidationError):
        service.decode(FakeMessage("drift", value_=b'{"quantity": "score"}'))
    feed(service, FakeMessage("transactions", value_=b"not json"))  # no clock from it, and no error
    assert service.clock is None


def test_a_policy_without_schedule_or_drift_does_nothing():
    assert not RetrainPolicy().active and RetrainPolicy(on_drift=True).active
    assert RetrainPolicy(every=DAY).reason(T0 + 5 * DAY, T0, T0, None) is not None
    assert RetrainPolicy().reason(T0 + 5 * DAY, T0, T0, None) is None
