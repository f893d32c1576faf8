"""Bad S3 input: a missing bucket, denied access, a wrong endpoint. Each ends with one
error line naming the bucket or endpoint, exit code 1, and nothing advanced: no
watermark, no visible output."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from .dbs import Db, write_spec
from .s3 import objects

TABLE = """
[tables.orders]
table = "s3_bad_input"
primary_key = ["id"]
incremental_column = "updated_at"
partition_by = ["grp"]
"""


@pytest.fixture
def source(pg_conn_info) -> Db:
    pg_conn_info.execute(
        "DROP TABLE IF EXISTS s3_bad_input",
        "CREATE TABLE s3_bad_input (id int PRIMARY KEY, grp int, updated_at timestamp NOT NULL)",
        "INSERT INTO s3_bad_input VALUES (1, 1, TIMESTAMP '2024-01-01 00:00:00'), "
        "(2, 2, TIMESTAMP '2024-01-01 00:00:00')",
    )
    return pg_conn_info


def _run_cli(
    spec: Path, output: str, state: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec), "--output", output]
        + ["--state", state],
        capture_output=True,
        text=True,
        env={**os.environ, **(env_extra or {})},
        timeout=300,
        check=False,
    )


def _one_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("sluiceway: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    print(errors[0])  # shown with -s, and with the output of a failing test
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _no_watermark(s3_client, bucket: str) -> None:
    assert objects(s3_client, bucket, "state/t/tables/") == {}


def test_missing_output_bucket_is_named_and_nothing_advances(
    tmp_path, source, s3_client, s3_bucket
):
    missing = f"sluiceway-missing-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, source, TABLE)
    result = _run_cli(spec, f"s3://{missing}/lake", f"s3://{s3_bucket}/state")
    _one_error(
        result,
        f"{spec}: tables.orders.sink.path: s3://{missing}/lake/tables/orders: "
        f"bucket {missing} does not exist at {os.environ['AWS_ENDPOINT_URL']} (AWS_ENDPOINT_URL)",
    )
    _no_watermark(s3_client, s3_bucket)
    report = json.loads(
        s3_client.get_object(Bucket=s3_bucket, Key="state/t/runs/latest.json")["Body"].read()
    )
    assert report["status"] == "failed" and missing in report["error"]
    assert report["tables"] == []  # failed before any table was read


def test_missing_state_bucket_is_named_and_nothing_is_written(
    tmp_path, source, s3_client, s3_bucket
):
    missing = f"sluiceway-missing-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, source, TABLE)
    result = _run_cli(spec, f"s3://{s3_bucket}/lake", f"s3://{missing}/state")
    _one_error(result, f"bucket {missing} does not exist")
    assert objects(s3_client, s3_bucket) == {}


@pytest.fixture
def denied_credentials(s3_client):
    """Credentials of an IAM user who may do anything except touch the bucket `denied`
    or write into the bucket `readonly`; moto checks every request against IAM while the
    test runs (and stops after it)."""
    denied = f"sluiceway-denied-{uuid.uuid4().hex[:8]}"
    readonly = f"sluiceway-readonly-{uuid.uuid4().hex[:8]}"
    for bucket in (denied, readonly):
        s3_client.create_bucket(Bucket=bucket)
    iam = boto3.client("iam")
    user = f"sluiceway-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    statements = [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{denied}", f"arn:aws:s3:::{denied}/*"],
        },
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{readonly}/*"},
    ]
    iam.put_user_policy(
        UserName=user,
        PolicyName="limited",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    _moto_auth("0")  # every request from here on is checked against IAM
    try:
        yield {"denied": denied, "readonly": readonly}, env
    finally:
        _moto_auth("inf")


def _moto_auth(count: str) -> None:
    # moto reads the raw body; a form content type would leave it empty.
    request = urllib.request.Request(
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/reset-auth",
        data=count.encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_access_denied_names_the_bucket_and_nothing_advances(
    tmp_path, source, s3_client, s3_bucket, denied_credentials
):
    buckets, env = denied_credentials
    denied = buckets["denied"]
    spec = write_spec(tmp_path, source, TABLE)
    result = _run_cli(spec, f"s3://{denied}/lake", f"s3://{s3_bucket}/state", env)
    _moto_auth("inf")
    _one_error(
        result,
        f"tables.orders.sink.path: s3://{denied}/lake/tables/orders: access denied to bucket "
        f"{denied} at {os.environ['AWS_ENDPOINT_URL']} (AWS_ENDPOINT_URL)",
    )
    _no_watermark(s3_client, s3_bucket)
    assert objects(s3_client, denied) == {}


def test_writes_denied_after_the_checks_fail_in_spark_with_one_line_and_nothing_advances(
    tmp_path, source, s3_client, s3_bucket, denied_credentials
):
    """The bucket can be listed, so the up-front check passes; Spark's first PUT is refused."""
    buckets, env = denied_credentials
    readonly = buckets["readonly"]
    spec = write_spec(tmp_path, source, TABLE)
    result = _run_cli(spec, f"s3://{readonly}/lake", f"s3://{s3_bucket}/state", env)
    _moto_auth("inf")
    # Hadoop 3.3 (PySpark 3.5) is refused on its first read of the staging (the check for an
    # interrupted write), Hadoop 3.4 (PySpark 4.x) on the first PUT: either way one line
    # names the place under the bucket and the 403.
    _one_error(result, "tables.orders: ", f"s3://{readonly}/lake/", " failed", "403")
    _no_watermark(s3_client, s3_bucket)
    assert objects(s3_client, readonly) == {}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_wrong_endpoint_is_named_and_nothing_advances(tmp_path, source, s3_client, s3_bucket):
    wrong = f"http://127.0.0.1:{_closed_port()}"
    spec = write_spec(tmp_path, source, TABLE)
    result = _run_cli(
        spec, f"s3://{s3_bucket}/lake", f"s3://{s3_bucket}/state", {"AWS_ENDPOINT_URL": wrong}
    )
    _one_error(result, f"cannot reach {wrong} (AWS_ENDPOINT_URL) for bucket {s3_bucket}")
    assert objects(s3_client, s3_bucket) == {}
