"""Kafka plumbing shared by the producer and the services: producing with delivery
accounting and back-pressure, reading a topic to its end, stop signals, the consumer
loop with its checkpoint, and the dead-letter writer. Knows no service and no model."""
