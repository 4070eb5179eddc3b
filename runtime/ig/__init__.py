"""Ingestion Gate: the only writer of admitted events to the bus (validate, dedupe, publish, receipt)."""
