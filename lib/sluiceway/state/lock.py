"""A per-pipeline run lock, so two runs of one pipeline never interleave their writes.

    lock = acquire_run_lock(store, pipeline, run_id)  # StateError if a live run holds it
    try:
        ...
    finally:
        lock.release()

(or `with acquire_run_lock(store, pipeline, run_id):`). The lock is `<pipeline>/run.lock`
in the store, holding JSON that names the run that has it:
- local store: an flock on the file. The kernel drops it when the holder's process exits,
  however it exits (SIGKILL included), so a dead run never leaves a stale lock;
- S3 store: an object created with a conditional PUT, under a lease that a heartbeat
  thread renews; a lock whose lease expired (its run died) is taken over. See state/s3.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from sluiceway.errors import StateError

LOCK_NAME = "run.lock"


class RunLock(Protocol):
    pipeline: str
    run_id: str

    def ensure_held(self) -> None:
        """Raise StateError if this run no longer holds the lock (S3: taken over)."""

    def release(self) -> None: ...

    def __enter__(self) -> RunLock: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def now_utc() -> datetime:
    return datetime.now(UTC)


def holder_record(run_id: str, started_at: datetime) -> dict[str, Any]:
    """What a lock says about the run that holds it."""
    return {
        "run_id": run_id,
        "started_at": started_at.isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def locked_message(pipeline: str, holder: dict[str, Any] | None, hint: str) -> str:
    """`pipeline p: locked by run r since t (pid n on h, lease until u); <hint>`."""
    if not holder:
        return f"pipeline {pipeline}: locked by another run (it has not named itself yet); {hint}"
    where = f"pid {holder.get('pid')} on {holder.get('host')}"
    if "expires_at" in holder:
        where += f", lease until {holder['expires_at']}"
    return (
        f"pipeline {pipeline}: locked by run {holder.get('run_id')} "
        f"since {holder.get('started_at')} ({where}); {hint}"
    )


class FileRunLock:
    """An flock on `<root>/<pipeline>/run.lock`, held while the file stays open.

    The file is never deleted: a run that opened the old file could then lock it while
    another locks a new one. Release empties it instead."""

    def __init__(self, path: Path, pipeline: str, run_id: str) -> None:
        self.path, self.pipeline, self.run_id = path, pipeline, run_id
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"state {path}: cannot open the run lock: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = _parse(os.pread(fd, 64 * 1024, 0))
            os.close(fd)
            hint = f"wait for it to finish or stop it (a run that exits releases {path})"
            raise StateError(locked_message(pipeline, holder, hint)) from exc
        except OSError as exc:
            os.close(fd)
            raise StateError(f"state {path}: cannot lock: {exc.strerror}") from exc
        self._fd: int | None = fd
        body = json.dumps(holder_record(run_id, now_utc()), sort_keys=True).encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, body, 0)
            os.fsync(fd)
        except OSError as exc:
            self.release()
            raise StateError(f"state {path}: cannot write the run lock: {exc.strerror}") from exc

    def ensure_held(self) -> None:
        if self._fd is None:
            raise StateError(f"pipeline {self.pipeline}: run {self.run_id} released its lock")

    def release(self) -> None:
        """Unlock (closing the file is what frees an flock); idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # so a reader never names a finished run
        except OSError as exc:
            raise StateError(f"state {self.path}: cannot empty the run lock: {exc}") from exc
        finally:
            os.close(fd)

    def __enter__(self) -> FileRunLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _parse(body: bytes) -> dict[str, Any] | None:
    """The holder's record, or None while it is still being written (or was emptied)."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
