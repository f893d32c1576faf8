from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from sluiceway.errors import CredentialsError
from sluiceway.sources.credentials import read_hash_salt, resolve_credentials
from sluiceway.spec import Connection


def _conn(**overrides) -> Connection:
    values = dict(
        name="db",
        engine="postgresql",
        host=None,
        port=None,
        database=None,
        user=None,
        password_env=None,
        secret_id="rds/orders",
        max_connections=4,
        fetch_size=10_000,
        rows_per_partition=500_000,
    )
    values.update(overrides)
    return Connection(**values)


def _stubbed(response: dict | None = None, error: str | None = None, secret_id="rds/orders"):
    # botocore's Stubber answers for Secrets Manager: no network, no AWS account.
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    if error:
        stubber.add_client_error(
            "get_secret_value", service_error_code=error, expected_params={"SecretId": secret_id}
        )
    else:
        stubber.add_response("get_secret_value", response, {"SecretId": secret_id})
    stubber.activate()
    return client


def test_rds_secret_gives_user_password_and_endpoint():
    secret = {
        "username": "etl",
        "password": "s3cr3t!",
        "host": "db.internal",
        "port": 5433,
        "dbname": "shop",
    }
    creds = resolve_credentials(
        _conn(), _stubbed({"SecretString": json.dumps(secret), "Name": "rds/orders"})
    )
    assert (creds.user, creds.password, creds.host, creds.port, creds.database) == (
        "etl",
        "s3cr3t!",
        "db.internal",
        5433,
        "shop",
    )
    assert "s3cr3t!" not in repr(creds)


def test_spec_values_win_over_the_secret():
    secret = {
        "username": "etl",
        "password": "pw",
        "host": "db.internal",
        "port": 5433,
        "dbname": "shop",
    }
    creds = resolve_credentials(
        _conn(host="replica.internal", port=6432, user="reader"),
        _stubbed({"SecretString": json.dumps(secret), "Name": "rds/orders"}),
    )
    assert (creds.user, creds.host, creds.port, creds.database) == (
        "reader",
        "replica.internal",
        6432,
        "shop",
    )


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        ("ResourceNotFoundException", "no such secret in this account and region"),
        ("AccessDeniedException", "the role may not read it: secretsmanager:GetSecretValue"),
    ],
)
def test_an_unreadable_secret_names_the_spec_key_and_the_secret(error, hint):
    with pytest.raises(CredentialsError) as caught:
        resolve_credentials(_conn(), _stubbed(error=error))
    assert str(caught.value) == f"connections.db.secret_id: secret rds/orders: {error} ({hint})"


@pytest.mark.parametrize("plain", ["s3cr3t!", "123456", "user=etl"])
def test_a_plain_string_secret_is_the_password(plain):
    # "123456" parses as JSON (a number): only a JSON object is read as a login.
    client = _stubbed({"SecretString": plain, "Name": "rds/orders"})
    creds = resolve_credentials(_conn(host="h", user="etl"), client)
    assert (creds.user, creds.password) == ("etl", plain)


def test_a_plain_string_secret_needs_the_user_in_the_spec():
    client = _stubbed({"SecretString": "s3cr3t!", "Name": "rds/orders"})
    with pytest.raises(CredentialsError, match=r"^connections.db.user: no user in the spec"):
        resolve_credentials(_conn(host="h"), client)


def test_a_json_secret_without_a_password_is_named():
    client = _stubbed({"SecretString": json.dumps({"username": "etl"}), "Name": "rds/orders"})
    with pytest.raises(
        CredentialsError, match=r"^connections.db.secret_id: secret rds/orders has no password$"
    ):
        resolve_credentials(_conn(host="h"), client)


def test_password_from_environment(monkeypatch):
    monkeypatch.setenv("ORDERS_PW", "from-env")
    creds = resolve_credentials(_conn(secret_id=None, password_env="ORDERS_PW", host="h", user="u"))
    assert creds.password == "from-env" and creds.host == "h"


def test_unset_password_variable_is_named(monkeypatch):
    monkeypatch.delenv("ORDERS_PW", raising=False)
    with pytest.raises(
        CredentialsError,
        match=r"^connections.db.password_env: environment variable ORDERS_PW is not set$",
    ):
        resolve_credentials(_conn(secret_id=None, password_env="ORDERS_PW", host="h", user="u"))


@pytest.mark.parametrize(
    "secret_string", ["pepper-1", json.dumps({"salt": "pepper-1", "note": "rotated 2026"})]
)
def test_hash_salt_from_a_plain_or_json_secret(secret_string):
    client = _stubbed({"SecretString": secret_string, "Name": "etl/salt"}, secret_id="etl/salt")
    assert read_hash_salt("etl/salt", client) == "pepper-1"


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (
            None,
            "AccessDeniedException",
            r"^pipeline.hash_salt_secret_id: secret etl/salt: AccessDeniedException \(the role",
        ),
        ({"SecretString": json.dumps({"pepper": "x"}), "Name": "etl/salt"}, None, "without salt"),
        ({"SecretBinary": b"x", "Name": "etl/salt"}, None, "no SecretString"),
    ],
)
def test_an_unusable_salt_secret_is_one_clear_error(response, error, message):
    client = _stubbed(response, error, secret_id="etl/salt")
    with pytest.raises(CredentialsError, match=message):
        read_hash_salt("etl/salt", client)


# glue_connection: `conf` stands for what GlueContext.extract_jdbc_conf answers on Glue.
def _glue_conn(**overrides) -> Connection:
    return _conn(secret_id=None, glue_connection="rds-orders", **overrides)


def test_a_glue_connection_gives_endpoint_database_and_login():
    conf = {
        "url": "jdbc:postgresql://orders.internal:5432",
        "fullUrl": "jdbc:postgresql://orders.internal:5432/shop",
        "user": "etl",
        "password": "pw",
        "vendor": "postgresql",
    }
    creds = resolve_credentials(_glue_conn(), jdbc_conf=lambda name: conf)
    assert (creds.user, creds.password, creds.host, creds.port, creds.database) == (
        "etl",
        "pw",
        "orders.internal",
        5432,
        "shop",
    )


def test_the_specs_values_win_over_a_glue_connections():
    conf = {"url": "jdbc:mysql://billing:3306", "user": "etl", "password": "pw"}
    creds = resolve_credentials(
        _glue_conn(engine="mysql", database="shop", user="reader"), jdbc_conf=lambda name: conf
    )
    assert (creds.user, creds.host, creds.port, creds.database) == (
        "reader",
        "billing",
        3306,
        "shop",
    )


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"password": "pw", "user": "u"}, "no JDBC URL (got '')"),
        ({"url": "jdbc:mysql://h:3306/d", "password": "pw"}, "a mysql URL for a postgresql"),
        ({"url": "jdbc:postgresql://h:5432/d", "user": "u"}, "no password"),
        ({"url": "jdbc:postgresql://h:port/d", "user": "u", "password": "pw"}, "bad port"),
    ],
)
def test_a_glue_connection_that_cannot_serve_is_named(conf, message):
    with pytest.raises(CredentialsError) as caught:
        resolve_credentials(_glue_conn(), jdbc_conf=lambda name: conf)
    assert caught.value.where == "connections.db.glue_connection"
    assert str(caught.value).startswith(
        "connections.db.glue_connection: Glue connection rds-orders: "
    )
    assert message in str(caught.value)
    assert "pw" not in str(caught.value).replace(message, "")
