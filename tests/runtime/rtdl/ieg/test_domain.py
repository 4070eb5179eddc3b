"""IEG: entities and edges with first/last seen, point-in-time queries, reconciliation."""

from __future__ import annotations

import pytest

from runtime.rtdl.events import RtdlPayloadInvalid
from runtime.rtdl.ieg.domain import IegState
from tests.runtime.rtdl.envelopes import SECOND, T0, anchor, arrival, arrival_entity, traffic


def test_customers_devices_and_cards_are_linked_from_flows_and_arrivals():
    g = IegState()
    g.apply(arrival(0, customer="cus_1", device="dev_home"))
    g.apply(anchor(10, customer="cus_1", device="dev_new", card="crd_1"))
    g.apply(traffic(20, customer="cus_2", device="dev_new", card="crd_2", account="acc_2"))
    assert g.devices_of_customer("cus_1") == ["dev_home", "dev_new"]
    assert g.customers_of_device("dev_new") == ["cus_1", "cus_2"]
    assert g.cards_of_device("dev_new") == ["crd_1", "crd_2"]


def test_point_in_time_queries_see_only_edges_first_seen_strictly_before_the_event():
    g = IegState()
    first = traffic(10, customer="cus_1", device="dev_x")
    second = traffic(20, customer="cus_2", device="dev_x", account="acc_2", card="crd_2")
    g.apply(second)
    g.apply(first)
    assert g.customers_of_device("dev_x", as_of=(T0 + 20 * SECOND, second["event_id"])) == ["cus_1"]
    assert g.customers_of_device("dev_x", as_of=(T0 + 10 * SECOND, first["event_id"])) == []


def test_distinct_senders_per_p2p_collector():
    g = IegState()
    for i in range(3):
        g.apply(traffic(i, channel="p2p", account=f"acc_{i}", customer=f"cus_{i}", card=f"crd_{i}", merchant="mer_mule"))
    g.apply(traffic(9, channel="p2p", account="acc_0", customer="cus_0", card="crd_0", merchant="mer_mule"))
    g.apply(traffic(9, channel="web", account="acc_9", customer="cus_9", card="crd_9", merchant="mer_mule"))
    assert g.senders_of_collector("mer_mule") == ["acc_0", "acc_1", "acc_2"]


def test_first_and_last_seen_are_a_min_max_merge_whatever_the_order_and_redelivery():
    events = [traffic(s) for s in (30, 10, 20)]
    a, b = IegState(), IegState()
    for env in events:
        a.apply(env)
    for env in [*reversed(events), events[0], events[1]]:
        b.apply(env)
    assert sorted(map(str, a.canonical_rows())) == sorted(map(str, b.canonical_rows()))
    assert a.first_seen("card", "crd_1") == (T0 + 10 * SECOND, events[1]["event_id"])
    assert a.entities[("card", "crd_1")].last == (T0 + 30 * SECOND, events[0]["event_id"])


def test_reconciliation_explains_every_entity_and_edge_write_per_class():
    g = IegState()
    g.apply(arrival(0))
    g.apply(arrival_entity(0, "customer", "cus_1"))
    g.apply(arrival_entity(0, "card", "crd_1"))
    g.apply(anchor(1))
    g.apply(traffic(2, channel="p2p"))
    rec = g.reconciliation()
    assert rec["status"] == "PASS" and rec["unexplained"] == []
    assert rec["records_in"] == 5
    assert rec["per_class"]["context_arrival_entities"] == {"records_in": 2, "entity_writes": 4, "edge_writes": 2}
    assert rec["per_class"]["traffic_fraud"] == {"records_in": 1, "entity_writes": 5, "edge_writes": 7}
    assert rec["entities_by_kind"]["arrival"] == 1 and rec["edges"] == len(g.edges)


def test_reconciliation_flags_writes_a_class_does_not_explain():
    g = IegState()
    g.apply(anchor(1))
    g.per_class["context_flow_anchor_fraud"].edge_writes += 3  # a half-applied or double-applied record
    rec = g.reconciliation()
    assert rec["status"] == "FAIL" and rec["unexplained"] == ["context_flow_anchor_fraud"]


def test_an_arrival_entity_of_an_unknown_kind_is_rejected_and_counted():
    g = IegState()
    with pytest.raises(RtdlPayloadInvalid, match="entity_type"):
        g.apply(arrival_entity(0, "planet", "earth"))
    assert g.reconciliation()["records_rejected"] == 1 and not g.entities


def test_a_batch_merged_without_the_adjacency_index_holds_the_same_entities_edges_and_counts():
    events = [traffic(s) for s in (30, 10, 20)] + [arrival(5), arrival_entity(6, "card", "crd_1")]
    indexed, bare = IegState(), IegState(track_adjacency=False)
    for env in events:
        indexed.apply(env)
        bare.apply(env)
    assert list(bare.canonical_rows()) == list(indexed.canonical_rows())
    assert bare.reconciliation() == indexed.reconciliation()
    assert bare.adjacency == {} and indexed.adjacency
