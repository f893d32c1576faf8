"""A connection's password from Secrets Manager (the moto server), with no password in the
environment, as a Glue or EMR job gets it: an RDS-managed JSON secret (`username` and
`password`; the spec names no user), a plain-string secret (the password alone), and a
Glue JDBC connection read through GetConnection (moto keeps its properties; it answers no
ConnectionType, which the reader takes for JDBC, what Glue answers for these). A
missing secret is one clear error naming the spec key and the secret id, raised before the
source is read, with no output and no watermark written (only
the failed run's report).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from sluiceway import pipeline
from sluiceway.errors import CredentialsError
from sluiceway.spec import load_spec

from .aws import moto_endpoint
from .dbs import Db, pg

SPEC = """
[pipeline]
name = "secrets"
output = "{out}"

[connections.db]
engine = "postgresql"
host = "{db.host}"
port = {db.port}
database = "{db.database}"
{user_line}
secret_id = "{secret_id}"

[tables.orders]
table = "{table}"
primary_key = ["id"]
split_column = "id"
incremental_column = "updated_at"
"""


@pytest.fixture(scope="module")
def orders() -> Iterator[tuple[Db, str]]:
    db = pg()
    table = f"secret_orders_{uuid.uuid4().hex[:8]}"
    db.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, updated_at timestamp NOT NULL)",
        f"INSERT INTO {table} VALUES (1, TIMESTAMP '2024-01-01'), (2, TIMESTAMP '2024-01-02')",
    )
    yield db, table
    db.execute(f"DROP TABLE {table}")


@pytest.fixture
def secrets() -> Iterator[boto3.client]:
    moto_endpoint()
    client = boto3.client("secretsmanager")
    yield client
    for page in client.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            if secret["Name"].startswith("test-secret-credentials/"):
                client.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)


def _spec(tmp_path: Path, orders: tuple[Db, str], secret_id: str, user: str | None):
    db, table = orders
    user_line = f'user = "{user}"' if user else ""
    text = SPEC.format(
        out=tmp_path / "out", db=db, user_line=user_line, secret_id=secret_id, table=table
    )
    path = tmp_path / "secrets.toml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


def _secret(client, value: str) -> str:
    name = f"test-secret-credentials/{uuid.uuid4().hex[:8]}"
    client.create_secret(Name=name, SecretString=value)
    return name


@pytest.mark.parametrize("form", ["rds_json", "plain_string"])
def test_a_pipeline_reads_its_password_from_a_secret(
    spark, tmp_path, orders, secrets, monkeypatch, form
):
    db, _ = orders
    monkeypatch.delenv(db.password_env, raising=False)  # the secret is the only way in
    if form == "rds_json":  # RDS's own format; the user comes from the secret too
        value, user = json.dumps({"username": db.user, "password": db.password}), None
    else:
        value, user = db.password, db.user
    spec = _spec(tmp_path, orders, _secret(secrets, value), user)

    report = pipeline.run(spark, spec)

    rows = spark.read.parquet(spec.table("orders").sink.path).select("id").collect()
    assert sorted(r.id for r in rows) == [1, 2]
    assert [(t.status, t.rows_written) for t in report.tables] == [("written", 2)]


def test_a_missing_secret_names_the_key_and_the_secret_and_writes_nothing(
    spark, tmp_path, orders, secrets
):
    missing = f"test-secret-credentials/absent-{uuid.uuid4().hex[:8]}"
    spec = _spec(tmp_path, orders, missing, "anyone")

    with pytest.raises(CredentialsError) as caught:
        pipeline.run(spark, spec)

    assert str(caught.value) == (
        f"connections.db.secret_id: secret {missing}: ResourceNotFoundException "
        "(no such secret in this account and region)"
    )
    out = tmp_path / "out"
    assert not (out / "tables").exists()  # no output
    assert not (out / "_state" / "secrets" / "tables").exists()  # no watermark
    # Only the failed run's own report, which says why.
    latest = json.loads((out / "_state" / "secrets" / "runs" / "latest.json").read_text())
    assert (latest["status"], latest["error"]) == ("failed", str(caught.value))


@pytest.mark.parametrize("login", ["properties", "secret"])
def test_a_pipeline_reads_endpoint_and_login_from_a_glue_connection(
    spark, tmp_path, orders, secrets, monkeypatch, login
):
    db, table = orders
    monkeypatch.delenv(db.password_env, raising=False)
    url = f"jdbc:postgresql://{db.host}:{db.port}/{db.database}"
    if login == "properties":
        props = {"USERNAME": db.user, "PASSWORD": db.password}
    else:  # the connection names a secret holding the login, as Glue's console makes them
        secret = json.dumps({"username": db.user, "password": db.password})
        props = {"SECRET_ID": _secret(secrets, secret)}
    name = f"test-glue-connection-{uuid.uuid4().hex[:8]}"
    glue = boto3.client("glue")
    glue.create_connection(
        ConnectionInput={
            "Name": name,
            "ConnectionType": "JDBC",
            "ConnectionProperties": {"JDBC_CONNECTION_URL": url, **props},
        }
    )
    text = SPEC.format(out=tmp_path / "out", db=db, user_line="", secret_id="unused", table=table)
    # No host, port, database or user in the spec: all of them come from the connection.
    for line in ("host =", "port =", "database =", "secret_id ="):
        text = "\n".join(x for x in text.splitlines() if not x.startswith(line))
    text = text.replace(
        'engine = "postgresql"', f'engine = "postgresql"\nglue_connection = "{name}"'
    )
    path = tmp_path / "glue.toml"
    path.write_text(text, encoding="utf-8")
    report = pipeline.run(spark, load_spec(path))  # (moto 5 cannot DeleteConnection: kept)

    assert [(t.status, t.rows_written) for t in report.tables] == [("written", 2)]


def test_a_missing_glue_connection_names_the_key_and_writes_nothing(spark, tmp_path, orders):
    moto_endpoint()
    db, table = orders
    missing = f"test-glue-connection-absent-{uuid.uuid4().hex[:8]}"
    text = SPEC.format(out=tmp_path / "out", db=db, user_line="", secret_id="x", table=table)
    text = text.replace('secret_id = "x"', f'glue_connection = "{missing}"')
    path = tmp_path / "glue.toml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(CredentialsError) as caught:
        pipeline.run(spark, load_spec(path))

    assert str(caught.value) == (
        f"connections.db.glue_connection: Glue connection {missing}: EntityNotFoundException "
        "(no such connection in this account and region)"
    )
    assert not (tmp_path / "out" / "tables").exists()
    assert not (tmp_path / "out" / "_state" / "secrets" / "tables").exists()
