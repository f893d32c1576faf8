"""Run state in an S3 prefix (s3://bucket/prefix), with the same layout as the local store.

A crash can never leave a half-written state object that is read as valid:
- each key is one object, replaced whole by one PUT; S3 stores a PUT completely or not at
  all, so a reader sees the old or the new object;
- the object carries a SHA-256 of its own content (`_sha256`), checked on every read, so
  damage from anywhere else (a truncated copy, a hand edit) is an error, never a watermark;
- a write of a key this store has read is conditional (If-Match on the ETag read, or
  If-None-Match when it was absent): when another run committed in between, the write
  fails instead of silently replacing that run's watermark.

The run lock (`<pipeline>/run.lock`, see S3RunLock) uses the same conditional requests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from sluiceway import aws
from sluiceway.errors import StateError
from sluiceway.state.lock import LOCK_NAME, holder_record, locked_message, now_utc

log = logging.getLogger(__name__)

CHECKSUM_KEY = "_sha256"
LOCK_LEASE_S = 600.0
# NoSuchKey: an If-Match request on an object that was deleted in between.
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409", "NoSuchKey"}


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


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


# S3 conditional writes (put_object with IfMatch) need botocore 1.35.69: its S3 service
# model is the first with IfMatch on PutObject (1.35.68 has only IfNoneMatch; both read
# from the wheels' data/s3/2006-03-01/service-2.json). An older botocore refuses the
# parameter at the first commit, after the data was written: refuse it before.
MIN_BOTOCORE = (1, 35, 69)


def check_botocore(version: str | None = None) -> None:
    """Refuse, with one clear error, a botocore (the platform's) without IfMatch writes."""
    import botocore

    found = version or botocore.__version__
    numbers = tuple(int(part) for part in found.split(".")[:3] if part.isdigit())
    if numbers < MIN_BOTOCORE:
        need = ".".join(map(str, MIN_BOTOCORE))
        raise StateError(
            f"state on S3 needs botocore >= {need} (conditional writes), this runtime has "
            f"{found}: give the job boto3 and botocore >= {need} (on Glue, with "
            "--additional-python-modules)"
        )


class S3StateStore:
    """An S3 prefix; each key is one JSON object with an embedded checksum."""

    def __init__(self, location: str, client: Any | None = None) -> None:
        check_botocore()
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

    def _get(self, key: str) -> tuple[dict[str, Any], str] | None:
        """The value at `key` and its ETag, or None when there is no such object."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))
            body = response["Body"].read()
        except ClientError as exc:
            if _code(exc) == "NoSuchKey":
                return None
            raise self._error("read", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from exc
        return decode_state(body, self._uri(key)), str(response["ETag"])

    def _put(self, key: str, value: dict[str, Any], condition: dict[str, str]) -> str | None:
        """PUT `value`; its ETag, or None when the condition (IfMatch / IfNoneMatch) failed."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=self._object_key(key),
                Body=encode_state(value),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if condition and _code(exc) in _CONFLICT_CODES:
                log.debug("state %s: %s failed (%s)", self._uri(key), condition, _code(exc))
                return None
            raise self._error("write", key, exc) from exc
        except BotoCoreError as exc:
            raise self._error("write", key, exc) from exc
        return str(response["ETag"])

    def read_json(self, key: str) -> dict[str, Any] | None:
        found = self._get(key)
        self._etags[key] = found[1] if found else None
        return found[0] if found else None

    def write_json(self, key: str, value: dict[str, Any]) -> None:
        condition: dict[str, str] = {}
        if key in self._etags:
            etag = self._etags[key]
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        new_etag = self._put(key, value, condition)
        if new_etag is None:
            raise StateError(
                f"state {self._uri(key)}: changed by another run since this run read it; "
                "not overwritten, rerun to continue from the newer state"
            )
        self._etags[key] = new_etag

    def lock(self, pipeline: str, run_id: str, *, lease_s: float = LOCK_LEASE_S) -> S3RunLock:
        """Take `pipeline`'s run lock (see S3RunLock); StateError naming the holder if held."""
        return S3RunLock(self, pipeline, run_id, lease_s=lease_s)

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


class S3RunLock:
    """`<prefix>/<pipeline>/run.lock`: created with If-None-Match: *, held under a lease
    that a daemon thread renews every lease/3 with If-Match on this run's own ETag.

    A lock whose lease expired belongs to a run that died (or stalled past its lease); it
    is taken over with If-Match on the ETag read, so of two runs racing to take it over
    one wins and the other is refused. Expiry compares the holder's `expires_at` with this
    host's clock: hosts must agree to well within a lease (NTP does; while the holder
    lives, at least 2/3 of its lease is left).

    When a renewal finds the lock taken over, the heartbeat logs an error and stops. A
    thread cannot stop the run, which carries on: `ensure_held()` raises from then on, so
    the run can refuse to commit."""

    def __init__(self, store: S3StateStore, pipeline: str, run_id: str, *, lease_s: float) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self.store, self.pipeline, self.run_id, self.lease_s = store, pipeline, run_id, lease_s
        self.key = f"{pipeline}/{LOCK_NAME}"
        self._record = holder_record(run_id, now_utc())
        self._etag = self._acquire()
        self._lost: str | None = None
        self._released = False
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(
            target=self._renew_until_released, name=f"run-lock-{pipeline}", daemon=True
        )
        self._heartbeat.start()

    def _body(self) -> dict[str, Any]:
        expires_at = now_utc() + timedelta(seconds=self.lease_s)
        return {**self._record, "expires_at": expires_at.isoformat(timespec="milliseconds")}

    def _expired(self, holder: dict[str, Any]) -> bool:
        try:
            return datetime.fromisoformat(str(holder["expires_at"])) <= now_utc()
        except (KeyError, ValueError) as exc:
            raise StateError(
                f"state {self.store._uri(self.key)}: a run lock without a valid expires_at; "
                "delete it if no run of this pipeline is running"
            ) from exc

    def _acquire(self) -> str:
        hint = "wait for it to finish; if it died, the lock is taken over once its lease expires"
        for _attempt in range(3):
            etag = self.store._put(self.key, self._body(), {"IfNoneMatch": "*"})
            if etag is not None:
                return etag
            found = self.store._get(self.key)
            if found is None:
                continue  # released in between: create it again
            holder, holder_etag = found
            if not self._expired(holder):
                raise StateError(locked_message(self.pipeline, holder, hint))
            etag = self.store._put(self.key, self._body(), {"IfMatch": holder_etag})
            if etag is not None:
                log.warning(
                    "pipeline %s: run %s took over the run lock of run %s, expired at %s",
                    self.pipeline,
                    self.run_id,
                    holder.get("run_id"),
                    holder.get("expires_at"),
                )
                return etag
            # Another run took it over first; the next round names that run.
        raise StateError(
            f"pipeline {self.pipeline}: the run lock {self.store._uri(self.key)} changed hands "
            f"three times while run {self.run_id} tried to take it; retry"
        )

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                etag = self.store._put(self.key, self._body(), {"IfMatch": self._etag})
            except StateError as exc:
                log.warning("pipeline %s: run lock not renewed, will retry: %s", self.pipeline, exc)
                continue
            if etag is None:
                self._lost = (
                    f"pipeline {self.pipeline}: run {self.run_id} lost its run lock "
                    f"{self.store._uri(self.key)}: its lease expired before it was renewed and "
                    "another run took it over"
                )
                log.error("%s; this run carries on (a thread cannot stop it)", self._lost)
                return
            self._etag = etag

    def ensure_held(self) -> None:
        if self._lost:
            raise StateError(self._lost)
        if self._released:
            raise StateError(f"pipeline {self.pipeline}: run {self.run_id} released its lock")

    def release(self) -> None:
        """Stop the heartbeat; delete the lock only if it is still this run's (If-Match on
        its ETag: S3 and moto both refuse a delete whose ETag does not match). Idempotent."""
        from botocore.exceptions import BotoCoreError, ClientError

        if self._released:
            return
        self._released = True
        self._stop.set()
        self._heartbeat.join()
        store = self.store
        try:
            store.client.delete_object(
                Bucket=store.bucket, Key=store._object_key(self.key), IfMatch=self._etag
            )
        except ClientError as exc:
            if _code(exc) not in _CONFLICT_CODES:
                raise store._error("release the run lock", self.key, exc) from exc
            log.warning(
                "pipeline %s: run lock %s is no longer run %s's; left in place",
                self.pipeline,
                store._uri(self.key),
                self.run_id,
            )
        except BotoCoreError as exc:
            raise store._error("release the run lock", self.key, exc) from exc

    def __enter__(self) -> S3RunLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
