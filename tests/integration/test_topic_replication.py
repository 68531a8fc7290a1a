"""`txguard setup` against a Kafka given by address asks for the broker's default replication (-1), which a real
broker accepts: here the embedded one, addressed as an external Kafka would be."""

from __future__ import annotations

import uuid

import pytest

from txguard import stack
from txguard.clients import Clients, create_topics

pytestmark = pytest.mark.integration


def test_topics_made_with_the_brokers_default_replication(settings):
    external = settings.model_copy(update={"namespace": f"t{uuid.uuid4().hex[:10]}",
                                           "kafka_bootstrap": stack.endpoints(settings).kafka_bootstrap})  # fmt: skip
    assert external.topic_replication_factor == -1
    clients = Clients(external)
    created = create_topics(clients)
    assert created and all(topic.startswith(f"{external.namespace}.") for topic in created)
    topics = clients.admin().list_topics(timeout=10).topics
    for topic in created:
        partitions = topics[topic].partitions
        assert len(partitions) == external.partitions
        assert all(len(p.replicas) == 1 for p in partitions.values())  # the one broker's default
