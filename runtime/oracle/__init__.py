"""The oracle lane (P3): synthetic engine, sync, pack + seal, stream-sort, checker.

Domain modules are plain Python over plain data; DuckDB and the object store sit in adapters
(`duck.py`, the ObjectStore port) so the same lane runs on the moto server and on AWS S3.
"""
