"""LS's bank view intake: the oracle's `s4_flow_bank_view_6B` -> label assertions, through LS's writer.

The job (`python -m runtime ls ingest-bank-view --platform-run-id ...`) reads two stream views the
oracle lane sorted for the run (runtime/wsp/views.py): the bank view, and the traffic outputs, to
know which events belong to each flow. Only the events IG admitted in the run (ADMIT receipts in
`ig_receipts`) are labelled, with WSP's deterministic event ids (`event_id(output_id, row)`),
so a subject always names an event the platform saw. Each FRAUD_CONFIRMED row becomes a
`bank_view`/`fraud` assertion and each CUSTOMER_DISPUTE a `dispute`/`disputed` one on every
admitted event of its flow, observed at the bank's report time and effective at the event
(runtime/case/ls/domain.py `bank_view_assertions`). The appends are idempotent: running the job
again, or after a crash half-way, appends only what is missing.

This module and `domain.bank_view_assertions` are the only code that reads an oracle truth view.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.case.ls.domain import FlowEvent, bank_view_assertions
from runtime.case.ls.store import append_assertions
from runtime.contracts.ids import event_id
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError
from runtime.store.port import ObjectStore
from runtime.wsp.views import StreamView, StreamViewMissing

BANK_VIEW_OUTPUT = "s4_flow_bank_view_6B"
#: The sources the bank view intake may assert (case_closure comes from CM only).
BANK_VIEW_SOURCES = ("bank_view", "dispute")
#: Assertions appended per transaction (a crash loses at most one chunk's work, redone on rerun).
CHUNK = 2000


class NothingAdmitted(PlatformError):
    """The run has no admitted traffic: there is nothing a bank label could be about."""

    code = "LS_INTAKE_NO_ADMITTED_TRAFFIC"
    next_step = "run the bank view intake after P7 (IG admitted the run's traffic); check --platform-run-id"


@dataclass
class IntakeReport:
    """What one bank view intake did."""

    platform_run_id: str
    bank_rows: int = 0
    admitted_traffic_events: int = 0
    flows_with_admitted_events: int = 0
    assertions: int = 0
    appended: int = 0
    already_held: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON form (what the job prints)."""
        return {**{k: v for k, v in self.__dict__.items() if not isinstance(v, Counter)},
                "by_source": dict(sorted(self.by_source.items())), "skipped": dict(sorted(self.skipped.items()))}


def traffic_outputs(registry: Registry) -> dict[str, str]:
    """event class -> oracle output id of every traffic class (EVENT_CLASS_MAP)."""
    mapping: Mapping[str, Mapping[str, str]] = registry.value("EVENT_CLASS_MAP")
    return {cls: str(v["output_id"]) for cls, v in mapping.items() if cls.startswith("traffic")}


def admitted_ids(conn: Any, platform_run_id: str, event_class: str) -> set[str]:
    """Event ids of `event_class` IG admitted in the run."""
    rows = conn.execute("SELECT event_id FROM ig_receipts WHERE platform_run_id = %s AND event_class = %s"
                        " AND outcome = 'ADMIT'", (platform_run_id, event_class)).fetchall()
    return {str(r[0]) for r in rows}


def flow_events(rows: Iterable[Mapping[str, Any]], output_id: str, admitted: set[str],
                into: dict[str, list[FlowEvent]]) -> int:
    """Add the admitted events of traffic `rows` to their flows; returns how many were admitted."""
    n = 0
    for row in rows:
        eid = event_id(output_id, dict(row))
        if eid in admitted:
            into[str(row["flow_id"])].append(FlowEvent(eid, str(row["ts_utc"])))
            n += 1
    return n


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def ingest_bank_view(db: Any, oracle: ObjectStore, registry: Registry, platform_run_id: str) -> IntakeReport:
    """Read the run's bank view and traffic views, append the label assertions through LS's writer."""
    report = IntakeReport(platform_run_id)
    flows: dict[str, list[FlowEvent]] = defaultdict(list)
    for event_class, output_id in sorted(traffic_outputs(registry).items()):
        with db.transaction() as conn:
            admitted = admitted_ids(conn, platform_run_id, event_class)
        if not admitted:
            continue
        try:
            rows = StreamView(registry, oracle, platform_run_id, output_id).rows()
            report.admitted_traffic_events += flow_events(rows, output_id, admitted, flows)
        except StreamViewMissing as e:
            raise StreamViewMissing(f"{len(admitted)} {event_class} events were admitted but their stream view is "
                                    f"missing: {e.message}") from e
    if not report.admitted_traffic_events:
        raise NothingAdmitted(f"no admitted traffic event of {platform_run_id} is in the oracle's traffic views")
    report.flows_with_admitted_events = len(flows)
    bank_rows = list(StreamView(registry, oracle, platform_run_id, BANK_VIEW_OUTPUT).rows())
    report.bank_rows = len(bank_rows)
    result = bank_view_assertions(bank_rows, flows, platform_run_id, allowed_sources=BANK_VIEW_SOURCES)
    report.assertions = len(result.assertions)
    report.skipped.update(result.skipped)
    report.by_source.update(a.source for a in result.assertions)
    for chunk in _chunks(result.assertions, CHUNK):
        with db.transaction() as conn:
            done = append_assertions(conn, chunk, allowed_sources=BANK_VIEW_SOURCES)
        report.appended += done.appended
        report.already_held += done.already_held
    return report
