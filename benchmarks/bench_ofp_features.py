"""OFP `features_as_of` latency over the in-memory facts of busy entities (the domain function alone).

A merchant with FP_BENCH_OFP_EVENTS events (default 20000) spread over 25 h, and a card with a
tenth of that, are built as sorted fact lists; `features_as_of` is then asked for randomly chosen
events of each (so the 24 h window holds up to ~19k facts for the merchant). Reports p50/p99 per
call, next to the baseline measured in the same run: a plain sum of the amounts in the 24 h
window (the least work any answer needs). Goal (issue 12): p99 < 5 ms; the figure is reported,
a missed goal is said, not turned into a failure. A store adds its own read of the entity's last
24 h on top.
"""

from __future__ import annotations

import os
import random
import statistics
import time

from runtime.rtdl.ofp.domain import EntityFacts, EventFact, features_as_of

SECOND = 1_000_000
SPAN = 25 * 3600 * SECOND
QUERIES = 2000


def busy_entity(kind: str, entity_id: str, events: int, rng: random.Random) -> EntityFacts:
    """`events` facts of one entity over 25 h, as the entity's columns."""
    facts = [EventFact(kind, entity_id, rng.randrange(SPAN), f"{rng.getrandbits(128):032x}", rng.randrange(1, 50_000),
                       f"mer_{rng.randrange(300)}", rng.choice(("GB", "DE", "FR", "US")), f"dev_{rng.randrange(5000)}",
                       rng.random() < 0.05, rng.random() < 0.02) for _ in range(events)]
    return EntityFacts.from_facts(facts)


def latencies(facts: EntityFacts, kind: str, entity_id: str, rng: random.Random, queries: int) -> tuple[list[float], list[float]]:
    """Seconds per `features_as_of` call, and per baseline window sum, for `queries` random events."""
    out, base = [], []
    for _ in range(queries):
        current = facts.fact(rng.randrange(len(facts)), kind, entity_id)
        t0 = time.perf_counter()
        features_as_of(facts, kind, entity_id, current.ts_micros, current.event_id, current)
        out.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        start = current.ts_micros - 86_400 * SECOND
        sum(amount for ts, amount in zip(facts.ts, facts.amounts, strict=True) if start < ts < current.ts_micros)
        base.append(time.perf_counter() - t0)
    return out, base


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q) - 1)] * 1000


def main(smoke: bool = False) -> int:
    """Measure and print p50/p99 for a busy merchant and a busy card, with the baseline."""
    events = 200 if smoke else int(os.environ.get("FP_BENCH_OFP_EVENTS", "20000"))
    queries = 50 if smoke else QUERIES
    rng = random.Random(42)
    for kind, count in (("merchant", events), ("card", max(1, events // 10))):
        facts = busy_entity(kind, f"{kind}_busy", count, rng)
        lat, base = latencies(facts, kind, f"{kind}_busy", rng, queries)
        p50, p99 = statistics.median(lat) * 1000, _p(lat, 0.99)
        verdict = "goal met" if p99 < 5.0 else "goal MISSED"
        print(f"ofp features_as_of ({kind} with {count} facts over 25 h, {queries} queries): p50 {p50:.3f} ms, "
              f"p99 {p99:.3f} ms ({verdict}: p99 < 5 ms); baseline window sum p50 {statistics.median(base) * 1000:.3f} ms, "
              f"p99 {_p(base, 0.99):.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
