"""The synthetic data engine: a seeded world of customers, cards, devices, merchants, sessions
and flows, a fraud overlay with exact truth, written as unsorted Parquet files per output."""
