"""Run state: per-table watermarks and run reports, kept in a local directory or an S3 prefix."""

from __future__ import annotations

from sluiceway.state.s3 import S3StateStore
from sluiceway.state.store import LocalStateStore, StateStore, open_state_store

__all__ = ["LocalStateStore", "S3StateStore", "StateStore", "open_state_store"]
