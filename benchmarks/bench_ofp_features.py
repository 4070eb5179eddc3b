"""OFP `features_as_of` latency over the in-memory facts of busy entities (the domain function alone).

A merchant with FP_BENCH_OFP_EVENTS events (default 20000) spread over 25 h, and a card with a
tenth of that, are built as sorted fact lists; `features_as_of` is then asked for randomly chosen
events of each (so the 24 h window holds up to ~19k facts for the merchant). Reports p50/p99 per
call. Goal (issue 12): p99 < 5 ms. A store adds its own read of the entity's last 24 h on top.
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


def latencies(facts: EntityFacts, kind: str, entity_id: str, rng: random.Random) -> list[float]:
    """Seconds per `features_as_of` call for QUERIES random events of the entity."""
    out = []
    for _ in range(QUERIES):
        current = facts.fact(rng.randrange(len(facts)), kind, entity_id)
        t0 = time.perf_counter()
        features_as_of(facts, kind, entity_id, current.ts_micros, current.event_id, current)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    """Measure and print p50/p99 for a busy merchant and a busy card."""
    events = int(os.environ.get("FP_BENCH_OFP_EVENTS", "20000"))
    rng = random.Random(42)
    worst = 0.0
    for kind, count in (("merchant", events), ("card", max(1, events // 10))):
        facts = busy_entity(kind, f"{kind}_busy", count, rng)
        lat = sorted(latencies(facts, kind, f"{kind}_busy", rng))
        p50, p99 = statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000
        worst = max(worst, p99)
        print(f"ofp features_as_of ({kind} with {count} facts over 25 h, {QUERIES} queries): p50 {p50:.3f} ms, p99 {p99:.3f} ms "
              f"(goal p99 < 5 ms)")
    return 0 if worst < 5.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
