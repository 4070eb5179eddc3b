"""Typed, keyword-only stack configuration built only from the handles registry.

The stacks never read the registry themselves: they take one of these frozen records. Building
the record is where bad input stops, before the (slow) cdktn import: a handle a stack needs but
the registry lacks, a topic with no partitions, a budget alert above the cap. Each refusal is one
`StackConfigInvalid` naming the handle key, so the operator knows which line to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runtime.components import of_kind, pack_of
from runtime.contracts.registry import Registry, load_registry
from runtime.errors import HandleMissing, PlatformError

#: Old versions of evidence and Terraform state are kept this long (other buckets: a day).
EVIDENCE_NONCURRENT_DAYS = 365
#: What the stacks write into `expires_at` on persistent (core) resources.
CORE_EXPIRES_AT = "never"


class StackConfigInvalid(PlatformError):
    """The registry cannot configure a stack; nothing was synthesised."""

    code = "STACK_CONFIG_INVALID"
    next_step = "fix the named handle in handles.registry.yaml, then run `fp stacks synth` again"


# ---------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True, kw_only=True)
class Tags:
    """The four tags every taggable resource carries (seed 004 P12: teardown finds them)."""

    project: str
    env: str
    owner: str
    expires_at: str

    def as_dict(self) -> dict[str, str]:
        """The tag map as the AWS provider wants it."""
        return {"project": self.project, "env": self.env, "owner": self.owner, "expires_at": self.expires_at}


@dataclass(frozen=True, kw_only=True)
class BucketSpec:
    """One S3 bucket: its handle, name and data-retention rules."""

    key: str
    name: str
    expiry_days: int | None = None
    expiry_prefix: str | None = None
    versioned: bool = True
    noncurrent_days: int = 1
    deny_delete: bool = False


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    """One topic (Kafka) / stream (Kinesis)."""

    key: str
    name: str
    partitions: int
    retention_hours: int


@dataclass(frozen=True, kw_only=True)
class S3Grant:
    """Object access of a role: read and/or write below one prefix of one bucket."""

    bucket_key: str
    bucket: str
    prefix: str
    read: bool = False
    write: bool = False


@dataclass(frozen=True, kw_only=True)
class RoleSpec:
    """One IAM role of seed 004 appendix C and exactly what it may touch."""

    key: str
    name: str
    s3: tuple[S3Grant, ...] = ()
    ssm_paths: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BudgetSpec:
    """The monthly AWS budget and its alert thresholds (seed 004 D.1)."""

    name: str
    currency: str
    limit: int
    thresholds: tuple[int, ...]
    email_source: str


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """One ECS task definition: a component of runtime/components.py on the single image."""

    key: str
    family: str
    component: str
    role_key: str
    daemon: bool
    log_group: str
    #: The container command: the component's argv, appended to the image's ENTRYPOINT.
    command: tuple[str, ...]
    port: int | None = None


@dataclass(frozen=True, kw_only=True)
class StateRef:
    """Where a stack keeps its Terraform state."""

    bucket: str
    key: str
    lock_table: str
    region: str


@dataclass(frozen=True, kw_only=True)
class CoreConfig:
    """Everything the core stack (persistent, cheap) is made of."""

    environment: str
    region: str
    tags: Tags
    state: StateRef
    buckets: tuple[BucketSpec, ...]
    state_bucket: BucketSpec
    budget: BudgetSpec
    ecr_repo: str
    execution_role: str
    terraform_role: str
    runtime_roles: tuple[RoleSpec, ...]
    log_group_prefix: str
    ssm_paths: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """Everything the demo stack (destroy-by-default) is made of."""

    environment: str
    region: str
    tags: Tags
    state: StateRef
    core_state_key: str
    confluent_env: str
    confluent_cluster: str
    confluent_cluster_type: str
    confluent_cloud: str
    confluent_region: str
    confluent_service_account: str
    confluent_manager_account: str
    topics: tuple[TopicSpec, ...]
    consumer_group_prefix: str
    vpc_name: str
    vpc_cidr: str
    subnet_names: tuple[str, ...]
    app_sg: str
    db_sg: str
    namespace: str
    ig_service_host: str
    ig_port: int
    ig_base_url: str
    ecs_cluster: str
    task_cpu: int
    task_memory: int
    desired_count: int
    image_tag: str
    tasks: tuple[TaskSpec, ...]
    role_names: dict[str, str]
    log_retention_days: int
    db_name: str
    db_instance_id: str
    db_subnet_group: str
    db_instance_class: str
    db_storage_gb: int
    db_engine: str
    db_engine_version: str
    db_runtime_role: str
    ssm_paths: dict[str, str]
    env_var_names: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class LocalParityConfig:
    """The local_parity stack: the same names against local S3/Kinesis/SSM endpoints."""

    environment: str
    region: str
    tags: Tags
    endpoint: str
    kafka_bootstrap: str
    buckets: tuple[BucketSpec, ...]
    topics: tuple[TopicSpec, ...]
    ssm_paths: dict[str, str]
    db_user: str


# ---------------------------------------------------------------------------------------------
# roles (which component runs where comes from runtime/components.py)

#: Runtime (task) roles: the ones checked for least privilege. Apply and execution roles are not.
RUNTIME_ROLE_KEYS = (
    "ROLE_ORACLE_JOB", "ROLE_SR_TASK", "ROLE_WSP_TASK", "ROLE_IG_SERVICE", "ROLE_RTDL_CORE",
    "ROLE_DECISION_LANE", "ROLE_CASE_LABELS", "ROLE_REPORTER_SINGLE_WRITER", "ROLE_DB_MIGRATIONS",
)

_CONFLUENT_SSM = ("SSM_CONFLUENT_BOOTSTRAP_PATH", "SSM_CONFLUENT_API_KEY_PATH", "SSM_CONFLUENT_API_SECRET_PATH")
#: The runtime reads only its own DSN (its least-privilege role); the owner's credentials and the
#: runtime password are for the migrations job alone.
_DB_RUNTIME_SSM = ("SSM_DB_DSN_PATH",)
_DB_SSM = ("SSM_DB_DSN_PATH", "SSM_DB_USER_PATH", "SSM_DB_PASSWORD_PATH", "SSM_DB_RUNTIME_PASSWORD_PATH")
_SSM_KEYS = (*_CONFLUENT_SSM, "SSM_IG_API_KEY_PATH", *_DB_SSM)


# ---------------------------------------------------------------------------------------------
# reading the registry with one clear error per problem


class _Reader:
    """Registry access that turns every gap into StackConfigInvalid naming the key."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def _wrap(self, key: str, fn: Any) -> Any:
        try:
            return fn(key)
        except HandleMissing as e:
            raise StackConfigInvalid(f"{key}: {e.message} (stacks of {self.registry.environment} need it)") from None

    def text(self, key: str) -> str:
        return str(self._wrap(key, self.registry.text))

    def integer(self, key: str, *, minimum: int = 0) -> int:
        value = int(self._wrap(key, self.registry.integer))
        if value < minimum:
            raise StackConfigInvalid(f"{key}: must be at least {minimum}, registry says {value}")
        return value

    def names(self, key: str) -> list[str]:
        return list(self._wrap(key, self.registry.names))

    def mapping(self, key: str) -> dict[str, Any]:
        return dict(self._wrap(key, self.registry.mapping))

    def topics(self) -> tuple[TopicSpec, ...]:
        specs = []
        for key, value in self.registry.group("topics").items():
            partitions = value.get("partitions") if isinstance(value, dict) else None
            retention = value.get("retention_hours") if isinstance(value, dict) else None
            if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
                raise StackConfigInvalid(f"{key}: a topic needs at least 1 partition, registry says {partitions!r}")
            if not isinstance(retention, int) or isinstance(retention, bool) or retention < 1:
                raise StackConfigInvalid(f"{key}: a topic needs retention_hours >= 1, registry says {retention!r}")
            specs.append(TopicSpec(key=key, name=str(value["name"]), partitions=partitions, retention_hours=retention))
        if not specs:
            raise StackConfigInvalid(f"topics: environment {self.registry.environment} defines no topic handles")
        _refuse_duplicates({s.key: s.name for s in specs}, "topic name")
        return tuple(specs)

    def prefix_glob(self, key: str) -> str:
        """A prefix pattern with every `{placeholder}` widened to `*`, cut after the first one."""
        pattern = self.text(key)
        head, sep, _ = pattern.partition("{")
        if not sep:
            return pattern
        rest = pattern[len(head):]
        widened = ""
        depth = 0
        for ch in rest:
            if ch == "{":
                depth += 1
                if depth == 1:
                    widened += "*"
            elif ch == "}":
                depth -= 1
            elif depth == 0:
                widened += ch
        return head + widened

    def tags(self, expires_at_value: str) -> Tags:
        self.text("TAG_EXPIRES_AT")
        expires = self.registry.render("TAG_EXPIRES_AT", demo_window_end_utc=expires_at_value)
        return Tags(project=self.text("TAG_PROJECT"), env=self.text("TAG_ENV"), owner=self.text("TAG_OWNER"), expires_at=expires)

    def ssm_paths(self) -> dict[str, str]:
        paths = {key: self.text(key) for key in _SSM_KEYS}
        _refuse_duplicates(paths, "SSM path")
        return paths


def _refuse_duplicates(values: dict[str, str], what: str) -> None:
    """Two handles naming one resource would make Terraform fight itself: name both keys."""
    owners: dict[str, str] = {}
    for key, value in values.items():
        if value in owners:
            raise StackConfigInvalid(f"{key}: {what} {value!r} is also {owners[value]}; each needs its own")
        owners[value] = key


def _reader(environment: str, registry_file: Path | None) -> _Reader:
    return _Reader(load_registry(environment, registry_file))


def demo_window_end(now: datetime, hours: int) -> str:
    """The `expires_at` value of demo resources: the end of the window, to the hour, UTC."""
    end = (now.astimezone(UTC) + timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end.strftime("%Y-%m-%dT%H:%MZ")


def _budget(r: _Reader) -> BudgetSpec:
    limit = r.integer("AWS_BUDGET_LIMIT", minimum=1)
    raw = r.registry.value("AWS_BUDGET_ALERT_THRESHOLDS") if "AWS_BUDGET_ALERT_THRESHOLDS" in r.registry else None
    if not isinstance(raw, list) or not raw or not all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
        raise StackConfigInvalid(f"AWS_BUDGET_ALERT_THRESHOLDS: must be a non-empty list of whole amounts, registry says {raw!r}")
    above = [t for t in raw if t > limit or t <= 0]
    if above:
        raise StackConfigInvalid(
            f"AWS_BUDGET_ALERT_THRESHOLDS: alert threshold(s) {above} outside 1..AWS_BUDGET_LIMIT ({limit}); "
            "an alert above the cap never fires before the money is spent"
        )
    return BudgetSpec(name=r.text("AWS_BUDGET_NAME"), currency=r.text("AWS_BUDGET_CURRENCY"), limit=limit,
                      thresholds=tuple(sorted(raw)), email_source=r.text("AWS_BUDGET_ALERT_EMAIL"))


def _state(r: _Reader, key_handle: str) -> StateRef:
    return StateRef(bucket=r.text("TF_STATE_BUCKET"), key=r.text(key_handle), lock_table=r.text("TF_LOCK_TABLE"),
                    region=r.text("AWS_REGION"))


def _roles(r: _Reader) -> tuple[RoleSpec, ...]:
    oracle = r.text("S3_ORACLE_BUCKET")
    evidence = r.text("S3_EVIDENCE_BUCKET")
    archive = r.text("S3_ARCHIVE_BUCKET")
    quarantine = r.text("S3_QUARANTINE_BUCKET")
    ssm = r.ssm_paths()
    confluent = tuple(ssm[k] for k in _CONFLUENT_SSM)
    db = tuple(ssm[k] for k in _DB_RUNTIME_SSM)
    db_owner = tuple(ssm[k] for k in _DB_SSM)
    ig_key = ssm["SSM_IG_API_KEY_PATH"]

    def g(bucket_key: str, bucket: str, prefix_key: str, *, read: bool = False, write: bool = False) -> S3Grant:
        return S3Grant(bucket_key=bucket_key, bucket=bucket, prefix=r.prefix_glob(prefix_key), read=read, write=write)

    evidence_rw = g("S3_EVIDENCE_BUCKET", evidence, "S3_EVIDENCE_PREFIX_PATTERN", read=True, write=True)
    oracle_read = g("S3_ORACLE_BUCKET", oracle, "S3_ORACLE_PREFIX_PATTERN", read=True)
    platform_rw = g("S3_EVIDENCE_BUCKET", evidence, "PLATFORM_RUN_PREFIX_PATTERN", read=True, write=True)
    specs = {
        "ROLE_ORACLE_JOB": ((oracle_read,
                             g("S3_ORACLE_BUCKET", oracle, "ORACLE_ENGINE_RUN_PREFIX_PATTERN", write=True),
                             g("S3_ORACLE_BUCKET", oracle, "ORACLE_PACK_PREFIX_PATTERN", write=True),
                             g("S3_ORACLE_BUCKET", oracle, "ORACLE_STREAM_VIEW_ROOT_PATTERN", write=True),
                             evidence_rw), ()),
        "ROLE_SR_TASK": ((oracle_read, evidence_rw,
                          g("S3_EVIDENCE_BUCKET", evidence, "SR_ARTIFACTS_PREFIX_PATTERN", read=True, write=True)), confluent),
        "ROLE_WSP_TASK": ((g("S3_ORACLE_BUCKET", oracle, "ORACLE_STREAM_VIEW_ROOT_PATTERN", read=True), evidence_rw),
                          (*confluent, ig_key)),
        "ROLE_IG_SERVICE": ((g("S3_QUARANTINE_BUCKET", quarantine, "S3_QUARANTINE_PREFIX_PATTERN", write=True),
                             g("S3_EVIDENCE_BUCKET", evidence, "IG_RECEIPTS_PREFIX_PATTERN", read=True, write=True),
                             evidence_rw), (*confluent, ig_key, *db)),
        "ROLE_RTDL_CORE": ((g("S3_ARCHIVE_BUCKET", archive, "S3_ARCHIVE_PREFIX_PATTERN", read=True, write=True), evidence_rw),
                           (*confluent, *db)),
        # DL/DF/AL/DLA and P9's job: run.json, health and the P9 summaries under the evidence prefix,
        # DLA's audit batch objects under their own prefix; nothing else of the platform's objects.
        "ROLE_DECISION_LANE": ((evidence_rw, g("S3_EVIDENCE_BUCKET", evidence, "DLA_AUDIT_PREFIX_PATTERN", read=True, write=True)),
                               (*confluent, *db)),
        # LS's bank view intake reads the run's stream views (bank view, traffic), nothing else of the oracle.
        "ROLE_CASE_LABELS": ((evidence_rw, g("S3_ORACLE_BUCKET", oracle, "ORACLE_STREAM_VIEW_ROOT_PATTERN", read=True)),
                             (*confluent, *db)),
        # The reporter (P11) also reads the oracle's truth and bank view (decision quality: the reporter
        # only, DESIGN.md section 8) and the run's archived traffic it joins them to.
        "ROLE_REPORTER_SINGLE_WRITER": ((evidence_rw, platform_rw, oracle_read,
                                         g("S3_ARCHIVE_BUCKET", archive, "S3_ARCHIVE_PREFIX_PATTERN", read=True)),
                                        (*confluent, *db)),
        "ROLE_DB_MIGRATIONS": ((), db_owner),
    }
    roles = tuple(RoleSpec(key=key, name=r.text(key), s3=specs[key][0], ssm_paths=tuple(dict.fromkeys(specs[key][1])))
                  for key in RUNTIME_ROLE_KEYS)
    _refuse_duplicates({key: r.text(key) for key in (*RUNTIME_ROLE_KEYS, "ROLE_ECS_TASK_EXECUTION", "ROLE_TERRAFORM_APPLY")},
                       "IAM role name")
    return roles


def core_config(environment: str = "dev_min", *, registry_file: Path | None = None) -> CoreConfig:
    """The core stack's configuration, or StackConfigInvalid naming the first bad handle."""
    r = _reader(environment, registry_file)
    evidence = r.text("S3_EVIDENCE_BUCKET")
    buckets = (
        BucketSpec(key="S3_ORACLE_BUCKET", name=r.text("S3_ORACLE_BUCKET"), expiry_days=r.integer("S3_ORACLE_EXPIRY_DAYS", minimum=1),
                   expiry_prefix=r.prefix_glob("S3_ORACLE_PREFIX_PATTERN").split("*")[0]),
        BucketSpec(key="S3_ARCHIVE_BUCKET", name=r.text("S3_ARCHIVE_BUCKET"), expiry_days=r.integer("S3_ARCHIVE_EXPIRY_DAYS", minimum=1),
                   expiry_prefix=r.prefix_glob("S3_ARCHIVE_PREFIX_PATTERN").split("*")[0]),
        BucketSpec(key="S3_QUARANTINE_BUCKET", name=r.text("S3_QUARANTINE_BUCKET"),
                   expiry_days=r.integer("S3_QUARANTINE_EXPIRY_DAYS", minimum=1),
                   expiry_prefix=r.prefix_glob("S3_QUARANTINE_PREFIX_PATTERN").split("*")[0]),
        BucketSpec(key="S3_EVIDENCE_BUCKET", name=evidence, noncurrent_days=EVIDENCE_NONCURRENT_DAYS, deny_delete=True),
    )
    names = [b.name for b in buckets]
    if len(set(names)) != len(names):
        raise StackConfigInvalid("S3_*_BUCKET: core needs four distinct buckets (oracle, archive, quarantine, evidence)")
    return CoreConfig(
        environment=environment,
        region=r.text("AWS_REGION"),
        tags=r.tags(CORE_EXPIRES_AT),
        state=_state(r, "TF_STATE_KEY_CORE"),
        buckets=buckets,
        state_bucket=BucketSpec(key="TF_STATE_BUCKET", name=r.text("TF_STATE_BUCKET"), noncurrent_days=EVIDENCE_NONCURRENT_DAYS),
        budget=_budget(r),
        ecr_repo=r.text("ECR_REPO_NAME"),
        execution_role=r.text("ROLE_ECS_TASK_EXECUTION"),
        terraform_role=r.text("ROLE_TERRAFORM_APPLY"),
        runtime_roles=_roles(r),
        log_group_prefix=r.text("CLOUDWATCH_LOG_GROUP_PREFIX"),
        ssm_paths=r.ssm_paths(),
    )


def demo_config(environment: str = "dev_min", *, git_sha: str, window_end_utc: str | None = None,
                registry_file: Path | None = None) -> DemoConfig:
    """The demo stack's configuration; `git_sha` pins the single image's immutable tag."""
    r = _reader(environment, registry_file)
    _budget(r)  # the demo-window model is judged against the same cap
    if not git_sha or not all(c in "0123456789abcdef" for c in git_sha.lower()):
        raise StackConfigInvalid(f"IMAGE_TAG_GIT_SHA_PATTERN: git sha {git_sha!r} is not a hex commit id",
                                 next_step="pass --git-sha <commit> or synthesise from a git checkout")
    window_hours = r.integer("DEMO_WINDOW_HOURS", minimum=1)
    end = window_end_utc or demo_window_end(datetime.now(UTC), window_hours)
    log_prefix = r.text("CLOUDWATCH_LOG_GROUP_PREFIX")
    r.mapping("PACKS")
    tasks: list[TaskSpec] = []
    for c in [*of_kind("daemon"), *of_kind("job")]:
        key, role_key = str(c.ecs_key), str(c.role_key)  # the map refuses a daemon or job without them
        if c.kind == "daemon" and pack_of(r.registry, c.name) is None:
            raise StackConfigInvalid(f"PACKS: daemon component {c.name!r} belongs to no pack")
        family = r.text(key)
        tasks.append(TaskSpec(key=key, family=family, component=c.name, role_key=role_key,
                              daemon=c.kind == "daemon", log_group=f"{log_prefix}{family}", command=c.argv,
                              port=r.integer(c.port_key, minimum=1) if c.port_key else None))
    ig_port = r.integer("IG_PORT", minimum=1)
    _refuse_duplicates({t.key: t.family for t in tasks}, "task definition family")
    namespace = r.text("SERVICE_DISCOVERY_NAMESPACE")
    ig_base_url = r.text("IG_BASE_URL")
    host = ig_base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    if not host.endswith("." + namespace):
        raise StackConfigInvalid(f"IG_BASE_URL: host {host!r} is not inside SERVICE_DISCOVERY_NAMESPACE {namespace!r}")
    role_keys = sorted({t.role_key for t in tasks} | {"ROLE_ECS_TASK_EXECUTION"})
    group_prefix = r.text("CONSUMER_GROUP_ID_PATTERN").split("{", 1)[0]
    if not group_prefix:
        raise StackConfigInvalid("CONSUMER_GROUP_ID_PATTERN: needs a literal prefix (e.g. `fp-`) before its first "
                                 "placeholder; the runtime's group ACL allows exactly that prefix")
    return DemoConfig(
        environment=environment,
        region=r.text("AWS_REGION"),
        tags=r.tags(end),
        state=_state(r, "TF_STATE_KEY_DEMO"),
        core_state_key=r.text("TF_STATE_KEY_CORE"),
        confluent_env=r.text("CONFLUENT_ENV_NAME"),
        confluent_cluster=r.text("CONFLUENT_CLUSTER_NAME"),
        confluent_cluster_type=r.text("CONFLUENT_CLUSTER_TYPE"),
        confluent_cloud=r.text("CONFLUENT_CLOUD_PROVIDER"),
        confluent_region=r.text("CONFLUENT_CLOUD_REGION"),
        confluent_service_account=r.text("CONFLUENT_SERVICE_ACCOUNT_NAME"),
        confluent_manager_account=r.text("CONFLUENT_MANAGER_SERVICE_ACCOUNT_NAME"),
        topics=r.topics(),
        consumer_group_prefix=group_prefix,
        vpc_name=r.text("VPC_ID"),
        vpc_cidr=r.text("VPC_CIDR"),
        subnet_names=tuple(r.names("SUBNET_IDS_PUBLIC")),
        app_sg=r.text("SECURITY_GROUP_ID_APP"),
        db_sg=r.text("SECURITY_GROUP_ID_DB"),
        namespace=namespace,
        ig_service_host=host[: -len(namespace) - 1],
        ig_port=ig_port,
        ig_base_url=ig_base_url,
        ecs_cluster=r.text("ECS_CLUSTER_NAME"),
        task_cpu=r.integer("ECS_TASK_CPU", minimum=256),
        task_memory=r.integer("ECS_TASK_MEMORY_MIB", minimum=512),
        desired_count=r.integer("ECS_SERVICE_DESIRED_COUNT", minimum=1),
        image_tag=r.registry.render("IMAGE_TAG_GIT_SHA_PATTERN", git_sha=git_sha),
        tasks=tuple(tasks),
        role_names={key: r.text(key) for key in role_keys},
        log_retention_days=r.integer("CLOUDWATCH_LOG_RETENTION_DAYS", minimum=1),
        db_name=r.text("DB_NAME"),
        db_instance_id=r.text("RDS_INSTANCE_ID"),
        db_subnet_group=r.text("DB_SUBNET_GROUP_NAME"),
        db_instance_class=r.text("RDS_INSTANCE_CLASS"),
        db_storage_gb=r.integer("RDS_ALLOCATED_STORAGE_GB", minimum=20),
        db_engine=r.text("DB_ENGINE"),
        db_runtime_role=r.text("DB_RUNTIME_ROLE"),
        db_engine_version=r.text("RDS_ENGINE_VERSION"),
        ssm_paths=r.ssm_paths(),
        env_var_names={key: r.text(key) for key in (
            "ENVVAR_PLATFORM_ENV", "ENVVAR_AWS_REGION", "ENVVAR_DB_DSN", "ENVVAR_BUS_KIND", "ENVVAR_KAFKA_BOOTSTRAP",
            "ENVVAR_IG_API_KEY", "ENVVAR_IG_BASE_URL")},
    )


def local_parity_config(environment: str = "local_parity", *, registry_file: Path | None = None) -> LocalParityConfig:
    """The local_parity stack's configuration (buckets, streams, SSM paths on local endpoints)."""
    r = _reader(environment, registry_file)
    host = r.text("LOCAL_BIND_HOST")
    seen: dict[str, BucketSpec] = {}
    for key in ("S3_ORACLE_BUCKET", "S3_EVIDENCE_BUCKET", "S3_ARCHIVE_BUCKET", "S3_QUARANTINE_BUCKET"):
        name = r.text(key)
        seen.setdefault(name, BucketSpec(key=key, name=name))
    return LocalParityConfig(
        environment=environment,
        region=r.text("AWS_REGION"),
        tags=r.tags(CORE_EXPIRES_AT),
        endpoint=f"http://{host}:{r.integer('LOCAL_MOTO_PORT', minimum=1)}",
        kafka_bootstrap=f"{host}:{r.integer('LOCAL_KAFKA_PORT', minimum=1)}",
        buckets=tuple(seen.values()),
        topics=r.topics(),
        ssm_paths=r.ssm_paths(),
        db_user=r.text("LOCAL_DB_USER"),
    )
