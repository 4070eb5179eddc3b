"""The Kafka side of dev_min checks: list topics on the cluster, tell whether the cluster still answers.

Preflight needs the topic list (Kafka admin API); teardown needs to know the Confluent cluster is
gone. Both sit behind small interfaces so the orchestration can be exercised against any
Kafka-compatible broker; only this module imports confluent-kafka.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.substrate.processes import port_answers
from runtime.errors import BusUnavailable


@dataclass(frozen=True)
class KafkaAccess:
    """How to reach the cluster: bootstrap servers and the API key/secret (kept out of repr)."""

    bootstrap: str
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)


class KafkaAdmin(Protocol):
    """The one admin question preflight asks."""

    def topic_names(self) -> set[str]:
        """Every topic the cluster has; BusUnavailable when it cannot be asked."""
        ...


KafkaAdminFactory = Callable[[KafkaAccess], KafkaAdmin]


class ConfluentKafkaAdmin:
    """`KafkaAdmin` over confluent-kafka's AdminClient."""

    def __init__(self, config: dict[str, Any], timeout_s: float = 15.0):
        self._config = config
        self._timeout_s = timeout_s

    def topic_names(self) -> set[str]:
        """List topics through a metadata request (internal `__` topics left out)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        try:
            metadata = AdminClient(self._config).list_topics(timeout=self._timeout_s)
        except KafkaException as e:
            raise BusUnavailable(f"cannot list topics on {self._config.get('bootstrap.servers')}: {e}") from e
        return {name for name in metadata.topics if not name.startswith("__")}


def confluent_cloud_admin(access: KafkaAccess) -> KafkaAdmin:
    """Admin client for Confluent Cloud: SASL_SSL with the API key as user."""
    if not access.api_key or not access.api_secret:
        raise BusUnavailable("Confluent API key/secret are missing", next_step="check the SSM_CONFLUENT_* parameters")
    return ConfluentKafkaAdmin({
        "bootstrap.servers": access.bootstrap,
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": access.api_key,
        "sasl.password": access.api_secret,
    })


def plaintext_admin(access: KafkaAccess) -> KafkaAdmin:
    """Admin client for a broker without auth (a local Kafka-compatible broker)."""
    return ConfluentKafkaAdmin({"bootstrap.servers": access.bootstrap})


def bootstrap_answers(bootstrap: str, timeout_s: float = 3.0) -> bool:
    """True when any bootstrap server accepts a TCP connection.

    A deleted Confluent cluster loses its DNS name and its listener, so "no server answers" is
    how teardown confirms the cluster is gone without needing the (also deleted) API key.
    """
    for server in (s.strip() for s in bootstrap.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        if host and port.isdigit() and port_answers(host.strip("[]"), int(port), timeout=timeout_s):
            return True
    return False
