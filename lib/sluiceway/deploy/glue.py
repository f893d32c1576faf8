"""`sluiceway deploy glue`: upload an artifact set, create or update the Glue job, run it.

The job runs jobs/glue_batch.py with the set's zip on --extra-py-files and its jars on
--extra-jars (a stream set: a streaming job of jobs/glue_stream.py, see stream_jobs.py).
Glue's own job bookmarks are off: Sluiceway's watermarks do that work on every platform,
and two bookmark systems would disagree. One run at a time
(MaxConcurrentRuns 1), because two runs of one pipeline would race on its watermarks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sluiceway.deploy.aws import (
    AwsClients,
    RunResult,
    Uploaded,
    aws_call,
    aws_lookup,
    check_bucket,
    follow_run,
    role_arn,
    upload_artifacts,
)
from sluiceway.deploy.cluster_spec import deployed_spec, location_arguments
from sluiceway.deploy.iceberg import (
    Conf,
    glue_iceberg_arguments,
    iceberg_job_conf,
)
from sluiceway.deploy.network import Network, ensure_glue_network_connection
from sluiceway.deploy.package import GLUE_SCRIPT, JOB_SCRIPTS, PYFILES, SPEC, ArtifactSet
from sluiceway.deploy.stream_jobs import (
    GLUE_STREAMING_COMMAND,
    deployed_stream_spec,
    stream_arguments,
)
from sluiceway.deploy.targets import check_glue_version
from sluiceway.errors import DeployError

# Glue version -> what it runs; both are lines Sluiceway is tested on (PySpark 3.5 / 4.1).
GLUE_VERSIONS = {"5.1": "Spark 3.5.6, Python 3.11", "6.0": "Spark 4.1.1, Python 3.13"}
RUN_STATES_DONE = ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR", "EXPIRED")
_JOB_NAME = re.compile(r"^[\w.-]{1,255}$")
_WORKER_TYPE = re.compile(r"^[GRZ]\.\d+X$")
# Glue writes a run's driver stderr to this log group, in a stream named after the run.
ERROR_LOG_GROUP = "/aws-glue/jobs/error"


@dataclass(frozen=True)
class GlueJobOptions:
    job_name: str
    role: str  # IAM role name or ARN
    bucket: str  # artifacts and the job's TempDir go here
    prefix: str = "sluiceway"
    glue_version: str = "5.1"
    worker_type: str = "G.1X"
    workers: int = 2
    timeout_minutes: int | None = None  # None: 120 for a batch job, none for a stream
    max_retries: int = 0
    connections: tuple[str, ...] = ()  # Glue connections, e.g. the VPC path to RDS
    output: str | None = None  # the run's --output override (an s3:// URI)
    state: str | None = None  # the run's --state override (an s3:// URI)
    checkpoint: str | None = None  # a stream's --checkpoint override (an s3:// URI)
    network: Network = Network()  # a NETWORK connection to create or reuse and attach
    network_connection: str | None = None  # its name (default: <job name>-network)

    @property
    def network_connection_name(self) -> str | None:
        if not self.network.given:
            return None
        return self.network_connection or f"{self.job_name}-network"

    @property
    def attached_connections(self) -> tuple[str, ...]:
        """`--connection`s, then the NETWORK connection made from `--subnet`, if any."""
        made = self.network_connection_name
        return (*self.connections, *([made] if made and made not in self.connections else []))

    def validate(self) -> None:
        if not _JOB_NAME.match(self.job_name):
            raise DeployError(f"--job-name {self.job_name!r}: letters, digits, . _ - only")
        self.network.validate()
        if self.network_connection and not self.network.given:
            raise DeployError("--network-connection names the connection --subnet creates")
        if self.glue_version not in GLUE_VERSIONS:
            raise DeployError(
                f"--glue-version {self.glue_version}: must be one of {', '.join(GLUE_VERSIONS)}"
            )
        if not _WORKER_TYPE.match(self.worker_type):
            raise DeployError(f"--worker-type {self.worker_type!r}: expected e.g. G.1X or G.2X")
        if self.workers < 2:
            raise DeployError(f"--workers {self.workers}: a Glue Spark job needs at least 2")
        if self.timeout_minutes is not None and not 1 <= self.timeout_minutes <= 10080:
            raise DeployError(f"--timeout-minutes {self.timeout_minutes}: must be 1..10080")
        if self.max_retries < 0:
            raise DeployError(f"--max-retries {self.max_retries}: must be >= 0")

    @property
    def temp_dir(self) -> str:
        return "/".join(
            p for p in (f"s3://{self.bucket}", self.prefix.strip("/"), "glue-temp/") if p
        )


def job_definition(
    options: GlueJobOptions,
    artifacts: ArtifactSet,
    uploaded: Uploaded,
    role: str,
    iceberg_conf: Conf = (),
) -> dict[str, Any]:
    """The job's full definition: CreateJob's arguments less Name, and UpdateJob's JobUpdate
    (with `iceberg_conf`, Glue's own Iceberg and the catalogs' settings)."""
    stream = artifacts.kind == "stream"
    # A batch set's JDBC drivers; a stream set's MSK IAM login module (a Kinesis one: none).
    jars = {"--extra-jars": ",".join(uploaded.jar_uris)} if uploaded.jar_uris else {}
    if stream:
        kind_arguments = {**stream_arguments(options.output, options.checkpoint), **jars}
    else:
        kind_arguments = {
            "--full_refresh": "false",
            **jars,
            **glue_iceberg_arguments(iceberg_conf),
            **location_arguments(options.output, options.state),
        }
    timeout = options.timeout_minutes if stream else (options.timeout_minutes or 120)
    definition: dict[str, Any] = {
        "Description": (
            f"Sluiceway pipeline {artifacts.pipeline} "
            f"(sluiceway {artifacts.version}, build {artifacts.build})"
        ),
        "Role": role,
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "Command": {
            "Name": GLUE_STREAMING_COMMAND if stream else "glueetl",
            "ScriptLocation": uploaded.uri(GLUE_SCRIPT),
            "PythonVersion": "3",
        },
        "DefaultArguments": {
            "--spec": uploaded.uri(SPEC),
            "--extra-py-files": uploaded.uri(PYFILES),
            "--TempDir": options.temp_dir,
            "--enable-metrics": "true",
            # Glue 5.x logs in real time anyway; the flag keeps the intent explicit.
            "--enable-continuous-cloudwatch-log": "true",
            "--job-bookmark-option": "job-bookmark-disable",
            "--job-language": "python",
            **kind_arguments,
        },
        "MaxRetries": options.max_retries,
        "GlueVersion": options.glue_version,
        "WorkerType": options.worker_type,
        "NumberOfWorkers": options.workers,
    }
    if timeout is not None:
        definition["Timeout"] = timeout
    if options.attached_connections:
        definition["Connections"] = {"Connections": list(options.attached_connections)}
    return definition


@dataclass(frozen=True)
class GlueDeployment:
    job_name: str
    action: str  # "created" | "updated"
    definition: dict[str, Any]
    uploaded: Uploaded


def _existing_job(clients: AwsClients, job_name: str) -> dict[str, Any] | None:
    found = aws_lookup(
        f"Glue job {job_name}",
        clients.glue.get_job,
        missing=("EntityNotFoundException",),
        JobName=job_name,
    )
    return dict(found["Job"]) if found is not None else None


def deploy_glue_job(
    clients: AwsClients, artifacts: ArtifactSet, options: GlueJobOptions
) -> GlueDeployment:
    """Upload the set and create the job, or update it in place if it exists."""
    options.validate()
    check_glue_version(artifacts.built_for, options.glue_version)
    iceberg_conf, spec_connections = _checked_spec(artifacts, options)
    # A spec's glue_connection is also the job's way into the VPC: it is attached too.
    connections = tuple(dict.fromkeys((*options.connections, *spec_connections)))
    options = replace(options, connections=connections)
    for name in connections:
        if name != options.network_connection_name:  # that one is made below if missing
            _check_connection_exists(clients, name)
    check_bucket(clients, options.bucket)
    role = role_arn(clients, options.role, "Glue job")
    existing = _existing_job(clients, options.job_name)
    if existing is not None:
        script = existing.get("Command", {}).get("ScriptLocation", "")
        ours = [f"/jobs/{scripts[GLUE_SCRIPT]}" for scripts in JOB_SCRIPTS.values()]
        if not script.endswith(tuple(ours)):
            # Never overwrite a job someone else owns because its name matched.
            raise DeployError(
                f"Glue job {options.job_name} exists but is not a Sluiceway job "
                f"(script {script or 'none'}); choose another --job-name"
            )
    if options.network_connection_name:
        ensure_glue_network_connection(clients, options.network_connection_name, options.network)
    uploaded = upload_artifacts(clients, artifacts, options.bucket, options.prefix)
    definition = job_definition(options, artifacts, uploaded, role, iceberg_conf)
    if existing is None:
        aws_call(
            f"create Glue job {options.job_name}",
            clients.glue.create_job,
            Name=options.job_name,
            **definition,
        )
        return GlueDeployment(options.job_name, "created", definition, uploaded)
    aws_call(
        f"update Glue job {options.job_name}",
        clients.glue.update_job,
        JobName=options.job_name,
        JobUpdate=definition,
    )
    return GlueDeployment(options.job_name, "updated", definition, uploaded)


def _checked_spec(artifacts: ArtifactSet, options: GlueJobOptions) -> tuple[Conf, tuple[str, ...]]:
    """Check the set's spec for Glue (before anything is uploaded); a batch spec's Iceberg
    settings and the Glue connections its database connections read their logins from."""
    if artifacts.kind == "stream":
        if options.state is not None:
            raise DeployError("--state: a stream keeps its state in --checkpoint")
        deployed_stream_spec(
            artifacts, "a Glue job", options.output, options.checkpoint, on_glue=True
        )
        return (), ()
    if options.checkpoint is not None:
        raise DeployError("--checkpoint: only a stream has one (a pipeline has --state)")
    spec = deployed_spec(artifacts, "a Glue job", options.output, options.state)
    glue_connections = tuple(
        conn.glue_connection for conn in spec.connections.values() if conn.glue_connection
    )
    return iceberg_job_conf(spec), glue_connections


def _check_connection_exists(clients: AwsClients, name: str) -> None:
    """Glue accepts a job naming a connection that does not exist; its run would not start."""
    found = aws_lookup(
        f"Glue connection {name}",
        clients.glue.get_connection,
        missing=("EntityNotFoundException",),
        Name=name,
        HidePassword=True,
    )
    if found is None:
        raise DeployError(f"Glue connection {name} does not exist (create it, or fix its name)")


def start_glue_run(clients: AwsClients, job_name: str, full_refresh: bool = False) -> str:
    arguments = {"--full_refresh": "true"} if full_refresh else {}
    response = aws_call(
        f"start Glue job {job_name}",
        clients.glue.start_job_run,
        JobName=job_name,
        Arguments=arguments,
    )
    return str(response["JobRunId"])


def wait_glue_run(
    clients: AwsClients,
    job_name: str,
    run_id: str,
    on_state: Callable[[str, float], None] | None = None,
    poll_seconds: float = 15.0,
    max_wait_seconds: float | None = None,
    until: tuple[str, ...] = RUN_STATES_DONE,
) -> RunResult:
    """Poll the run until it reaches a state in `until` (by default, until it ends: a
    stream's caller adds RUNNING); `on_state(state, elapsed)` hears each new state."""

    def poll() -> tuple[str, str | None]:
        run = aws_call(
            f"Glue job {job_name} run {run_id}",
            clients.glue.get_job_run,
            JobName=job_name,
            RunId=run_id,
        )["JobRun"]
        return str(run["JobRunState"]), run.get("ErrorMessage")

    what = f"Glue job {job_name} run {run_id}"
    return follow_run(what, poll, until, on_state, poll_seconds, max_wait_seconds)


def glue_log_tail(clients: AwsClients, run_id: str, lines: int = 40) -> list[str] | None:
    """The end of the run's driver stderr in CloudWatch Logs; None if there is none yet."""
    found = aws_lookup(
        f"CloudWatch Logs {ERROR_LOG_GROUP}/{run_id}",
        clients.logs.get_log_events,
        missing=("ResourceNotFoundException",),
        logGroupName=ERROR_LOG_GROUP,
        logStreamName=run_id,
        startFromHead=False,
        limit=lines,
    )
    if found is None:
        return None
    return [str(event["message"]).rstrip("\n") for event in found["events"]]
