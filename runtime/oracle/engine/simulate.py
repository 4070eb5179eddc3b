"""The simulation: a world, its legitimate sessions and flows, and the fraud overlay.

Everything is vectorised numpy over integer codes (ids become strings only when tables are
built), so a million traffic events take seconds. Frames are plain dicts of equal-length arrays.
Fraud flows are added on top of the baseline with their pattern recorded, which is what makes
the truth labels exact: a flow is fraud if and only if the overlay created it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from runtime.oracle.engine.config import PATTERN_SHARES, EngineConfig

Frame = dict[str, np.ndarray]

COUNTRIES = ("GB", "DE", "FR", "ES", "IT", "NL", "IE", "US", "PL", "SE", "RO", "NG", "BR", "IN", "CN")
COUNTRY_P = np.array([0.40, 0.12, 0.10, 0.07, 0.06, 0.05, 0.04, 0.05, 0.03, 0.02, 0.015, 0.01, 0.01, 0.01, 0.005])
CURRENCY_OF = {"GB": "GBP", "US": "USD", "PL": "PLN", "SE": "SEK", "RO": "RON", "NG": "NGN", "BR": "BRL", "IN": "INR", "CN": "CNY"}
CURRENCIES = tuple(sorted({CURRENCY_OF.get(c, "EUR") for c in COUNTRIES}))
CHANNELS = ("web", "app", "pos", "p2p")
MCCS = ("5411", "5812", "5999", "4111", "5732", "7995", "6012", "4829")
PATTERNS = ("none", *PATTERN_SHARES)
EVENT_TYPES = ("auth_request", "auth_retry", "capture", "transfer")

MINUTE = 60_000_000
SECOND = 1_000_000


@dataclass
class World:
    """Entity tables: customers, cards, devices, merchants (all integer-coded)."""

    customers: int
    home_country: np.ndarray
    typical_amount: np.ndarray
    has_second_card: np.ndarray
    merchants: int
    merchant_country: np.ndarray
    merchant_mcc: np.ndarray
    mule_merchants: np.ndarray
    devices: int  # world devices are customer*2 + j; fraud devices are numbered after them


@dataclass
class Simulation:
    """The simulated run: world, sessions, baseline and fraud flows, and their events."""

    world: World
    sessions: Frame
    flows: Frame
    events: Frame
    baseline_flow_count: int


def _currency_codes(country_codes: np.ndarray) -> np.ndarray:
    lookup = np.array([CURRENCIES.index(CURRENCY_OF.get(c, "EUR")) for c in COUNTRIES])
    return lookup[country_codes]


def build_world(rng: np.random.Generator, flows: int) -> World:
    """Customers (with a home country and a typical spend), cards, devices and merchants."""
    customers = max(20, flows // 8)
    merchants = max(12, flows // 60)
    mule_count = max(2, merchants // 50)
    return World(
        customers=customers,
        home_country=rng.choice(len(COUNTRIES), size=customers, p=COUNTRY_P / COUNTRY_P.sum()),
        typical_amount=np.round(rng.lognormal(3.4, 0.6, size=customers), 2),
        has_second_card=rng.random(customers) < 0.35,
        merchants=merchants + mule_count,
        merchant_country=rng.choice(len(COUNTRIES), size=merchants + mule_count, p=COUNTRY_P / COUNTRY_P.sum()),
        merchant_mcc=np.concatenate([rng.integers(0, len(MCCS) - 1, size=merchants), np.full(mule_count, len(MCCS) - 1)]),
        mule_merchants=np.arange(merchants, merchants + mule_count),
        devices=customers * 2,
    )


def _other_country(rng: np.random.Generator, home: np.ndarray) -> np.ndarray:
    shift = rng.integers(1, len(COUNTRIES), size=home.shape[0])
    return (home + shift) % len(COUNTRIES)


def baseline(rng: np.random.Generator, world: World, flows: int, start: int, span: int) -> tuple[Frame, Frame]:
    """Legitimate sessions and flows: customers on their own devices, cards and home countries."""
    n_sessions = max(1, (flows * 2) // 3)
    s_customer = rng.integers(0, world.customers, size=n_sessions)
    s_channel = rng.choice(3, size=n_sessions, p=[0.45, 0.4, 0.15])
    s_country = world.home_country[s_customer].copy()
    travel = rng.random(n_sessions) < 0.04
    s_country[travel] = _other_country(rng, s_country[travel])
    sessions: Frame = {
        "customer": s_customer,
        "device": s_customer * 2 + rng.integers(0, 2, size=n_sessions),
        "start": start + rng.integers(0, span, size=n_sessions),
        "channel": s_channel,
        "ip_country": s_country,
        "fraud": np.zeros(n_sessions, dtype=bool),
    }
    f_session = rng.integers(0, n_sessions, size=flows)
    f_customer = s_customer[f_session]
    second = world.has_second_card[f_customer] & (rng.random(flows) < 0.4)
    merchants_regular = world.merchants - world.mule_merchants.shape[0]
    flows_frame: Frame = {
        "session": f_session,
        "customer": f_customer,
        "card": f_customer * 2 + second.astype(np.int64),
        "device": sessions["device"][f_session],
        "merchant": np.minimum((merchants_regular * rng.random(flows) ** 2).astype(np.int64), merchants_regular - 1),
        "start": sessions["start"][f_session] + rng.integers(0, 20 * MINUTE, size=flows),
        "n_events": rng.choice([1, 2, 3, 4], size=flows, p=[0.45, 0.30, 0.15, 0.10]),
        "gap": rng.integers(5 * SECOND, 120 * SECOND, size=flows),
        "amount_factor": np.ones(flows),
        "amount_fixed": np.zeros(flows),
        "channel": sessions["channel"][f_session],
        "pattern": np.zeros(flows, dtype=np.int64),
    }
    return sessions, flows_frame


def _pattern_counts(total: int) -> dict[str, int]:
    counts = {p: math.floor(total * share) for p, share in PATTERN_SHARES.items()}
    counts["card_testing"] += total - sum(counts.values())
    return counts


def fraud_overlay(rng: np.random.Generator, world: World, total: int, start: int, span: int, next_device: int) -> tuple[Frame, Frame]:
    """Fraud sessions and flows: card-testing bursts, account takeover, amount anomalies, mule transfers.

    Returned session indices are local (0-based); the caller offsets them past the baseline.
    """
    counts = _pattern_counts(total)
    sessions: list[Frame] = []
    flows: list[Frame] = []
    n_sessions = 0

    def add(sess: Frame, fl: Frame) -> None:
        nonlocal n_sessions
        fl["session"] = fl["session"] + n_sessions
        n_sessions += sess["customer"].shape[0]
        sessions.append(sess)
        flows.append(fl)

    # Card testing: one stolen card, one fraud device abroad, a burst of tiny 1-event payments
    # at many merchants within minutes.
    remaining = counts["card_testing"]
    burst_sizes: list[int] = []
    while remaining > 0:
        size = min(remaining, int(rng.integers(8, 26)))
        burst_sizes.append(size)
        remaining -= size
    if burst_sizes:
        b = len(burst_sizes)
        victim = rng.integers(0, world.customers, size=b)
        sess = {
            "customer": victim,
            "device": next_device + np.arange(b),
            "start": start + rng.integers(0, span, size=b),
            "channel": np.zeros(b, dtype=np.int64),
            "ip_country": _other_country(rng, world.home_country[victim]),
            "fraud": np.ones(b, dtype=bool),
        }
        next_device += b
        f_session = np.repeat(np.arange(b), burst_sizes)
        within = np.concatenate([np.arange(s) for s in burst_sizes])
        n = f_session.shape[0]
        fl = {
            "session": f_session,
            "customer": victim[f_session],
            "card": victim[f_session] * 2,
            "device": sess["device"][f_session],
            "merchant": rng.integers(0, world.merchants - world.mule_merchants.shape[0], size=n),
            "start": sess["start"][f_session] + within * rng.integers(10 * SECOND, 90 * SECOND, size=n),
            "n_events": np.ones(n, dtype=np.int64),
            "gap": np.full(n, SECOND),
            "amount_factor": np.zeros(n),
            "amount_fixed": np.round(rng.uniform(0.5, 3.0, size=n), 2),
            "channel": np.zeros(n, dtype=np.int64),
            "pattern": np.full(n, PATTERNS.index("card_testing")),
        }
        add(sess, fl)

    # Account takeover: a new device from another country, several high-value events.
    n = counts["account_takeover"]
    if n:
        victim = rng.integers(0, world.customers, size=n)
        sess = {
            "customer": victim,
            "device": next_device + np.arange(n),
            "start": start + rng.integers(0, span, size=n),
            "channel": rng.integers(0, 2, size=n),
            "ip_country": _other_country(rng, world.home_country[victim]),
            "fraud": np.ones(n, dtype=bool),
        }
        next_device += n
        fl = {
            "session": np.arange(n),
            "customer": victim,
            "card": victim * 2 + (world.has_second_card[victim] & (rng.random(n) < 0.5)).astype(np.int64),
            "device": sess["device"],
            "merchant": rng.integers(0, world.merchants - world.mule_merchants.shape[0], size=n),
            "start": sess["start"] + rng.integers(MINUTE, 10 * MINUTE, size=n),
            "n_events": rng.integers(2, 5, size=n),
            "gap": rng.integers(20 * SECOND, 60 * SECOND, size=n),
            "amount_factor": rng.lognormal(1.6, 0.4, size=n),
            "amount_fixed": np.zeros(n),
            "channel": sess["channel"],
            "pattern": np.full(n, PATTERNS.index("account_takeover")),
        }
        add(sess, fl)

    # Amount anomaly: the customer's own device and country, an amount far above their habit.
    n = counts["amount_anomaly"]
    if n:
        victim = rng.integers(0, world.customers, size=n)
        sess = {
            "customer": victim,
            "device": victim * 2,
            "start": start + rng.integers(0, span, size=n),
            "channel": rng.integers(0, 3, size=n),
            "ip_country": world.home_country[victim],
            "fraud": np.ones(n, dtype=bool),
        }
        fl = {
            "session": np.arange(n),
            "customer": victim,
            "card": victim * 2,
            "device": sess["device"],
            "merchant": rng.integers(0, world.merchants - world.mule_merchants.shape[0], size=n),
            "start": sess["start"] + rng.integers(0, 5 * MINUTE, size=n),
            "n_events": rng.integers(1, 3, size=n),
            "gap": rng.integers(30 * SECOND, 90 * SECOND, size=n),
            "amount_factor": rng.uniform(15.0, 60.0, size=n),
            "amount_fixed": np.zeros(n),
            "channel": sess["channel"],
            "pattern": np.full(n, PATTERNS.index("amount_anomaly")),
        }
        add(sess, fl)

    # Mule transfers: a recruited account moving round sums to collector accounts over p2p, fast.
    n = counts["mule_transfer"]
    if n:
        victim = rng.integers(0, world.customers, size=n)
        sess = {
            "customer": victim,
            "device": victim * 2 + 1,
            "start": start + rng.integers(0, span, size=n),
            "channel": np.full(n, CHANNELS.index("p2p")),
            "ip_country": world.home_country[victim],
            "fraud": np.ones(n, dtype=bool),
        }
        fl = {
            "session": np.arange(n),
            "customer": victim,
            "card": victim * 2,
            "device": sess["device"],
            "merchant": world.mule_merchants[rng.integers(0, world.mule_merchants.shape[0], size=n)],
            "start": sess["start"] + rng.integers(0, 2 * MINUTE, size=n),
            "n_events": rng.integers(1, 4, size=n),
            "gap": rng.integers(5 * SECOND, 30 * SECOND, size=n),
            "amount_factor": np.zeros(n),
            "amount_fixed": rng.choice([100.0, 200.0, 250.0, 500.0, 900.0, 1000.0], size=n),
            "channel": sess["channel"],
            "pattern": np.full(n, PATTERNS.index("mule_transfer")),
        }
        add(sess, fl)

    if not flows:
        return _empty_sessions(), _empty_flows()
    return _concat(sessions), _concat(flows)


def _empty_sessions() -> Frame:
    return {
        k: np.zeros(0, dtype=bool if k == "fraud" else np.int64) for k in ("customer", "device", "start", "channel", "ip_country", "fraud")
    }


def _empty_flows() -> Frame:
    keys = (
        "session",
        "customer",
        "card",
        "device",
        "merchant",
        "start",
        "n_events",
        "gap",
        "amount_factor",
        "amount_fixed",
        "channel",
        "pattern",
    )
    return {k: np.zeros(0, dtype=np.float64 if k.startswith("amount") else np.int64) for k in keys}


def _concat(frames: list[Frame]) -> Frame:
    return {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}


def explode_events(rng: np.random.Generator, world: World, flows: Frame) -> Frame:
    """One row per event: flows repeated n_events times, with times, amounts and event types."""
    n_events = flows["n_events"]
    flow_index = np.repeat(np.arange(n_events.shape[0]), n_events)
    starts = np.cumsum(n_events) - n_events
    seq = np.arange(flow_index.shape[0]) - np.repeat(starts, n_events)
    ts = flows["start"][flow_index] + seq * flows["gap"][flow_index] + rng.integers(0, SECOND, size=flow_index.shape[0])
    typical = world.typical_amount[flows["customer"][flow_index]]
    noise = rng.lognormal(0.0, 0.45, size=flow_index.shape[0])
    amount = np.where(
        flows["amount_fixed"][flow_index] > 0,
        flows["amount_fixed"][flow_index],
        typical * flows["amount_factor"][flow_index] * noise,
    )
    channel = flows["channel"][flow_index]
    event_type = np.where(seq == 0, 0, np.where(seq == 1, 2, 1))
    event_type = np.where(channel == CHANNELS.index("p2p"), 3, event_type)
    return {
        "flow": flow_index,
        "seq": seq,
        "ts": ts,
        "amount": np.round(np.maximum(amount, 0.01), 2),
        "event_type": event_type,
    }


def simulate(config: EngineConfig) -> Simulation:
    """Run the whole simulation for `config` (deterministic: same config, same arrays)."""
    rng = np.random.default_rng(config.rng_seed())
    flows_wanted = max(5, round(config.scale / 1.85))
    world = build_world(rng, flows_wanted)
    start = config.start_micros()
    span = config.days * 86_400 * SECOND
    sessions, flows = baseline(rng, world, flows_wanted, start, span)
    fraud_total = round(config.fraud_rate * flows_wanted / (1.0 - config.fraud_rate)) if config.fraud_rate > 0 else 0
    f_sessions, f_flows = fraud_overlay(rng, world, fraud_total, start, span, world.devices)
    f_flows["session"] = f_flows["session"] + sessions["customer"].shape[0]
    all_sessions = {k: np.concatenate([sessions[k], f_sessions[k]]) for k in sessions}
    all_flows = {k: np.concatenate([flows[k], f_flows[k]]) for k in flows}
    events = explode_events(rng, world, all_flows)
    return Simulation(world, all_sessions, all_flows, events, baseline_flow_count=flows_wanted)
