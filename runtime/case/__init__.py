"""Case and labels plane (P10): case triggers, append-only case timelines, append-only label assertions.

`keys` holds the subject keys and id rules the three components share; `trigger`, `cm` and `ls`
each keep their pure domain in `domain.py` (stores and handlers sit beside them); `digest` gives
the run's `case_digest` and `label_digest`.
"""
