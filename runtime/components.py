"""The component map: every runtime component, what starts it and where it runs.

One entry per component says which typer app serves it, whether it runs as a pack daemon, a
one-shot job or only as a CLI, the exact argv after the image's entrypoint (`python -m runtime`),
and the handle keys of its ECS service or task definition and its IAM role. Its pack comes from
the registry (PACKS). The dispatcher (`python -m runtime`), the local backend and the supervisor it
starts, the ECS backend and the demo stack all read this map, so adding a component is one entry
here; a pack member with no entry is a component this repository does not build yet.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Literal

from runtime.contracts.ids import is_platform_run_id
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError

#: What runs before a component's argv: the image's ENTRYPOINT (Dockerfile); locally the same
#: module under this interpreter. A container's `command` is the argv alone, never this again.
ENTRYPOINT: tuple[str, ...] = ("python", "-m", "runtime")

Kind = Literal["daemon", "job", "cli"]


@dataclass(frozen=True, kw_only=True)
class Component:
    """One runtime component; see the module docstring for what each field drives."""

    name: str
    #: daemon: runs supervised in its pack (an ECS service); job: one run per phase (an ECS task);
    #: cli: reachable through `python -m runtime` only (operators, tools).
    kind: Kind
    #: `module:attribute` of the typer app serving `argv[0]`; imported only when it runs.
    app: str
    #: The exact argv after the entrypoint: a daemon's whole command; a job's command, to which the
    #: phase appends the run's options (also its task definition's default command); cli: its word.
    argv: tuple[str, ...]
    #: Further commands a job's task definition runs (phases choose one per call).
    also: tuple[tuple[str, ...], ...] = ()
    #: Handle key of the ECS service (SVC_*, daemons) or task definition family (TD_*, jobs).
    ecs_key: str | None = None
    #: Handle key of the IAM task role.
    role_key: str | None = None
    #: Handle key of the port a daemon serves (it gets a service-discovery name), if any.
    port_key: str | None = None
    #: A module that must be in this build for the component to run (a stream worker's handler);
    #: without it the component is listed but not built, and its pack starts without it.
    requires: str | None = None

    def __post_init__(self) -> None:
        problem = ("needs an argv" if not self.argv else
                   "needs its ECS and IAM role handle keys" if self.kind != "cli" and not (self.ecs_key and self.role_key) else
                   "is a cli: it has no ECS task or role" if self.kind == "cli" and (self.ecs_key or self.role_key or self.also) else
                   "has further commands but is not a job" if self.also and self.kind != "job" else "")
        if problem:
            raise PlatformError(f"component {self.name} {problem}", code="COMPONENT_MAP_INVALID",
                                next_step="fix its entry in runtime/components.py")

    @property
    def cli(self) -> str:
        """The `python -m runtime <cli>` word."""
        return self.argv[0]

    @property
    def commands(self) -> tuple[tuple[str, ...], ...]:
        """Every command this component runs: `argv` and then `also`."""
        return (self.argv, *self.also)

    @property
    def built(self) -> bool:
        """Whether this build holds the component's code (`requires` is found without importing it)."""
        if self.requires is None:
            return True
        try:
            return importlib.util.find_spec(self.requires) is not None
        except ModuleNotFoundError:
            return False

    def runs(self, argv: list[str]) -> bool:
        """True when `argv` is one of this component's commands plus options."""
        return any(tuple(argv[: len(c)]) == c for c in self.commands)


_IG = "runtime.ig.cli:app"
_ORACLE = "runtime.oracle.cli:app"

#: The components that exist today, by name. Later planes add theirs here.
COMPONENTS: dict[str, Component] = {c.name: c for c in (
    Component(name="ig", kind="daemon", app=_IG, argv=("ig", "serve"), ecs_key="SVC_IG", role_key="ROLE_IG_SERVICE",
              port_key="IG_PORT"),
    Component(name="oracle_seed", kind="job", app=_ORACLE, argv=("oracle", "seed"), ecs_key="TD_ORACLE_SEED",
              role_key="ROLE_ORACLE_JOB"),
    Component(name="oracle_stream_sort", kind="job", app=_ORACLE, argv=("oracle", "stream-sort"),
              ecs_key="TD_ORACLE_STREAM_SORT", role_key="ROLE_ORACLE_JOB"),
    Component(name="oracle_checker", kind="job", app=_ORACLE, argv=("oracle", "check"), ecs_key="TD_ORACLE_CHECKER",
              role_key="ROLE_ORACLE_JOB"),
    Component(name="sr", kind="job", app="runtime.sr.cli:app", argv=("sr", "run"), ecs_key="TD_SR", role_key="ROLE_SR_TASK"),
    Component(name="wsp", kind="job", app="runtime.wsp.cli:app", argv=("wsp", "run"), ecs_key="TD_WSP",
              role_key="ROLE_WSP_TASK"),
    # The obs_gov reporter (P11's single writer, runtime/obs/cli.py). Its task definition (in the
    # VPC, next to the DB) also runs IG's in-network checks of P4 and P7 (`ig` is served by IG's app).
    Component(name="reporter", kind="job", app="runtime.obs.cli:app", argv=("reporter", "close"),
              also=(("ig", "ready-check"), ("ig", "commit-summary")), ecs_key="TD_REPORTER",
              role_key="ROLE_REPORTER_SINGLE_WRITER"),
    # The obs_gov pack's daemons (runtime/obs/daemons.py), under the reporter's role: the reporter
    # daemon refreshes the run-in-progress report holding the run's lock; env_conformance the checks.
    Component(name="platform_run_reporter", kind="daemon", app="runtime.obs.cli:app", argv=("reporter", "run"),
              ecs_key="SVC_OBS_GOV_REPORTER", role_key="ROLE_REPORTER_SINGLE_WRITER"),
    Component(name="env_conformance", kind="daemon", app="runtime.obs.cli:conformance_app", argv=("env_conformance", "run"),
              ecs_key="SVC_OBS_GOV_ENV_CONFORMANCE", role_key="ROLE_REPORTER_SINGLE_WRITER"),
    # The RTDL core (pack rtdl_core): stream workers (runtime/worker/run.py), one ECS service each, one role.
    Component(name="archive_writer", kind="daemon", app="runtime.worker.cli:archive_writer_app", argv=("archive_writer", "run"),
              ecs_key="SVC_RTDL_CORE_ARCHIVE_WRITER", role_key="ROLE_RTDL_CORE", requires="runtime.rtdl.archive.handler"),
    Component(name="ieg", kind="daemon", app="runtime.worker.cli:ieg_app", argv=("ieg", "run"), ecs_key="SVC_RTDL_CORE_IEG",
              role_key="ROLE_RTDL_CORE", requires="runtime.rtdl.ieg.handler"),
    Component(name="ofp", kind="daemon", app="runtime.worker.cli:ofp_app", argv=("ofp", "run"), ecs_key="SVC_RTDL_CORE_OFP",
              role_key="ROLE_RTDL_CORE", requires="runtime.rtdl.ofp.handler"),
    Component(name="csfb", kind="daemon", app="runtime.worker.cli:csfb_app", argv=("csfb", "run"),
              ecs_key="SVC_RTDL_CORE_CSFB", role_key="ROLE_RTDL_CORE", requires="runtime.rtdl.csfb.handler"),
    # The decision lane (pack rtdl_decision_lane): DF, AL and DLA are stream workers, DL a periodic daemon; one role.
    Component(name="dl", kind="daemon", app="runtime.decision.dl.cli:app", argv=("dl", "run"), ecs_key="SVC_DECISION_LANE_DL",
              role_key="ROLE_DECISION_LANE", requires="runtime.decision.dl.daemon"),
    Component(name="df", kind="daemon", app="runtime.decision.df.cli:app", argv=("df", "run"), ecs_key="SVC_DECISION_LANE_DF",
              role_key="ROLE_DECISION_LANE", requires="runtime.decision.df.handler"),
    Component(name="al", kind="daemon", app="runtime.worker.cli:al_app", argv=("al", "run"), ecs_key="SVC_DECISION_LANE_AL",
              role_key="ROLE_DECISION_LANE", requires="runtime.decision.al.handler"),
    Component(name="dla", kind="daemon", app="runtime.worker.cli:dla_app", argv=("dla", "run"),
              ecs_key="SVC_DECISION_LANE_DLA", role_key="ROLE_DECISION_LANE", requires="runtime.decision.dla.handler"),
    # P8's gate job (in the VPC, next to the DB): durable positions vs P7's end offsets, health, state digest.
    Component(name="rtdl_caught_up", kind="job", app="runtime.rtdl.cli:app", argv=("rtdl", "caught-up"),
              ecs_key="TD_RTDL_CAUGHT_UP", role_key="ROLE_RTDL_CORE"),
    # P9's gate job (in the VPC, next to the DB): every admitted traffic event decided, acted on and
    # logged, the audit chain verified; its CLI word also serves the operator's `decision show|verify`.
    Component(name="decision_committed", kind="job", app="runtime.decision.cli:app", argv=("decision", "committed"),
              ecs_key="TD_DECISION_COMMITTED", role_key="ROLE_DECISION_LANE"),
    # The case and labels plane (pack case_labels): CaseTrigger, CM and LS's label topic consumer are
    # stream workers, one ECS service each, one role; LS's bank view intake is a job of the same role.
    Component(name="case_trigger", kind="daemon", app="runtime.worker.cli:case_trigger_app", argv=("case_trigger", "run"),
              ecs_key="SVC_CASE_LABELS_CASE_TRIGGER", role_key="ROLE_CASE_LABELS", requires="runtime.case.trigger.handler"),
    Component(name="cm", kind="daemon", app="runtime.worker.cli:cm_app", argv=("cm", "run"), ecs_key="SVC_CM",
              role_key="ROLE_CASE_LABELS", requires="runtime.case.cm.handler"),
    Component(name="ls", kind="daemon", app="runtime.case.ls.cli:app", argv=("ls", "run"), ecs_key="SVC_LS",
              role_key="ROLE_CASE_LABELS", requires="runtime.case.ls.handler"),
    Component(name="ls_bank_view_intake", kind="job", app="runtime.case.ls.cli:app", argv=("ls", "ingest-bank-view"),
              ecs_key="TD_LS_BANK_VIEW_INTAKE", role_key="ROLE_CASE_LABELS"),
    # P10's gate job (in the VPC, next to the DB): the plane's durable positions, cases, labels, health.
    Component(name="case_labels_committed", kind="job", app="runtime.case.cli:app", argv=("case", "committed"),
              ecs_key="TD_CASE_LABELS_COMMITTED", role_key="ROLE_CASE_LABELS"),
    # The investigators' commands (runtime/case/cli.py): no task, reachable through `python -m runtime case`.
    Component(name="case", kind="cli", app="runtime.case.cli:app", argv=("case",)),
    # The database owner's job (dev_min P2): the runtime role, migrations, grants (runtime/db/cli.py).
    Component(name="db_migrations", kind="job", app="runtime.db.cli:app", argv=("db", "migrate"), also=(("db", "status"),),
              ecs_key="TD_DB_MIGRATIONS", role_key="ROLE_DB_MIGRATIONS"),
)}


class ComponentUnknown(PlatformError):
    """A name that is not a component of the map (a typo, or one not built yet)."""

    code = "UNKNOWN_COMPONENT"
    next_step = "use a component of runtime/components.py COMPONENTS"


def component(name: str) -> Component:
    """The map's entry for `name`, or UNKNOWN_COMPONENT listing the known ones."""
    if name not in COMPONENTS:
        raise ComponentUnknown(f"unknown component {name!r}; known: {', '.join(sorted(COMPONENTS))}")
    return COMPONENTS[name]


def of_kind(kind: Kind) -> list[Component]:
    """Every component of one kind, in map order."""
    return [c for c in COMPONENTS.values() if c.kind == kind]


def cli_apps() -> dict[str, str]:
    """`python -m runtime` word -> typer app; refuses one word served by two apps."""
    apps: dict[str, str] = {}
    for c in COMPONENTS.values():
        if apps.setdefault(c.cli, c.app) != c.app:
            raise PlatformError(f"runtime CLI {c.cli!r} is served by both {apps[c.cli]} and {c.app} ({c.name})",
                                code="COMPONENT_MAP_INVALID", next_step="give each CLI word one app in runtime/components.py")
    return apps


def pack_of(registry: Registry, name: str) -> str | None:
    """The registry pack (PACKS) that lists `name`, or None."""
    return next((pack for pack, members in registry.mapping("PACKS").items() if name in members), None)


def pack_daemons(registry: Registry, pack: str) -> list[Component]:
    """The daemons of `pack` (its jobs run per phase); a member with no entry fails closed naming it."""
    packs = registry.mapping("PACKS")
    if pack not in packs:
        raise PlatformError(f"unknown pack {pack!r}; packs: {', '.join(sorted(packs))}", code="UNKNOWN_PACK",
                            next_step="use a pack of registry PACKS")
    members = list(packs[pack])
    missing = [m for m in members if m not in COMPONENTS]
    if missing:
        raise PlatformError(f"pack {pack} needs {', '.join(missing)}, which this repository does not build yet",
                            code="PHASE_NOT_BUILT", next_step="run a slice whose packs are built (e.g. --to P3)")
    daemons = [COMPONENTS[m] for m in members if COMPONENTS[m].kind == "daemon"]
    built = [d for d in daemons if d.built]
    if daemons and not built:
        raise PlatformError(f"pack {pack}: none of {', '.join(d.name for d in daemons)} is in this build",
                            code="PHASE_NOT_BUILT", next_step="run a slice whose packs are built (e.g. --to P3)")
    return built


def unbuilt_members(registry: Registry, pack: str) -> list[str]:
    """Members of `pack` the map lists whose code is not in this build (their pack starts without
    them; the phase gating on them fails closed naming them)."""
    return [m for m in registry.mapping("PACKS").get(pack, []) if m in COMPONENTS and not COMPONENTS[m].built]


def consumer_group_id(registry: Registry, name: str, platform_run_id: str) -> str:
    """The bus consumer group of component `name` in one run (CONSUMER_GROUP_ID_PATTERN): each
    component reads every partition itself, and no run resumes another run's offsets."""
    component(name)
    if not is_platform_run_id(platform_run_id):
        raise PlatformError(f"consumer group of {name}: {platform_run_id!r} is not a platform_run_id",
                            code="RUN_ID_INVALID", next_step="pass the run id that P1 pinned")
    return registry.render("CONSUMER_GROUP_ID_PATTERN", component=name, platform_run_id=platform_run_id)


#: A replay group name: short, lowercase, safe in a consumer group id and a folder name.
_REPLAY_GROUP = re.compile(r"^[a-z0-9][a-z0-9_]{0,31}$")


def replay_consumer_group_id(registry: Registry, name: str, platform_run_id: str, replay_group: str) -> str:
    """The consumer group of a replay of component `name` (REPLAY_CONSUMER_GROUP_ID_PATTERN): a second
    group that re-reads the run's topics from the start, apart from the live group's offsets."""
    consumer_group_id(registry, name, platform_run_id)
    if not _REPLAY_GROUP.match(replay_group):
        raise PlatformError(f"replay group {replay_group!r} is not 1-32 of [a-z0-9_] starting with a letter or digit",
                            code="REPLAY_GROUP_INVALID", next_step="name the replay e.g. `--replay-group r1`")
    return registry.render("REPLAY_CONSUMER_GROUP_ID_PATTERN", component=name, platform_run_id=platform_run_id,
                           replay_group=replay_group)


#: libpq's variable for a session's `application_name` (pg_stat_activity) when the DSN names none.
SESSION_NAME_ENV = "PGAPPNAME"


def session_name_env(component: str) -> dict[str, str]:
    """The environment that labels every PostgreSQL session of a component's process `fp-<component>`
    (pg_stat_activity's application_name): an operator sees which daemon or job holds a lock or runs
    a slow statement, and a benchmark can charge each backend's CPU to its component."""
    return {SESSION_NAME_ENV: f"fp-{component}"[:63]}
