"""`sluiceway submit emr`: upload an artifact set and start a job run on EMR Serverless.

The run's driver is jobs/emr_batch.py with the set's zip on --py-files and its jars on
--jars (a stream set: a STREAMING-mode run of jobs/emr_stream.py, see stream_jobs.py).
Logs go to S3 (monitoringConfiguration), where a failed run's driver stderr is read back:
<logUri>/applications/<app>/jobs/<run>/SPARK_DRIVER/stderr.gz.
"""

from __future__ import annotations

import re
import shlex
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sluiceway.deploy.aws import (
    AwsClients,
    RunResult,
    Uploaded,
    aws_call,
    aws_lookup,
    check_bucket,
    error_code,
    follow_run,
    role_arn,
    s3_tail,
    upload_artifacts,
)
from sluiceway.deploy.cluster_spec import deployed_spec, location_arguments
from sluiceway.deploy.iceberg import EMR_ICEBERG_JAR, Conf, iceberg_job_conf
from sluiceway.deploy.network import Network
from sluiceway.deploy.package import EMR_ENTRYPOINT, PYFILES, SPEC, ArtifactSet
from sluiceway.deploy.stream_jobs import (
    EMR_KINESIS_CONNECTOR_JAR,
    EMR_STREAMING_MODE,
    deployed_stream_spec,
    source_kind,
    stream_arguments,
)
from sluiceway.deploy.targets import check_release_label
from sluiceway.errors import DeployError

# Release labels for an application created on demand, by Spark line.
RELEASE_LABELS = {"3.5": "emr-7.11.0", "4.0": "emr-spark-8.0.0"}
# The Spark line of a set's EMR target (deploy/targets.py): an application created for it.
TARGET_LINES = {"emr-7": "3.5", "emr-spark-8": "4.0"}
# How jobs/emr_stream.py reads Kinesis: EMR's aws-kinesis connector (7.1+), or the
# project's Python data source ("python", Spark >= 4.0 only).
STREAM_READERS = ("aws-kinesis", "python")
# EMR 7.x images default to Python 3.9; Sluiceway needs 3.11 (tomllib, datetime.UTC).
DEFAULT_PYTHON = "/usr/bin/python3.11"
RUN_STATES_DONE = ("SUCCESS", "FAILED", "CANCELLED")
_SUPPORTED_RELEASE = re.compile(r"^emr-(7\.\d+\.\d+|spark-\d+\.\d+\.\d+)(-.*)?$")
_APPLICATION_ID = re.compile(r"^[0-9a-z]{16}$")
_CONF_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class EmrSubmitOptions:
    application: str  # id or name
    role: str  # execution role name or ARN
    bucket: str  # artifacts and logs go here
    prefix: str = "sluiceway"
    create_application: bool = False
    spark: str = "3.5"  # the line of an application created on demand
    release_label: str | None = None  # overrides RELEASE_LABELS[spark]
    python: str = DEFAULT_PYTHON
    timeout_minutes: int | None = None  # None: 120 for a batch run, none for a stream
    full_refresh: bool = False
    client_token: str | None = None
    spark_conf: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    output: str | None = None  # the run's --output override (an s3:// URI)
    state: str | None = None  # the run's --state override (an s3:// URI)
    network: Network = Network()  # the VPC of a new application
    checkpoint: str | None = None  # a stream's --checkpoint override (an s3:// URI)
    reader: str = "aws-kinesis"  # a stream's Kinesis reader (STREAM_READERS)

    def validate(self) -> None:
        self.network.validate()
        if self.network.given and not self.create_application:
            raise DeployError(
                "--subnet/--security-group configure an application this command creates: "
                "add --create-application"
            )
        if self.spark not in RELEASE_LABELS:
            raise DeployError(f"--spark {self.spark}: must be one of {', '.join(RELEASE_LABELS)}")
        if self.release_label is not None and not _SUPPORTED_RELEASE.match(self.release_label):
            raise DeployError(
                f"--release-label {self.release_label}: Sluiceway needs emr-7.x (Spark 3.5) "
                "or emr-spark-8.x (Spark 4)"
            )
        # EMR Serverless: at least 5 minutes; from 7.11 at most 7 days and never 0.
        if self.timeout_minutes is not None and not 5 <= self.timeout_minutes <= 10080:
            raise DeployError(f"--timeout-minutes {self.timeout_minutes}: must be 5..10080")
        if not self.python.startswith("/") and not self.python.startswith("./"):
            raise DeployError(f"--python {self.python!r}: give the interpreter's path")
        version = re.search(r"python(\d+)\.(\d+)$", self.python)
        if version and (int(version[1]), int(version[2])) < (3, 11):
            raise DeployError(f"--python {self.python}: Sluiceway needs Python 3.11 or newer")
        if self.reader not in STREAM_READERS:
            raise DeployError(f"--reader {self.reader}: must be one of {', '.join(STREAM_READERS)}")
        if self.client_token is not None and not 1 <= len(self.client_token) <= 64:
            raise DeployError("--client-token: 1 to 64 characters")
        for key, value in self.spark_conf:
            if not _CONF_KEY.match(key) or not value:
                raise DeployError(f"--conf {key}={value}: expected KEY=VALUE")

    @property
    def log_uri(self) -> str:
        return "/".join(
            p for p in (f"s3://{self.bucket}", self.prefix.strip("/"), "emr-logs/") if p
        )


@dataclass(frozen=True)
class Application:
    id: str
    name: str
    release_label: str
    state: str
    created: bool


def _check_application(app: dict[str, Any], given: str) -> None:
    label = str(app.get("releaseLabel", ""))
    if app.get("state") in ("TERMINATED", "TERMINATING"):
        raise DeployError(f"EMR Serverless application {given} is {app['state']}")
    if str(app.get("type", "")).upper() != "SPARK":
        raise DeployError(f"EMR Serverless application {given} is a {app.get('type')} application")
    if not _SUPPORTED_RELEASE.match(label):
        raise DeployError(
            f"EMR Serverless application {given} runs {label}; Sluiceway needs emr-7.x "
            "(Spark 3.5) or emr-spark-8.x (Spark 4)"
        )


def _check_network(app: dict[str, Any], given: str, network: Network) -> None:
    """An existing application keeps its network: refuse `--subnet`s it does not have."""
    if not network.given:
        return
    have = app.get("networkConfiguration") or {}
    same = sorted(have.get("subnetIds", [])) == sorted(network.subnets) and sorted(
        have.get("securityGroupIds", [])
    ) == sorted(network.security_groups)
    if not same:
        raise DeployError(
            f"EMR Serverless application {given} exists with network {have or 'none'}; "
            "--subnet/--security-group do not change it (update the application, or name a "
            "new one)"
        )


def _application_from(app: dict[str, Any], created: bool) -> Application:
    return Application(
        str(app["applicationId"]),
        str(app.get("name", "")),
        str(app["releaseLabel"]),
        str(app.get("state", "")),
        created,
    )


def resolve_application(clients: AwsClients, options: EmrSubmitOptions) -> Application:
    """The application named or identified by `options.application`, created if asked."""
    from botocore.exceptions import BotoCoreError, ClientError

    given = options.application
    if _APPLICATION_ID.match(given):
        found = aws_lookup(
            f"EMR Serverless application {given}",
            clients.emr.get_application,
            missing=("ResourceNotFoundException",),
            applicationId=given,
        )
        if found is not None:
            _check_application(found["application"], given)
            _check_network(found["application"], given, options.network)
            return _application_from(found["application"], created=False)
    paginator = clients.emr.get_paginator("list_applications")
    matches = []
    try:
        for page in paginator.paginate():
            matches += [
                a
                for a in page["applications"]
                if a.get("name") == given and a["state"] != "TERMINATED"
            ]
    except ClientError as exc:
        raise DeployError(f"EMR Serverless applications: {error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise DeployError(f"EMR Serverless applications: {exc}") from exc
    if len(matches) > 1:
        ids = ", ".join(a["id"] for a in matches)
        raise DeployError(
            f"EMR Serverless application name {given} is ambiguous ({ids}); give the id"
        )
    if matches:
        app = aws_call(
            f"EMR Serverless application {given}",
            clients.emr.get_application,
            applicationId=matches[0]["id"],
        )["application"]
        _check_application(app, given)
        _check_network(app, given, options.network)
        return _application_from(app, created=False)
    label = options.release_label or RELEASE_LABELS[options.spark]
    if not options.create_application:
        raise DeployError(
            f"EMR Serverless application {given} not found "
            f"(add --create-application to create it with release {label})"
        )
    if _APPLICATION_ID.match(given):
        raise DeployError(f"EMR Serverless application {given} not found (ids cannot be created)")
    created = aws_call(
        f"create EMR Serverless application {given}",
        clients.emr.create_application,
        name=given,
        releaseLabel=label,
        type="SPARK",
        **(
            {"networkConfiguration": options.network.emr_configuration()}
            if options.network.given
            else {}
        ),
    )
    app = aws_call(
        f"EMR Serverless application {given}",
        clients.emr.get_application,
        applicationId=created["applicationId"],
    )["application"]
    return _application_from(app, created=True)


def spark_submit_parameters(
    options: EmrSubmitOptions,
    uploaded: Uploaded,
    iceberg_conf: Conf = (),
    platform_jars: tuple[str, ...] = (),
) -> str:
    """--py-files, --jars and the driver/executor environment, as one string; with
    `iceberg_conf`, the platform's Iceberg runtime on --jars and the settings as --conf;
    `platform_jars` (paths on EMR's image) go on --jars too."""
    conf = [
        # The Python that runs the driver and the executors' Python workers.
        ("spark.emr-serverless.driverEnv.PYSPARK_PYTHON", options.python),
        ("spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON", options.python),
        ("spark.executorEnv.PYSPARK_PYTHON", options.python),
        # The JDBC drivers take their session time zone from the JVM's; see sources/jdbc.py.
        ("spark.emr-serverless.driverEnv.TZ", "UTC"),
        ("spark.executorEnv.TZ", "UTC"),
        *iceberg_conf,
        *options.spark_conf,
    ]
    jar_uris = [
        *uploaded.jar_uris,
        *([EMR_ICEBERG_JAR] if iceberg_conf else []),
        *platform_jars,
    ]
    parts = ["--py-files", uploaded.uri(PYFILES)]
    if jar_uris:
        parts += ["--jars", ",".join(jar_uris)]
    for key, value in conf:
        parts += ["--conf", f"{key}={value}"]
    return shlex.join(parts)


def start_job_run_request(
    options: EmrSubmitOptions,
    artifacts: ArtifactSet,
    uploaded: Uploaded,
    application_id: str,
    execution_role: str,
    client_token: str,
    iceberg_conf: Conf = (),
) -> dict[str, Any]:
    """StartJobRun's full request (a stream set's: a STREAMING-mode run of its stream)."""
    if artifacts.kind == "stream":
        return _stream_request(options, artifacts, uploaded, application_id, execution_role) | {
            "clientToken": client_token
        }
    arguments = ["--spec", uploaded.uri(SPEC)]
    for key, value in location_arguments(options.output, options.state).items():
        arguments += [key, value]
    if options.full_refresh:
        arguments.append("--full-refresh")
    return {
        "applicationId": application_id,
        "clientToken": client_token,
        "executionRoleArn": execution_role,
        "name": f"sluiceway-{artifacts.pipeline}",
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": uploaded.uri(EMR_ENTRYPOINT),
                "entryPointArguments": arguments,
                "sparkSubmitParameters": spark_submit_parameters(options, uploaded, iceberg_conf),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": options.log_uri}}
        },
        "executionTimeoutMinutes": options.timeout_minutes or 120,
        "tags": {"sluiceway:pipeline": artifacts.pipeline, "sluiceway:build": artifacts.name},
    }


def _stream_request(
    options: EmrSubmitOptions,
    artifacts: ArtifactSet,
    uploaded: Uploaded,
    application_id: str,
    execution_role: str,
) -> dict[str, Any]:
    """StartJobRun for a stream: jobs/emr_stream.py SPEC --reader R, in STREAMING mode."""
    arguments = [uploaded.uri(SPEC), "--reader", options.reader]
    for key, value in stream_arguments(options.output, options.checkpoint).items():
        arguments += [key, value]
    # EMR's Kinesis connector for a Kinesis stream; a Kafka one has Spark's in the set's jars.
    kinesis = options.reader == "aws-kinesis" and source_kind(artifacts) == "kinesis"
    connector = (EMR_KINESIS_CONNECTOR_JAR,) if kinesis else ()
    request: dict[str, Any] = {
        "applicationId": application_id,
        "executionRoleArn": execution_role,
        "name": f"sluiceway-{artifacts.pipeline}",
        "mode": EMR_STREAMING_MODE,
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": uploaded.uri(EMR_ENTRYPOINT),
                "entryPointArguments": arguments,
                "sparkSubmitParameters": spark_submit_parameters(
                    options, uploaded, platform_jars=connector
                ),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": options.log_uri}}
        },
        "tags": {"sluiceway:pipeline": artifacts.pipeline, "sluiceway:build": artifacts.name},
    }
    if options.timeout_minutes is not None:
        request["executionTimeoutMinutes"] = options.timeout_minutes
    return request


@dataclass(frozen=True)
class EmrSubmission:
    application: Application
    run_id: str
    request: dict[str, Any]
    uploaded: Uploaded

    @property
    def client_token(self) -> str:
        return str(self.request["clientToken"])


def new_client_token() -> str:
    return f"sluiceway-{uuid.uuid4().hex}"


def submit_emr_job(
    clients: AwsClients, artifacts: ArtifactSet, options: EmrSubmitOptions
) -> EmrSubmission:
    """Check the bucket, role and application, upload the set, start one job run.

    The clientToken makes StartJobRun idempotent: botocore's own retries, and a rerun of
    the command with --client-token, return the run already started instead of a second.
    """
    options.validate()
    iceberg_conf = _checked_spec_conf(artifacts, options)
    built_for = artifacts.built_for
    if built_for is not None and built_for.name in TARGET_LINES and options.release_label is None:
        options = replace(options, spark=TARGET_LINES[built_for.name])
    if options.create_application:  # never create an application the set cannot run on
        planned = options.release_label or RELEASE_LABELS[options.spark]
        check_release_label(built_for, planned, options.application)
    check_bucket(clients, options.bucket)
    role = role_arn(clients, options.role, "EMR Serverless execution")
    application = resolve_application(clients, options)
    check_release_label(built_for, application.release_label, options.application)
    python_reader = artifacts.kind == "stream" and options.reader == "python"
    if python_reader and application.release_label.startswith("emr-7."):
        raise DeployError(
            f"--reader python: EMR Serverless application {options.application} runs "
            f"{application.release_label} (Spark 3.5), which has no Python data sources; "
            "use --reader aws-kinesis"
        )
    uploaded = upload_artifacts(clients, artifacts, options.bucket, options.prefix)
    request = start_job_run_request(
        options,
        artifacts,
        uploaded,
        application.id,
        role,
        options.client_token or new_client_token(),
        iceberg_conf,
    )
    response = aws_call(
        f"start a job run on EMR Serverless application {application.id}",
        clients.emr.start_job_run,
        **request,
    )
    return EmrSubmission(application, str(response["jobRunId"]), request, uploaded)


def _checked_spec_conf(artifacts: ArtifactSet, options: EmrSubmitOptions) -> Conf:
    """Check the set's spec for EMR Serverless (before anything is uploaded); the Iceberg
    settings of a batch spec."""
    platform = "an EMR Serverless job run"
    if artifacts.kind == "stream":
        if options.state is not None or options.full_refresh:
            raise DeployError("--state/--full-refresh: a stream keeps its state in --checkpoint")
        deployed_stream_spec(artifacts, platform, options.output, options.checkpoint, on_glue=False)
        return ()
    if options.checkpoint is not None:
        raise DeployError("--checkpoint: only a stream has one (a pipeline has --state)")
    return iceberg_job_conf(deployed_spec(artifacts, platform, options.output, options.state))


def wait_emr_run(
    clients: AwsClients,
    application_id: str,
    run_id: str,
    on_state: Callable[[str, float], None] | None = None,
    poll_seconds: float = 15.0,
    max_wait_seconds: float | None = None,
    until: tuple[str, ...] = RUN_STATES_DONE,
) -> RunResult:
    """Poll the job run until it reaches a state in `until` (by default, until it ends: a
    stream's caller adds RUNNING); `on_state(state, elapsed)` hears each new state."""

    def poll() -> tuple[str, str | None]:
        run = aws_call(
            f"EMR Serverless job run {run_id}",
            clients.emr.get_job_run,
            applicationId=application_id,
            jobRunId=run_id,
        )["jobRun"]
        return str(run["state"]), run.get("stateDetails") or None

    what = f"EMR Serverless job run {run_id}"
    return follow_run(what, poll, until, on_state, poll_seconds, max_wait_seconds)


def driver_log_uri(log_uri: str, application_id: str, run_id: str, stream: str = "stderr") -> str:
    """Where EMR Serverless puts the driver's `stream` (stderr or stdout) under logUri."""
    base = f"{log_uri.rstrip('/')}/applications/{application_id}/jobs/{run_id}"
    return f"{base}/SPARK_DRIVER/{stream}.gz"


def driver_log_tail(
    clients: AwsClients,
    uri: str,
    lines: int = 40,
    attempts: int = 4,
    delay_seconds: float = 5.0,
) -> list[str] | None:
    """The end of the driver's stderr; logs land a little after the run ends, so retry."""
    for attempt in range(attempts):
        tail = s3_tail(clients, uri, lines)
        if tail is not None:
            return tail
        if attempt + 1 < attempts:
            time.sleep(delay_seconds)
    return None


def parse_conf(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """KEY=VALUE strings from --conf into pairs."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise DeployError(f"--conf {item}: expected KEY=VALUE")
        pairs.append((key.strip(), value))
    return tuple(pairs)
