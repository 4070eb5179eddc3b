"""The cost model of dev_min: core per month, demo per hour, and the month the budget must cover.

Inputs are the stacks' own configuration (how many daemons, what task size, which DB class,
the demo-window hours per month from the registry) and the dated price table
`stacks/prices.yaml`. The month is core + demo hours x hourly demo + per-window jobs and logs;
above the registry budget (AWS_BUDGET_LIMIT) the estimate fails, so an operator learns it
before apply rather than from the bill. Daemon services are created idle (desired count 0) and
run only once P2 scales them, but the model charges them for the whole demo window: an upper bound.

`window_cost` prices one run's window from the same estimate (P11 puts it in the run report): each
demo-hour line for the window's hours, each core line for its share of the month, each per-window
line for its share of a demo window (DEMO_WINDOW_HOURS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError
from runtime.paths import REPO_ROOT
from stacks.config import StackConfigInvalid, core_config, demo_config

PRICES_FILE = REPO_ROOT / "stacks" / "prices.yaml"
HOURS_PER_MONTH = 730
#: The cost model needs no real commit: task size does not depend on the image tag.
_ANY_SHA = "0" * 40


class CostOverBudget(PlatformError):
    """The modelled month costs more than the registry's budget."""

    code = "COST_OVER_BUDGET"
    next_step = "shorten DEMO_WINDOW_HOURS_PER_MONTH, shrink tasks/DB, or raise AWS_BUDGET_LIMIT deliberately"


@dataclass(frozen=True)
class CostLine:
    """One priced item: what, how it is computed, and the amount (price-table currency)."""

    item: str
    basis: str
    amount: float


@dataclass(frozen=True)
class CostEstimate:
    """The whole estimate; amounts in the price table's currency, `*_budget` in the budget's."""

    core_monthly: tuple[CostLine, ...]
    demo_hourly: tuple[CostLine, ...]
    per_window: tuple[CostLine, ...]
    demo_hours_per_month: int
    windows_per_month: float
    currency: str
    budget_currency: str
    rate: float
    budget_limit: int
    as_of: str
    sources: tuple[str, ...]

    @property
    def core_total(self) -> float:
        return sum(line.amount for line in self.core_monthly)

    @property
    def demo_hour_total(self) -> float:
        return sum(line.amount for line in self.demo_hourly)

    @property
    def window_hours(self) -> float:
        """Hours of one demo window (DEMO_WINDOW_HOURS), which the per-window lines are for."""
        return self.demo_hours_per_month / self.windows_per_month

    @property
    def month_total(self) -> float:
        windows = sum(line.amount for line in self.per_window) * self.windows_per_month
        return self.core_total + self.demo_hour_total * self.demo_hours_per_month + windows

    @property
    def month_total_budget(self) -> float:
        return self.month_total * self.rate

    @property
    def within_budget(self) -> bool:
        return self.month_total_budget <= self.budget_limit


def load_prices(path: Path = PRICES_FILE) -> dict[str, Any]:
    """The price table; PlatformError naming the file when it lacks its date, source or prices."""
    try:
        table = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise PlatformError(f"cannot read price table {path}: {e}", code="PRICE_TABLE_INVALID") from None
    if not isinstance(table, dict) or not all(k in table for k in ("as_of", "sources", "prices", "assumptions",
                                                                   "usd_to_budget_currency", "currency")):
        raise PlatformError(f"{path}: needs as_of, currency, usd_to_budget_currency, sources, prices, assumptions",
                            code="PRICE_TABLE_INVALID")
    return table


def _price(table: dict[str, Any], key: str) -> float:
    value = table["prices"].get(key)
    if not isinstance(value, (int, float)) or value < 0:
        raise PlatformError(f"price table: {key} missing or not a non-negative number", code="PRICE_TABLE_INVALID")
    return float(value)


def estimate(environment: str = "dev_min", *, registry_file: Path | None = None, prices_file: Path = PRICES_FILE) -> CostEstimate:
    """Price core per month and demo per hour for `environment` (dev_min: the only one with a bill)."""
    if environment != "dev_min":
        raise PlatformError(f"environment {environment} has no cloud bill to estimate", code="COST_NOT_APPLICABLE",
                            next_step="use --env dev_min")
    table = load_prices(prices_file)
    core = core_config(environment, registry_file=registry_file)
    demo = demo_config(environment, git_sha=_ANY_SHA, window_end_utc="estimate", registry_file=registry_file)
    registry = load_registry(environment, registry_file)
    try:
        hours = registry.integer("DEMO_WINDOW_HOURS_PER_MONTH")
        window = registry.integer("DEMO_WINDOW_HOURS")
    except PlatformError as e:
        raise StackConfigInvalid(e.message) from None
    a = table["assumptions"]
    daemons = [t for t in demo.tasks if t.daemon]
    vcpu = demo.task_cpu / 1024
    gb = demo.task_memory / 1024
    task_hour = vcpu * _price(table, "fargate_vcpu_hour") + gb * _price(table, "fargate_gb_hour")
    rds_prices = table["prices"].get("rds_instance_hour", {})
    if demo.db_instance_class not in rds_prices:
        raise StackConfigInvalid(f"RDS_INSTANCE_CLASS: {demo.db_instance_class} has no price in {prices_file.name}",
                                 next_step="add its hourly price to stacks/prices.yaml or choose a priced class")
    core_lines = (
        CostLine("S3 storage (4 buckets + tfstate)", f"{a['core_storage_gb']} GB x {_price(table, 's3_standard_gb_month')}/GB-month",
                 a["core_storage_gb"] * _price(table, "s3_standard_gb_month")),
        CostLine("ECR image storage", f"{a['ecr_image_gb']} GB x {_price(table, 'ecr_gb_month')}/GB-month",
                 a["ecr_image_gb"] * _price(table, "ecr_gb_month")),
        CostLine("DynamoDB lock table", "on-demand, a few requests per apply", _price(table, "dynamodb_lock_table_month")),
        CostLine(f"AWS Budget {core.budget.name}", "first budgets are free", 0.0),
    )
    demo_lines = (
        CostLine(f"Fargate daemons x{len(daemons) * demo.desired_count}",
                 f"{len(daemons)} services x {demo.desired_count} x ({vcpu:g} vCPU + {gb:g} GB), running all window",
                 len(daemons) * demo.desired_count * task_hour),
        CostLine(f"public IPv4 x{len(daemons) * demo.desired_count}", "one per daemon task (no NAT)",
                 len(daemons) * demo.desired_count * _price(table, "public_ipv4_hour")),
        CostLine(f"RDS {demo.db_instance_class} single-AZ", "instance-hour", float(rds_prices[demo.db_instance_class])),
        CostLine(f"RDS gp3 {demo.db_storage_gb} GB", "GB-month / 730",
                 demo.db_storage_gb * _price(table, "rds_gp3_gb_month") / HOURS_PER_MONTH),
        CostLine("Confluent Basic cluster", "eCKU-hour", _price(table, "confluent_basic_ecku_hour")),
        CostLine("Cloud Map private namespace", "hosted zone-month / 730", _price(table, "route53_hosted_zone_month") / HOURS_PER_MONTH),
    )
    window_lines = (
        CostLine("Fargate jobs", f"{a['job_task_hours_per_window']} task-hours per window", a["job_task_hours_per_window"] * task_hour),
        CostLine("CloudWatch log ingestion", f"{a['log_gb_per_window']} GB per window",
                 a["log_gb_per_window"] * _price(table, "cloudwatch_logs_ingest_gb")),
    )
    return CostEstimate(core_monthly=core_lines, demo_hourly=demo_lines, per_window=window_lines, demo_hours_per_month=hours,
                        windows_per_month=hours / window, currency=str(table["currency"]), budget_currency=core.budget.currency,
                        rate=float(table["usd_to_budget_currency"]), budget_limit=core.budget.limit, as_of=str(table["as_of"]),
                        sources=tuple(table["sources"]))


#: What a priced window says it is (the run report's `cost.basis`).
WINDOW_BASIS = "list prices from stacks/prices.yaml"


@dataclass(frozen=True)
class WindowCost:
    """What the dev_min stacks cost while they were up for one run: `lines` priced for the window
    (CostLine.amount = hourly x hours, `hourly` beside it), in the price table's currency."""

    start: datetime
    end: datetime
    lines: tuple[tuple[CostLine, float], ...]
    estimate: CostEstimate

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def total(self) -> float:
        return sum(line.amount for line, _ in self.lines)

    def document(self) -> dict[str, Any]:
        """The window's cost as run_report.json carries it (`cost`)."""
        e = self.estimate
        return {
            "currency": e.currency, "total": round(self.total, 4), "basis": WINDOW_BASIS,
            "window_start_utc": _utc(self.start), "window_end_utc": _utc(self.end), "window_hours": round(self.hours, 4),
            "by_resource": [{"resource": line.item, "basis": line.basis, "hourly": round(hourly, 6),
                             "amount": round(line.amount, 4)} for line, hourly in self.lines],
            "in_budget_currency": {"currency": e.budget_currency, "total": round(self.total * e.rate, 4), "rate": e.rate},
            "prices_as_of": e.as_of, "sources": list(e.sources),
            "upper_bound": True,
            "note": "what the dev_min stacks keep up over the window: daemon services for the whole window (they run only "
                    "from P2 to P11), core for its share of the month, jobs and logs for their share of a demo window",
        }


def window_cost(result: CostEstimate, start: datetime, end: datetime) -> WindowCost:
    """Price the window [start, end] (to the second) from `result` (ValueError when it ends before it starts)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("window bounds must be timezone-aware")
    if end < start:
        raise ValueError(f"window ends ({_utc(end)}) before it starts ({_utc(start)})")
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)  # the bounds as the document states them
    hours = (end - start).total_seconds() / 3600
    hourly = ([(line, line.amount) for line in result.demo_hourly]
              + [(CostLine(line.item, f"{line.basis}, / {HOURS_PER_MONTH} h", line.amount), line.amount / HOURS_PER_MONTH)
                 for line in result.core_monthly]
              + [(CostLine(line.item, f"{line.basis}, / {result.window_hours:g} h window", line.amount),
                  line.amount / result.window_hours) for line in result.per_window])
    lines = tuple((CostLine(line.item, f"{line.basis}; {rate:.6f}/h x {hours:.3f} h", rate * hours), rate)
                  for line, rate in hourly)
    return WindowCost(start, end, lines, result)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_budget(result: CostEstimate) -> None:
    """Raise CostOverBudget when the modelled month exceeds AWS_BUDGET_LIMIT."""
    if not result.within_budget:
        raise CostOverBudget(
            f"modelled month {result.month_total_budget:.2f} {result.budget_currency} (core + {result.demo_hours_per_month} demo hours, "
            f"DEMO_WINDOW_HOURS_PER_MONTH) exceeds AWS_BUDGET_LIMIT {result.budget_limit} {result.budget_currency}")
