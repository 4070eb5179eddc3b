"""What P10's gate reads about a run's case and label truth, all from durable state.

`case_labels_state(conn, run)` gathers CaseTrigger's join figures, the triggered subjects that have
no case yet (or triggers not yet attached), the plane's dead letters per component, and the two
evidence bodies (`case_summary_body`, `label_summary_body` of runtime/case/summaries.py) computed
from the rows the stores read back: triggers processed, timeline events appended, cases by
status/queue/outcome, exemplar case ids, case_digest; assertions by source and label, the as-of
range, label_digest. The gate adds the common evidence fields and health and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.case.cm.store import case_summary
from runtime.case.ls.store import label_summary
from runtime.case.trigger.store import TriggerCounts, trigger_counts

#: The plane's stream-worker components (their dead letters count against the run).
COMPONENTS = ("case_trigger", "cm", "ls")


@dataclass(frozen=True)
class CaseLabelsState:
    """The durable figures of one run's case and labels plane."""

    triggers: TriggerCounts
    #: Case ids of published triggers whose case has no timeline yet (CM behind, or a trigger lost).
    cases_missing: list[str]
    #: Published triggers CM has not attached as evidence yet.
    triggers_unattached: int
    dead_letters: dict[str, int]
    case_summary: dict[str, Any]
    label_summary: dict[str, Any]

    @property
    def every_trigger_has_its_case(self) -> bool:
        """True when every published trigger's subject has one case holding that trigger's evidence."""
        return not self.cases_missing and self.triggers_unattached == 0


def dead_letters(conn: Any, run: str) -> dict[str, int]:
    """Dead letters of the plane's components for the run."""
    rows = conn.execute("SELECT component, count(*) FROM worker_dead_letters WHERE platform_run_id = %s"
                        " AND component = ANY(%s) GROUP BY component", (run, list(COMPONENTS))).fetchall()
    found = {str(r[0]): int(r[1]) for r in rows}
    return {c: found.get(c, 0) for c in COMPONENTS}


def case_labels_state(conn: Any, run: str) -> CaseLabelsState:
    """Every figure P10 needs for `run`, read in the caller's transaction."""
    counts = trigger_counts(conn, run)
    missing = [str(r[0]) for r in conn.execute(
        "SELECT DISTINCT t.case_id FROM case_triggers t WHERE t.platform_run_id = %s AND NOT EXISTS"
        " (SELECT 1 FROM cm_case_timeline e WHERE e.platform_run_id = t.platform_run_id AND e.case_id = t.case_id"
        "  AND e.kind = 'case_opened') ORDER BY 1", (run,)).fetchall()]
    unattached = conn.execute(
        "SELECT count(*) FROM case_triggers t WHERE t.platform_run_id = %s AND NOT EXISTS"
        " (SELECT 1 FROM cm_case_timeline e WHERE e.platform_run_id = t.platform_run_id AND e.case_id = t.case_id"
        "  AND e.kind = 'evidence_attached' AND e.details->>'trigger_id' = t.trigger_id)", (run,)).fetchone()
    letters = dead_letters(conn, run)
    return CaseLabelsState(
        triggers=counts, cases_missing=missing, triggers_unattached=int(unattached[0]), dead_letters=letters,
        case_summary=case_summary(conn, run, triggers_published=counts.triggers_published,
                                  dead_letters=letters["case_trigger"] + letters["cm"]),
        label_summary=label_summary(conn, run, dead_letters=letters["ls"]))
