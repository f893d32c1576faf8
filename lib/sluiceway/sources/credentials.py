"""Database credentials and the hash salt: from Secrets Manager, a Glue connection or (on a
laptop) an environment variable.

Glue jobs get no environment variables of ours, and an EMR Serverless run's environment is
stored with its submit parameters, so a deployed spec names a secret (`secret_id`,
`hash_salt_secret_id`) or a Glue JDBC connection (`glue_connection`) instead.

Secrets never travel as arguments and are never logged: the password field is kept out
of repr(), and errors name the variable, secret id or connection, never a value.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sluiceway import aws
from sluiceway.errors import CredentialsError
from sluiceway.spec import Connection

log = logging.getLogger(__name__)

# A Glue connection name -> the mapping GlueContext.extract_jdbc_conf returns ("url",
# "user", "password", "vendor", and on recent Glue "fullUrl"). On Glue the job passes the
# real method; elsewhere glue_jdbc_conf reads the same through the GetConnection API.
JdbcConfReader = Callable[[str], Mapping[str, Any]]
# The URL schemes a Glue JDBC connection may give for each of our engines.
_SCHEMES = {"postgresql": ("postgresql",), "mysql": ("mysql", "mariadb"), "redshift": ("redshift",)}


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)
    host: str
    port: int | None
    database: str | None


def resolve_credentials(
    conn: Connection, secrets_client: Any | None = None, *, jdbc_conf: JdbcConfReader | None = None
) -> Credentials:
    """User, password and (optionally) endpoint for a connection; the spec's values win."""
    if conn.glue_connection:
        return _from_glue_connection(conn, jdbc_conf or glue_jdbc_conf)
    secret: dict[str, object] = {}
    if conn.secret_id:
        secret = _read_login(conn.secret_id, secrets_client, f"connections.{conn.name}.secret_id")
    password = secret.get("password")
    if conn.password_env:
        password = os.environ.get(conn.password_env)
        if password is None:
            raise CredentialsError(
                f"environment variable {conn.password_env} is not set",
                where=f"connections.{conn.name}.password_env",
            )
    if not isinstance(password, str) or not password:
        raise CredentialsError(
            f"secret {conn.secret_id} has no password", where=f"connections.{conn.name}.secret_id"
        )
    return _credentials(
        conn,
        user=secret.get("username") or secret.get("user"),
        password=password,
        host=secret.get("host"),
        port=secret.get("port"),
        database=secret.get("dbname") or secret.get("database"),
    )


def _credentials(
    conn: Connection, *, user: object, password: str, host: object, port: object, database: object
) -> Credentials:
    """The login with the spec's own user, host, port and database winning over the source's."""
    user = conn.user or user
    host = conn.host or host
    port = conn.port or port
    database = conn.database or database
    if not isinstance(user, str) or not user:
        raise CredentialsError(
            "no user in the spec or the secret", where=f"connections.{conn.name}.user"
        )
    if not isinstance(host, str) or not host:
        raise CredentialsError(
            "no host in the spec or the secret", where=f"connections.{conn.name}.host"
        )
    return Credentials(
        user=user,
        password=password,
        host=host,
        port=int(port) if port is not None else None,  # type: ignore[call-overload]
        database=str(database) if database is not None else None,
    )


def _from_glue_connection(conn: Connection, reader: JdbcConfReader) -> Credentials:
    """Host, port and database from the connection's JDBC URL; user and password beside it."""
    name = str(conn.glue_connection)
    where = f"connections.{conn.name}.glue_connection"
    try:
        conf = reader(name)
    except CredentialsError as exc:
        raise CredentialsError(exc.message, where=exc.where or where) from exc
    # Glue's `url` may stop after host:port; `fullUrl`, where given, keeps the database.
    url = str(conf.get("fullUrl") or conf.get("url") or "")
    scheme, sep, rest = url.removeprefix("jdbc:").partition("://")
    if not url.startswith("jdbc:") or not sep:
        raise CredentialsError(f"Glue connection {name}: no JDBC URL (got {url!r})", where=where)
    if scheme not in _SCHEMES.get(conn.engine, ()):
        raise CredentialsError(
            f"Glue connection {name}: a {scheme} URL for a {conn.engine} connection", where=where
        )
    password = conf.get("password")
    if not isinstance(password, str) or not password:
        raise CredentialsError(
            f"Glue connection {name}: no password (nor a SECRET_ID that holds one)", where=where
        )
    parts = urlsplit(f"//{rest}")
    try:
        port = parts.port
    except ValueError as exc:
        raise CredentialsError(f"Glue connection {name}: bad port in its URL", where=where) from exc
    return _credentials(
        conn,
        user=conf.get("user"),
        password=password,
        host=parts.hostname,
        port=port,
        database=parts.path.strip("/") or None,
    )


def glue_jdbc_conf(name: str, client: Any | None = None) -> dict[str, str]:
    """What GlueContext.extract_jdbc_conf gives for a Glue JDBC connection, read through the
    Glue GetConnection API (EMR, a laptop, the local Glue stand-in): the URL and the login,
    from the connection itself or from the secret it names."""
    from botocore.exceptions import BotoCoreError, ClientError

    log.info("reading Glue connection %s", name)
    client = client or aws.client("glue")
    try:
        found = client.get_connection(Name=name, HidePassword=False)["Connection"]
    except ClientError as exc:
        code = aws.error_code(exc)
        hint = (
            " (no such connection in this account and region)"
            if code == "EntityNotFoundException"
            else ""
        )
        raise CredentialsError(f"Glue connection {name}: {code}{hint}") from exc
    except BotoCoreError as exc:
        raise CredentialsError(f"Glue connection {name}: {exc}") from exc
    # moto answers no ConnectionType; Glue answers JDBC for these.
    if found.get("ConnectionType") not in (None, "JDBC"):
        raise CredentialsError(
            f"Glue connection {name} is a {found['ConnectionType']} connection, not JDBC"
        )
    props = found.get("ConnectionProperties", {})
    url = str(props.get("JDBC_CONNECTION_URL", ""))
    login: Mapping[str, object] = {
        "username": props.get("USERNAME"),
        "password": props.get("PASSWORD"),
    }
    secret_id = props.get("SECRET_ID") or found.get("AuthenticationConfiguration", {}).get(
        "SecretArn"
    )
    if secret_id and not login["password"]:
        login = _read_login(str(secret_id), None, f"Glue connection {name}: SECRET_ID")
    conf = {"url": url, "fullUrl": url, "vendor": url.removeprefix("jdbc:").partition(":")[0]}
    for key, value in (("user", login.get("username")), ("password", login.get("password"))):
        if value:
            conf[key] = str(value)
    return conf


def read_hash_salt(
    secret_id: str, secrets_client: Any | None = None, where: str = "pipeline.hash_salt_secret_id"
) -> str:
    """The hash salt kept in Secrets Manager: the secret's string, or its `salt` key when
    the string is a JSON object."""
    text = _secret_string(secret_id, secrets_client, where)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    salt = value.get("salt") if isinstance(value, dict) else text
    if not isinstance(salt, str) or not salt:
        raise CredentialsError(
            f"secret {secret_id} (hash salt): empty, or a JSON without salt", where=where
        )
    return salt


# What to do about the errors a first deployed run meets; the code alone says little.
_HINTS = {
    "ResourceNotFoundException": "no such secret in this account and region",
    "AccessDeniedException": "the role may not read it: secretsmanager:GetSecretValue",
    "DecryptionFailure": "the role may not use the secret's KMS key: kms:Decrypt",
}


def _secret_string(secret_id: str, client: Any | None, where: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    log.info("reading secret %s (%s)", secret_id, where)
    client = client or aws.client("secretsmanager")
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = aws.error_code(exc)
        hint = f" ({_HINTS[code]})" if code in _HINTS else ""
        raise CredentialsError(f"secret {secret_id}: {code}{hint}", where=where) from exc
    except BotoCoreError as exc:
        raise CredentialsError(f"secret {secret_id}: {exc}", where=where) from exc
    if "SecretString" not in response:
        raise CredentialsError(
            f"secret {secret_id}: no SecretString (a binary secret)", where=where
        )
    return str(response["SecretString"])


def _read_login(secret_id: str, client: Any | None, where: str) -> dict[str, object]:
    """A database secret: RDS's JSON ({"username", "password", "host", "port", "dbname"},
    any subset with a password) or the password alone as the plain string."""
    text = _secret_string(secret_id, client, where)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    # Only a JSON object is a login; any other string ("123456" too) is the password itself.
    return value if isinstance(value, dict) else {"password": text}
