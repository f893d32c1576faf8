"""`sluiceway deploy glue` and `sluiceway submit emr` against moto_server (AWS_ENDPOINT_URL).

Every request goes over HTTP to moto. Where moto falls short the test says so: Glue
UpdateJob is not implemented (tests/integration/aws.py shims it), a Glue run cannot be
moved to FAILED, and an EMR Serverless job run is SUCCESS from the start, so those run
states come from a scripted client (ScriptedRuns) that passes every other call to moto.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import shlex
import time
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from sluiceway import cli
from sluiceway.deploy.aws import AwsClients
from sluiceway.deploy.emr import EmrSubmitOptions, driver_log_uri, submit_emr_job
from sluiceway.deploy.glue import GlueJobOptions, deploy_glue_job
from sluiceway.deploy.network import Network
from sluiceway.deploy.package import ArtifactSet, build_artifacts
from sluiceway.errors import DeployError, SpecError
from sluiceway.runtimes.spec_location import read_spec_location

from .aws import (
    ScriptedRuns,
    add_update_job_shim,
    create_role,
    glue_run_transition,
    moto_endpoint,
    record_calls,
    unique,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO_SPEC = ROOT / "pipelines" / "tpch_demo.toml"


# The demo's Iceberg tables are in its default hadoop catalog at <output>/warehouse, which a
# deployed job must find on S3: the demo spec is deployed with its output there.
DEMO_OUTPUT = "s3://lake/tpch_demo"
DEMO_ICEBERG_CONF = [
    "spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    "spark.sql.catalog.lake=org.apache.iceberg.spark.SparkCatalog",
    f"spark.sql.catalog.lake.warehouse={DEMO_OUTPUT}/warehouse",
    "spark.sql.catalog.lake.type=hadoop",
]


def deployable_demo(text: str) -> str:
    """The demo spec as a cluster can run it: output on S3, password and salt from Secrets
    Manager (a Glue or EMR job has no environment variables for them)."""
    for old, new in [
        ('output = "out/tpch_demo"', f'output = "{DEMO_OUTPUT}"'),
        ('password_env = "SLUICEWAY_TPCH_PASSWORD"', 'secret_id = "sluiceway/tpch"'),
        ('hash_salt_env = "SLUICEWAY_HASH_SALT"', 'hash_salt_secret_id = "sluiceway/salt"'),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> ArtifactSet:
    spec = tmp_path_factory.mktemp("spec") / DEMO_SPEC.name
    spec.write_text(deployable_demo(DEMO_SPEC.read_text()))
    return build_artifacts(spec, tmp_path_factory.mktemp("dist"))


@pytest.fixture
def aws() -> AwsClients:
    moto_endpoint()
    return AwsClients()


@pytest.fixture
def bucket(aws):
    name = unique("sluiceway-art")
    aws.s3.create_bucket(Bucket=name)
    yield name
    # moto_server outlives the test session: leave no artifact sets behind in its memory.
    s3 = boto3.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def glue_role(aws) -> str:
    return create_role(unique("glue-role"), "glue.amazonaws.com")


@pytest.fixture
def emr_role(aws) -> str:
    return create_role(unique("emr-role"), "emr-serverless.amazonaws.com")


@pytest.fixture
def run_cli(aws, monkeypatch, capsys):
    """`sluiceway ...` in-process, with the test's clients; returns (code, stdout, stderr)."""
    monkeypatch.setattr(cli, "aws_clients", lambda: aws)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def glue_job_names(aws) -> list[str]:
    """Every Glue job's name: ListJobs answers a page at a time (the shared moto server
    keeps the jobs of earlier tests)."""
    pages = aws.glue.get_paginator("list_jobs").paginate()
    return [name for page in pages for name in page["JobNames"]]


def base_uri(bucket: str, artifacts: ArtifactSet) -> str:
    return f"s3://{bucket}/sluiceway/artifacts/{artifacts.pipeline}/{artifacts.name}"


def expected_glue_definition(bucket: str, artifacts: ArtifactSet, role: str) -> dict:
    base = base_uri(bucket, artifacts)
    return {
        "Description": (
            f"Sluiceway pipeline tpch_demo (sluiceway {artifacts.version}, build {artifacts.build})"
        ),
        "Role": role,
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "Command": {
            "Name": "glueetl",
            "ScriptLocation": f"{base}/jobs/glue_batch.py",
            "PythonVersion": "3",
        },
        "DefaultArguments": {
            "--spec": f"{base}/pipelines/tpch_demo.toml",
            "--full_refresh": "false",
            "--extra-py-files": f"{base}/sluiceway-{artifacts.version}.zip",
            "--extra-jars": f"{base}/jars/postgresql-42.7.14.jar,{base}/jars/mysql-connector-j-9.7.0.jar,"
            f"{base}/jars/redshift-jdbc42-2.3.0.jar",
            "--TempDir": f"s3://{bucket}/sluiceway/glue-temp/",
            "--enable-metrics": "true",
            "--enable-continuous-cloudwatch-log": "true",
            "--job-bookmark-option": "job-bookmark-disable",
            "--job-language": "python",
            "--datalake-formats": "iceberg",
            "--conf": " --conf ".join(DEMO_ICEBERG_CONF),
        },
        "MaxRetries": 0,
        "Timeout": 120,
        "GlueVersion": "5.1",
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
    }


# ---------------------------------------------------------------------------------------
# Glue


def test_deploy_glue_creates_the_job_with_exact_arguments_and_uploads_the_set(
    aws, artifacts, bucket, glue_role
):
    calls = record_calls(aws.glue)
    job = unique("tpch")
    role_name = glue_role.rsplit("/", 1)[1]  # a name is enough; the deploy looks up the ARN
    deployment = deploy_glue_job(
        aws, artifacts, GlueJobOptions(job_name=job, role=role_name, bucket=bucket)
    )

    expected = expected_glue_definition(bucket, artifacts, glue_role)
    assert deployment.action == "created"
    assert calls == [("GetJob", {"JobName": job}), ("CreateJob", {"Name": job, **expected})]
    stored = aws.glue.get_job(JobName=job)["Job"]
    for key, value in expected.items():
        assert stored[key] == value, key
    # Every file of the set is in S3 with its bytes and checksum, and the manifest beside them.
    base = base_uri(bucket, artifacts).removeprefix(f"s3://{bucket}/")
    for item in artifacts.files:
        body = aws.s3.get_object(Bucket=bucket, Key=f"{base}/{item.path}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == item.sha256, item.path
    manifest = json.loads(
        aws.s3.get_object(Bucket=bucket, Key=f"{base}/manifest.json")["Body"].read()
    )
    assert manifest["build"] == artifacts.build


def test_redeploy_updates_the_job_in_place(aws, artifacts, bucket, glue_role):
    add_update_job_shim(aws.glue)
    job = unique("tpch")
    options = GlueJobOptions(job_name=job, role=glue_role, bucket=bucket)
    deploy_glue_job(aws, artifacts, options)
    connection = unique("rds-vpc")
    aws.glue.create_connection(ConnectionInput=network_connection_input(connection))
    calls = record_calls(aws.glue)

    changed = GlueJobOptions(
        job_name=job,
        role=glue_role,
        bucket=bucket,
        glue_version="6.0",
        worker_type="G.2X",
        workers=5,
        connections=(connection,),
    )
    again = deploy_glue_job(aws, artifacts, changed)

    expected = expected_glue_definition(bucket, artifacts, glue_role) | {
        "GlueVersion": "6.0",
        "WorkerType": "G.2X",
        "NumberOfWorkers": 5,
        "Connections": {"Connections": [connection]},
    }
    assert again.action == "updated"
    assert calls == [
        ("GetConnection", {"Name": connection, "HidePassword": True}),
        ("GetJob", {"JobName": job}),
        ("UpdateJob", {"JobName": job, "JobUpdate": expected}),
    ]
    assert again.uploaded.uploaded == 1 and again.uploaded.unchanged == len(artifacts.files)
    names = glue_job_names(aws)
    assert names.count(job) == 1
    stored = aws.glue.get_job(JobName=job)["Job"]
    assert (stored["GlueVersion"], stored["NumberOfWorkers"]) == ("6.0", 5)


def test_deploy_refuses_to_overwrite_a_job_that_is_not_ours(aws, artifacts, bucket, glue_role):
    job = unique("someone-elses")
    aws.glue.create_job(
        Name=job, Role=glue_role, Command={"Name": "glueetl", "ScriptLocation": "s3://x/etl.py"}
    )
    with pytest.raises(DeployError, match=rf"Glue job {job} exists but is not a Sluiceway job"):
        deploy_glue_job(aws, artifacts, GlueJobOptions(job_name=job, role=glue_role, bucket=bucket))
    assert aws.glue.get_job(JobName=job)["Job"]["Command"]["ScriptLocation"] == "s3://x/etl.py"


def test_deploy_glue_run_wait_follows_starting_running_succeeded(
    run_cli, artifacts, bucket, glue_role
):
    job = unique("tpch")
    # moto's state manager: each GetJobRun counts; two of them move the run one state on.
    with glue_run_transition({"progression": "manual", "times": 2}):
        code, out, err = run_cli(
            "deploy", "glue", "--artifacts", str(artifacts.root), "--job-name", job,
            "--role", glue_role, "--bucket", bucket, "--run", "--wait", "--poll-seconds", "0.01",
        )  # fmt: skip
    assert code == 0, err
    assert f"==> Glue job {job} created" in out
    assert "STARTING -> RUNNING -> SUCCEEDED" in out
    assert "SUCCEEDED in" in out


def test_deploy_glue_failed_run_prints_the_error_and_the_driver_log_tail(
    aws, run_cli, artifacts, bucket, glue_role
):
    job = unique("tpch")
    real_glue = boto3.client("glue")
    scripted = ScriptedRuns(
        real_glue,
        "get_job_run",
        [("RUNNING", {}), ("FAILED", {"ErrorMessage": "SystemExit: 1"})],
    )
    aws._cache["glue"] = scripted
    log_lines = ["INFO starting", "sluiceway: error: tables.orders: connection refused"]

    real_start = real_glue.start_job_run

    def start_and_log(**kwargs):
        response = real_start(**kwargs)
        logs = boto3.client("logs")
        group, stream = "/aws-glue/jobs/error", response["JobRunId"]
        now_ms = int(time.time() * 1000)  # CloudWatch (and moto) drop events older than 14 days
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": now_ms + i, "message": m} for i, m in enumerate(log_lines)],
        )
        return response

    real_glue.start_job_run = start_and_log  # the "run" writes its driver log, as Glue would
    code, out, err = run_cli(
        "deploy", "glue", "--artifacts", str(artifacts.root), "--job-name", job,
        "--role", glue_role, "--bucket", bucket, "--run", "--wait", "--poll-seconds", "0.01",
    )  # fmt: skip
    assert code == 1
    assert "RUNNING -> FAILED" in out
    assert "FAILED after" in err and "SystemExit: 1" in err
    assert "sluiceway: error: tables.orders: connection refused" in err
    assert scripted.polls == 2


# ---------------------------------------------------------------------------------------
# EMR Serverless


def expected_start_job_run(bucket, artifacts, app_id, role, token) -> dict:
    base = base_uri(bucket, artifacts)
    python = "/usr/bin/python3.11"
    return {
        "applicationId": app_id,
        "clientToken": token,
        "executionRoleArn": role,
        "name": "sluiceway-tpch_demo",
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": f"{base}/jobs/emr_batch.py",
                "entryPointArguments": ["--spec", f"{base}/pipelines/tpch_demo.toml"],
                "sparkSubmitParameters": (
                    f"--py-files {base}/sluiceway-{artifacts.version}.zip "
                    f"--jars {base}/jars/postgresql-42.7.14.jar,{base}/jars/mysql-connector-j-9.7.0.jar,"
                    f"{base}/jars/redshift-jdbc42-2.3.0.jar,"
                    "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar "
                    f"--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON={python} "
                    f"--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={python} "
                    f"--conf spark.executorEnv.PYSPARK_PYTHON={python} "
                    "--conf spark.emr-serverless.driverEnv.TZ=UTC "
                    "--conf spark.executorEnv.TZ=UTC "
                    + " ".join(f"--conf {conf}" for conf in DEMO_ICEBERG_CONF)
                ),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {
                "s3MonitoringConfiguration": {"logUri": f"s3://{bucket}/sluiceway/emr-logs/"}
            }
        },
        "executionTimeoutMinutes": 120,
        "tags": {"sluiceway:pipeline": "tpch_demo", "sluiceway:build": artifacts.name},
    }


def delete_application(app_id: str) -> None:
    # moto_server outlives the session; only a stopped application can be deleted.
    emr = boto3.client("emr-serverless")
    emr.stop_application(applicationId=app_id)
    emr.delete_application(applicationId=app_id)


def applications_named(aws, name: str) -> list[dict]:
    pages = aws.emr.get_paginator("list_applications").paginate()
    return [a for page in pages for a in page["applications"] if a["name"] == name]


@pytest.fixture
def emr_app(aws):
    app_id = aws.emr.create_application(
        name=unique("sluiceway"), releaseLabel="emr-7.11.0", type="SPARK"
    )["applicationId"]
    yield app_id
    delete_application(app_id)


def test_submit_emr_sends_the_exact_start_job_run_request(
    aws, artifacts, bucket, emr_role, emr_app
):
    calls = record_calls(aws.emr)
    submission = submit_emr_job(
        aws,
        artifacts,
        EmrSubmitOptions(application=emr_app, role=emr_role, bucket=bucket, client_token="retry-1"),
    )

    expected = expected_start_job_run(bucket, artifacts, emr_app, emr_role, "retry-1")
    assert [c for c in calls if c[0] == "StartJobRun"] == [("StartJobRun", expected)]
    stored = aws.emr.get_job_run(applicationId=emr_app, jobRunId=submission.run_id)["jobRun"]
    assert stored["jobDriver"] == expected["jobDriver"]
    assert stored["configurationOverrides"] == expected["configurationOverrides"]
    assert stored["executionRole"] == emr_role
    assert stored["executionTimeoutMinutes"] == 120


def test_each_submit_gets_its_own_client_token_unless_one_is_given(
    aws, artifacts, bucket, emr_role, emr_app
):
    calls = record_calls(aws.emr)
    options = EmrSubmitOptions(application=emr_app, role=emr_role, bucket=bucket)
    submit_emr_job(aws, artifacts, options)
    submit_emr_job(aws, artifacts, options)
    retry = EmrSubmitOptions(application=emr_app, role=emr_role, bucket=bucket, client_token="t-42")
    submit_emr_job(aws, artifacts, retry)
    submit_emr_job(aws, artifacts, retry)
    # moto does not implement clientToken idempotency, so only what we send is checked here:
    # a new token per submission, and the same token whenever a submission is retried.
    tokens = [params["clientToken"] for op, params in calls if op == "StartJobRun"]
    assert tokens[0] != tokens[1] and tokens[0].startswith("sluiceway-")
    assert tokens[2:] == ["t-42", "t-42"]


def test_submit_emr_creates_the_application_on_demand_once(aws, artifacts, bucket, emr_role):
    name = unique("sluiceway-app")
    options = EmrSubmitOptions(
        application=name, role=emr_role, bucket=bucket, create_application=True
    )
    first = submit_emr_job(aws, artifacts, options)
    try:
        second = submit_emr_job(aws, artifacts, options)
        assert first.application.created and not second.application.created
        assert first.application.id == second.application.id
        apps = applications_named(aws, name)  # all pages: moto_server keeps earlier runs' apps
        assert len(apps) == 1
        app = aws.emr.get_application(applicationId=apps[0]["id"])["application"]
        assert (app["releaseLabel"], app["type"].upper()) == ("emr-7.11.0", "SPARK")
    finally:
        delete_application(first.application.id)


@pytest.mark.parametrize(
    ("states", "code", "progress"),
    [
        (
            [("SUBMITTED", {}), ("RUNNING", {}), ("SUCCESS", {})],
            0,
            "SUBMITTED -> RUNNING -> SUCCESS",
        ),
        (
            [
                ("RUNNING", {}),
                ("FAILED", {"stateDetails": "Job failed, please check complete logs"}),
            ],
            1,
            "RUNNING -> FAILED",
        ),
    ],
)
def test_submit_emr_follows_the_run_and_on_failure_prints_the_driver_log_tail(
    aws, run_cli, artifacts, bucket, emr_role, emr_app, states, code, progress
):
    scripted = ScriptedRuns(boto3.client("emr-serverless"), "get_job_run", states)
    aws._cache["emr-serverless"] = scripted
    logs = {
        "stderr": [f"line {i}" for i in range(100)] + ["SparkUserAppException: exited with 1"],
        "stdout": ["summary...", "sluiceway: error: tables.orders: boom"],
    }
    real_start = scripted.start_job_run

    def start_and_log(**kwargs):  # the "run" writes its driver logs, as EMR Serverless would
        response = real_start(**kwargs)
        for stream, lines in logs.items():
            uri = driver_log_uri(
                f"s3://{bucket}/sluiceway/emr-logs/",
                kwargs["applicationId"],
                response["jobRunId"],
                stream,
            )
            key = uri.removeprefix(f"s3://{bucket}/")
            body = gzip.compress(("\n".join(lines) + "\n").encode())
            boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        return response

    scripted._real.start_job_run = start_and_log
    rc, out, err = run_cli(
        "submit", "emr", "--artifacts", str(artifacts.root), "--application", emr_app,
        "--role", emr_role, "--bucket", bucket, "--poll-seconds", "0.01",
    )  # fmt: skip

    assert rc == code, err
    assert progress in out
    if code == 0:
        assert "SUCCESS in" in out and "last 40 lines" not in err
    else:
        assert "FAILED after" in err and "Job failed, please check complete logs" in err
        assert "--- last 40 lines of s3://" in err and "SPARK_DRIVER/stderr.gz ---" in err
        assert "  SparkUserAppException: exited with 1" in err
        assert "line 60\n" not in err and "line 61\n" in err  # the tail, not the whole log
        assert "--- last 2 lines of s3://" in err and "SPARK_DRIVER/stdout.gz ---" in err
        assert "  sluiceway: error: tables.orders: boom" in err


# ---------------------------------------------------------------------------------------
# Missing bucket, role or application: one clear error each, nothing created


def job_runs(aws, app_id: str) -> list:
    # moto answers ResourceNotFound for an application that has never had a run.
    try:
        return aws.emr.list_job_runs(applicationId=app_id)["jobRuns"]
    except aws.emr.exceptions.ResourceNotFoundException:
        return []


@pytest.mark.parametrize(
    ("platform", "missing"),
    [
        ("glue", "bucket"),
        ("glue", "role"),
        ("emr", "bucket"),
        ("emr", "role"),
        ("emr", "application"),
    ],
)
def test_missing_resources_give_one_clear_error_and_create_nothing(
    aws, run_cli, artifacts, bucket, glue_role, emr_role, emr_app, platform, missing
):
    name = unique("missing")
    use_bucket = name if missing == "bucket" else bucket
    role = name if missing == "role" else (glue_role if platform == "glue" else emr_role)
    if platform == "glue":
        argv = ["deploy", "glue", "--artifacts", str(artifacts.root), "--job-name", name,
                "--role", role, "--bucket", use_bucket]  # fmt: skip
    else:
        app = name if missing == "application" else emr_app
        argv = ["submit", "emr", "--artifacts", str(artifacts.root), "--application", app,
                "--role", role, "--bucket", use_bucket]  # fmt: skip
    runs_before = job_runs(aws, emr_app)

    code, out, err = run_cli(*argv)

    expected = {
        "bucket": f"sluiceway: error: S3 bucket {name} does not exist (create it first)",
        "role": f"sluiceway: error: IAM role {name} does not exist",
        "application": f"sluiceway: error: EMR Serverless application {name} not found "
        "(add --create-application to create it with release emr-7.11.0)",
    }[missing]
    errors = [line for line in err.splitlines() if line.startswith("sluiceway: error:")]
    assert code == 1
    assert len(errors) == 1 and errors[0].startswith(expected), err
    assert "Traceback" not in err
    if platform == "glue":
        assert name not in glue_job_names(aws)
    assert job_runs(aws, emr_app) == runs_before
    listed = aws.s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
    assert listed == 0  # nothing uploaded before the checks passed


def test_unreachable_aws_endpoint_is_one_clear_error(monkeypatch, capsys, artifacts):
    # A closed local port: botocore's retries fail fast on connection refused.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code = cli.main(
        ["submit", "emr", "--artifacts", str(artifacts.root), "--application", "a",
         "--role", "r", "--bucket", "b"]
    )  # fmt: skip
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("sluiceway: error:")]
    assert code == 1 and len(errors) == 1, err
    assert errors[0].startswith(
        "sluiceway: error: S3 bucket b: Could not connect to the endpoint URL"
    )


# ---------------------------------------------------------------------------------------
# The job reads its spec from S3 (--spec s3://...)


def test_jobs_read_their_spec_from_s3(aws, bucket):
    text = DEMO_SPEC.read_text()
    aws.s3.put_object(Bucket=bucket, Key="specs/tpch_demo.toml", Body=text.encode())

    spec = read_spec_location(f"s3://{bucket}/specs/tpch_demo.toml", output_root="s3://lake/x")

    assert spec.name == "tpch_demo" and spec.source_file == f"s3://{bucket}/specs/tpch_demo.toml"
    assert spec.output_root == "s3://lake/x"
    assert [t.name for t in spec.tables] == ["nation", "customer", "orders", "lineitem"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "{bucket}/specs/missing.toml",
            "s3://{bucket}/specs/missing.toml: cannot read spec: NoSuchKey",
        ),
        (
            "no-such-bucket-{bucket}/x.toml",
            "s3://no-such-bucket-{bucket}/x.toml: cannot read spec: NoSuchBucket",
        ),
        ("{bucket}", "s3://{bucket}: not an s3://bucket/key URI"),
    ],
)
def test_an_unreadable_spec_location_is_one_clear_error(bucket, where, message):
    with pytest.raises(SpecError) as caught:
        read_spec_location("s3://" + where.format(bucket=bucket))
    assert str(caught.value) == message.format(bucket=bucket)


# ---------------------------------------------------------------------------------------
# A spec with Iceberg sinks: the platform's Iceberg, the catalogs as --conf, no jar, no secret

ICEBERG_PASSWORD = "iceberg-catalog-pw-7f3a"  # the jdbc catalog's password, in the secret only
ICEBERG_SPEC = """
[pipeline]
name = "ice_deploy"
output = "s3://lake/ice_deploy"

[connections.tpch]
engine = "postgresql"
host = "db.example"
database = "tpch"
user = "loader"
secret_id = "SECRET_ID"

[catalogs.lake]
type = "glue"
warehouse = "s3://lake/warehouse"

[catalogs.meta]
type = "jdbc"
connection = "tpch"
warehouse = "s3://lake/meta"

[tables.orders]
table = "public.orders"
primary_key = ["o_orderkey"]
sink = { format = "iceberg", catalog = "lake", table = "tpch.orders" }

[tables.customer]
table = "public.customer"
primary_key = ["c_custkey"]
sink = { format = "iceberg", catalog = "meta", table = "tpch.customer" }
"""
ICEBERG_CONF = [
    "spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    "spark.sql.catalog.lake=org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.lake.warehouse=s3://lake/warehouse",
    "spark.sql.catalog.lake.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog",
    "spark.sql.catalog.lake.io-impl=org.apache.iceberg.aws.s3.S3FileIO",
    "spark.sql.catalog.meta=org.apache.iceberg.spark.SparkCatalog",
    "spark.sql.catalog.meta.warehouse=s3://lake/meta",
    "spark.sql.catalog.meta.catalog-impl=org.apache.iceberg.jdbc.JdbcCatalog",
    "spark.sql.catalog.meta.jdbc.schema-version=V1",
]


@pytest.fixture
def iceberg_secret(aws):
    """The jdbc catalog's login in Secrets Manager (moto): deploy must never copy it out."""
    name = unique("ice-deploy")
    aws_secret = boto3.client("secretsmanager")
    aws_secret.create_secret(Name=name, SecretString=json.dumps({"password": ICEBERG_PASSWORD}))
    yield name
    aws_secret.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def iceberg_artifacts(tmp_path, iceberg_secret) -> ArtifactSet:
    spec = tmp_path / "ice_deploy.toml"
    spec.write_text(ICEBERG_SPEC.replace("SECRET_ID", iceberg_secret), encoding="utf-8")
    return build_artifacts(spec, tmp_path / "dist")


def uploaded_keys(aws, bucket: str) -> list[str]:
    pages = aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_deploy_glue_of_an_iceberg_spec_uses_glues_iceberg_and_chains_the_confs(
    aws, iceberg_artifacts, bucket, glue_role
):
    job = unique("ice")
    deploy_glue_job(
        aws, iceberg_artifacts, GlueJobOptions(job_name=job, role=glue_role, bucket=bucket)
    )

    stored = aws.glue.get_job(JobName=job)["Job"]
    args = stored["DefaultArguments"]
    assert args["--datalake-formats"] == "iceberg"
    assert args["--conf"] == " --conf ".join(ICEBERG_CONF)
    keys = uploaded_keys(aws, bucket)
    assert [k for k in keys if k.endswith(".jar")] and not [k for k in keys if "iceberg" in k]
    assert "iceberg" not in args["--extra-jars"]
    text = json.dumps(stored, default=str)
    assert ICEBERG_PASSWORD not in text and "jdbc.password" not in text and ".uri=" not in text


def test_submit_emr_of_an_iceberg_spec_uses_emrs_iceberg_jar_and_one_conf_each(
    aws, iceberg_artifacts, bucket, emr_role, emr_app
):
    submission = submit_emr_job(
        aws, iceberg_artifacts, EmrSubmitOptions(application=emr_app, role=emr_role, bucket=bucket)
    )

    stored = aws.emr.get_job_run(applicationId=emr_app, jobRunId=submission.run_id)["jobRun"]
    params = shlex.split(stored["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    jars = params[params.index("--jars") + 1].split(",")
    assert jars[-1] == "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
    assert not [j for j in jars[:-1] if "iceberg" in j]
    confs = [params[i + 1] for i, part in enumerate(params) if part == "--conf"]
    assert confs[-len(ICEBERG_CONF) :] == ICEBERG_CONF
    assert not [k for k in uploaded_keys(aws, bucket) if "iceberg" in k]
    text = json.dumps(stored, default=str)
    assert ICEBERG_PASSWORD not in text and "jdbc.password" not in text


@pytest.mark.parametrize("platform", ["glue", "emr"])
def test_a_local_iceberg_warehouse_is_refused_before_anything_is_uploaded(
    aws, run_cli, tmp_path, bucket, glue_role, emr_role, emr_app, platform
):
    spec = tmp_path / "ice_local.toml"
    text = ICEBERG_SPEC.replace("SECRET_ID", "sluiceway/ice")
    spec.write_text(text.replace('"s3://lake/meta"', f'"{tmp_path / "meta"}"'), encoding="utf-8")
    name = unique("ice-local")
    if platform == "glue":
        argv = ["deploy", "glue", str(spec), "--out", str(tmp_path / "dist"), "--job-name", name,
                "--role", glue_role, "--bucket", bucket]  # fmt: skip
    else:
        argv = ["submit", "emr", str(spec), "--out", str(tmp_path / "dist"),
                "--application", emr_app, "--role", emr_role, "--bucket", bucket]  # fmt: skip
    runs_before = job_runs(aws, emr_app)

    code, out, err = run_cli(*argv)

    errors = [line for line in err.splitlines() if line.startswith("sluiceway: error:")]
    assert code == 1 and len(errors) == 1, err
    # The spec is named as packaged: the copy inside the artifact set the job would run.
    assert errors[0].startswith("sluiceway: error: ") and "/pipelines/ice_local.toml: " in errors[0]
    assert f": catalogs.meta.warehouse: '{tmp_path / 'meta'}' is not on S3" in errors[0]
    assert uploaded_keys(aws, bucket) == []
    assert name not in glue_job_names(aws)
    assert job_runs(aws, emr_app) == runs_before


# ---------------------------------------------------------------------------------------
# What a cluster run cannot have: environment variables, a local output or state


@pytest.mark.parametrize("platform", ["glue", "emr"])
def test_a_spec_reading_the_environment_or_writing_locally_is_refused_before_upload(
    aws, run_cli, tmp_path, bucket, glue_role, emr_role, emr_app, platform
):
    # The stock demo spec: password and salt from environment variables, output on disk.
    name = unique("env-local")
    common = [str(DEMO_SPEC), "--out", str(tmp_path / "dist"), "--bucket", bucket]
    if platform == "glue":
        argv = ["deploy", "glue", *common, "--job-name", name, "--role", glue_role]
    else:
        argv = ["submit", "emr", *common, "--application", emr_app, "--role", emr_role]
    runs_before = job_runs(aws, emr_app)

    code, out, err = run_cli(*argv)

    errors = [line for line in err.splitlines() if line.startswith("sluiceway: error:")]
    assert code == 1 and len(errors) == 1, err
    for key in [
        "connections.tpch.password_env: ",
        "$SLUICEWAY_TPCH_PASSWORD",
        "set secret_id",
        "pipeline.hash_salt_env: ",
        "set hash_salt_secret_id",
        "pipeline.output: out/tpch_demo is a local path",
        "give --output s3://bucket/prefix",
        "pipeline.state: out/tpch_demo/_state is a local path",
    ]:
        assert key in errors[0], (key, errors[0])
    assert uploaded_keys(aws, bucket) == []
    assert name not in glue_job_names(aws)
    assert job_runs(aws, emr_app) == runs_before


def test_output_and_state_overrides_reach_the_glue_job_and_the_emr_run(
    aws, run_cli, tmp_path, bucket, glue_role, emr_role, emr_app
):
    # A deployable spec except for its local output: --output and --state make it runnable.
    spec = tmp_path / DEMO_SPEC.name
    spec.write_text(deployable_demo(DEMO_SPEC.read_text()).replace(DEMO_OUTPUT, "out/tpch_demo"))
    output, state = "s3://lake/override", "s3://lake/override-state"
    job = unique("override")
    common = [str(spec), "--out", str(tmp_path / "dist"), "--bucket", bucket,
              "--output", output, "--state", state]  # fmt: skip

    code, _, err = run_cli("deploy", "glue", *common, "--job-name", job, "--role", glue_role)
    assert code == 0, err
    args = aws.glue.get_job(JobName=job)["Job"]["DefaultArguments"]
    assert (args["--output"], args["--state"]) == (output, state)
    # The Iceberg catalog's warehouse follows the overridden output.
    assert f"spark.sql.catalog.lake.warehouse={output}/warehouse" in args["--conf"]

    code, out, err = run_cli("submit", "emr", *common, "--application", emr_app,
                             "--role", emr_role, "--no-wait")  # fmt: skip
    assert code == 0, err
    run = job_runs(aws, emr_app)[0]
    stored = aws.emr.get_job_run(applicationId=emr_app, jobRunId=run["id"])["jobRun"]
    arguments = stored["jobDriver"]["sparkSubmit"]["entryPointArguments"]
    assert arguments[2:6] == ["--output", output, "--state", state]


# ---------------------------------------------------------------------------------------
# Network: the VPC path to a database (moto keeps Glue connections, EC2 subnets and an EMR
# Serverless application's networkConfiguration, so all of it is read back from moto)


def network_connection_input(name: str) -> dict:
    return {
        "Name": name,
        "ConnectionType": "NETWORK",
        "ConnectionProperties": {},
        "PhysicalConnectionRequirements": {
            "SubnetId": "subnet-1",
            "AvailabilityZone": "us-east-1a",
        },
    }


def test_a_specs_glue_connection_is_attached_and_a_missing_one_refused_before_upload(
    aws, tmp_path, bucket, glue_role
):
    connection = unique("rds-tpch")
    spec = tmp_path / DEMO_SPEC.name
    spec.write_text(
        deployable_demo(DEMO_SPEC.read_text()).replace(
            'secret_id = "sluiceway/tpch"', f'glue_connection = "{connection}"'
        )
    )
    built = build_artifacts(spec, tmp_path / "dist")
    job = unique("glueconn")
    options = GlueJobOptions(job_name=job, role=glue_role, bucket=bucket)

    with pytest.raises(DeployError, match=rf"^Glue connection {connection} does not exist"):
        deploy_glue_job(aws, built, options)
    assert uploaded_keys(aws, bucket) == []
    assert job not in glue_job_names(aws)

    aws.glue.create_connection(
        ConnectionInput={
            "Name": connection,
            "ConnectionType": "JDBC",
            "ConnectionProperties": {"JDBC_CONNECTION_URL": "jdbc:postgresql://db:5432/tpch"},
        }
    )
    deploy_glue_job(aws, built, options)
    stored = aws.glue.get_job(JobName=job)["Job"]
    assert stored["Connections"]["Connections"] == [connection]


@pytest.fixture
def vpc(aws) -> tuple[str, str, str]:
    """A subnet (and its availability zone) and a security group in a new VPC."""
    ec2 = aws.ec2
    vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.42.1.0/24")["Subnet"]
    group = ec2.create_security_group(
        GroupName=unique("etl"), Description="Sluiceway jobs", VpcId=vpc_id
    )["GroupId"]
    return subnet["SubnetId"], subnet["AvailabilityZone"], group


def test_deploy_glue_creates_a_network_connection_from_a_subnet_and_attaches_it(
    aws, artifacts, bucket, glue_role, vpc, tmp_path
):
    subnet, zone, group = vpc
    job = unique("net")
    network = Network((subnet,), (group,))
    rds = unique("rds-orders")
    aws.glue.create_connection(ConnectionInput=network_connection_input(rds))
    options = GlueJobOptions(
        job_name=job, role=glue_role, bucket=bucket, connections=(rds,), network=network
    )
    add_update_job_shim(aws.glue)
    calls = record_calls(aws.glue)
    deploy_glue_job(aws, artifacts, options)
    deploy_glue_job(aws, artifacts, options)  # a redeploy keeps the same connection

    created = [params for op, params in calls if op == "CreateConnection"]
    # One NETWORK connection (moto's GetConnection leaves ConnectionType out: read what was sent).
    assert [c["ConnectionInput"]["ConnectionType"] for c in created] == ["NETWORK"]
    connection = aws.glue.get_connection(Name=f"{job}-network")["Connection"]
    assert connection["PhysicalConnectionRequirements"] == {
        "SubnetId": subnet,
        "SecurityGroupIdList": [group],
        "AvailabilityZone": zone,
    }
    stored = aws.glue.get_job(JobName=job)["Job"]
    assert stored["Connections"]["Connections"] == [rds, f"{job}-network"]

    # The same name with another subnet is refused before anything is uploaded.
    other = aws.ec2.create_subnet(
        VpcId=aws.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"],
        CidrBlock="10.42.2.0/24",
    )["Subnet"]["SubnetId"]
    second = unique("net-bucket")
    aws.s3.create_bucket(Bucket=second)
    moved = GlueJobOptions(
        job_name=job,
        role=glue_role,
        bucket=second,
        network=Network((other,), (group,)),
        network_connection=f"{job}-network",
    )
    with pytest.raises(DeployError, match=rf"Glue connection {job}-network exists with subnet "):
        deploy_glue_job(aws, artifacts, moved)
    assert uploaded_keys(aws, second) == []
    aws.s3.delete_bucket(Bucket=second)


def test_submit_emr_creates_an_application_in_the_vpc_and_refuses_another_network(
    aws, artifacts, bucket, emr_role, vpc
):
    subnet, _, group = vpc
    name = unique("sluiceway-vpc")
    options = EmrSubmitOptions(
        application=name,
        role=emr_role,
        bucket=bucket,
        create_application=True,
        network=Network((subnet,), (group,)),
    )
    first = submit_emr_job(aws, artifacts, options)
    try:
        app = aws.emr.get_application(applicationId=first.application.id)["application"]
        assert app["networkConfiguration"] == {"subnetIds": [subnet], "securityGroupIds": [group]}
        elsewhere = replace(options, network=Network((subnet,), ("sg-0123456789abcdef0",)))
        with pytest.raises(DeployError, match=rf"application {name} exists with network "):
            submit_emr_job(aws, artifacts, elsewhere)
    finally:
        delete_application(first.application.id)


@pytest.mark.parametrize(
    ("network", "create", "message"),
    [
        (Network(("subnet-0123456789abcdef0",), ()), True, "--subnet and --security-group go"),
        (Network(("subnet-1",), ("sg-0123456789abcdef0",)), True, "--subnet 'subnet-1': expected"),
        (
            Network(("subnet-0123456789abcdef0",), ("sg-0123456789abcdef0",)),
            False,
            "add --create-application",
        ),
    ],
)
def test_bad_network_options_are_refused_before_any_call(network, create, message):
    options = EmrSubmitOptions(
        application="a", role="r", bucket="b", create_application=create, network=network
    )
    with pytest.raises(DeployError, match=message):
        options.validate()


# ---------------------------------------------------------------------------------------
# Stream jobs: a Glue streaming job, an EMR Serverless STREAMING-mode run

STREAM_SPEC = """
[pipeline]
name = "clicks"
output = "s3://lake/clicks"

[source]
kind = "kinesis"
stream = "clicks"
region = "eu-west-1"

[events]
schema = "event_id string, event_time timestamp"
event_id = "event_id"
event_time = "event_time"

[trigger]
mode = "interval"
interval_seconds = 60
"""


@pytest.fixture
def stream_artifacts(tmp_path) -> ArtifactSet:
    spec = tmp_path / "clicks.toml"
    spec.write_text(STREAM_SPEC, encoding="utf-8")
    return build_artifacts(spec, tmp_path / "dist")


def test_deploy_glue_of_a_stream_spec_creates_a_glue_streaming_job(
    aws, stream_artifacts, bucket, glue_role
):
    calls = record_calls(aws.glue)
    job = unique("clicks")
    deploy_glue_job(
        aws,
        stream_artifacts,
        GlueJobOptions(job_name=job, role=glue_role, bucket=bucket, checkpoint="s3://lake/ck"),
    )

    base = base_uri(bucket, stream_artifacts)
    (sent,) = [params for op, params in calls if op == "CreateJob"]
    assert sent["Command"] == {
        "Name": "gluestreaming",
        "ScriptLocation": f"{base}/jobs/glue_stream.py",
        "PythonVersion": "3",
    }
    assert sent["DefaultArguments"] == {
        "--spec": f"{base}/pipelines/clicks.toml",
        "--checkpoint": "s3://lake/ck",
        "--extra-py-files": f"{base}/sluiceway-{stream_artifacts.version}.zip",
        "--TempDir": f"s3://{bucket}/sluiceway/glue-temp/",
        "--enable-metrics": "true",
        "--enable-continuous-cloudwatch-log": "true",
        "--job-bookmark-option": "job-bookmark-disable",
        "--job-language": "python",
    }
    assert "Timeout" not in sent  # a streaming job runs until it is stopped
    stored = aws.glue.get_job(JobName=job)["Job"]
    assert stored["Command"]["Name"] == "gluestreaming"
    assert stored["DefaultArguments"] == sent["DefaultArguments"]
    assert not [k for k in uploaded_keys(aws, bucket) if k.endswith(".jar")]


def test_submit_emr_of_a_stream_spec_starts_a_streaming_mode_run(
    aws, stream_artifacts, bucket, emr_role, emr_app
):
    # moto 5.2.5 accepts StartJobRun's `mode` but neither keeps nor returns it, so the mode
    # is checked in the request sent; the rest is read back from moto too.
    calls = record_calls(aws.emr)
    submission = submit_emr_job(
        aws,
        stream_artifacts,
        EmrSubmitOptions(application=emr_app, role=emr_role, bucket=bucket),
    )

    (sent,) = [params for op, params in calls if op == "StartJobRun"]
    base = base_uri(bucket, stream_artifacts)
    assert sent["mode"] == "STREAMING"
    assert "executionTimeoutMinutes" not in sent  # a stream runs until it is cancelled
    driver = sent["jobDriver"]["sparkSubmit"]
    assert driver["entryPoint"] == f"{base}/jobs/emr_stream.py"
    assert driver["entryPointArguments"] == [
        f"{base}/pipelines/clicks.toml",
        "--reader",
        "aws-kinesis",
    ]
    params = shlex.split(driver["sparkSubmitParameters"])
    assert params[params.index("--jars") + 1] == (
        "/usr/share/aws/kinesis/spark-sql-kinesis/lib/spark-streaming-sql-kinesis-connector.jar"
    )
    stored = aws.emr.get_job_run(applicationId=emr_app, jobRunId=submission.run_id)["jobRun"]
    assert stored["jobDriver"] == sent["jobDriver"]


@pytest.mark.parametrize("platform", ["glue", "emr"])
def test_a_stream_that_cannot_run_deployed_is_refused_before_upload(
    aws, run_cli, tmp_path, bucket, glue_role, emr_role, emr_app, platform
):
    spec = tmp_path / "clicks.toml"
    spec.write_text(
        STREAM_SPEC.replace('"s3://lake/clicks"', f'"{tmp_path / "out"}"').replace(
            'mode = "interval"', 'mode = "available_now"'
        ),
        encoding="utf-8",
    )
    name = unique("clicks-local")
    common = [str(spec), "--out", str(tmp_path / "dist"), "--bucket", bucket]
    if platform == "glue":
        argv = ["deploy", "glue", *common, "--job-name", name, "--role", glue_role]
    else:
        argv = ["submit", "emr", *common, "--application", emr_app, "--role", emr_role]
    runs_before = job_runs(aws, emr_app)

    code, out, err = run_cli(*argv)

    errors = [line for line in err.splitlines() if line.startswith("sluiceway: error:")]
    assert code == 1 and len(errors) == 1, err
    for key in [
        f"pipeline.output: {tmp_path / 'out'} is a local path",
        "trigger.checkpoint: ",
        "give --checkpoint s3://bucket/prefix",
        "trigger.mode: available_now; ",
    ]:
        assert key in errors[0], (key, errors[0])
    assert uploaded_keys(aws, bucket) == []
    assert name not in glue_job_names(aws)
    assert job_runs(aws, emr_app) == runs_before


KAFKA_SOURCE = """[source]
kind = "kafka"
bootstrap_servers = "b-1.clicks.kafka.eu-west-1.amazonaws.com:9098"
topics = ["clicks"]
security_protocol = "SASL_SSL"
sasl_mechanism = "AWS_MSK_IAM"
"""


def kafka_stream_spec(tmp_path: Path) -> Path:
    """STREAM_SPEC reading an MSK topic with IAM login instead of Kinesis."""
    start, end = STREAM_SPEC.index("[source]"), STREAM_SPEC.index("[events]")
    spec = tmp_path / "clicks.toml"
    spec.write_text(STREAM_SPEC[:start] + KAFKA_SOURCE + "\n" + STREAM_SPEC[end:], "utf-8")
    return spec


def test_deploy_glue_of_a_kafka_stream_ships_only_msks_iam_login(
    aws, run_cli, tmp_path, bucket, glue_role
):
    job = unique("clicks-kafka")
    code, out, err = run_cli(
        "deploy", "glue", str(kafka_stream_spec(tmp_path)), "--out", str(tmp_path / "dist"),
        "--job-name", job, "--role", glue_role, "--bucket", bucket, "--glue-version", "6.0",
        "--checkpoint", "s3://lake/ck",
    )  # fmt: skip

    assert code == 0, err
    stored = aws.glue.get_job(JobName=job)["Job"]
    assert stored["Command"]["Name"] == "gluestreaming"
    # Glue ships Spark's Kafka source; the IAM login module goes on --extra-jars.
    (jar,) = stored["DefaultArguments"]["--extra-jars"].split(",")
    assert jar.startswith(f"s3://{bucket}/") and jar.endswith("/jars/aws-msk-iam-auth-2.4.0.jar")
    assert [k for k in uploaded_keys(aws, bucket) if k.endswith(".jar")] == [jar.split("/", 3)[3]]


def test_submit_emr_of_a_kafka_stream_puts_the_targets_kafka_source_on_jars(
    aws, run_cli, tmp_path, bucket, emr_role, emr_app
):
    calls = record_calls(aws.emr)
    spec = str(kafka_stream_spec(tmp_path))
    common = ["--out", str(tmp_path / "dist"), "--application", emr_app, "--role", emr_role]
    common += ["--bucket", bucket, "--checkpoint", "s3://lake/ck", "--no-wait"]

    code, out, err = run_cli("submit", "emr", spec, *common)  # no --target: which Spark?
    assert code == 1 and "a Kafka stream is packaged for one platform: give --target" in err
    assert uploaded_keys(aws, bucket) == []

    code, out, err = run_cli("submit", "emr", spec, *common, "--target", "emr-7")
    assert code == 0, err
    (sent,) = [params for op, params in calls if op == "StartJobRun"]
    assert sent["mode"] == "STREAMING"
    params = shlex.split(sent["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    names = [uri.rsplit("/", 1)[1] for uri in params[params.index("--jars") + 1].split(",")]
    assert sorted(names) == sorted(  # EMR 7 is Spark 3.5; no Kinesis connector
        [
            "spark-sql-kafka-0-10_2.12-3.5.7.jar",
            "spark-token-provider-kafka-0-10_2.12-3.5.7.jar",
            "kafka-clients-3.4.1.jar",
            "commons-pool2-2.11.1.jar",
            "aws-msk-iam-auth-2.4.0.jar",
        ]
    )


# ---------------------------------------------------------------------------------------
# Per-target sets: built for one platform, refused by another


def test_deploy_glue_of_a_spec_packages_for_the_jobs_glue_version(
    aws, run_cli, tmp_path, bucket, glue_role
):
    spec = tmp_path / DEMO_SPEC.name
    spec.write_text(deployable_demo(DEMO_SPEC.read_text()))
    job = unique("tpch6")

    code, out, err = run_cli(
        "deploy", "glue", str(spec), "--out", str(tmp_path / "dist"), "--job-name", job,
        "--role", glue_role, "--bucket", bucket, "--glue-version", "6.0",
    )  # fmt: skip

    assert code == 0, err
    assert "for glue-6.0 (Spark 4.1.1, Scala 2.13, Python 3.13)" in out
    stored = aws.glue.get_job(JobName=job)["Job"]
    assert stored["GlueVersion"] == "6.0"
    # Glue has the JDBC drivers on its class path, ahead of --extra-jars: none is shipped.
    assert "--extra-jars" not in stored["DefaultArguments"]
    keys = uploaded_keys(aws, bucket)
    manifest_key = next(k for k in keys if k.endswith("/manifest.json"))
    manifest = json.loads(aws.s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    assert manifest["target"]["name"] == "glue-6.0"
    assert not [k for k in keys if k.endswith(".jar")]

    # The same set deployed again without --glue-version keeps its target's version.
    root = next(p for p in (tmp_path / "dist").iterdir() if p.name.startswith("sluiceway-"))
    code, out, err = run_cli(
        "deploy", "glue", "--artifacts", str(root), "--job-name", unique("tpch6"),
        "--role", glue_role, "--bucket", bucket,
    )  # fmt: skip
    assert code == 0, err
    assert "Glue 6.0 (Spark 4.1.1, Python 3.13)" in out


def test_a_set_built_for_another_target_is_refused_before_upload(
    aws, tmp_path, bucket, glue_role, emr_role, emr_app
):
    spec = tmp_path / DEMO_SPEC.name
    spec.write_text(deployable_demo(DEMO_SPEC.read_text()))
    glue6 = build_artifacts(spec, tmp_path / "dist", "glue-6.0")
    emr7 = build_artifacts(spec, tmp_path / "dist", "emr-7")
    emr8 = build_artifacts(spec, tmp_path / "dist", "emr-spark-8")
    job = unique("mismatch")

    with pytest.raises(DeployError) as glue_version:
        deploy_glue_job(aws, glue6, GlueJobOptions(job_name=job, role=glue_role, bucket=bucket))
    with pytest.raises(DeployError) as emr_on_glue:
        deploy_glue_job(aws, emr7, GlueJobOptions(job_name=job, role=glue_role, bucket=bucket))
    with pytest.raises(DeployError) as line:  # moto has no emr-spark-8 application
        submit_emr_job(
            aws, emr8, EmrSubmitOptions(application=emr_app, role=emr_role, bucket=bucket)
        )
    with pytest.raises(DeployError) as glue_on_emr:
        submit_emr_job(
            aws, glue6, EmrSubmitOptions(application=emr_app, role=emr_role, bucket=bucket)
        )

    assert str(glue_version.value) == (
        "the artifact set was built for glue-6.0 (Spark 4.1.1, Scala 2.13, Python 3.13), but "
        "the Glue job runs Glue 5.1, glue-5.1 (Spark 3.5.6, Scala 2.12, Python 3.11): rebuild "
        "it with `sluiceway package --target glue-5.1` (or deploy with --glue-version 6.0)"
    )
    assert "built for emr-7 (Spark 3.5, Scala 2.12, Python 3.11), not for Glue" in str(
        emr_on_glue.value
    )
    assert str(line.value) == (
        "the artifact set was built for emr-spark-8 (Spark 4.0.2, Scala 2.13, Python 3.11), "
        f"but EMR Serverless application {emr_app} runs emr-7.11.0: rebuild it with "
        "`sluiceway package --target emr-7`"
    )
    assert f"application {emr_app} runs emr-7.11.0: rebuild it with" in str(glue_on_emr.value)
    assert "--target emr-7`" in str(glue_on_emr.value)
    assert uploaded_keys(aws, bucket) == []
    assert job not in glue_job_names(aws)
    assert job_runs(aws, emr_app) == []

    # The matching pair runs: an EMR set carries the JDBC drivers (EMR has none on its path).
    submission = submit_emr_job(
        aws, emr7, EmrSubmitOptions(application=emr_app, role=emr_role, bucket=bucket)
    )
    assert [j.coordinate.split(":")[1] for j in emr7.jars] == [
        "postgresql",
        "mysql-connector-j",
        "redshift-jdbc42",
    ]
    assert len(submission.uploaded.jar_uris) == 3
