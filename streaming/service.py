"""What the consumer loop asks of a service, and what it hands it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Message


@dataclass(frozen=True, slots=True)
class Decoded:
    """A message and the event its service decoded from it."""

    message: Message
    event: Any


class Rewind(Exception):
    """The service's state is stale (another consumer wrote after it): start over
    from the last committed offsets with fresh state."""


class BackgroundFlush(Protocol):
    """A checkpoint's writes, running while the loop goes on (see ``Service.flush``)."""

    def done(self) -> bool:
        """Whether the writes have ended, well or not."""

    def finish(self) -> None:
        """On the loop's thread, once done (or waiting for it): take the outcome in, or raise
        what the writes raised (:class:`Rewind` for a stale state)."""


class Service(Protocol):
    """A consumer service: user logic and its sinks, run by :func:`streaming.loop.run`."""

    name: str
    topics: list[str]

    def decode(self, message: Message) -> Any:
        """Parse and validate one message; raise to dead-letter it.

        A service may also define ``decode_many(messages) -> list[event | Exception]``,
        which the loop then calls once per batch (an exception dead-letters its message).
        """

    def process(self, batch: list[Decoded]) -> None:
        """Apply the batch; its effects may stay in memory until ``flush``."""

    def flush(self) -> None:
        """Make every effect of the processed batches durable (a checkpoint).

        A service may also define ``start_flush() -> BackgroundFlush``: the same, but what
        takes time runs in the background while the loop processes the next batches, and
        the loop commits the checkpoint's offsets once it has finished (not with a Kafka
        transaction, which must commit the outputs and offsets of the same batches).
        """

    def is_transient(self, exc: Exception) -> bool:
        """Whether ``process`` failed because a dependency is down (retry) or for good."""

    def on_revoke(self) -> None:
        """Partitions are moving to another consumer: drop state cached for them.

        A service may also define ``on_assign(partitions: list[int])``, called with the
        partition numbers it was assigned (optional, so it is not part of this protocol).
        """

    def close(self) -> None:
        """The loop has stopped: keep what should outlive the process (the loop's last call)."""
