"""The run report as one self-contained HTML file people can read: inline CSS, inline SVG charts,
no network fetch of any kind (a Content-Security-Policy forbids it), no JavaScript library.

Built from a `run_report.json` document only (so the HTML never says more than the evidence):
the header and headline numbers, a phase timeline, throughput per stage, hop-by-hop counts of the
reconciliation, decision quality (overall, per fraud pattern, per degrade posture, against the
bank's view), anomalies and cost. The one inline script only records script errors into the page
(`data-js-errors`), which the headless-browser test reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

_CSS = """
:root{--ink:#1d2430;--mute:#5b6677;--line:#d9dee7;--ok:#1f8a4c;--bad:#c0392b;--warn:#b7791f;--a:#2f6fb0;--b:#7a4fb3;--c:#d08a1c}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--ink);margin:0;background:#f6f7fa}
main{max-width:1100px;margin:0 auto;padding:24px}h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px;
border-bottom:1px solid var(--line);padding-bottom:4px}.sub{color:var(--mute)}section{background:#fff;border:1px solid var(--line);
border-radius:8px;padding:14px 18px;margin-top:16px}.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px}
.kpi{border:1px solid var(--line);border-radius:6px;padding:8px 10px}.kpi b{display:block;font-size:20px}
.kpi>span{color:var(--mute);font-size:12px}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);
font-variant-numeric:tabular-nums}th{color:var(--mute);font-weight:600}td.n,th.n{text-align:right}.badge{display:inline-block;
padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600}.PASS,.SPINE_GREEN,.ok{background:var(--ok)}
.FAIL,.FAILED,.bad{background:var(--bad)}.PARTIAL,.RUNNING,.NOT_RUN{background:var(--warn)}svg{max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:var(--ink)}.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
"""

_ERROR_PROBE = ("window.__fpErrors=0;window.addEventListener('error',function(){window.__fpErrors++;"
                "document.documentElement.setAttribute('data-js-errors',String(window.__fpErrors));});"
                "document.addEventListener('DOMContentLoaded',function(){document.documentElement.setAttribute('data-rendered','1');});")

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
_SERIES = ("var(--a)", "var(--b)", "var(--c)")


def ratio(value: Any) -> str:
    """A ratio in [0, 1] as a percentage with one decimal; `n/a` when undefined."""
    return "n/a" if not isinstance(value, int | float) else f"{100 * value:.1f}%"


def number(value: Any) -> str:
    """Counts with thousands separators, other numbers with at most two decimals."""
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return escape(str(value))


def seconds(value: Any) -> str:
    """A duration in s, min or h, whichever reads best."""
    if not isinstance(value, int | float):
        return "n/a"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def _badge(state: Any) -> str:
    text = escape(str(state))
    return f'<span class="badge {text}">{text}</span>'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 1) -> str:
    rows = list(rows)
    if not rows:
        return '<p class="sub">Nothing recorded.</p>'
    head = "".join(f'<th class="{"n" if i >= numeric_from else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"n" if i >= numeric_from else ""}">{c}</td>' for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _parse(ts: Any) -> datetime | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def phase_timeline_svg(phases: Sequence[dict[str, Any]]) -> str:
    """A Gantt chart of the phases: one bar per phase from its start to its end."""
    timed = [(p, _parse(p.get("started_at_utc")), _parse(p.get("ended_at_utc"))) for p in phases]
    starts = [s for _, s, _ in timed if s]
    ends = [e for _, _, e in timed if e]
    if not starts or not ends:
        return '<p class="sub">No phase timings recorded.</p>'
    t0, t1 = min(starts), max(ends)
    span = max((t1 - t0).total_seconds(), 1.0)
    width, left, row = 820, 70, 22
    height = row * len(timed) + 30
    parts = [f'<svg role="img" aria-label="phase timeline" viewBox="0 0 {width + left + 80} {height}" '
             f'width="{width + left + 80}" height="{height}">']
    for i, (p, s, e) in enumerate(timed):
        y = 8 + i * row
        parts.append(f'<text x="0" y="{y + 13}">{escape(str(p.get("phase_id")))}</text>')
        if s and e:
            x = left + width * (s - t0).total_seconds() / span
            w = max(2.0, width * (e - s).total_seconds() / span)
            color = "var(--ok)" if p.get("state") == "PASS" else "var(--bad)" if p.get("state") == "FAIL" else "var(--warn)"
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 6}" rx="3" fill="{color}">'
                         f'<title>{escape(str(p.get("phase_id")))}: {seconds(p.get("duration_s"))}</title></rect>')
            parts.append(f'<text x="{x + w + 4:.1f}" y="{y + 13}">{seconds(p.get("duration_s"))}</text>')
    parts.append(f'<text x="{left}" y="{height - 4}" class="sub">0 s</text>'
                 f'<text x="{left + width - 40}" y="{height - 4}">{seconds(span)}</text></svg>')
    return "".join(parts)


def bars_svg(label: str, rows: Sequence[tuple[str, Sequence[float | None]]], series: Sequence[str], *,
             scale: float | None = None, percent: bool = False) -> str:
    """Horizontal grouped bars: one group per row, one bar per series (None draws no bar)."""
    values = [v for _, vs in rows for v in vs if isinstance(v, int | float)]
    top = scale if scale is not None else max(values, default=1) or 1
    width, left, bar = 560, 230, 12
    group = bar * len(series) + 10
    height = group * len(rows) + 10
    parts = [f'<svg role="img" aria-label="{escape(label)}" viewBox="0 0 {width + left + 90} {height}" '
             f'width="{width + left + 90}" height="{height}">']
    for i, (name, vs) in enumerate(rows):
        y = 5 + i * group
        short = name if len(name) <= 34 else name[:33] + "…"
        parts.append(f'<text x="0" y="{y + bar * len(series) / 2 + 4:.1f}"><title>{escape(name)}</title>{escape(short)}</text>')
        for j, v in enumerate(vs):
            if not isinstance(v, int | float):
                continue
            w = width * v / top
            shown = ratio(v) if percent else number(v)
            parts.append(f'<rect x="{left}" y="{y + j * bar}" width="{max(w, 1):.1f}" height="{bar - 2}" fill="{_SERIES[j % 3]}">'
                         f'<title>{escape(name)} {escape(series[j])}: {shown}</title></rect>'
                         f'<text x="{left + w + 4:.1f}" y="{y + j * bar + bar - 3}">{shown}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{_SERIES[j % 3]}"></i>{escape(s)}</span>' for j, s in enumerate(series))
    return f'<div class="legend">{legend}</div>' + "".join(parts)


def _metrics_row(name: str, m: dict[str, Any]) -> list[str]:
    c = m.get("confusion") or {}
    return [escape(name), ratio(m.get("precision")), ratio(m.get("recall")), ratio(m.get("alert_rate")),
            number(m.get("count")), number(m.get("fraud")), number(m.get("flagged")),
            " / ".join(number(c.get(k)) for k in ("tp", "fp", "fn", "tn"))]


_METRIC_HEADERS = ("level", "precision", "recall", "alert rate", "items", "fraud", "flagged", "tp / fp / fn / tn")


def _quality(q: dict[str, Any]) -> str:
    if not q:
        return '<p class="sub">No decision quality recorded.</p>'
    out = [_table(_METRIC_HEADERS, [_metrics_row(level, q[level]) for level in ("flow", "event", "card") if level in q])]
    patterns = q.get("by_pattern") or {}
    if patterns:
        out.append("<h3>Per fraud pattern (each pattern against the legitimate flows)</h3>")
        out.append(bars_svg("quality per pattern", [(p, [m.get("precision"), m.get("recall"), m.get("alert_rate")])
                                                    for p, m in sorted(patterns.items())],
                            ("precision", "recall", "alert rate"), scale=1.0, percent=True))
        out.append(_table(("pattern", "precision", "recall", "alert rate", "flows", "flagged", "fraud amount", "missed",
                           "median time to detect"),
                          [[escape(p), ratio(m.get("precision")), ratio(m.get("recall")), ratio(m.get("alert_rate")),
                            number(m.get("flows")), number(m.get("flows_flagged")), number(m.get("fraud_amount")),
                            number(m.get("fraud_amount_missed")), seconds((m.get("time_to_detect") or {}).get("median_s"))]
                           for p, m in sorted(patterns.items())]))
    postures = q.get("by_posture") or {}
    if postures:
        out.append("<h3>Per degrade posture (events decided under it)</h3>")
        out.append(_table(_METRIC_HEADERS, [_metrics_row(p, m) for p, m in sorted(postures.items())]))
    cap, amounts, ttd = q.get("at_review_capacity") or {}, q.get("amounts") or {}, q.get("time_to_detect") or {}
    out.append("<h3>Review capacity, money and time</h3>")
    out.append(_table(("measure", "value"), [
        [f"precision of the top {number(cap.get('k'))} flagged events", ratio(cap.get("event_precision"))],
        [f"precision of the top {number(cap.get('k'))} flagged flows", ratio(cap.get("flow_precision"))],
        ["fraud amount", number(amounts.get("fraud_total"))],
        ["fraud amount stopped (declined)", number(amounts.get("fraud_stopped"))],
        ["fraud amount sent to review", number(amounts.get("fraud_reviewed"))],
        ["fraud amount missed", number(amounts.get("fraud_missed"))],
        ["legitimate amount declined", number(amounts.get("legit_declined"))],
        ["time to detect, flow (median / p90)", f"{seconds((ttd.get('flow') or {}).get('median_s'))} / "
                                                f"{seconds((ttd.get('flow') or {}).get('p90_s'))}"],
        ["time to detect, card (median / p90)", f"{seconds((ttd.get('card') or {}).get('median_s'))} / "
                                                f"{seconds((ttd.get('card') or {}).get('p90_s'))}"],
    ]))
    bank = q.get("bank_view") or {}
    if bank:
        out.append("<h3>Against the bank's view (what the bank alone would have known, and when)</h3>")
        rows = [_metrics_row("flow, bank labels (eventually)", bank.get("flow") or {})]
        if bank.get("flow_known_by"):
            rows.append(_metrics_row(f"flow, bank labels known by {bank.get('known_by_utc')}", bank["flow_known_by"]))
        out.append(_table(_METRIC_HEADERS, rows))
        out.append(_table(("measure", "value"), [
            ["share of true fraud flows the bank ever reports", ratio(bank.get("bank_recall_of_truth"))],
            ["bank's median time to report", seconds((bank.get("bank_time_to_report") or {}).get("median_s"))],
            ["flows flagged before the bank reported them", number(bank.get("flagged_before_bank_report"))],
        ]))
    return "".join(out)


def money(value: Any, currency: Any) -> str:
    """An amount with two decimals (four below one cent) and its currency; `not priced` when undefined."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "not priced"
    return f"{value:,.{2 if value == 0 or abs(value) >= 0.01 else 4}f} {escape(str(currency))}"


def _cost(cost: dict[str, Any]) -> str:
    """The window's total, basis and bounds, and a table of what each resource cost."""
    currency = cost.get("currency")
    budget = cost.get("in_budget_currency") or {}
    out = [f'<p><b data-cost-total="{escape(str(cost.get("total")))}">{money(cost.get("total"), currency)}</b>'
           + (f" (≈ {money(budget.get('total'), budget.get('currency'))})" if budget else "")
           + f' · {escape(str(cost.get("basis", "no cost recorded")))}</p>',
           f'<p class="sub">window {escape(str(cost.get("window_start_utc")))} → {escape(str(cost.get("window_end_utc")))}'
           + (f" ({number(cost.get('window_hours'))} h)" if cost.get("window_hours") is not None else "")
           + (f" · prices as of {escape(str(cost.get('prices_as_of')))}" if cost.get("prices_as_of") else "") + "</p>"]
    lines = cost.get("by_resource") or []
    if lines:
        out.append(_table(("resource", "basis", "per hour", "amount"),
                          [[escape(str(r.get("resource"))), escape(str(r.get("basis", ""))), money(r.get("hourly"), currency),
                            money(r.get("amount"), currency)] for r in lines], numeric_from=2))
    if cost.get("note"):
        out.append(f'<p class="sub">{escape(str(cost.get("note")))}</p>')
    return "".join(out)


def render(report: dict[str, Any]) -> str:
    """The HTML page of one run report."""
    q = report.get("decision_quality") or {}
    flow = q.get("flow") or {}
    recon = report.get("reconciliation") or {}
    hops = recon.get("hops") or []
    anomalies = report.get("anomalies") or {}
    counts = report.get("counts") or {}
    run_id = escape(str(report.get("platform_run_id")))
    kpis = [("flow precision", ratio(flow.get("precision"))), ("flow recall", ratio(flow.get("recall"))),
            ("flow alert rate", ratio(flow.get("alert_rate"))), ("reconciliation", _badge(recon.get("status", "n/a"))),
            ("anomalies", number(anomalies.get("total", sum(v for v in anomalies.values() if isinstance(v, int)))))]
    kpis += [(escape(k.replace("_", " ")), number(v)) for k, v in counts.items() if isinstance(v, int)]
    cost = report.get("cost")
    sections = [
        f'<header><h1>Run report {run_id} {_badge(report.get("status"))}</h1>'
        f'<div class="sub">scenario {escape(str(report.get("scenario_run_id")))} · {escape(str(report.get("environment")))}'
        f' · bus {escape(str(report.get("bus", "n/a")))} · gate {number(report.get("bounded_gate"))} events per output'
        f' · {escape(str(report.get("started_at_utc")))} → {escape(str(report.get("ended_at_utc")))}'
        f' · written {escape(str(report.get("written_at_utc")))}</div></header>',
        '<section><div class="kpis">' + "".join(f'<div class="kpi"><b>{v}</b><span>{k}</span></div>' for k, v in kpis)
        + "</div></section>",
        "<section><h2>Phase timeline</h2>" + phase_timeline_svg(report.get("phases") or [])
        + _table(("phase", "state", "started", "ended", "duration", "error"),
                 [[escape(str(p.get("phase_id"))), _badge(p.get("state")), escape(str(p.get("started_at_utc"))),
                   escape(str(p.get("ended_at_utc"))), seconds(p.get("duration_s")), escape(str(p.get("error_code") or ""))]
                  for p in report.get("phases") or []], numeric_from=9) + "</section>",
        "<section><h2>Throughput per stage</h2>"
        + _table(("stage", "events", "seconds", "events per second", "busiest minute", "lag at end of streaming"),
                 [[escape(str(s.get("stage"))), number(s.get("events")), number(s.get("seconds")), number(s.get("events_per_s")),
                   number(s.get("busiest_minute_events")), number(s.get("lag_at_end"))]
                  for s in report.get("throughput") or []]) + "</section>",
        f'<section><h2>Hop-by-hop counts {_badge(recon.get("status", "n/a"))}</h2>'
        + (bars_svg("hop-by-hop counts", [(str(h.get("hop")), [h.get("intended"), h.get("observed")]) for h in hops],
                    ("intended", "observed")) if hops else "")
        + _table(("hop", "intended", "observed", "difference", "reconciles"),
                 [[escape(str(h.get("hop"))), number(h.get("intended")), number(h.get("observed")),
                   number((h.get("intended") or 0) - (h.get("observed") or 0)) if isinstance(h.get("intended"), int)
                   and isinstance(h.get("observed"), int) else "n/a",
                   _badge("ok" if h.get("ok") else "bad").replace(">ok<", ">yes<").replace(">bad<", ">no<")] for h in hops])
        + (f'<p>Failed hops: {escape(", ".join(map(str, recon.get("failed_hops") or [])))}</p>' if recon.get("failed_hops") else "")
        + "</section>",
        "<section><h2>Decision quality</h2>" + _quality(q) + "</section>",
        "<section><h2>Anomalies</h2>"
        + (bars_svg("anomalies", [(k, [v]) for k, v in anomalies.items() if k != "total" and isinstance(v, int)], ("count",))
           if anomalies else "")
        + _table(("kind", "count"), [[escape(k), number(v)] for k, v in anomalies.items()]) + "</section>",
        "<section><h2>Cost of the window</h2>" + _cost(cost if isinstance(cost, dict) else {}) + "</section>",
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Run report {run_id}</title><style>{_CSS}</style><script>{_ERROR_PROBE}</script></head>"
            f'<body><main data-platform-run-id="{run_id}">' + "".join(sections) + "</main></body></html>\n")


def write(report: dict[str, Any], path: Path) -> Path:
    """Render `report` to `path` (folders created); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(report), encoding="utf-8")
    return path
