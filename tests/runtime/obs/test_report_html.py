"""The HTML run report: self-contained, and loaded in a real headless Chromium without console
errors, showing the run's numbers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.obs import report_html
from tests.runtime.obs import samples

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    """The headless browser binary; skipped only outside CI (CI=true must have one: `make setup` installs it)."""
    for name in _BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail("no chromium binary in CI: `make setup` installs Debian's chromium (apt-get install -y chromium)")
    pytest.skip("no chromium binary on this machine (run `make setup` as root on Debian, or apt-get install -y chromium)")


@dataclass
class Loaded:
    dom: str
    console: list[str]

    @property
    def root(self) -> str:
        """The opening <html ...> tag, where the page's probe records rendering and script errors."""
        match = re.search(r"<html[^>]*>", self.dom)
        return match.group(0) if match else ""


def load(path: Path, tmp_path: Path, *, screenshot: Path | None = None) -> Loaded:
    """Load `path` in headless Chromium; the rendered DOM and the console lines it logged."""
    argv = [browser(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
            "--disable-background-networking", "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=3000"]
    if screenshot is not None:
        argv += [f"--screenshot={screenshot}", "--window-size=1200,4200"]
    else:
        argv.append("--dump-dom")
    done = subprocess.run([*argv, path.as_uri()], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Loaded(done.stdout, console)


def test_the_page_is_self_contained() -> None:
    page = report_html.render(samples.run_report())
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page references a network resource"
    assert "<svg" in page and "<style>" in page


def test_values_are_escaped() -> None:
    report = samples.run_report()
    report["throughput"][0]["stage"] = "<script>alert(1)</script>"
    page = report_html.render(report)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page


def test_the_report_loads_in_headless_chromium_without_errors_and_shows_the_numbers(tmp_path: Path) -> None:
    report = samples.run_report()
    path = report_html.write(report, tmp_path / "run_report.html")
    loaded = load(path, tmp_path)
    assert loaded.console == []
    assert 'data-rendered="1"' in loaded.root and "data-js-errors" not in loaded.root
    q = report["decision_quality"]
    for shown in (samples.RUN, report_html.ratio(q["flow"]["precision"]), report_html.ratio(q["flow"]["recall"]),
                  report_html.ratio(q["flow"]["alert_rate"]), report_html.ratio(q["by_pattern"]["card_testing"]["recall"]),
                  "card_testing", "account_takeover", "topic_to_consumer:fp-df-" + samples.RUN, "398", "DEAD_LETTER"):
        assert shown in loaded.dom, shown
    assert loaded.dom.count("<svg") >= 4  # timeline, hops, patterns, anomalies


def test_the_browser_check_catches_a_script_error_and_a_network_fetch(tmp_path: Path) -> None:
    page = report_html.render(samples.run_report()).replace(
        "</main>", '</main><img src="https://example.invalid/pixel.png"><script>notDefined();</script>')
    path = tmp_path / "broken.html"
    path.write_text(page)
    loaded = load(path, tmp_path)
    assert 'data-js-errors="1"' in loaded.root
    assert any("notDefined" in line for line in loaded.console)
    assert any("Content Security Policy" in line for line in loaded.console)


def test_a_screenshot_renders(tmp_path: Path) -> None:
    path = report_html.write(samples.run_report(), tmp_path / "run_report.html")
    shot = tmp_path / "report.png"
    load(path, tmp_path, screenshot=shot)
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("FP_KEEP_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_the_throughput_table_shows_each_stages_busiest_minute_and_lag_at_the_end_of_streaming() -> None:
    page = report_html.render(samples.run_report())
    assert "busiest minute" in page and "lag at end of streaming" in page
    cells = re.findall(r'<tr><td class="">(\w+)</td>((?:<td class="n">[^<]*</td>)+)</tr>', page)
    rows = {stage: re.findall(r">([^<]*)<", tds)[::2] for stage, tds in cells}
    assert rows["df"][-2:] == ["200", "37"]
    assert rows["wsp"][-2:] == ["n/a", "n/a"]  # not measured: said so, never 0


def test_the_cost_section_shows_the_windows_total_and_a_row_per_priced_resource() -> None:
    report = samples.run_report()
    report["cost"] = samples.priced_window()
    page = report_html.render(report)
    section = page[page.index("<h2>Cost of the window</h2>"):]
    total = report["cost"]["total"]
    assert f'data-cost-total="{total}"' in section and f"{total:,.2f} USD" in section
    assert "2026-11-23T10:00:00Z → 2026-11-23T12:30:00Z (2.5 h)" in section and "list prices from stacks/prices.yaml" in section
    for line in report["cost"]["by_resource"]:
        assert f"<td class=\"\">{line['resource']}</td>" in section
    local = report_html.render(samples.run_report())
    local_section = local[local.index("<h2>Cost of the window</h2>"):]
    assert "0.00 USD" in local_section and "local substrate: no billed resources" in local_section
    unpriced = {**samples.run_report(), "cost": {"currency": "USD", "total": None, "basis": "not priced: no close inputs",
                                                 "window_start_utc": None, "window_end_utc": None}}
    assert "not priced" in report_html.render(unpriced)
