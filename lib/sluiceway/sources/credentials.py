"""Database credentials from an environment variable or an AWS Secrets Manager secret.

Secrets never travel as arguments and are never logged: the password field is kept out
of repr(), and errors name the variable or secret id, never a value.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from sluiceway import aws
from sluiceway.errors import CredentialsError
from sluiceway.spec import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)
    host: str
    port: int | None
    database: str | None


def resolve_credentials(conn: Connection, secrets_client: Any | None = None) -> Credentials:
    """User, password and (optionally) endpoint for a connection; the spec's values win."""
    secret: dict[str, object] = {}
    if conn.secret_id:
        secret = _read_secret(conn.secret_id, secrets_client)
    password = secret.get("password")
    if conn.password_env:
        password = os.environ.get(conn.password_env)
        if password is None:
            raise CredentialsError(
                f"connection {conn.name}: environment variable {conn.password_env} is not set"
            )
    if not isinstance(password, str) or not password:
        raise CredentialsError(f"connection {conn.name}: secret {conn.secret_id} has no password")
    user = conn.user or secret.get("username") or secret.get("user")
    host = conn.host or secret.get("host")
    port = conn.port or secret.get("port")
    database = conn.database or secret.get("dbname") or secret.get("database")
    if not isinstance(user, str) or not user:
        raise CredentialsError(f"connection {conn.name}: no user in the spec or the secret")
    if not isinstance(host, str) or not host:
        raise CredentialsError(f"connection {conn.name}: no host in the spec or the secret")
    return Credentials(
        user=user,
        password=password,
        host=host,
        port=int(port) if port is not None else None,  # type: ignore[call-overload]
        database=str(database) if database is not None else None,
    )


def read_hash_salt(secret_id: str, secrets_client: Any | None = None) -> str:
    """The hash salt kept in Secrets Manager: the secret's string, or its `salt` key when
    the string is a JSON object."""
    text = _secret_string(secret_id, secrets_client, "hash salt")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    salt = value.get("salt") if isinstance(value, dict) else text
    if not isinstance(salt, str) or not salt:
        raise CredentialsError(f"secret {secret_id} (hash salt): empty, or a JSON without salt")
    return salt


def _secret_string(secret_id: str, client: Any | None, what: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    log.info("reading %s secret %s", what, secret_id)
    client = client or aws.client("secretsmanager")
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = aws.error_code(exc)
        if code in ("AccessDenied", "AccessDeniedException"):
            raise CredentialsError(
                f"secret {secret_id}: {code}: these credentials are not allowed "
                f"{aws.denied_action(exc, client)} (`sluiceway iam SPEC` prints the policy)"
            ) from exc
        raise CredentialsError(f"secret {secret_id}: {code}") from exc
    except BotoCoreError as exc:
        raise CredentialsError(f"secret {secret_id}: {exc}") from exc
    if "SecretString" not in response:
        raise CredentialsError(f"secret {secret_id}: no SecretString (a binary secret)")
    return str(response["SecretString"])


def _read_secret(secret_id: str, client: Any | None) -> dict[str, object]:
    """An RDS-style JSON secret: {"username", "password", "host", "port", "dbname"}."""
    text = _secret_string(secret_id, client, "database")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CredentialsError(f"secret {secret_id}: not a JSON SecretString") from exc
    if not isinstance(value, dict):
        raise CredentialsError(f"secret {secret_id}: expected a JSON object")
    return value
