"""The Kafka consumer's settings: what every run-scoped group consumer is built with."""

from __future__ import annotations

from runtime.bus.kafka import CONSUMER_PREFETCH_KBYTES, FETCH_WAIT_MS, RELAXED_FETCH_WAIT_MS, consumer_config


def test_a_consumer_bounds_its_prefetch_queue_so_a_lagging_worker_does_not_grow_with_its_backlog() -> None:
    config = consumer_config("127.0.0.1:9092", "fp-df-run")
    assert config["queued.max.messages.kbytes"] == CONSUMER_PREFETCH_KBYTES <= 16_384
    assert (config["group.id"], config["enable.auto.commit"], config["enable.auto.offset.store"]) == ("fp-df-run", False, False)


def test_extra_settings_override_the_defaults() -> None:
    assert consumer_config("b", "g", {"queued.max.messages.kbytes": 1024})["queued.max.messages.kbytes"] == 1024


def test_a_consumer_nothing_waits_on_lets_the_broker_hold_its_idle_fetches_longer() -> None:
    prompt = consumer_config("b", "g")["fetch.wait.max.ms"]
    relaxed = consumer_config("b", "g", prompt=False)["fetch.wait.max.ms"]
    assert (prompt, relaxed) == (FETCH_WAIT_MS, RELAXED_FETCH_WAIT_MS) and relaxed >= 5 * prompt
