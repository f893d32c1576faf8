"""Database credentials and the hash salt: from an environment variable or Secrets Manager.

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
    user = conn.user or secret.get("username") or secret.get("user")
    host = conn.host or secret.get("host")
    port = conn.port or secret.get("port")
    database = conn.database or secret.get("dbname") or secret.get("database")
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
