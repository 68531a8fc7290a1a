"""Small stand-ins for a Kafka consumer and producer and for a service: the boundary the
consumer loop talks to. Each records what was asked of it in one shared ``calls`` list,
so a test can check the order of producer flushes, sink flushes and commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, TopicPartition


@dataclass
class FakeMessage:
    topic_: str = "transactions"
    partition_: int = 0
    offset_: int = 0
    value_: bytes | None = b"{}"
    key_: bytes | None = b"card"
    error_: KafkaError | None = None
    headers_: list[tuple[str, bytes]] | None = None

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def value(self) -> bytes | None:
        return self.value_

    def key(self) -> bytes | None:
        return self.key_

    def error(self) -> KafkaError | None:
        return self.error_

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self.headers_


@dataclass
class FakeProducer:
    """Acknowledges everything at the ``acks_after``-th flush; ``fail`` deliveries fail meanwhile."""

    calls: list = field(default_factory=list)
    acks_after: int = 1
    fail: int = 0
    produced: list[dict[str, Any]] = field(default_factory=list)
    failed: int = 0
    flushes: int = 0

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None, **kwargs: Any) -> None:
        self.produced.append({"topic": topic, "value": value, "key": key, **kwargs})

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        self.calls.append("producer.flush")
        self.flushes += 1
        if self.flushes < self.acks_after:
            return 1
        self.failed += self.fail
        self.fail = 0
        return 0

    def __len__(self) -> int:
        return 0 if self.flushes >= self.acks_after else 1

    def delivery_errors(self) -> int:
        return self.failed


@dataclass
class FakeConsumer:
    calls: list = field(default_factory=list)
    batches: list[list[FakeMessage]] = field(default_factory=list)
    committed_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    assigned: list[TopicPartition] = field(default_factory=list)
    seeks: list[tuple[str, int, int]] = field(default_factory=list)
    callbacks: dict[str, Any] = field(default_factory=dict)
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    high_watermarks: dict[tuple[str, int], int] = field(default_factory=dict)
    stop: Any = None  # set when the scripted batches run out
    fetched: list[FakeMessage] = field(default_factory=list)  # what a consume without waiting can still take

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.calls.append(("subscribe", tuple(topics)))
        self.callbacks = callbacks

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        """Up to ``num_messages`` of the scripted batch being read: each batch is what arrived
        together, so a call that does not wait (``timeout=0``) never reaches into the next one."""
        if not self.fetched and timeout != 0:
            if self.batches:
                self.fetched = list(self.batches.pop(0))
            elif self.stop is not None:
                self.stop.set()
        taken, self.fetched = self.fetched[:num_messages], self.fetched[num_messages:]
        for m in taken:
            if m.error_ is None:
                self.positions[(m.topic_, m.partition_)] = m.offset_ + 1
        return taken

    def commit(self, offsets: list[TopicPartition], asynchronous: bool = True) -> None:
        self.calls.append("commit")
        for tp in offsets:
            self.committed_offsets[(tp.topic, tp.partition)] = tp.offset

    def assignment(self) -> list[TopicPartition]:
        return self.assigned

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Each partition's next offset to consume: the last offset consumed + 1 (-1001 before any)."""
        return [TopicPartition(tp.topic, tp.partition, self.positions.get((tp.topic, tp.partition), -1001))
                for tp in partitions]  # fmt: skip

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float = -1, cached: bool = False) -> tuple[int, int]:
        return 0, self.high_watermarks.get((tp.topic, tp.partition), -1001)

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.committed_offsets.get((tp.topic, tp.partition), -1001))
                for tp in partitions]  # fmt: skip

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def close(self) -> None:
        self.calls.append("consumer.close")


class Outage(ConnectionError):
    """What a fake sink raises while its dependency is down (transient)."""


@dataclass
class FakeService:
    """Decodes bytes starting with ``{``; ``poison`` values make ``process`` fail for good,
    ``outages`` makes the next N ``flush`` calls fail as if the sink were down."""

    calls: list = field(default_factory=list)
    name: str = "fake"
    topics: list[str] = field(default_factory=lambda: ["transactions"])
    poison: set[bytes] = field(default_factory=set)
    outages: int = 0
    flush_errors: list[Exception] = field(default_factory=list)  # raised by the next flushes, once each
    processed: list[bytes] = field(default_factory=list)

    def decode(self, message: Any) -> bytes:
        value = message.value()
        if not value or not value.startswith(b"{"):
            raise ValueError(f"not JSON: {value!r}\nsecond line")
        return value

    def process(self, batch: list[Any]) -> None:
        if any(d.event in self.poison for d in batch):
            raise TypeError("the sink refuses this one")
        self.processed += [d.event for d in batch]

    def flush(self) -> None:
        self.calls.append("service.flush")
        if self.flush_errors:
            raise self.flush_errors.pop(0)
        if self.outages:
            self.outages -= 1
            raise Outage("sink down")

    def is_transient(self, exc: Exception) -> bool:
        return isinstance(exc, Outage)

    def on_revoke(self) -> None:
        self.calls.append("service.on_revoke")

    def close(self) -> None:
        self.calls.append("service.close")
