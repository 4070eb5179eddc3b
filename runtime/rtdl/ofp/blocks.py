"""OFP's bounded point-in-time read: block aggregates and same-value links, as plain arithmetic.

`features_as_of` over a busy entity (a merchant with ~20k facts in its 24 h window) must not read
the whole window. For the entity kinds in `MAINTAINED_KINDS` the store keeps, beside the facts:

- per fact and attribute (country, device; a merchant's merchant is itself) the time of the previous and of the next fact
  of the same entity with the same value, in (ts, event_id) order (a *link*);
- per block of `BLOCK_MICROS` event time: count, amount sum and max, p2p and round counts, and per
  attribute an array `firsts[k]` (k = 1..SPAN_BLOCKS) = how many facts of the block have their
  previous same-value fact in a block before `block - k` (none counts as infinitely far).

A window (lo, E) (facts with lo < ts and (ts, event_id) < E) is then: the raw facts of the block
holding lo and of the block holding E, plus the rows of the blocks strictly between. The distinct
count of an attribute is `#{f in window : ts_prev(f) <= lo}` (each value counts at its first
occurrence in the window): raw facts check `ts_prev <= lo` directly; a middle block b contributes
`firsts[b - low_block]` (previous before lo's block), plus the facts of lo's block at or before lo
whose next same-value fact lies in a middle block (their successors have the previous inside lo's
block and at or before lo). Every stored number is a function of the set of facts alone: inserting
x between p and s (same value) links p -> x -> s and moves s's firsts entry from p's distance to
x's, so any order of arrival, redelivery or batch split leaves the same rows. `BlockIndex` is the
in-memory twin the unit tests prove against the domain's `features_as_of`; the store's SQL
(runtime/rtdl/ofp/store.py) computes the same sums.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from runtime.rtdl.ofp.domain import HORIZON_MICROS, SECOND, WINDOWS, EventFact, WindowSums

#: Block length: every window length is a whole number of blocks, so lo's block and E's block are
#: the only partial ones. 10 min keeps a block's three firsts arrays (144 ints each) inline in a row.
BLOCK_MICROS = 600 * SECOND
#: The largest block distance a window asks about (the 24 h window spans 144 blocks).
SPAN_BLOCKS = HORIZON_MICROS // BLOCK_MICROS
#: Entity kinds kept with links and blocks (the busy ones); the others are read from their facts.
#: Only merchants: a merchant's facts all carry the merchant itself, so its distinct merchants are
#: 1 for a non-empty window and no links are kept for that attribute (`LINKED_ATTRIBUTES`).
MAINTAINED_KINDS: frozenset[str] = frozenset({"merchant"})
#: The attributes a maintained entity keeps links and firsts arrays for.
LINKED_ATTRIBUTES: tuple[str, ...] = ("country", "device")

OrderKey = tuple[int, str]


def block_of(ts_micros: int) -> int:
    """The block holding an event time."""
    return ts_micros // BLOCK_MICROS


def block_start(block: int) -> int:
    """The first event time of a block."""
    return block * BLOCK_MICROS


def value_of(fact: EventFact, attribute: str) -> str:
    """The fact's value of a distinct-counted attribute."""
    if attribute == "merchant":
        return fact.merchant_id
    if attribute == "country":
        return fact.merchant_country
    return fact.device_id


def firsts_prefix(block: int, prev_ts_micros: int | None) -> int:
    """How many leading entries of its block's `firsts` array a fact counts in: entry k counts the
    facts whose previous same-value fact is in a block before `block - k` (none: every entry)."""
    if prev_ts_micros is None:
        return SPAN_BLOCKS
    return max(0, min(block - block_of(prev_ts_micros) - 1, SPAN_BLOCKS))


@dataclass(frozen=True, slots=True)
class WindowBounds:
    """One window of an event: facts with lo < ts and (ts, event_id) before the event."""

    lo: int
    low_block: int
    top_block: int

    @property
    def low_end(self) -> int:
        """First time after lo's block (raw facts of the low block lie before it)."""
        return block_start(self.low_block + 1)

    @property
    def top_start(self) -> int:
        """First time of the event's block (raw facts of the top block lie at or after it)."""
        return block_start(self.top_block)

    def raw_holds(self, ts_micros: int) -> bool:
        """Whether a fact (before the event) at this time is read raw by this window, not from a block row."""
        return ts_micros > self.lo and (ts_micros < self.low_end or ts_micros >= self.top_start)


def window_bounds(ts_micros: int) -> list[WindowBounds]:
    """The bounds of every window (in `WINDOWS` order) of an event at `ts_micros`."""
    top = block_of(ts_micros)
    return [WindowBounds(ts_micros - length, block_of(ts_micros - length), top) for _, length in WINDOWS]


def raw_blocks(bounds: Sequence[WindowBounds]) -> list[int]:
    """The blocks whose facts a read takes raw: each window's low block and the event's block."""
    return sorted({b.low_block for b in bounds} | {bounds[0].top_block})


@dataclass(frozen=True, slots=True)
class Neighbours:
    """Where a new fact landed in its (entity, attribute value) chain, all facts of the batch in:
    the previous and next fact (None at an end) and the next one's previous time as stored before
    this batch (what its block's firsts entry counted until now)."""

    prev: OrderKey | None
    next: OrderKey | None
    next_stored_prev_ts: int | None


@dataclass
class BlockDelta:
    """What a batch adds to one block row: scalar sums, the max, and per attribute the firsts
    changes as {prefix length: +/- count} (entries 1..prefix change by the count)."""

    count: int = 0
    amount_sum: int = 0
    amount_max: int = 0
    p2p: int = 0
    rounds: int = 0
    firsts: dict[str, dict[int, int]] = field(default_factory=lambda: {a: {} for a in LINKED_ATTRIBUTES})

    def entries(self, attribute: str) -> list[int] | None:
        """The change of every entry of the attribute's firsts array (None when nothing changes):
        entry k moves by the counts of every prefix length >= k."""
        changes = self.firsts[attribute]
        if not changes:
            return None
        steps = [0] * SPAN_BLOCKS
        for prefix, by in changes.items():
            steps[prefix - 1] += by
        return list(itertools.accumulate(reversed(steps)))[::-1]

    def move(self, attribute: str, prefix: int, by: int) -> None:
        """Entries 1..prefix of the attribute's firsts change by `by` (nothing for an empty prefix)."""
        if prefix > 0:
            changes = self.firsts[attribute]
            changes[prefix] = changes.get(prefix, 0) + by
            if not changes[prefix]:
                del changes[prefix]


#: A chain row's link columns: per attribute the previous and next same-value fact's time.
LINK_COLUMNS: tuple[str, ...] = tuple(f"{a}_{end}_ts" for a in LINKED_ATTRIBUTES for end in ("prev", "next"))

EntityKey = tuple[str, str]


@dataclass
class LinkPlan:
    """A batch's writes: link columns to set per (entity, fact) and deltas per (entity, block)."""

    links: dict[tuple[EntityKey, OrderKey], dict[str, int | None]] = field(default_factory=dict)
    blocks: dict[tuple[EntityKey, int], BlockDelta] = field(default_factory=dict)

    def block(self, entity: EntityKey, block: int) -> BlockDelta:
        """The delta of one block row (created empty on first use)."""
        key = (entity, block)
        delta = self.blocks.get(key)
        if delta is None:
            delta = self.blocks[key] = BlockDelta()
        return delta


def merge_neighbours(new: Iterable[EventFact], existing: dict[tuple[EntityKey, OrderKey, str], Neighbours]
                     ) -> dict[tuple[EntityKey, OrderKey, str], Neighbours]:
    """Each new fact's neighbours once the whole batch is in, from its neighbours among the facts
    held BEFORE the batch (`existing`, what the store's probes return) and the batch itself: the
    previous one is the later of its previous held fact and the batch's previous same-value fact,
    the next one the earlier of the two; a held next fact keeps its stored previous time (what its
    block's firsts entry counts until this batch moves it)."""
    chains: dict[tuple[EntityKey, str, str], list[OrderKey]] = {}
    facts = {((f.entity_kind, f.entity_id), f.order_key): f for f in new}
    for (entity, key), fact in facts.items():
        for attribute in LINKED_ATTRIBUTES:
            chains.setdefault((entity, attribute, value_of(fact, attribute)), []).append(key)
    out = {}
    for (entity, attribute, _), keys in chains.items():
        keys.sort()
        for i, key in enumerate(keys):
            held = existing[(entity, key, attribute)]
            prev = held.prev if i == 0 or (held.prev is not None and held.prev > keys[i - 1]) else keys[i - 1]
            if i + 1 < len(keys) and (held.next is None or keys[i + 1] < held.next):
                out[(entity, key, attribute)] = Neighbours(prev, keys[i + 1], None)
            else:
                out[(entity, key, attribute)] = Neighbours(prev, held.next, held.next_stored_prev_ts)
    return out


def plan_links(new: Iterable[EventFact], neighbours: dict[tuple[EntityKey, OrderKey, str], Neighbours]) -> LinkPlan:
    """The link and block writes of a batch of NEW facts, given each one's neighbours in its chains
    with the whole batch already inserted. Invariant kept: afterwards every fact's links and every
    block row equal what the set of facts alone defines. A fact already present before the batch
    changes only where a new fact became its neighbour: its next (when it is a new fact's previous)
    or its previous (when it is a new fact's next; its firsts entry moves with it)."""
    facts = {((f.entity_kind, f.entity_id), f.order_key): f for f in new}
    plan = LinkPlan()
    for (entity, key), fact in facts.items():
        block = block_of(fact.ts_micros)
        delta = plan.block(entity, block)
        delta.count += 1
        delta.amount_sum += fact.amount_minor
        delta.amount_max = max(delta.amount_max, fact.amount_minor)
        delta.p2p += int(fact.is_p2p)
        delta.rounds += int(fact.is_round)
        mine = plan.links.setdefault((entity, key), {})
        for attribute in LINKED_ATTRIBUTES:
            around = neighbours[(entity, key, attribute)]
            prev_ts = None if around.prev is None else around.prev[0]
            mine[f"{attribute}_prev_ts"] = prev_ts
            mine[f"{attribute}_next_ts"] = None if around.next is None else around.next[0]
            delta.move(attribute, firsts_prefix(block, prev_ts), 1)
            if around.prev is not None and (entity, around.prev) not in facts:
                plan.links.setdefault((entity, around.prev), {})[f"{attribute}_next_ts"] = fact.ts_micros
            if around.next is not None and (entity, around.next) not in facts:
                plan.links.setdefault((entity, around.next), {})[f"{attribute}_prev_ts"] = fact.ts_micros
                next_block = block_of(around.next[0])
                moved = plan.block(entity, next_block)
                moved.move(attribute, firsts_prefix(next_block, around.next_stored_prev_ts), -1)
                moved.move(attribute, firsts_prefix(next_block, fact.ts_micros), 1)
    return plan


@dataclass
class BlockRow:
    """One block's stored aggregates (the in-memory form of a `rtdl_ofp_blocks` row)."""

    count: int = 0
    amount_sum: int = 0
    amount_max: int = 0
    p2p: int = 0
    rounds: int = 0
    firsts: dict[str, list[int]] = field(default_factory=lambda: {a: [0] * SPAN_BLOCKS for a in LINKED_ATTRIBUTES})

    def add(self, delta: BlockDelta) -> None:
        """Apply a batch's delta (sums add, the max is the larger, firsts entries move)."""
        self.count += delta.count
        self.amount_sum += delta.amount_sum
        self.amount_max = max(self.amount_max, delta.amount_max)
        self.p2p += delta.p2p
        self.rounds += delta.rounds
        for attribute in LINKED_ATTRIBUTES:
            change = delta.entries(attribute)
            if change is not None:
                self.firsts[attribute] = [a + b for a, b in zip(self.firsts[attribute], change, strict=True)]


@dataclass
class ChainFact:
    """A maintained fact with its links (the in-memory form of a `rtdl_ofp_chain` row)."""

    fact: EventFact
    links: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(LINK_COLUMNS))


def bounded_window_sums(raw: Iterable[ChainFact], blocks: dict[int, BlockRow], bounds: Sequence[WindowBounds]) -> list[WindowSums]:
    """Every window's integer aggregates from the raw facts of `raw_blocks(bounds)` (only those
    before the event) and the block rows strictly between each window's low and top block: what
    the store's SQL computes, in Python."""
    raw = list(raw)
    out = []
    for w in bounds:
        inside = [c for c in raw if w.raw_holds(c.fact.ts_micros)]
        middle = [(b, row) for b, row in blocks.items() if w.low_block < b < w.top_block]
        count = len(inside) + sum(row.count for _, row in middle)
        distinct = [min(count, 1)]  # a merchant's merchant: itself
        for attribute in LINKED_ATTRIBUTES:
            first = sum(1 for c in inside if (p := c.links[f"{attribute}_prev_ts"]) is None or p <= w.lo)
            carried = sum(1 for c in raw if w.low_end - BLOCK_MICROS <= c.fact.ts_micros <= w.lo
                          and (n := c.links[f"{attribute}_next_ts"]) is not None and w.low_end <= n < w.top_start)
            distinct.append(first + carried + sum(row.firsts[attribute][b - w.low_block - 1] for b, row in middle))
        amounts = [c.fact.amount_minor for c in inside] + [row.amount_max for _, row in middle if row.count]
        out.append(WindowSums(
            count,
            sum(c.fact.amount_minor for c in inside) + sum(row.amount_sum for _, row in middle),
            max(amounts, default=0), distinct[0], distinct[1], distinct[2],
            sum(int(c.fact.is_p2p) for c in inside) + sum(row.p2p for _, row in middle),
            sum(int(c.fact.is_round) for c in inside) + sum(row.rounds for _, row in middle)))
    return out


@dataclass
class BlockIndex:
    """Links and block rows of one entity kept in memory the way the store keeps them: the proof
    (unit tests) that batch-wise maintenance in any order gives the rows the fact set defines, and
    that `bounded_window_sums` over them equals the domain's windows."""

    chain: dict[tuple[EntityKey, OrderKey], ChainFact] = field(default_factory=dict)
    blocks: dict[tuple[EntityKey, int], BlockRow] = field(default_factory=dict)
    _order: dict[tuple[EntityKey, str, str], list[OrderKey]] = field(default_factory=dict)

    def apply(self, facts: Iterable[EventFact]) -> LinkPlan:
        """Insert a batch (duplicates ignored) the way the store does: probe each new fact's
        neighbours among the facts held before the batch, merge in the batch, apply the plan."""
        new: dict[tuple[EntityKey, OrderKey], EventFact] = {}
        for fact in facts:
            chain_key = ((fact.entity_kind, fact.entity_id), fact.order_key)
            if chain_key not in self.chain:
                new[chain_key] = fact
        existing = {}
        for (entity, key), fact in new.items():
            for attribute in LINKED_ATTRIBUTES:
                keys = self._order.get((entity, attribute, value_of(fact, attribute)), [])
                i = bisect.bisect_left(keys, key)
                prev = keys[i - 1] if i else None
                nxt = keys[i] if i < len(keys) else None
                stored = None if nxt is None else self.chain[(entity, nxt)].links[f"{attribute}_prev_ts"]
                existing[(entity, key, attribute)] = Neighbours(prev, nxt, stored)
        neighbours = merge_neighbours(new.values(), existing)
        for (entity, key), fact in new.items():
            self.chain[(entity, key)] = ChainFact(fact)
            for attribute in LINKED_ATTRIBUTES:
                bisect.insort(self._order.setdefault((entity, attribute, value_of(fact, attribute)), []), key)
        new_facts = list(new.values())
        plan = plan_links(new_facts, neighbours)
        for fact_key, columns in plan.links.items():
            self.chain[fact_key].links.update(columns)
        for block_key, delta in plan.blocks.items():
            self.blocks.setdefault(block_key, BlockRow()).add(delta)
        return plan

    def window_sums(self, entity: EntityKey, ts_micros: int, event_id: str) -> list[WindowSums]:
        """Every window's aggregates of an entity as of event (ts, event_id), by the bounded read."""
        bounds = window_bounds(ts_micros)
        wanted = set(raw_blocks(bounds))
        raw = [c for (e, key), c in self.chain.items()
               if e == entity and block_of(key[0]) in wanted and key < (ts_micros, event_id)]
        rows = {b: row for (e, b), row in self.blocks.items() if e == entity}
        return bounded_window_sums(raw, rows, bounds)
