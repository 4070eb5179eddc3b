"""The embedded local substrate: moto server (S3/Kinesis/SSM), PostgreSQL, Tansu Kafka broker."""
