"""Phases whose platform components are not built yet: they fail closed and name what is missing.

A phase here never writes PASS. When its component lands, its own module replaces the entry in
`controller.phases.machine.PHASES`.
"""

from __future__ import annotations

from controller.phases.base import Phase, PhaseNotBuilt, PhaseOutcome, RunContext


class NotBuiltPhase(Phase):
    """A phase that cannot do its job yet."""

    def __init__(self, phase_id: str, name: str, missing: str):
        self.phase_id = phase_id
        self.name = name
        self.missing = missing

    def run(self, ctx: RunContext) -> PhaseOutcome:
        """Refuse: the component is missing."""
        raise PhaseNotBuilt(f"{self.phase_id} {self.name} needs {self.missing}, which this repository does not build yet",
                            next_step=f"run a bounded slice that stops before {self.phase_id} (e.g. --to P{int(self.phase_id[1:]) - 1})")
