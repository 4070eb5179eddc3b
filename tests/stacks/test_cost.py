"""`fp stacks cost`: core per month, demo per hour, and a non-zero exit when the month exceeds the budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from controller.cli.main import app
from runtime.contracts.registry import load_registry
from runtime.errors import PlatformError
from stacks.config import StackConfigInvalid
from stacks.cost import PRICES_FILE, CostOverBudget, check_budget, estimate
from tests.stacks.conftest import registry_document, write_registry

runner = CliRunner()


def test_repository_month_fits_the_budget_and_adds_up() -> None:
    result = estimate()
    registry = load_registry("dev_min")
    assert result.demo_hours_per_month == registry.integer("DEMO_WINDOW_HOURS_PER_MONTH")
    assert result.budget_limit == registry.integer("AWS_BUDGET_LIMIT")
    windows = result.demo_hours_per_month / registry.integer("DEMO_WINDOW_HOURS")
    expected = result.core_total + result.demo_hour_total * result.demo_hours_per_month + \
        sum(line.amount for line in result.per_window) * windows
    assert result.month_total == pytest.approx(expected)
    assert 0 < result.core_total < result.month_total
    assert result.within_budget
    check_budget(result)


def test_demo_hour_grows_with_the_number_of_daemons(tmp_path: Path) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"]["settings"]["ECS_TASK_CPU"] = 1024
    bigger = estimate(registry_file=write_registry(tmp_path, doc))
    assert bigger.demo_hour_total > estimate().demo_hour_total


def test_cost_command_prints_core_month_and_demo_hour() -> None:
    result = runner.invoke(app, ["stacks", "cost"])
    assert result.exit_code == 0, result.output
    assert "core:" in result.output and "/hour" in result.output and "within budget" in result.output
    assert "prices as of" in result.output


def test_cost_command_fails_when_the_demo_window_model_exceeds_the_budget(tmp_path: Path) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"]["settings"]["DEMO_WINDOW_HOURS_PER_MONTH"] = 720
    result = runner.invoke(app, ["stacks", "cost", "--registry", str(write_registry(tmp_path, doc))])
    assert result.exit_code == 1
    assert "COST_OVER_BUDGET" in result.output and "AWS_BUDGET_LIMIT" in result.output


def test_over_budget_raises_the_specific_error(tmp_path: Path) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"]["settings"]["AWS_BUDGET_LIMIT"] = 5
    doc["environments"]["dev_min"]["settings"]["AWS_BUDGET_ALERT_THRESHOLDS"] = [2, 4]
    with pytest.raises(CostOverBudget):
        check_budget(estimate(registry_file=write_registry(tmp_path, doc)))


def test_unpriced_db_class_names_the_key(tmp_path: Path) -> None:
    doc = registry_document()
    doc["environments"]["dev_min"]["settings"]["RDS_INSTANCE_CLASS"] = "db.r6g.16xlarge"
    with pytest.raises(StackConfigInvalid, match="RDS_INSTANCE_CLASS"):
        estimate(registry_file=write_registry(tmp_path, doc))


@pytest.mark.parametrize("drop", ["as_of", "sources", "prices"])
def test_price_table_without_date_source_or_prices_is_refused(tmp_path: Path, drop: str) -> None:
    table = yaml.safe_load(PRICES_FILE.read_text())
    del table[drop]
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(table))
    result = runner.invoke(app, ["stacks", "cost", "--prices", str(path)])
    assert result.exit_code == 1 and "PRICE_TABLE_INVALID" in result.output


def test_negative_price_is_refused(tmp_path: Path) -> None:
    table = yaml.safe_load(PRICES_FILE.read_text())
    table["prices"]["fargate_vcpu_hour"] = -1
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(PlatformError, match="fargate_vcpu_hour"):
        estimate(prices_file=path)


def test_local_parity_has_no_bill() -> None:
    result = runner.invoke(app, ["stacks", "cost", "--env", "local_parity"])
    assert result.exit_code == 1 and "COST_NOT_APPLICABLE" in result.output


def test_the_demo_hour_charges_every_daemon_of_the_map_including_the_decision_lane() -> None:
    from runtime.components import of_kind

    daemons = of_kind("daemon")
    assert {"dl", "df", "al", "dla"} <= {c.name for c in daemons}
    (line,) = [line for line in estimate().demo_hourly if line.item.startswith("Fargate daemons")]
    assert line.item == f"Fargate daemons x{len(daemons)}"  # desired count 1 each while the window runs


def test_the_demo_hour_charges_every_daemon_of_the_map_including_the_case_labels_workers() -> None:
    from runtime.components import of_kind

    daemons = of_kind("daemon")
    assert {"case_trigger", "cm", "ls"} <= {c.name for c in daemons}
    registry = load_registry("dev_min")
    line = next(line for line in estimate().demo_hourly if line.item.startswith("Fargate daemons"))
    assert line.item == f"Fargate daemons x{len(daemons) * registry.integer('ECS_SERVICE_DESIRED_COUNT')}"


def test_a_window_is_priced_per_hour_from_the_same_estimate_and_adds_up_to_its_share_of_the_month() -> None:
    from datetime import UTC, datetime, timedelta

    from stacks.cost import WINDOW_BASIS, window_cost

    result = estimate()
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    window = window_cost(result, start, start + timedelta(hours=2, minutes=30))
    per_hour = result.demo_hour_total + result.core_total / 730 + sum(line.amount for line in result.per_window) / result.window_hours
    assert window.hours == 2.5 and window.total == pytest.approx(2.5 * per_hour)
    doc = window.document()
    assert doc["basis"] == WINDOW_BASIS and doc["currency"] == "USD" and doc["window_hours"] == 2.5
    assert (doc["window_start_utc"], doc["window_end_utc"]) == ("2026-11-23T10:00:00Z", "2026-11-23T12:30:00Z")
    assert doc["total"] == pytest.approx(sum(r["amount"] for r in doc["by_resource"]), abs=1e-3)
    assert {r["resource"] for r in doc["by_resource"]} >= {line.item for line in result.demo_hourly}
    rds = next(r for r in doc["by_resource"] if r["resource"].startswith("RDS db."))
    assert rds["amount"] == pytest.approx(2.5 * rds["hourly"], abs=1e-4)
    assert doc["in_budget_currency"]["total"] == pytest.approx(doc["total"] * result.rate, abs=1e-3)
    # a month of windows of DEMO_WINDOW_HOURS costs what the monthly model says
    month = window_cost(result, start, start + timedelta(hours=result.demo_hours_per_month))
    assert month.total == pytest.approx(result.month_total - result.core_total + result.core_total * result.demo_hours_per_month / 730)
    assert window_cost(result, start, start).total == 0


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    from datetime import UTC, datetime, timedelta

    from stacks.cost import window_cost

    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="before it starts"):
        window_cost(estimate(), start, start - timedelta(seconds=1))
