"""The replay producer: CSV (local or S3) -> validation -> tokenisation -> Kafka."""
