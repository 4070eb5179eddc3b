"""The embedded PostgreSQL's shared buffers follow the memory the substrate may use."""

from __future__ import annotations

from pathlib import Path

from controller.substrate.servers import (
    DURABLE_SETTINGS,
    SHARED_BUFFERS_MAX_MIB,
    SHARED_BUFFERS_MIN_MIB,
    durable_settings,
    shared_buffers_for,
    usable_memory_bytes,
)

GIB = 2**30


def test_shared_buffers_are_a_quarter_of_memory_within_the_bounds() -> None:
    assert shared_buffers_for(24 * GIB) == "6144MB"
    assert shared_buffers_for(16 * GIB) == "4096MB"
    assert shared_buffers_for(1 * GIB) == f"{SHARED_BUFFERS_MIN_MIB}MB"
    assert shared_buffers_for(256 * GIB) == f"{SHARED_BUFFERS_MAX_MIB}MB"


def test_unknown_memory_gets_the_floor() -> None:
    assert shared_buffers_for(None) == f"{SHARED_BUFFERS_MIN_MIB}MB"
    assert shared_buffers_for(0) == f"{SHARED_BUFFERS_MIN_MIB}MB"


def test_a_control_group_limit_below_the_machine_memory_is_what_counts(tmp_path: Path) -> None:
    limit = tmp_path / "memory.max"
    limit.write_text(f"{2 * GIB}\n")
    assert usable_memory_bytes((limit,)) == 2 * GIB
    assert durable_settings(usable_memory_bytes((limit,)))["shared_buffers"] == f"{SHARED_BUFFERS_MIN_MIB}MB"


def test_an_unlimited_or_unreadable_control_group_leaves_the_machine_memory(tmp_path: Path) -> None:
    machine = usable_memory_bytes(())
    assert machine is not None and machine > 0
    unlimited = tmp_path / "memory.max"
    unlimited.write_text("max\n")
    assert usable_memory_bytes((unlimited,)) == machine
    above = tmp_path / "memory.limit_in_bytes"
    above.write_text(str(2**63 - 4096))
    assert usable_memory_bytes((above,)) == machine
    assert usable_memory_bytes((tmp_path / "absent",)) == machine


def test_the_durable_settings_keep_the_checkpoint_spacing_and_add_the_buffers() -> None:
    settings = durable_settings(16 * GIB)
    assert settings == {**DURABLE_SETTINGS, "shared_buffers": "4096MB"}
