"""P10 evidence: the case and labels plane committed the run's case and label truth, read from durable state only.

The job (`python -m runtime case committed`) waits, bounded and with progress, until:
- each plane consumer group (case_trigger, cm, ls) made durable every record of the run the
  platform published on its input topics (the run's published outbox rows: DF's decisions and
  DLA's audit records for CaseTrigger, CaseTrigger's triggers for CM), and no such row is left
  unpublished;
- CaseTrigger holds no decision waiting for its audit record, and every published trigger's
  subject has its case with that trigger's evidence attached (cases missing == 0);
- case_trigger, cm and ls report GREEN health.
Then it requires triggers on the case topic and label assertions for the run, and dead letters
that are 0 or explained (a record from outside the plane's producers refused at its boundary),
and writes `case_labels/case_summary.json` and `case_labels/label_summary.json`. Any failure is a
code naming what broke and the operator's next step; nothing PASS-looking is written then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.case.figures import COMPONENTS, CaseLabelsState, case_labels_state
from runtime.components import consumer_group_id
from runtime.errors import PlatformError
from runtime.evidence.gate_wait import LOOK_DUTY, StallBound
from runtime.evidence.writer import EvidenceWriter, WrittenEvidence, run_bundle
from runtime.pacing import pause_after
from runtime.rtdl.caught_up import Observation, Target, input_topics, observe
from runtime.settings import Settings

Progress = Callable[[str], None]

#: Dead-letter codes that explain themselves: a record that did not come from the plane's own
#: producers (a forged trigger, a label from a source not allowed, for an event the run never
#: admitted, or malformed), refused at the boundary with nothing written. Any other code is a
#: platform fault and fails the gate.
EXPLAINED_DEAD_LETTER_CODES: frozenset[str] = frozenset({
    "CASE_TRIGGER_UNKNOWN", "LABEL_SOURCE_NOT_ALLOWED", "LABEL_SUBJECT_UNKNOWN", "LABEL_INVALID"})
#: The health summary of each file: case side (CaseTrigger, CM), label side (LS).
CASE_SIDE = ("case_trigger", "cm")
LABEL_SIDE = ("ls",)
_WORST = ("MISSING", "RED", "AMBER", "GREEN")


class CaseLabelsNotCommitted(PlatformError):
    """The plane did not commit the run's case and label truth within the wait."""

    code = "CASE_LABELS_NOT_CAUGHT_UP"
    next_step = "read the case_labels pack logs and `fp status` (component health), then rerun P10 (--from P10)"


@dataclass
class PlaneObservation:
    """What the durable state says about the plane at one moment."""

    seen: Observation
    state: CaseLabelsState
    #: component -> outbox rows of the run, on a plane input topic, not yet published.
    unpublished: dict[str, int]
    #: component -> reason code -> dead letters of the run.
    dead_by_code: dict[str, dict[str, int]]
    #: (code, reason) pairs, in the order the gate reports them.
    reasons: list[tuple[str, str]] = field(default_factory=list)

    def mark(self) -> tuple[int, ...]:
        """What the plane has done so far (positions, the run's published records, the outbox still
        to publish), for the gate's stall bound."""
        return (*self.seen.mark(), sum(self.unpublished.values()))

    def health_state(self, component: str) -> str:
        """The component's last health state (MISSING without a health document)."""
        doc = self.seen.health.get(component)
        return str(doc.get("health_state")) if doc else "MISSING"

    def unexplained_dead_letters(self) -> int:
        """Dead letters whose code is not a refusal of outside input."""
        return sum(n for codes in self.dead_by_code.values() for code, n in codes.items() if code not in EXPLAINED_DEAD_LETTER_CODES)

    def judge(self, groups: dict[str, str]) -> bool:
        """True when caught up, complete and GREEN; `reasons` say why not (each with its code)."""
        reasons: list[tuple[str, str]] = []
        for component, group in groups.items():
            behind = sum(self.seen.lag(group, t) for t in self.seen.covered(group))
            if behind:
                reasons.append(("CASE_LABELS_NOT_CAUGHT_UP", f"{component}: {behind} record(s) of the run not yet durable"))
        for component, n in sorted(self.unpublished.items()):
            if n:
                reasons.append(("CASE_LABELS_NOT_CAUGHT_UP", f"{component}: {n} outbox record(s) of the run not yet published"))
        if self.state.triggers.awaiting_audit:
            reasons.append(("CASE_LABELS_AUDIT_MISSING",
                            f"case_trigger: {self.state.triggers.awaiting_audit} decision(s) wait for DLA's audit record"))
        if self.state.cases_missing or self.state.triggers_unattached:
            reasons.append(("CASE_LABELS_CASES_MISSING",
                            f"cm: {len(self.state.cases_missing)} triggered subject(s) without a case, "
                            f"{self.state.triggers_unattached} trigger(s) not attached"
                            + (f" (e.g. {', '.join(self.state.cases_missing[:3])})" if self.state.cases_missing else "")))
        for component in groups:
            state = self.health_state(component)
            if state != "GREEN":
                doc = self.seen.health.get(component)
                why = "; ".join(doc.get("reasons", [])) if doc else "no last_health.json"
                reasons.append(("CASE_LABELS_UNHEALTHY", f"{component}: health {state} ({why})"[:300]))
        self.reasons = reasons
        return not reasons

    def worst(self, components: tuple[str, ...]) -> str:
        """The worst health state among `components`."""
        return min((self.health_state(c) for c in components), key=lambda s: _WORST.index(s) if s in _WORST else 0)


def plane_targets(conn: Any, platform_run_id: str, topics: set[str]) -> list[Target]:
    """Per partition of the plane's input topics, the run's published records (the outbox eb_refs of
    every producer of the run: DF, DLA, CaseTrigger, ...)."""
    if not topics:
        return []
    rows = conn.execute(
        "SELECT topic, eb_ref->>'partition', min((eb_ref->>'offset')::numeric), max((eb_ref->>'offset')::numeric)"
        " FROM worker_outbox WHERE platform_run_id = %s AND topic = ANY(%s) AND published_at IS NOT NULL"
        " AND eb_ref IS NOT NULL GROUP BY 1, 2", (platform_run_id, sorted(topics))).fetchall()
    return sorted((Target(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows), key=lambda t: (t.topic, t.partition))


def unpublished(conn: Any, platform_run_id: str, topics: set[str]) -> dict[str, int]:
    """Outbox rows of the run on the plane's input topics not yet on the bus, per producing component."""
    rows = conn.execute("SELECT component, count(*) FROM worker_outbox WHERE platform_run_id = %s AND topic = ANY(%s)"
                        " AND published_at IS NULL GROUP BY 1", (platform_run_id, sorted(topics))).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def dead_letters_by_code(conn: Any, platform_run_id: str) -> dict[str, dict[str, int]]:
    """The plane's dead letters of the run by component and reason code."""
    rows = conn.execute("SELECT component, reason_code, count(*) FROM worker_dead_letters WHERE platform_run_id = %s"
                        " AND component = ANY(%s) GROUP BY 1, 2 ORDER BY 1, 2", (platform_run_id, list(COMPONENTS))).fetchall()
    out: dict[str, dict[str, int]] = {}
    for component, code, n in rows:
        out.setdefault(str(component), {})[str(code)] = int(n)
    return out


def observe_plane(settings: Settings, conn: Any, platform_run_id: str, groups: dict[str, str],
                  topics: dict[str, set[str]]) -> PlaneObservation:
    """Positions, health, the trigger join, cases and dead letters of the plane, now."""
    every_topic = set().union(*topics.values()) if topics else set()
    seen = observe(settings, conn, platform_run_id, groups, plane_targets(conn, platform_run_id, every_topic), topics)
    return PlaneObservation(seen, case_labels_state(conn, platform_run_id), unpublished(conn, platform_run_id, every_topic),
                            dead_letters_by_code(conn, platform_run_id))


def write_committed(settings: Settings, platform_run_id: str, *, wait_s: float = 600.0, poll_s: float = 2.0,
                    progress: Progress = print, sleep: Callable[[float], None] = time.sleep) -> list[WrittenEvidence]:
    """Wait until the plane committed the run (failing once it stood still for `wait_s`, with
    progress), gate it, write both P10 files."""
    from runtime.db.postgres import Database

    registry = settings.registry
    if not settings.db_dsn:
        raise PlatformError("P10 reads the case and label stores from PostgreSQL but no DSN is set", code="DB_DSN_MISSING",
                            next_step="set FP_DB_DSN")
    groups = {c: consumer_group_id(registry, c, platform_run_id) for c in COMPONENTS}
    topics = input_topics(settings, platform_run_id, groups)
    bound = StallBound(wait_s)
    with Database(settings.db_dsn, name="case committed", max_size=1) as db:
        while True:
            began = time.monotonic()
            with db.transaction() as conn:
                seen = observe_plane(settings, conn, platform_run_id, groups, topics)
            if seen.unexplained_dead_letters():
                raise _dead_letters(seen)
            if seen.judge(groups):
                break
            left = bound.left(seen.mark())
            if left <= 0:
                code = next(c for c in FAILURE_PRIORITY if any(c == r for r, _ in seen.reasons))
                raise CaseLabelsNotCommitted(f"not committed, {bound.describe()}: " + "; ".join(r for _, r in seen.reasons)[:1500],
                                             code=code, next_step=NEXT_STEPS.get(code, CaseLabelsNotCommitted.next_step))
            progress(f"P10 waiting ({left:.0f}s left without progress): " + "; ".join(r for _, r in seen.reasons)[:300])
            sleep(min(pause_after(time.monotonic() - began, poll_s, LOOK_DUTY), left))
    _require_truth(seen)
    return _write(EvidenceWriter(registry, platform_run_id, [run_bundle(settings, platform_run_id)]), seen, groups)


#: When the wait ends, the code that names what broke: the missing truth first, then its likely cause.
FAILURE_PRIORITY = ("CASE_LABELS_CASES_MISSING", "CASE_LABELS_AUDIT_MISSING", "CASE_LABELS_UNHEALTHY",
                    "CASE_LABELS_NOT_CAUGHT_UP")
#: The operator's next step per failure code.
NEXT_STEPS: dict[str, str] = {
    "CASE_LABELS_NOT_CAUGHT_UP": "the case_labels pack is behind or stopped: check `fp status` and its logs, then rerun P10",
    "CASE_LABELS_AUDIT_MISSING": "DLA did not record some decisions: check the decision lane (P9, DLA's health and dead letters)",
    "CASE_LABELS_CASES_MISSING": "CM has triggers without cases: check cm's health, logs and dead letters, then rerun P10",
    "CASE_LABELS_UNHEALTHY": "read the component's last_health.json reasons and its logs; fix it and rerun P10",
    "CASE_LABELS_DEAD_LETTERS": "read worker_dead_letters of the plane (reason_code, value_excerpt); a platform fault needs a fix "
                                "and a fresh run",
    "CASE_LABELS_NO_TRIGGERS": "no decision of the run needed a case: run a larger gate, or check DF's outcomes (P9's "
                               "decision_summary) and the trigger policy",
    "CASE_LABELS_NO_LABELS": "run the LS bank view intake (`python -m runtime ls ingest-bank-view`) and read its report "
                             "(not_in_run, no_claim), or run a larger gate",
}


def _dead_letters(seen: PlaneObservation) -> CaseLabelsNotCommitted:
    codes = ", ".join(f"{component} {c}={n}" for component, by_code in seen.dead_by_code.items()
                      for c, n in by_code.items() if c not in EXPLAINED_DEAD_LETTER_CODES)
    return CaseLabelsNotCommitted(f"{seen.unexplained_dead_letters()} unexplained dead letter(s) in the case plane ({codes})",
                                  code="CASE_LABELS_DEAD_LETTERS", next_step=NEXT_STEPS["CASE_LABELS_DEAD_LETTERS"])


def _require_truth(seen: PlaneObservation) -> None:
    """Caught up is not enough: the run must hold triggers and label assertions."""
    if seen.state.triggers.triggers_published == 0:
        raise CaseLabelsNotCommitted("no case trigger of the run on the case topic (case_triggers is empty)",
                                     code="CASE_LABELS_NO_TRIGGERS", next_step=NEXT_STEPS["CASE_LABELS_NO_TRIGGERS"])
    if seen.state.label_summary["counts"]["assertions_appended"] == 0:
        raise CaseLabelsNotCommitted("no label assertion of the run in ls_label_assertions",
                                     code="CASE_LABELS_NO_LABELS", next_step=NEXT_STEPS["CASE_LABELS_NO_LABELS"])


def _dead_letter_doc(seen: PlaneObservation, components: tuple[str, ...]) -> dict[str, Any]:
    """Dead letters of one file's components: total, explained (refused outside input), by component and code."""
    by_code: dict[str, int] = {}
    for component in components:
        for code, n in seen.dead_by_code.get(component, {}).items():
            by_code[code] = by_code.get(code, 0) + n
    return {"total": sum(by_code.values()), "explained": sum(n for c, n in by_code.items() if c in EXPLAINED_DEAD_LETTER_CODES),
            "by_component": {c: sum(seen.dead_by_code.get(c, {}).values()) for c in components}, "by_code": by_code}


def _write(writer: EvidenceWriter, seen: PlaneObservation, groups: dict[str, str]) -> list[WrittenEvidence]:
    state = seen.state
    sources = ["CASE_EVIDENCE_PATH_PATTERN", "CASE_SUBJECT_KEY_FIELDS", "CONSUMER_GROUP_ID_PATTERN", "PACKS",
               "COMPONENT_HEALTH_PATH_PATTERN"]
    triggers = state.triggers
    case_doc = {
        **writer.base_fields("P10", sources),
        **state.case_summary,
        "health": seen.worst(CASE_SIDE),
        "health_by_component": {c: seen.health_state(c) for c in CASE_SIDE},
        "trigger_join": {"decisions_needing_case": triggers.decisions_needing_case, "audit_refs": triggers.audit_refs,
                         "awaiting_audit": triggers.awaiting_audit},
        "cases_missing": len(state.cases_missing),
        "triggers_unattached": state.triggers_unattached,
        "dead_letters": _dead_letter_doc(seen, CASE_SIDE),
        "consumer_groups": {c: groups[c] for c in CASE_SIDE},
    }
    label_doc = {
        **writer.base_fields("P10", ["LABEL_EVIDENCE_PATH_PATTERN", "LABEL_SUBJECT_KEY_FIELDS", "CONSUMER_GROUP_ID_PATTERN",
                                     "COMPONENT_HEALTH_PATH_PATTERN"]),
        **state.label_summary,
        "health": seen.worst(LABEL_SIDE),
        "dead_letters": _dead_letter_doc(seen, LABEL_SIDE),
        "consumer_groups": {c: groups[c] for c in LABEL_SIDE},
    }
    return [writer.write("CASE_EVIDENCE_PATH_PATTERN", case_doc), writer.write("LABEL_EVIDENCE_PATH_PATTERN", label_doc)]
