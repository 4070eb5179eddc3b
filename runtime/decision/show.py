"""One decision's whole chain as an operator reads it: plain text that fits 80 columns.

`decision show` prints this (or the JSON document with `--json`): the admitted event (its eb_ref
on the traffic topic and IG's receipt), the decision with each reason that fired and the feature
values behind it, the posture and degrade reasons, the intents, the outcomes AL executed, and
where each record sits in the audit chain (batch, position, object key). Pure: no I/O.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

WIDTH = 80


def _ref(eb_ref: Mapping[str, Any] | None) -> str:
    if not eb_ref:
        return "(none)"
    return f"{eb_ref.get('topic')}[{eb_ref.get('partition')}] @ {eb_ref.get('offset')} ({eb_ref.get('offset_kind')})"


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ", break_long_words=True,
                         break_on_hyphens=False) or [indent]


def _value(v: Any) -> str:
    return json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)


def render_chain(chain: Mapping[str, Any], receipt: Mapping[str, Any] | None = None) -> str:
    """The chain `dla.store.decision_chain` returns, as lines no wider than 80 columns."""
    decision = chain["decision"]
    event = chain["admitted_event"]
    lines: list[str] = []
    add = lines.extend
    add(_wrap(f"decision {decision['decision_id']}", ""))
    add(_wrap(f"outcome {decision['outcome']} (score {decision['score']}, score alone: {decision['score_outcome']})", "  "))
    mark = f", {decision['posture_mark']}" if decision.get("posture_mark") else ""
    floor = f", floor {decision['outcome_floor']}" if decision.get("outcome_floor") else ""
    add(_wrap(f"posture {decision['posture']}{mark}{floor}", "  "))
    policy = decision.get("policy") or {}
    add(_wrap(f"policy {policy.get('policy_id')} v{policy.get('version')} {policy.get('digest')}", "  "))
    add(["", "admitted event"])
    add(_wrap(f"{event['event_class']} {event['event_id']} at {decision.get('event_ts_utc')}", "  "))
    add(_wrap(f"eb_ref {_ref(event.get('eb_ref'))}", "  "))
    provenance = decision.get("provenance") or {}
    receipt_line = f"receipt {event.get('receipt_id') or '(none)'}"
    if receipt:
        receipt_line += f" {receipt.get('outcome')} (IG batch {receipt.get('batch_key')}#{receipt.get('batch_index')})"
    add(_wrap(receipt_line, "  "))
    add(_wrap(f"admitted {provenance.get('admitted_at_utc')}, decided {provenance.get('decided_at_utc')}", "  "))
    subject = decision.get("subject") or {}
    add(_wrap("subject " + ", ".join(f"{k}={v}" for k, v in sorted(subject.items()) if v), "  "))
    reasons: Sequence[Mapping[str, Any]] = chain.get("reasons") or ()
    add(["", f"reasons that fired ({len(reasons)})"])
    for r in reasons:
        add(_wrap(f"{r.get('code')} (rule {r.get('rule_id')}, weight {r.get('weight')})", "  "))
        for signal, v in sorted((r.get("values") or {}).items()):
            add(_wrap(f"{signal} = {_value(v)}", "    "))
    if not reasons:
        add(["  (none)"])
    degrade = decision.get("degrade_reasons") or ()
    if degrade:
        add(["", "degrade reasons"])
        for d in degrade:
            add(_wrap(f"{d.get('code')} ({d.get('input')}): {d.get('detail')}", "  "))
    intents = chain.get("intents") or ()
    add(["", f"intents ({len(intents)})"])
    for i in intents:
        add(_wrap(f"{i.get('action_type')} {i.get('intent_id')}", "  "))
    outcomes = chain.get("outcomes") or ()
    add(["", f"outcomes ({len(outcomes)})"])
    for o in outcomes:
        add(_wrap(f"{o.get('action_type')} {o.get('status')} {o.get('outcome_id')}", "  "))
        add(_wrap("effect " + _value(o.get("effect")), "    "))
    audit = chain.get("audit") or ()
    add(["", f"audit records ({len(audit)})"])
    for a in audit:
        add(_wrap(f"{a['kind']} {a['record_id']} batch {a['batch_seq']} #{a['batch_position']}", "  "))
        add(_wrap(f"object {a['object_key']}", "    "))
        add(_wrap(f"sha256 {a['record_sha256']}", "    "))
    return "\n".join(lines)


def render_verdict(platform_run_id: str, ok: bool, batches: int, problems: Sequence[Mapping[str, Any]]) -> str:
    """The audit verification of a run, one problem per line."""
    head = f"audit chain of {platform_run_id}: {batches} batch(es), " + ("verified" if ok else f"{len(problems)} problem(s)")
    lines = _wrap(head, "")
    for p in problems:
        lines.extend(_wrap(f"{p.get('code')} batch {p.get('batch_seq', '?')}: {p.get('detail', '')}", "  "))
    return "\n".join(lines)
