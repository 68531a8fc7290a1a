"""The single source of truth for every shape: events, topics, SQL, the DynamoDB table."""
