"""The ECS adapter of the compute port: daemons as Fargate services, jobs as one-shot tasks.

Names come from the registry only (cluster, services, task definition families, VPC, subnets,
security groups) and the component -> service/task-definition handle comes from the component map
(runtime/components.py) the demo stack also reads, so what the controller drives is what Terraform
built. A container's command is the component's argv alone: the image's ENTRYPOINT is already
`python -m runtime`.

Run scope. Services read `REQUIRED_PLATFORM_RUN_ID` from their environment, like local packs.
To scope a service to a run the backend registers a new revision of the service's task
definition with that one variable set (everything else, including the SSM `secrets`, copied)
and points the service at it with desired count 1 (the copy is made from the family's latest
revision, so an image the demo stack re-applied is picked up). ECS then replaces any task of an earlier run,
and the gate can read the scope back from ECS itself: a pack runs for run R only when each
service's running task uses a revision whose environment says R. Jobs get the variable as a
container override of `run_task`. Secrets never travel this way: a task definition that carries
a secret's variable as a plain value is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controller.compute.local_backend import pack_id
from controller.compute.port import (
    ComputeBackend,
    JobFailure,
    JobResult,
    PackState,
    ProcessState,
    Progress,
    TaskDefinitionImages,
    check_job,
    check_run_id,
    job_failed,
    job_failure,
)
from controller.devmin.aws import AwsCallFailed, AwsClients
from runtime.components import COMPONENTS, pack_daemons, session_name_env
from runtime.components import component as component_entry
from runtime.contracts.registry import Registry
from runtime.errors import PlatformError

#: Variables that carry secrets: they must come from SSM (`secrets`), never `environment`.
SECRET_ENV_KEYS = ("ENVVAR_DB_DSN", "ENVVAR_KAFKA_BOOTSTRAP", "ENVVAR_IG_API_KEY")
#: ECS refuses `run_task` overrides above 8 KiB of JSON; refuse well before (leaves room for the scope).
MAX_OVERRIDE_CHARS = 7000
#: Fields of a task definition that a new revision copies from the one it replaces.
_REVISION_FIELDS = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
                    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "runtimePlatform",
                    "ephemeralStorage", "pidMode", "ipcMode")


class EcsError(PlatformError):
    """The ECS backend could not do what a phase asked."""

    code = "ECS_ERROR"


def _call(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (ClientError, BotoCoreError) as e:
        raise AwsCallFailed(f"{what} failed: {e}") from e


def _family(task_definition: str) -> str:
    """The family of a task definition ARN or `family:revision` (`family` alone resolves to its latest ACTIVE revision)."""
    return task_definition.rsplit("/", 1)[-1].split(":", 1)[0]


def _env_value(definition: dict[str, Any], key: str) -> str | None:
    """The value of `key` in the first container's environment that sets it."""
    for container in definition.get("containerDefinitions", []):
        for item in container.get("environment") or []:
            if item.get("name") == key:
                return str(item.get("value"))
    return None


class EcsBackend(ComputeBackend):
    """Packs as ECS services scaled to 1, jobs as FARGATE `run_task`, waited and checked."""

    kind = "ecs"

    def __init__(self, registry: Registry, clients: AwsClients, *, poll_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 image: str | None = None):
        #: The image (`repo@sha256:...`) P(-1) pinned for the run: every task runs exactly it.
        self.image = image
        self.registry = registry
        self.clients = clients
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.sleep = sleep

    # --- names ----------------------------------------------------------------------------
    @property
    def cluster(self) -> str:
        """ECS_CLUSTER_NAME."""
        return self.registry.text("ECS_CLUSTER_NAME")

    @property
    def scope_key(self) -> str:
        """The run-scope variable (REQUIRED_PLATFORM_RUN_ID_ENV_KEY)."""
        return self.registry.text("REQUIRED_PLATFORM_RUN_ID_ENV_KEY")

    def job_family(self, component: str) -> str:
        """The task definition family of a job component (its TD_* handle)."""
        entry = component_entry(component)
        check_job(component, list(entry.argv))
        return self.registry.text(str(entry.ecs_key))

    def pack_services(self, pack: str) -> list[tuple[str, str]]:
        """(component, service name) of each daemon of `pack`; the pack's jobs have no service."""
        return [(d.name, self.registry.text(str(d.ecs_key))) for d in pack_daemons(self.registry, pack)]

    def network(self) -> dict[str, Any]:
        """awsvpc configuration: subnets (by Name tag) and security groups (by group name) in the VPC."""
        ec2 = self.clients.client("ec2")
        vpc_name = self.registry.text("VPC_ID")
        subnet_names = self.registry.names("SUBNET_IDS")
        sg_names = self.registry.names("SECURITY_GROUP_IDS")
        vpcs = _call("ec2:DescribeVpcs", lambda: ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [vpc_name]}]))
        if len(vpcs["Vpcs"]) != 1:
            raise EcsError(f"VPC {vpc_name} (VPC_ID) found {len(vpcs['Vpcs'])} times, expected once",
                           code="ECS_NETWORK_MISSING", next_step="run `fp dev-min-up --env dev_min` (demo stack)")
        vpc_id = vpcs["Vpcs"][0]["VpcId"]
        in_vpc = {"Name": "vpc-id", "Values": [vpc_id]}
        subnets = _call("ec2:DescribeSubnets", lambda: ec2.describe_subnets(
            Filters=[in_vpc, {"Name": "tag:Name", "Values": subnet_names}]))["Subnets"]
        by_name = {t["Value"]: s["SubnetId"] for s in subnets for t in s.get("Tags", []) if t["Key"] == "Name"}
        groups = _call("ec2:DescribeSecurityGroups", lambda: ec2.describe_security_groups(
            Filters=[in_vpc, {"Name": "group-name", "Values": sg_names}]))["SecurityGroups"]
        sg_by_name = {g["GroupName"]: g["GroupId"] for g in groups}
        missing = [f"subnet {n} (SUBNET_IDS)" for n in subnet_names if n not in by_name]
        missing += [f"security group {n} (SECURITY_GROUP_IDS)" for n in sg_names if n not in sg_by_name]
        if missing:
            raise EcsError(f"not found in VPC {vpc_name}: {', '.join(missing)}", code="ECS_NETWORK_MISSING",
                           next_step="run `fp dev-min-up --env dev_min` (demo stack)")
        return {"awsvpcConfiguration": {"subnets": [by_name[n] for n in subnet_names],
                                        "securityGroups": [sg_by_name[n] for n in sg_names], "assignPublicIp": "ENABLED"}}

    def _describe_task_definition(self, ref: str) -> dict[str, Any]:
        ecs = self.clients.client("ecs")
        try:
            answer = ecs.describe_task_definition(taskDefinition=ref, include=["TAGS"])
        except ClientError as e:
            raise EcsError(f"task definition {ref} not found: {e}", code="ECS_TASK_DEFINITION_MISSING",
                           next_step="run `fp dev-min-up --env dev_min` (demo stack)") from e
        except BotoCoreError as e:
            raise AwsCallFailed(f"ecs:DescribeTaskDefinition {ref} failed: {e}") from e
        definition = dict(answer["taskDefinition"])
        self.refuse_plain_secrets(definition)
        definition["_tags"] = answer.get("tags") or []
        return definition

    def refuse_plain_secrets(self, definition: dict[str, Any]) -> None:
        """SECRET_IN_PLAIN_ENV when a container sets a secret's variable in `environment` (not SSM)."""
        secret_names = {self.registry.text(k) for k in SECRET_ENV_KEYS}
        for container in definition.get("containerDefinitions", []):
            plain = sorted(secret_names & {e.get("name") for e in container.get("environment") or []})
            if plain:
                raise EcsError(f"task definition {definition.get('taskDefinitionArn')} container {container.get('name')} "
                               f"sets secret(s) {', '.join(plain)} as plain values", code="SECRET_IN_PLAIN_ENV",
                               next_step="inject them from SSM (`secrets` valueFrom) in the demo stack and re-apply")

    def _wait(self, what: str, timeout: float, check: Callable[[], tuple[bool, str]], progress: Progress | None,
              code: str, next_step: str) -> None:
        deadline = self.clock() + timeout
        while True:
            done, line = check()
            if progress:
                progress(line)
            if done:
                return
            if self.clock() >= deadline:
                raise EcsError(f"{what} not done after {timeout:.0f}s: {line}", code=code, next_step=next_step)
            self.sleep(self.poll_seconds)

    # --- jobs -----------------------------------------------------------------------------
    def run_job(self, component: str, argv: list[str], run_id: str, *, extra_env: dict[str, str] | None = None,
                timeout: float = 3600.0, progress: Progress | None = None, check: bool = True) -> JobResult:
        """`run_task` on FARGATE with the run scope override, waited to STOPPED, exit code checked."""
        check_job(component, argv)
        check_run_id(run_id)
        family = self.job_family(component)
        cluster, scope_key = self.cluster, self.scope_key
        size = sum(len(a) for a in argv) + sum(len(k) + len(v) for k, v in (extra_env or {}).items())
        if size > MAX_OVERRIDE_CHARS:
            raise EcsError(f"job {component}: arguments and environment are {size} characters; ECS takes at most "
                           f"{MAX_OVERRIDE_CHARS} in a task's overrides", code="JOB_ARGV_INVALID",
                           next_step="pass large inputs as an object-store key, not on the command line")
        secret_names = {self.registry.text(k) for k in SECRET_ENV_KEYS}
        bad = sorted((set(extra_env or {}) & secret_names) | ({scope_key} & set(extra_env or {})))
        if bad:
            raise EcsError(f"job {component}: extra_env may not set {', '.join(bad)}", code="JOB_ENV_INVALID",
                           next_step="secrets come from SSM; the run scope comes from run_id")
        definition = self._describe_task_definition(family)
        if definition.get("status") != "ACTIVE":
            raise EcsError(f"task definition {family} has no ACTIVE revision ({definition.get('taskDefinitionArn')} is "
                           f"{definition.get('status')})", code="ECS_TASK_DEFINITION_MISSING",
                           next_step="run `fp dev-min-up --env dev_min` (demo stack)")
        task_definition = str(definition["taskDefinitionArn"])
        if self.image is not None:  # run_task cannot override the image: run a revision that has it
            task_definition = self.scoped_revision(task_definition, run_id)
        container = definition["containerDefinitions"][0]
        network = self.network()
        labelled = {**session_name_env(component), **(extra_env or {})}
        environment = [{"name": k, "value": v} for k, v in sorted(labelled.items())]
        environment.append({"name": scope_key, "value": run_id})
        ecs = self.clients.client("ecs")
        answer = _call(f"ecs:RunTask {family}", lambda: ecs.run_task(
            cluster=cluster, taskDefinition=task_definition, launchType="FARGATE", count=1,
            startedBy=run_id[:36], networkConfiguration=network, overrides={"containerOverrides": [{
                "name": container["name"], "command": list(argv), "environment": environment}]}))
        if not answer.get("tasks"):
            reasons = "; ".join(f"{f.get('arn')}: {f.get('reason')}" for f in answer.get("failures", [])) or "no task"
            raise EcsError(f"job {component}: ECS started no task ({reasons})", code="ECS_TASK_FAILED",
                           next_step="check the cluster, the task definition and Fargate quotas, then rerun the phase")
        arn = str(answer["tasks"][0]["taskArn"])
        task: dict[str, Any] = {}

        def stopped() -> tuple[bool, str]:
            nonlocal task
            found = _call("ecs:DescribeTasks", lambda: ecs.describe_tasks(cluster=cluster, tasks=[arn]))["tasks"]
            task = found[0] if found else {}
            status = task.get("lastStatus", "MISSING")
            return status in ("STOPPED", "MISSING"), f"{component} task {arn.rsplit('/', 1)[-1]}: {status}"

        self._wait(f"job {component} task {arn}", timeout, stopped, progress, "ECS_TASK_TIMEOUT",
                   f"inspect task {arn} in cluster {cluster}; stop it with `aws ecs stop-task` before rerunning")
        log = self._log_location(container, arn)
        reason = task.get("stoppedReason") or None
        exit_code = next((c.get("exitCode") for c in task.get("containers", []) if c.get("name") == container["name"]), None)
        if exit_code is None:
            raise EcsError(f"job {component} task {arn} stopped without an exit code (reason: {reason or 'none given'})",
                           code="ECS_TASK_FAILED", next_step=f"read {log}; the container probably never started")
        failure = self._log_failure(container, arn) if int(exit_code) != 0 else None
        result = JobResult(component=component, exit_code=int(exit_code), log_location=log, task_arn=arn,
                           stopped_reason=reason, failure=failure)
        if check and result.exit_code != 0:
            raise job_failed(result, f"task {arn}", "ECS_TASK_FAILED")
        return result

    def _log_failure(self, container: dict[str, Any], arn: str) -> JobFailure | None:
        """The job's own error line from the tail of its awslogs stream; None when it cannot be read
        (no awslogs configuration, stream not there yet, no permission): the exit code still fails the job."""
        options = (container.get("logConfiguration") or {}).get("options") or {}
        group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
        if not group:
            return None
        task_id = arn.rsplit("/", 1)[-1]
        stream = f"{prefix}/{container.get('name')}/{task_id}" if prefix else task_id
        try:
            events = self.clients.client("logs").get_log_events(logGroupName=group, logStreamName=stream, limit=200,
                                                                startFromHead=False)["events"]
        except (ClientError, BotoCoreError):
            return None
        return job_failure("\n".join(str(e.get("message", "")) for e in events))

    @staticmethod
    def _log_location(container: dict[str, Any], arn: str) -> str:
        """`cloudwatch:<group>/<prefix>/<container>/<task id>`, the awslogs stream of the task."""
        options = (container.get("logConfiguration") or {}).get("options") or {}
        group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
        if not group:
            return f"ecs task {arn} (no awslogs configuration)"
        stream = f"{prefix}/{container.get('name')}/{arn.rsplit('/', 1)[-1]}" if prefix else arn.rsplit("/", 1)[-1]
        return f"cloudwatch:{group}/{stream}"

    # --- daemons --------------------------------------------------------------------------
    def _service(self, name: str) -> dict[str, Any]:
        ecs = self.clients.client("ecs")
        answer = _call(f"ecs:DescribeServices {name}", lambda: ecs.describe_services(cluster=self.cluster, services=[name]))
        found = [s for s in answer.get("services", []) if s.get("status") == "ACTIVE"]
        if not found:
            raise EcsError(f"service {name} is not active in cluster {self.cluster}", code="ECS_SERVICE_MISSING",
                           next_step="run `fp dev-min-up --env dev_min` (the demo stack creates the services)")
        return dict(found[0])

    def run_task_definitions(self, run_id: str) -> tuple[list[TaskDefinitionImages], list[str]]:
        """Each daemon service's current revision and each job family's latest ACTIVE revision that
        is scoped to `run_id` (what the run's tasks ran), with its images; and the services and
        families whose current revision is not scoped to it (never run by this run, or by another
        run since). A service or family the stacks do not hold is left out."""
        ecs = self.clients.client("ecs")
        refs: list[tuple[str, str, str | None]] = []  # (component, task definition ref, service)
        daemons = [(c.name, self.registry.text(str(c.ecs_key))) for c in COMPONENTS.values() if c.kind == "daemon" and c.ecs_key
                   and c.ecs_key in self.registry]
        for i in range(0, len(daemons), 10):  # DescribeServices takes 10 names a call
            chunk = {name: comp for comp, name in daemons[i:i + 10]}
            answer = _call("ecs:DescribeServices", partial(ecs.describe_services, cluster=self.cluster, services=list(chunk)))
            refs += [(chunk[s["serviceName"]], str(s["taskDefinition"]), str(s["serviceName"]))
                     for s in answer.get("services", []) if s.get("status") == "ACTIVE" and s["serviceName"] in chunk]
        families = {self.registry.text(str(c.ecs_key)): c.name for c in COMPONENTS.values()
                    if c.kind == "job" and c.ecs_key and c.ecs_key in self.registry}
        refs += [(name, family, None) for family, name in families.items()]
        scoped: list[TaskDefinitionImages] = []
        other: list[str] = []
        for name, ref, service in refs:
            try:
                definition = self._describe_task_definition(ref)
            except EcsError as e:
                if e.code != "ECS_TASK_DEFINITION_MISSING":
                    raise
                continue
            if _env_value(definition, self.scope_key) != run_id:
                other.append(service or _family(ref))
                continue
            scoped.append(TaskDefinitionImages(name, str(definition["taskDefinitionArn"]),
                                               tuple(str(c.get("image")) for c in definition["containerDefinitions"]), service))
        return scoped, sorted(other)

    def scoped_revision(self, task_definition: str, run_id: str) -> str:
        """ARN of a revision of `task_definition` whose environment has the run scope `run_id`."""
        definition = self._describe_task_definition(task_definition)
        scope_key = self.scope_key
        pinned = self.image is None or all(c.get("image") == self.image for c in definition["containerDefinitions"])
        if _env_value(definition, scope_key) == run_id and pinned:
            return str(definition["taskDefinitionArn"])
        revision = {k: definition[k] for k in _REVISION_FIELDS if definition.get(k) not in (None, [], {})}
        containers = []
        for container in definition["containerDefinitions"]:
            env = [e for e in container.get("environment") or [] if e.get("name") != scope_key]
            image = {"image": self.image} if self.image else {}
            containers.append({**container, **image, "environment": [*env, {"name": scope_key, "value": run_id}]})
        revision["containerDefinitions"] = containers
        if definition["_tags"]:
            revision["tags"] = definition["_tags"]
        ecs = self.clients.client("ecs")
        answer = _call(f"ecs:RegisterTaskDefinition {definition['family']}", lambda: ecs.register_task_definition(**revision))
        return str(answer["taskDefinition"]["taskDefinitionArn"])

    def _running_task(self, service: str, task_definition: str) -> str | None:
        """ARN of a RUNNING task the service started from `task_definition`, if any."""
        ecs = self.clients.client("ecs")
        arns = _call("ecs:ListTasks", lambda: ecs.list_tasks(cluster=self.cluster, serviceName=service,
                                                             desiredStatus="RUNNING"))["taskArns"]
        if not arns:
            return None
        tasks = _call("ecs:DescribeTasks", lambda: ecs.describe_tasks(cluster=self.cluster, tasks=arns[:100]))["tasks"]
        for task in tasks:
            if (task.get("group") == f"service:{service}" and task.get("lastStatus") == "RUNNING"
                    and task.get("taskDefinitionArn") == task_definition):
                return str(task["taskArn"])
        return None

    def pack_state(self, pack: str) -> PackState:
        """Per service: desired/running counts, the running task of the current revision, its run scope."""
        processes = []
        for component, name in self.pack_services(pack):
            service = self._service(name)
            td = str(service["taskDefinition"])
            scope = _env_value(self._describe_task_definition(td), self.scope_key)
            desired, running = int(service.get("desiredCount", 0)), int(service.get("runningCount", 0))
            task_arn = self._running_task(name, td) if desired > 0 else None
            if desired == 0:
                status = "STOPPED"
            elif running == desired and task_arn:
                status = "RUNNING"
            else:
                status = "PENDING"
            processes.append(ProcessState(name=component, status=status, task_arn=task_arn, service=name, run_scope=scope))
        statuses = {p.status for p in processes}
        state = "RUNNING" if statuses == {"RUNNING"} else "STOPPED" if statuses <= {"STOPPED"} else "DEGRADED"
        scopes = {p.run_scope for p in processes}
        return PackState(pack=pack, pack_id=pack_id(self.registry, pack), state=state,
                         run_scope=scopes.pop() if len(scopes) == 1 else None,
                         desired_count=sum(1 for p in processes if p.status != "STOPPED"),
                         running_count=sum(1 for p in processes if p.status == "RUNNING"), processes=tuple(processes),
                         detail={"cluster": self.cluster})

    def start_pack(self, pack: str, run_id: str, *, timeout: float = 600.0, progress: Progress | None = None) -> PackState:
        """Point each service at a revision scoped to `run_id`, desired count 1; wait until each runs it."""
        check_run_id(run_id)
        services = self.pack_services(pack)
        if not services:
            raise EcsError(f"pack {pack} has no daemon service", code="ECS_PACK_EMPTY",
                           next_step="its components are jobs; run them with run_job")
        ecs = self.clients.client("ecs")
        cluster = self.cluster
        for _, name in services:
            service = self._service(name)
            # The family's latest revision, not the service's current one: the demo stack leaves the
            # service's revision to the controller (ignore_changes), so after a re-apply with a new
            # image the service still points at the old run's revision while the family moved on.
            target = self.scoped_revision(_family(str(service["taskDefinition"])), run_id)
            if service["taskDefinition"] != target or int(service.get("desiredCount", 0)) != 1:
                _call(f"ecs:UpdateService {name}", partial(ecs.update_service, cluster=cluster, service=name,
                                                           taskDefinition=target, desiredCount=1))
                if progress:
                    progress(f"service {name}: desired 1, task definition {target.rsplit('/', 1)[-1]}")
        state: PackState | None = None

        def ready() -> tuple[bool, str]:
            nonlocal state
            state = self.pack_state(pack)
            waiting = [p.service or p.name for p in state.processes if p.status != "RUNNING"]
            line = f"pack {pack}: {state.running_count}/{len(state.processes)} running"
            return state.running and state.run_scope == run_id, line + (f" (waiting: {', '.join(waiting)})" if waiting else "")

        self._wait(f"pack {pack}", timeout, ready, progress, "ECS_SERVICE_NOT_RUNNING",
                   f"look at the services' events in cluster {cluster} (`aws ecs describe-services`)")
        assert state is not None
        return state

    def stop_pack(self, pack: str, *, timeout: float = 600.0) -> bool:
        """Scale every service of the pack to 0 and wait until none runs; False if all were at 0."""
        ecs = self.clients.client("ecs")
        cluster = self.cluster
        changed = False
        for _, name in self.pack_services(pack):
            service = self._service(name)
            if int(service.get("desiredCount", 0)) or int(service.get("runningCount", 0)):
                changed = True
                _call(f"ecs:UpdateService {name}", partial(ecs.update_service, cluster=cluster, service=name, desiredCount=0))

        def drained() -> tuple[bool, str]:
            counts = {name: int(self._service(name).get("runningCount", 0)) for _, name in self.pack_services(pack)}
            busy = [f"{n}={c}" for n, c in counts.items() if c]
            return not busy, f"pack {pack}: running {', '.join(busy) or 'none'}"

        self._wait(f"stopping pack {pack}", timeout, drained, None, "ECS_SERVICE_STOP_TIMEOUT",
                   f"look at the services in cluster {cluster}; scale them to 0 by hand")
        return changed
