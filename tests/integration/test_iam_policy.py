"""`sluiceway iam SPEC` against IAM enforcement: a real run with exactly the printed job
policy succeeds; without one of its statements it fails with one error naming the denied
action, no data written and no watermark moved.

AWS is moto_server with IAM enforcement on (moto's auth mode, switched on over its
`/moto-api/reset-auth` once the fixtures exist), our own server on a free port: the shared
one (AWS_ENDPOINT_URL) serves other tests without auth. moto_iam_server.py says which of
moto's simplifications it corrects so that resources (tables, secrets) are checked too.
The run is `sluiceway run` in a child process with the restricted user's keys: the JDBC
source is the local PostgreSQL, output and state on S3, a Parquet dataset with its Glue
table, an Iceberg table in the Glue catalog, the password and the hash salt in Secrets
Manager. The failing runs come first (the file's order): a run after a success would find
data already there.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

from .dbs import Db

ROOT = Path(__file__).resolve().parents[2]
MOTO_PYTHON = ROOT / ".run" / "moto" / "venv" / "bin" / "python"
ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
TABLE = "iam_orders"
# The Iceberg table in the Glue Data Catalog (Iceberg's GlueCatalog and S3FileIO, Java).
ICEBERG_GLUE = ("--iceberg-catalog", "glue")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_iam_endpoint(tmp_path_factory):
    """Our own moto_server (auth switched on later by the test's fixture), stopped at the end."""
    if not MOTO_PYTHON.exists():
        pytest.fail(f"{MOTO_PYTHON} missing: run `python3 scripts/services.py start moto`")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto_iam") / "server.log"  # each request, for a failure
    server = subprocess.Popen(
        [str(MOTO_PYTHON), str(Path(__file__).with_name("moto_iam_server.py")), str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_iam_server.py did not start on port {port}")
                time.sleep(0.3)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def _client(service: str, endpoint: str, keys: dict[str, str] | None = None):
    keys = keys or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **keys)


def _keys(iam, user: str, policy: dict) -> dict[str, str]:
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }


def _spec(tmp_path: Path, db: Db, bucket: str, database: str, login: str, salt: str) -> Path:
    path = tmp_path / "iam.toml"
    path.write_text(
        f"""
[pipeline]
name = "iam_it"
output = "s3://{bucket}/lake"
hash_salt_secret_id = "{salt}"

[connections.db]
engine = "postgresql"
host = "{db.host}"
port = {db.port}
database = "{db.database}"
user = "{db.user}"
secret_id = "{login}"

[tables.orders]
table = "{TABLE}"
primary_key = ["id"]
incremental_column = "id"
hash_columns = ["email"]
catalog = {{ database = "{database}" }}

[tables.events]
table = "{TABLE}"
primary_key = ["id"]
incremental_column = "id"
sink = {{ format = "iceberg" }}
""",
        encoding="utf-8",
    )
    return path


def _iam_cli(spec: Path, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "iam", str(spec), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def world(moto_iam_endpoint, pg_conn_info, tmp_path_factory):
    """Bucket, secrets, the admin and the job's policy; then enforcement on."""
    tmp = tmp_path_factory.mktemp("iam")
    tag = uuid.uuid4().hex[:8]
    pg_conn_info.execute(
        f"DROP TABLE IF EXISTS {TABLE}",
        f"CREATE TABLE {TABLE} (id int PRIMARY KEY, email text NOT NULL)",
        f"INSERT INTO {TABLE} VALUES (%s, %s)",
        params=[(i, f"u{i}@example.com") for i in range(1, 6)],
    )
    bucket, database = f"iam-{tag}", f"iam_{tag}"
    _client("s3", moto_iam_endpoint).create_bucket(Bucket=bucket)
    secrets = _client("secretsmanager", moto_iam_endpoint)
    login = f"iam-db-{tag}"
    secrets.create_secret(Name=login, SecretString=json.dumps({"password": pg_conn_info.password}))
    salt = f"iam-salt-{tag}"
    secrets.create_secret(Name=salt, SecretString="pepper")
    spec = _spec(tmp, pg_conn_info, bucket, database, login, salt)
    printed = _iam_cli(spec, *ICEBERG_GLUE, "--account", ACCOUNT, "--region", REGION)
    iam = _client("iam", moto_iam_endpoint)
    admin = _keys(iam, f"admin-{tag}", _policy([_allow_all()]))
    users = {"full": _keys(iam, f"job-{tag}", printed)}
    for sid in ("KeepTheGlueTablesInStep", "KeepTheRunStateAndLock"):
        less = [s for s in printed["Statement"] if s["Sid"] != sid]
        assert len(less) == len(printed["Statement"]) - 1, sid
        users[sid] = _keys(iam, f"job-{tag}-{sid[:20]}", _policy(less))
    urllib.request.urlopen(
        urllib.request.Request(
            f"{moto_iam_endpoint}/moto-api/reset-auth",
            data=b"0",  # requests from now on: this many unchecked (none)
            headers={"Content-Type": "text/plain"},  # not a form: moto reads the raw body
        )
    ).close()
    yield {
        "spec": spec,
        "bucket": bucket,
        "database": database,
        "admin": admin,
        "users": users,
        "endpoint": moto_iam_endpoint,
        "printed": printed,
    }


def _policy(statements: list[dict]) -> dict:
    return {"Version": "2012-10-17", "Statement": statements}


def _allow_all() -> dict:
    return {"Effect": "Allow", "Action": "*", "Resource": "*"}


def _run(world: dict, keys: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLUICEWAY_PG_PASSWORD"))
    }
    env |= {
        "AWS_ENDPOINT_URL": world["endpoint"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": keys["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": keys["aws_secret_access_key"],
        "SLUICEWAY_SHUFFLE_PARTITIONS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(world["spec"]), *ICEBERG_GLUE],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _keys_under(world: dict, prefix: str) -> list[str]:
    s3 = _client("s3", world["endpoint"], world["admin"])
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=world["bucket"], Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_the_printed_policy_has_no_prefix_condition_on_list_bucket(world):
    listing = [s for s in world["printed"]["Statement"] if "s3:ListBucket" in s["Action"]]
    assert listing == [
        {
            "Sid": "ListTheBuckets",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{world['bucket']}"],
        }
    ]


@pytest.mark.parametrize(
    ("removed", "action"),
    [("KeepTheGlueTablesInStep", "glue:GetTable"), ("KeepTheRunStateAndLock", "s3:PutObject")],
)
def test_without_one_statement_the_run_fails_naming_the_action_and_writes_nothing(
    world, removed, action
):
    result = _run(world, world["users"][removed])
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("sluiceway: error")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"not allowed {action}" in errors[0], errors[0]
    # No data, no watermark: at most the failed run's report under the state prefix.
    written = _keys_under(world, "lake/")
    assert all(k.startswith("lake/_state/") and "/runs/" in k for k in written), written


def test_with_exactly_the_printed_policy_the_run_succeeds(world):
    result = _run(world, world["users"]["full"])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "succeeded" in result.stdout, result.stdout
    glue = _client("glue", world["endpoint"], world["admin"])
    table = glue.get_table(DatabaseName=world["database"], Name="orders")["Table"]
    assert table["StorageDescriptor"]["Location"].rstrip("/").endswith("lake/tables/orders")
    data = [k for k in _keys_under(world, "lake/tables/orders/") if k.endswith(".parquet")]
    assert data, _keys_under(world, "lake/")
    assert "lake/_state/iam_it/tables/orders.json" in _keys_under(world, "lake/_state/")
    iceberg = glue.get_table(DatabaseName="iam_it", Name="events")["Table"]["Parameters"]
    assert iceberg["table_type"].upper() == "ICEBERG"
    assert iceberg["metadata_location"].startswith(f"s3://{world['bucket']}/lake/warehouse/")
