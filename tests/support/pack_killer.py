"""The kill drills' killer: SIGKILLs a local pack's own worker processes at random moments.

Only the processes the pack's supervisor recorded for this run (by pid, from its state file) are
killed, never anything found by name; the supervisor restarts each one. Shared by the RTDL core's
and the case plane's drills (tests/e2e/test_*_kill_drill.py).
"""

from __future__ import annotations

import os
import random
import signal
import threading
from collections import Counter
from pathlib import Path

from controller.compute.local_backend import pack_paths, read_pack_state
from runtime.contracts.registry import Registry


class Killer:
    """SIGKILLs the pack's own worker processes at random moments, `kills` times each, once `flowing` is set."""

    def __init__(self, root: Path, registry: Registry, run_id: str, flowing: threading.Event, *, pack: str, kills: int,
                 seed: int = 20261129, components: list[str] | None = None):
        self.flowing, self.kills_each = flowing, kills
        self.paths = pack_paths(root, registry, pack, run_id)
        self.components = components or list(registry.mapping("PACKS")[pack])
        self.kills: Counter[str] = Counter()
        self.rng = random.Random(seed)

    def run(self, stop: threading.Event) -> None:
        """Kill until every component was killed `kills` times or `stop` is set."""
        while not stop.is_set() and not self.flowing.wait(0.2):
            pass
        while not stop.is_set() and min(self.kills[c] for c in self.components) < self.kills_each:
            stop.wait(self.rng.uniform(0.2, 1.0))
            state = read_pack_state(self.paths)
            if not state:
                continue
            alive = [p for p in state["processes"] if p.get("pid") and p["status"] == "RUNNING"
                     and p["name"] in self.components and self.kills[p["name"]] < self.kills_each]
            if alive:
                victim = self.rng.choice(alive)
                try:
                    os.kill(int(victim["pid"]), signal.SIGKILL)
                    self.kills[victim["name"]] += 1
                except ProcessLookupError:
                    pass
