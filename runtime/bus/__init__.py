"""The event bus port and its two adapters (Kafka via confluent-kafka, Kinesis via boto3)."""
