"""What the loop does when partitions move between the consumers of a group."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from streaming.checkpoint import Checkpoint
from streaming.service import Service

log = logging.getLogger(__name__)


class RebalanceHandler:
    """Checkpoints before partitions leave, so the next owner starts where this one stopped."""

    def __init__(
        self,
        service: Service,
        checkpoint: Checkpoint,
        on_assign: Callable[[list[TopicPartition]], None] | None = None,
    ):
        self.service, self.checkpoint, self.on_assign = service, checkpoint, on_assign

    def subscribe(self, consumer: Consumer) -> None:
        consumer.subscribe(self.service.topics, on_assign=self.assigned, on_revoke=self.revoked, on_lost=self.revoked)

    def assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("%s: assigned %s", self.service.name, ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))
        service_hook = getattr(self.service, "on_assign", None)  # optional: a service that tracks its partitions
        if service_hook is not None:
            service_hook([p.partition for p in partitions])
        if self.on_assign:
            self.on_assign(partitions)

    def revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            self.checkpoint()
        except Exception as exc:  # noqa: BLE001 - the next owner redoes the uncommitted part
            log.warning("%s: checkpoint on revocation failed (%s); the new owner replays it", self.service.name, exc)
            self._abort()
        self.checkpoint.discard()
        self.service.on_revoke()

    def _abort(self) -> None:
        """Drop the outputs of the uncommitted part (exactly-once): the new owner produces them again."""
        try:
            self.checkpoint.abort()
        except Exception as exc:  # noqa: BLE001 - the broker aborts it at the transaction timeout
            log.warning("%s: cannot abort the open transaction (%s)", self.service.name, exc)
