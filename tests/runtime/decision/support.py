"""Shared helpers of the decision-lane tests: the shipped policy, a small world in the RTDL states, one decision."""

from __future__ import annotations

from typing import Any

from runtime.decision.bundle import Policy, load_policy
from runtime.decision.df.domain import DecisionInputs, DecisionRecord, Provenance, decide
from runtime.decision.df.inputs import inputs_from_states
from runtime.rtdl.csfb.domain import CsfbState
from runtime.rtdl.ieg.domain import IegState
from runtime.rtdl.ofp.domain import OfpState
from tests.runtime.rtdl.envelopes import anchor, arrival, traffic

PROVENANCE = Provenance(eb_ref={"topic": "fp.bus.traffic.fraud.v1", "partition": 0, "offset": 41},
                        receipt_id="a" * 32, admitted_at_utc="2026-01-05T00:00:05.000000Z")


def policy() -> Policy:
    """The shipped policy bundle (checked against its pin)."""
    return load_policy()


class World:
    """OFP, IEG and CSFB states fed with hand-made records, in order."""

    def __init__(self) -> None:
        self.ofp, self.ieg, self.csfb = OfpState(), IegState(), CsfbState()

    def feed(self, *envelopes: dict[str, Any]) -> None:
        """Apply records to every state that reads them."""
        for e in envelopes:
            if e["event_class"].startswith("traffic"):
                self.ofp.apply(e)
            self.csfb.apply(e)
            self.ieg.apply(e)

    def inputs(self, envelope: dict[str, Any], provenance: Provenance = PROVENANCE) -> DecisionInputs:
        """Point-in-time inputs of `envelope`."""
        return inputs_from_states(envelope, self.ofp, self.ieg, self.csfb, provenance)


def habitual_world(*, amount: float = 20.0, events: int = 4) -> World:
    """A customer with a session, a flow and a few habitual payments on their own device."""
    w = World()
    w.feed(arrival(0), anchor(1))
    for i in range(events):
        w.feed(traffic(60 * (i + 1), amount=amount, seq=i))
    return w


def decide_one(envelope: dict[str, Any], inputs: DecisionInputs, posture: str = "GREEN", p: Policy | None = None) -> DecisionRecord:
    """decide() with the shipped policy pinned."""
    p = p or policy()
    return decide(envelope, inputs, p, posture, pinned_digest=p.digest)
