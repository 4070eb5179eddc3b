"""Contracts every component shares: the handles registry, JSON schemas, ids and canonical JSON."""
