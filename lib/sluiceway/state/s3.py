"""Run state in an S3 prefix (s3://bucket/prefix), with the same layout as the local store.

A crash can never leave a half-written state object that is read as valid:
- each key is one object, replaced whole by one PUT; S3 stores a PUT completely or not at
  all, so a reader sees the old or the new object;
- the object carries a SHA-256 of its own content (`_sha256`), checked on every read, so
  damage from anywhere else (a truncated copy, a hand edit) is an error, never a watermark;
- a write of a key this store has read is conditional (If-Match on the ETag read, or
  If-None-Match when it was absent): when another run committed in between, the write
  fails instead of silently replacing that run's watermark.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from sluiceway import aws
from sluiceway.errors import StateError

log = logging.getLogger(__name__)

CHECKSUM_KEY = "_sha256"
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def _canonical(value: dict[str, Any]) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def encode_state(value: dict[str, Any]) -> bytes:
    """The object body: the value plus the SHA-256 of its canonical JSON."""
    if CHECKSUM_KEY in value:
        raise ValueError(f"state values may not use the reserved key {CHECKSUM_KEY}")
    # Round-trip first so the checksum covers exactly what a reader will parse.
    plain = json.loads(_canonical(value))
    digest = hashlib.sha256(_canonical(plain)).hexdigest()
    return json.dumps({**plain, CHECKSUM_KEY: digest}, indent=2, sort_keys=True).encode("utf-8")


def decode_state(body: bytes, where: str) -> dict[str, Any]:
    """Parse an object body and verify its checksum; any damage is a StateError."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"state {where}: not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise StateError(f"state {where}: expected a JSON object")
    digest = value.pop(CHECKSUM_KEY, None)
    if not isinstance(digest, str):
        raise StateError(f"state {where}: no {CHECKSUM_KEY} checksum; not written by Sluiceway")
    if hashlib.sha256(_canonical(value)).hexdigest() != digest:
        raise StateError(f"state {where}: checksum mismatch, the object is damaged")
    return value


class S3StateStore:
    """An S3 prefix; each key is one JSON object with an embedded checksum."""

    def __init__(self, location: str, client: Any | None = None) -> None:
        self.location = location.rstrip("/")
        try:
            self.bucket, self.prefix = aws.split_s3_uri(location)
        except ValueError as exc:
            raise StateError(f"state location {exc}") from exc
        self._client = client
        # ETag of each key as last read or written here; None: read and found absent.
        self._etags: dict[str, str | None] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("s3")
        return self._client

    def _object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _uri(self, key: str) -> str:
        return f"{self.location}/{key}"

    def _error(self, action: str, key: str, exc: BaseException) -> StateError:
        detail = aws.describe_aws_error(exc, self.client, self.bucket)
        return StateError(f"state {self._uri(key)}: cannot {action}: {detail}")

    def read_json(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))
            body = response["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                self._etags[key] = None
                return None
            raise self._error("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from exc
        value = decode_state(body, self._uri(key))
        self._etags[key] = response.get("ETag")
        return value

    def write_json(self, key: str, value: dict[str, Any]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        body = encode_state(value)
        condition: dict[str, str] = {}
        if key in self._etags:
            etag = self._etags[key]
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=self._object_key(key),
                Body=body,
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if condition and (code in _CONFLICT_CODES or code == "NoSuchKey"):
                raise StateError(
                    f"state {self._uri(key)}: changed by another run since this run read it "
                    f"({code}); not overwritten, rerun to continue from the newer state"
                ) from exc
            raise self._error("write", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("write", key, exc) from exc
        self._etags[key] = response.get("ETag")

    def delete(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._error("delete", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("delete", key, exc) from exc
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error("delete", key, exc) from exc
        self._etags.pop(key, None)
        return True

    def list_keys(self, prefix: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        base = self._object_key(prefix.rstrip("/")) + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base
            )
            for page in pages:
                keys.extend(
                    item["Key"][strip:]
                    for item in page.get("Contents", [])
                    if item["Key"].endswith(".json")
                )
        except (ClientError, BotoCoreError) as exc:
            raise self._error("list", prefix, exc) from exc
        return sorted(keys)
