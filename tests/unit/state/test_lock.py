"""The local run lock: an flock that a second process cannot take and a killed one frees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from sluiceway.errors import StateError
from sluiceway.state import LocalStateStore, acquire_run_lock

# Takes the lock as run argv[2] and reports: "locked", or "refused <message>". Then waits
# for a line on stdin before it exits (and so releases).
CHILD = """
import sys
from sluiceway.errors import StateError
from sluiceway.state import LocalStateStore, acquire_run_lock

try:
    lock = acquire_run_lock(LocalStateStore(sys.argv[1]), "p", sys.argv[2])
except StateError as exc:
    print("refused", exc, flush=True)
    sys.exit(0)
print("locked", flush=True)
sys.stdin.readline()
lock.release()
"""


def _child(root, run_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), run_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _attempt(root, run_id: str) -> str:
    """What a run in another process gets when it tries the lock (and then exits)."""
    child = _child(root, run_id)
    out, _ = child.communicate("\n", timeout=60)
    return out.strip()


def test_a_second_run_is_refused_naming_the_run_that_holds_the_lock(tmp_path):
    lock = acquire_run_lock(LocalStateStore(str(tmp_path)), "p", "run-1")
    try:
        holder = json.loads((tmp_path / "p" / "run.lock").read_text())
        assert holder["run_id"] == "run-1" and holder["pid"] == os.getpid()
        refused = _attempt(tmp_path, "run-2")
        assert refused.startswith(
            f"refused pipeline p: locked by run run-1 since {holder['started_at']} "
            f"(pid {os.getpid()} on {holder['host']}); wait for it to finish"
        )
        # flock is per open file, so a second acquire in the same process is refused too.
        with pytest.raises(StateError, match=r"^pipeline p: locked by run run-1 since "):
            acquire_run_lock(LocalStateStore(str(tmp_path)), "p", "run-3")
    finally:
        lock.release()


def test_a_released_lock_can_be_taken_again(tmp_path):
    store = LocalStateStore(str(tmp_path))
    with acquire_run_lock(store, "p", "run-1"):
        pass
    assert _attempt(tmp_path, "run-2") == "locked"
    lock = acquire_run_lock(store, "p", "run-3")
    lock.release()
    lock.release()  # idempotent
    with pytest.raises(StateError, match="released its lock"):
        lock.ensure_held()
    # Other pipelines have their own lock, and the lock file is no state key.
    with acquire_run_lock(store, "p", "run-4"), acquire_run_lock(store, "q", "run-5"):
        assert store.list_keys("p") == []


def test_a_killed_run_leaves_no_stale_lock(tmp_path):
    holder = _child(tmp_path, "run-1")
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(StateError, match=r"locked by run run-1 since .* \(pid \d+ on "):
        acquire_run_lock(LocalStateStore(str(tmp_path)), "p", "run-2")

    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=30) == -signal.SIGKILL
    holder.stdout.close()
    assert holder.stdin is not None
    holder.stdin.close()

    lock = acquire_run_lock(LocalStateStore(str(tmp_path)), "p", "run-2")
    try:
        assert json.loads((tmp_path / "p" / "run.lock").read_text())["run_id"] == "run-2"
    finally:
        lock.release()
