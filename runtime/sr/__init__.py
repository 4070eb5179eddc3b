"""Scenario Runner (P5): the readiness authority that gates the oracle and publishes READY."""
