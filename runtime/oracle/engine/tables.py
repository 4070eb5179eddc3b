"""Turn the simulation's integer frames into the ten engine output tables (Arrow).

Column names and types here are the engine's contract with WSP (payload schemas) and with the
truth consumers; docs/oracle.md lists them. Timestamps are `timestamp[us, UTC]`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.oracle.engine.simulate import CHANNELS, COUNTRIES, CURRENCIES, EVENT_TYPES, MCCS, PATTERNS, Simulation, _currency_codes

TS = pa.timestamp("us", tz="UTC")
HOUR = 3_600_000_000


def _ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(values, type=pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, pa.scalar(""))


def _names(names: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pc.take(pa.array(names, type=pa.string()), pa.array(codes, type=pa.int64()))


def _ts(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.int64), type=pa.int64()).cast(TS)


def build_tables(sim: Simulation, bank_rng: np.random.Generator) -> dict[str, pa.Table]:
    """Every engine output of the run, keyed by output id."""
    world, sessions, flows, events = sim.world, sim.sessions, sim.flows, sim.events
    n_base = sim.baseline_flow_count
    session_ids = _ids("ses_", np.arange(sessions["customer"].shape[0]), 9)
    flow_ids = _ids("flw_", np.arange(flows["session"].shape[0]), 10)
    f_session = pa.array(flows["session"], type=pa.int64())

    # ---- traffic: one row per event --------------------------------------------------------
    ev_flow = events["flow"]
    ev_flow_pa = pa.array(ev_flow, type=pa.int64())
    merchant_country = world.merchant_country[flows["merchant"][ev_flow]]
    traffic = pa.table(
        {
            "flow_id": pc.take(flow_ids, ev_flow_pa),
            "event_seq": pa.array(events["seq"], type=pa.int32()),
            "ts_utc": _ts(events["ts"]),
            "event_type": _names(EVENT_TYPES, events["event_type"]),
            "session_id": pc.take(session_ids, pc.take(f_session, ev_flow_pa)),
            "customer_id": _ids("cus_", flows["customer"][ev_flow], 8),
            "account_id": _ids("acc_", flows["customer"][ev_flow], 8),
            "card_id": _ids("crd_", flows["card"][ev_flow], 9),
            "device_id": _ids("dev_", flows["device"][ev_flow], 9),
            "merchant_id": _ids("mer_", flows["merchant"][ev_flow], 7),
            "mcc": _names(MCCS, world.merchant_mcc[flows["merchant"][ev_flow]]),
            "amount": pa.array(events["amount"], type=pa.float64()),
            "currency": _names(CURRENCIES, _currency_codes(merchant_country)),
            "merchant_country": _names(COUNTRIES, merchant_country),
            "channel": _names(CHANNELS, flows["channel"][ev_flow]),
            "ip_country": _names(COUNTRIES, sessions["ip_country"][flows["session"][ev_flow]]),
        }
    )
    is_base_event = ev_flow < n_base
    base_mask = pa.array(is_base_event)

    # ---- flow anchors: one row per flow at its first event ---------------------------------
    anchors = pa.table(
        {
            "flow_id": flow_ids,
            "ts_utc": _ts(flows["start"]),
            "session_id": pc.take(session_ids, f_session),
            "customer_id": _ids("cus_", flows["customer"], 8),
            "account_id": _ids("acc_", flows["customer"], 8),
            "card_id": _ids("crd_", flows["card"], 9),
            "merchant_id": _ids("mer_", flows["merchant"], 7),
            "device_id": _ids("dev_", flows["device"], 9),
            "channel": _names(CHANNELS, flows["channel"]),
            "event_count": pa.array(flows["n_events"], type=pa.int32()),
        }
    )

    # ---- sessions: arrivals, entities, session index ---------------------------------------
    n_sessions = sessions["customer"].shape[0]
    arrival_ids = _ids("arr_", np.arange(n_sessions), 9)
    arrivals = pa.table(
        {
            "arrival_id": arrival_ids,
            "ts_utc": _ts(sessions["start"]),
            "session_id": session_ids,
            "customer_id": _ids("cus_", sessions["customer"], 8),
            "device_id": _ids("dev_", sessions["device"], 9),
            "channel": _names(CHANNELS, sessions["channel"]),
            "ip_country": _names(COUNTRIES, sessions["ip_country"]),
        }
    )
    # Entities seen at each arrival: the customer, account and device at session start; the card
    # and merchant of each flow at the flow's start.
    ent_arrival = np.concatenate([np.tile(np.arange(n_sessions), 3), flows["session"], flows["session"]])
    ent_type = np.concatenate(
        [np.repeat([0, 1, 2], n_sessions), np.full(flows["session"].shape[0], 3), np.full(flows["session"].shape[0], 4)]
    )
    ent_ts = np.concatenate([np.tile(sessions["start"], 3), flows["start"], flows["start"]])
    ent_id = pa.concat_arrays(
        [
            _ids("cus_", sessions["customer"], 8),
            _ids("acc_", sessions["customer"], 8),
            _ids("dev_", sessions["device"], 9),
            _ids("crd_", flows["card"], 9),
            _ids("mer_", flows["merchant"], 7),
        ]
    )
    entities = pa.table(
        {
            "arrival_id": pc.take(arrival_ids, pa.array(ent_arrival, type=pa.int64())),
            "ts_utc": _ts(ent_ts),
            "entity_type": _names(("customer", "account", "device", "card", "merchant"), ent_type),
            "entity_id": ent_id,
        }
    )

    last_event = np.full(n_sessions, -1, dtype=np.int64)
    np.maximum.at(last_event, flows["session"][ev_flow], events["ts"])
    flow_count = np.bincount(flows["session"], minlength=n_sessions)
    session_index = pa.table(
        {
            "session_id": session_ids,
            "session_start_utc": _ts(sessions["start"]),
            "session_end_utc": _ts(np.maximum(last_event, sessions["start"])),
            "customer_id": _ids("cus_", sessions["customer"], 8),
            "device_id": _ids("dev_", sessions["device"], 9),
            "channel": _names(CHANNELS, sessions["channel"]),
            "ip_country": _names(COUNTRIES, sessions["ip_country"]),
            "flow_count": pa.array(flow_count, type=pa.int32()),
        }
    )

    # ---- truth -----------------------------------------------------------------------------
    pattern = flows["pattern"]
    is_fraud = pattern > 0
    event_labels = pa.table(
        {
            "flow_id": pc.take(flow_ids, ev_flow_pa),
            "event_seq": pa.array(events["seq"], type=pa.int32()),
            "ts_utc": _ts(events["ts"]),
            "is_fraud": pa.array(is_fraud[ev_flow]),
            "fraud_pattern": _names(PATTERNS, pattern[ev_flow]),
        }
    )
    flow_truth = pa.table(
        {
            "flow_id": flow_ids,
            "is_fraud": pa.array(is_fraud),
            "fraud_pattern": _names(PATTERNS, pattern),
            "session_id": pc.take(session_ids, f_session),
            "first_event_utc": _ts(flows["start"]),
        }
    )
    # The bank's view: most fraud is reported (chargeback) after a delay, some is never noticed,
    # and a few legitimate flows are disputed anyway. It is deliberately not the truth.
    n_flows = pattern.shape[0]
    roll = bank_rng.random(n_flows)
    delay_hours = np.round(bank_rng.gamma(2.0, 72.0, size=n_flows), 1)
    reported = np.where(is_fraud, roll < 0.85, roll < 0.004)
    label = np.where(is_fraud & reported, 0, np.where(reported, 1, 2))
    reported_at = flows["start"] + (delay_hours * HOUR).astype(np.int64)
    bank_view = pa.table(
        {
            "flow_id": flow_ids,
            "bank_label": _names(("FRAUD_CONFIRMED", "CUSTOMER_DISPUTE", "NO_CLAIM"), label),
            "is_fraud_bank_view": pa.array(is_fraud & reported),
            "reported_at_utc": pc.if_else(pa.array(reported), _ts(reported_at), pa.scalar(None, type=TS)),
            "detection_delay_hours": pc.if_else(pa.array(reported), pa.array(delay_hours), pa.scalar(None, type=pa.float64())),
        }
    )

    return {
        "s2_event_stream_baseline_6B": traffic.filter(base_mask),
        "s3_event_stream_with_fraud_6B": traffic,
        "arrival_events_5B": arrivals,
        "s1_arrival_entities_6B": entities,
        "s2_flow_anchor_baseline_6B": anchors.slice(0, n_base),
        "s3_flow_anchor_with_fraud_6B": anchors,
        "s1_session_index_6B": session_index,
        "s4_event_labels_6B": event_labels,
        "s4_flow_truth_labels_6B": flow_truth,
        "s4_flow_bank_view_6B": bank_view,
    }
