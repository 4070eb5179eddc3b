"""The port between the stream worker and a component: what a handler must provide.

A handler turns a batch of decoded records into state changes (written through the connection of
the worker's transaction) and output records (returned; the worker puts them in the outbox). It
never commits, publishes or sleeps: the worker owns the transaction, the bus and the back-off.
A record it cannot process raises a PermanentError; the worker isolates and dead-letters it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from runtime.worker.records import InputRecord, OutputRecord


class StreamHandler(ABC):
    """One component's processing of its input topics."""

    #: The component's name in the component map (also its consumer group's middle part).
    component: str
    #: Whether DF waits on this component's state or is DF itself: its consumer then asks the bus
    #: for new records promptly; the others may see them a fraction of a second later, which
    #: costs the broker far less while they are idle (runtime/bus/factory.py `consumer`).
    on_decision_path: bool = False

    @abstractmethod
    def input_topics(self) -> list[str]:
        """Topic names (resolved from the registry) the component reads."""

    @abstractmethod
    def apply(self, conn: Any, records: list[InputRecord]) -> list[OutputRecord]:
        """Write the state `records` produce through `conn` (inside the worker's transaction) and
        return the records to publish. Must be idempotent: the same record applied twice (a replay
        under a new consumer group) leaves the same state and the same output ids."""

    def counters(self) -> dict[str, int]:
        """Component counters for health (late events, join misses, ...); none by default."""
        return {}
