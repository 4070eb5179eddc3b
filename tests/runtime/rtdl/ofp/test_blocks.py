"""The bounded read's arithmetic: blocks, links and firsts arrays equal the domain's windows, in any order."""

from __future__ import annotations

import random

import pytest

from runtime.rtdl.ofp.blocks import (
    BLOCK_MICROS,
    SPAN_BLOCKS,
    BlockIndex,
    block_of,
    firsts_prefix,
    raw_blocks,
    window_bounds,
)
from runtime.rtdl.ofp.domain import HORIZON_MICROS, SECOND, EntityFacts, EventFact, assemble_features, features_as_of

T0 = 1_767_571_200_000_000
ENTITY = ("merchant", "mer_busy")


def _facts(rng: random.Random, n: int, span_s: int = 26 * 3600) -> list[EventFact]:
    out = []
    for i in range(n):
        ts = T0 + rng.randrange(span_s) * SECOND + rng.choice([0, 0, 0, rng.randrange(SECOND)])
        if i and rng.random() < 0.1:
            ts = out[rng.randrange(len(out))].ts_micros  # same instant: ordered by event id
        device = f"dev_{rng.randrange(8)}" if rng.random() < 0.5 else f"dev_{rng.randrange(400)}"
        out.append(EventFact("merchant", "mer_busy", ts, f"{rng.getrandbits(64):016x}", rng.randrange(1, 90_000),
                             "mer_busy", rng.choice(["GB", "DE", "FR"]), device, rng.random() < 0.2, rng.random() < 0.1))
    return out


def _domain_windows(facts: list[EventFact], fact: EventFact):
    return features_as_of(EntityFacts.from_facts(facts), *ENTITY, fact.ts_micros, fact.event_id, fact).windows


def _bounded_windows(index: BlockIndex, fact: EventFact):
    sums = index.window_sums(ENTITY, fact.ts_micros, fact.event_id)
    return assemble_features(*ENTITY, fact.ts_micros, fact.event_id, sums, None, fact, None).windows


def test_the_24h_window_spans_exactly_its_blocks_and_reads_at_most_four_blocks_raw():
    ts = T0 + 12_345 * SECOND
    bounds = window_bounds(ts)
    assert HORIZON_MICROS % BLOCK_MICROS == 0 and bounds[-1].top_block - bounds[-1].low_block == SPAN_BLOCKS
    assert all(b.top_block == block_of(ts) for b in bounds) and len(raw_blocks(bounds)) <= 4
    assert bounds[0].raw_holds(ts - 1) and not bounds[-1].raw_holds(ts - 3600 * SECOND) and not bounds[-1].raw_holds(bounds[-1].lo)


@pytest.mark.parametrize(("block", "prev", "expected"), [
    (100, None, SPAN_BLOCKS),                               # a first occurrence counts in every entry
    (100, block_of(T0) * 0 + 100 * BLOCK_MICROS + 5, 0),     # previous in the same block: never before lo's block
    (100, 99 * BLOCK_MICROS, 0),                             # previous one block back: entry 1 asks for < 99
    (100, 97 * BLOCK_MICROS + 1, 2),                         # three blocks back: entries 1 and 2
    (100, -10**12, SPAN_BLOCKS),                             # beyond the horizon: like none
])
def test_firsts_prefix_counts_a_fact_in_the_entries_whose_boundary_is_after_its_previous(block, prev, expected):
    assert firsts_prefix(block, prev) == expected


def test_links_and_block_rows_are_the_same_whatever_the_order_and_batching_of_inserts():
    rng = random.Random(7)
    facts = _facts(rng, 900)
    reference = BlockIndex()
    reference.apply(sorted(facts, key=lambda f: f.order_key))
    for seed in range(4):
        shuffled = facts[:]
        random.Random(seed).shuffle(shuffled)
        index = BlockIndex()
        at = 0
        while at < len(shuffled):
            size = random.Random(seed + at).randrange(1, 120)
            index.apply(shuffled[at:at + size] + shuffled[max(0, at - 3):at])  # redeliveries change nothing
            at += size
        assert {k: c.links for k, c in index.chain.items()} == {k: c.links for k, c in reference.chain.items()}
        assert index.blocks == reference.blocks


def test_bounded_windows_equal_the_domain_for_every_fact_after_a_shuffled_insert_with_late_facts():
    """Late facts land inside blocks already aggregated (a shuffled order over 26 h, in batches):
    every fact's windows from raw edge blocks + block rows equal the domain over all facts."""
    rng = random.Random(11)
    facts = _facts(rng, 1200)
    shuffled = facts[:]
    rng.shuffle(shuffled)
    index = BlockIndex()
    for at in range(0, len(shuffled), 50):
        index.apply(shuffled[at:at + 50])
    for fact in rng.sample(facts, 250):
        assert _bounded_windows(index, fact) == _domain_windows(facts, fact)


def test_bounded_windows_equal_the_domain_for_events_not_in_the_store_and_at_block_edges():
    rng = random.Random(3)
    facts = _facts(rng, 600, span_s=3 * 3600)
    index = BlockIndex()
    index.apply(facts)
    edges = [T0 + 3600 * SECOND, block_of(T0 + 7200 * SECOND) * BLOCK_MICROS, block_of(T0 + 7200 * SECOND) * BLOCK_MICROS - 1]
    for ts in edges + [f.ts_micros for f in facts[:50]]:
        probe = EventFact("merchant", "mer_busy", ts, "zzzz", 100, "mer_busy", "GB", "dev_1", False, False)
        assert _bounded_windows(index, probe) == _domain_windows(facts, probe)
