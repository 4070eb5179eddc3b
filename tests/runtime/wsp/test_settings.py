"""WSP settings: everything WSP reads from its environment, read in one place and refused when unusable."""

from __future__ import annotations

import pytest

from runtime.wsp.settings import WspConfigInvalid, load_wsp_settings

RUN = "platform_20260101T000000Z"
KEY = "wsp-key-0123456789abcdef"
ENV = {"FP_ENV": "local_parity", "REQUIRED_PLATFORM_RUN_ID": RUN, "FP_IG_API_KEY": KEY,
       "FP_DB_DSN": "postgresql://postgres@127.0.0.1:1/postgres"}


def test_settings_come_from_the_registry_named_environment_variables() -> None:
    settings = load_wsp_settings({**ENV, "FP_IG_BASE_URL": "http://ig.internal:8081", "WSP_MAX_EVENTS_PER_OUTPUT": "20"})
    assert (settings.platform_run_id, settings.api_key, settings.ig_base_url, settings.max_events_per_output) == (
        RUN, KEY, "http://ig.internal:8081", 20)
    assert settings.db_dsn == ENV["FP_DB_DSN"]
    assert KEY not in repr(settings)


def test_defaults_are_the_registry_ig_url_and_no_cap() -> None:
    settings = load_wsp_settings(ENV)
    assert settings.ig_base_url == settings.registry.text("IG_BASE_URL")
    assert settings.max_events_per_output is None


def test_the_cli_option_wins_over_the_pinned_run_variable() -> None:
    other = "platform_20260101T000009Z"
    assert load_wsp_settings(ENV, platform_run_id=other).platform_run_id == other


@pytest.mark.parametrize(("change", "code"), [
    ({"REQUIRED_PLATFORM_RUN_ID": ""}, "WSP_RUN_ID_MISSING"),
    ({"REQUIRED_PLATFORM_RUN_ID": "run-1"}, "WSP_CONFIG_INVALID"),
    ({"FP_DB_DSN": ""}, "WSP_CHECKPOINT_DSN_MISSING"),
    ({"FP_IG_API_KEY": "changeme"}, "WSP_IG_KEY_MISSING"),
    ({"FP_IG_API_KEY": "short"}, "WSP_IG_KEY_MISSING"),
    ({"WSP_MAX_EVENTS_PER_OUTPUT": "0"}, "WSP_CONFIG_INVALID"),
    ({"WSP_MAX_EVENTS_PER_OUTPUT": "many"}, "WSP_CONFIG_INVALID"),
])
def test_missing_malformed_or_placeholder_values_are_refused(change: dict[str, str], code: str) -> None:
    with pytest.raises(WspConfigInvalid) as caught:
        load_wsp_settings({**ENV, **change})
    assert caught.value.code == code and caught.value.next_step
