"""Run state: per-table watermarks, run reports and the run lock, kept in a local directory or
an S3 prefix."""

from __future__ import annotations

from sluiceway.state.lock import RunLock
from sluiceway.state.s3 import S3StateStore
from sluiceway.state.store import (
    LocalStateStore,
    StateStore,
    acquire_run_lock,
    open_state_store,
    read_run_reports,
)

__all__ = [
    "LocalStateStore",
    "RunLock",
    "S3StateStore",
    "StateStore",
    "acquire_run_lock",
    "open_state_store",
    "read_run_reports",
]
