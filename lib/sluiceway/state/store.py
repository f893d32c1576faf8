"""Where a pipeline keeps its watermarks and run reports.

Layout under the store's location:
    <pipeline>/tables/<table>.json   {"watermark": {"kind", "value"}, "run_id", "committed_at"}
    <pipeline>/runs/<run_id>.json    the run report
    <pipeline>/runs/latest.json      a copy of the newest run report
    <pipeline>/run.lock              the run lock: which run holds it (state/lock.py)

Every write replaces a whole object atomically, so a reader sees the old or the new
version, never half of one (local: temp file + rename; S3: one PUT per object plus an
embedded checksum, see state/s3.py).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from sluiceway.errors import StateError
from sluiceway.state.lock import LOCK_NAME, FileRunLock, RunLock


class StateStore(Protocol):
    location: str

    def read_json(self, key: str) -> dict[str, Any] | None: ...

    def write_json(self, key: str, value: dict[str, Any]) -> None: ...

    def delete(self, key: str) -> bool: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def lock(self, pipeline: str, run_id: str) -> RunLock: ...


def acquire_run_lock(store: StateStore, pipeline: str, run_id: str) -> RunLock:
    """Take `pipeline`'s run lock for `run_id`; StateError naming the run that holds it."""
    return store.lock(pipeline, run_id)


class LocalStateStore:
    """A directory; writes go to a temp file that is fsynced and renamed into place."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.root = Path(location.removeprefix("file://"))

    def _path(self, key: str) -> Path:
        return self.root / key

    def read_json(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"state {path}: cannot read: {exc.strerror}") from exc
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StateError(f"state {path}: not valid JSON ({exc})") from exc
        if not isinstance(value, dict):
            raise StateError(f"state {path}: expected a JSON object")
        return value

    def write_json(self, key: str, value: dict[str, Any]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(value, handle, indent=2, sort_keys=True, default=str)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise StateError(f"state {path}: cannot write: {exc.strerror}") from exc

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StateError(f"state {self._path(key)}: cannot delete: {exc.strerror}") from exc
        return True

    def list_keys(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*.json")
            if not p.name.startswith(".")
        )

    def lock(self, pipeline: str, run_id: str) -> FileRunLock:
        """An flock on `<pipeline>/run.lock`; StateError naming the holder if it is held."""
        return FileRunLock(self._path(f"{pipeline}/{LOCK_NAME}"), pipeline, run_id)


def read_run_reports(store: StateStore, pipeline: str, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` run reports of `pipeline`, oldest first (run ids sort by time)."""
    keys = [key for key in store.list_keys(f"{pipeline}/runs") if not key.endswith("/latest.json")]
    reports = [store.read_json(key) for key in keys[-limit:] if limit > 0]
    return [report for report in reports if report is not None]


def open_state_store(location: str) -> StateStore:
    """The store for a location: s3:// or s3a:// URI, a local path or a file:// URI."""
    if location.startswith(("s3://", "s3a://")):
        from sluiceway.state.s3 import S3StateStore

        return S3StateStore(location)
    if "://" in location and not location.startswith("file://"):
        raise StateError(
            f"state location {location}: expected a local path, file://, s3:// or s3a:// URI"
        )
    return LocalStateStore(location)
