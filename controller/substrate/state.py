"""The recorded state of the local substrate: which processes we started and the endpoints.

`fp substrate up` writes it, `status` reads it, `down` stops exactly the pids it lists. The
endpoints become the runtime's environment variables (names from the registry).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from controller.substrate.processes import StartedProcess
from runtime.contracts.registry import Registry

STATE_FILE = "state.json"


@dataclass
class SubstrateState:
    """Processes started by us and the endpoints in force. `db_dsn` is the runtime's (its own
    least-privilege role and password); `db_owner_dsn` is the owner's, for migrations only."""

    environment: str
    bus: str
    object_store_endpoint: str | None
    db_dsn: str | None
    kafka_bootstrap: str | None
    processes: list[StartedProcess] = field(default_factory=list)
    started_at_utc: str = ""
    #: The epoch written into every store (controller.substrate.epoch); "" before the first bootstrap.
    epoch: str = ""
    db_owner_dsn: str | None = None

    def runtime_environment(self, registry: Registry) -> dict[str, str]:
        """The environment variables a runtime process needs to find this substrate."""
        names = registry.group("runtime_env")
        env = {
            names["ENVVAR_PLATFORM_ENV"]: self.environment,
            names["ENVVAR_BUS_KIND"]: self.bus,
            names["ENVVAR_AWS_REGION"]: registry.text("AWS_REGION"),
        }
        if self.object_store_endpoint:
            env[names["ENVVAR_OBJECT_STORE_ENDPOINT"]] = self.object_store_endpoint
        if self.db_dsn:
            env[names["ENVVAR_DB_DSN"]] = self.db_dsn
        if self.kafka_bootstrap:
            env[names["ENVVAR_KAFKA_BOOTSTRAP"]] = self.kafka_bootstrap
        return env

    def to_json(self) -> str:
        """Serialised form."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SubstrateState:
        """Parse the serialised form."""
        raw = json.loads(text)
        processes = [StartedProcess(**{**p, "argv": tuple(p["argv"])}) for p in raw.pop("processes", [])]
        return cls(**raw, processes=processes)


def state_dir(registry: Registry, base: Path | None = None) -> Path:
    """Where the substrate keeps its state, data and logs (LOCAL_SUBSTRATE_DIR under the cwd)."""
    return (base or Path.cwd()) / registry.text("LOCAL_SUBSTRATE_DIR")


def read_state(directory: Path) -> SubstrateState | None:
    """The recorded state, or None when the substrate was never brought up (or is down)."""
    path = directory / STATE_FILE
    if not path.is_file():
        return None
    return SubstrateState.from_json(path.read_text(encoding="utf-8"))


def write_state(directory: Path, state: SubstrateState) -> None:
    """Record the state (atomic replace)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.touch(mode=0o600)  # the runtime DSN carries the runtime role's password
    tmp.chmod(0o600)
    tmp.write_text(state.to_json(), encoding="utf-8")
    tmp.replace(directory / STATE_FILE)


def clear_state(directory: Path) -> None:
    """Forget the state after a clean stop."""
    (directory / STATE_FILE).unlink(missing_ok=True)
