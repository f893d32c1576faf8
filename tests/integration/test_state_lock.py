"""The S3 run lock against the local S3 endpoint (moto_server).

moto 5.2.5 honours the conditional requests the lock relies on, as S3 does (measured):
put_object IfNoneMatch="*" on an existing key and IfMatch with a stale ETag answer 412
PreconditionFailed, IfMatch on a missing key 404 NoSuchKey, and delete_object IfMatch
with a stale ETag 412 (the object stays). So these tests run the real requests; only the
interleaving of two takeovers is arranged, with a botocore event hook.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sluiceway.errors import StateError
from sluiceway.state import acquire_run_lock
from sluiceway.state.s3 import S3StateStore

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only

LOCK_KEY = "state/p/run.lock"
# Takes the lock as run argv[2] with a lease of argv[3] seconds, prints "locked", releases
# on a line from stdin. Logs (the heartbeat's) go to stderr.
HOLDER = """
import logging, sys
from sluiceway.state.s3 import S3StateStore

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
lock = S3StateStore(sys.argv[1]).lock("p", sys.argv[2], lease_s=float(sys.argv[3]))
print("locked", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
"""


def _holder(location: str, run_id: str, lease_s: float) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, location, run_id, str(lease_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked", child.stderr and child.stderr.read()
    return child


def _killed_holder(location: str, run_id: str, lease_s: float) -> None:
    """A run that took the lock and was SIGKILLed; returns once its lease has expired."""
    child = _holder(location, run_id, lease_s)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    time.sleep(lease_s + 0.2)


def _lock_body(s3_client, bucket: str) -> dict:
    return json.loads(s3_client.get_object(Bucket=bucket, Key=LOCK_KEY)["Body"].read())


def _lock_exists(s3_client, bucket: str) -> bool:
    return "Contents" in s3_client.list_objects_v2(Bucket=bucket, Prefix=LOCK_KEY)


def test_a_second_run_is_refused_naming_the_holder_and_its_lease(s3_bucket, s3_client):
    location = f"s3://{s3_bucket}/state"
    lock = acquire_run_lock(S3StateStore(location), "p", "run-1")
    body = _lock_body(s3_client, s3_bucket)
    assert (body["run_id"], body["pid"]) == ("run-1", os.getpid())
    with pytest.raises(StateError) as refused:
        acquire_run_lock(S3StateStore(location), "p", "run-2")
    assert str(refused.value) == (
        f"pipeline p: locked by run run-1 since {body['started_at']} (pid {os.getpid()} on "
        f"{body['host']}, lease until {body['expires_at']}); wait for it to finish; if it "
        "died, the lock is taken over once its lease expires"
    )
    lock.release()
    assert not _lock_exists(s3_client, s3_bucket)
    with acquire_run_lock(S3StateStore(location), "p", "run-2"):
        assert _lock_body(s3_client, s3_bucket)["run_id"] == "run-2"
    assert not _lock_exists(s3_client, s3_bucket)


def test_the_heartbeat_keeps_a_live_runs_lease(s3_bucket, s3_client):
    location = f"s3://{s3_bucket}/state"
    with S3StateStore(location).lock("p", "run-1", lease_s=0.9) as lock:
        first = _lock_body(s3_client, s3_bucket)["expires_at"]
        time.sleep(2.0)  # over twice the lease: only renewals keep it
        with pytest.raises(StateError, match="locked by run run-1"):
            S3StateStore(location).lock("p", "run-2")
        assert _lock_body(s3_client, s3_bucket)["expires_at"] > first
        lock.ensure_held()


def test_the_lock_of_a_run_that_died_is_taken_over_once_its_lease_expired(s3_bucket, s3_client):
    location = f"s3://{s3_bucket}/state"
    _killed_holder(location, "run-1", lease_s=1.0)
    assert _lock_body(s3_client, s3_bucket)["run_id"] == "run-1"  # left behind
    with acquire_run_lock(S3StateStore(location), "p", "run-2"):
        assert _lock_body(s3_client, s3_bucket)["run_id"] == "run-2"
    assert not _lock_exists(s3_client, s3_bucket)


def test_a_run_that_lost_its_lock_neither_renews_nor_deletes_it(s3_bucket, s3_client):
    location = f"s3://{s3_bucket}/state"
    stalled = _holder(location, "run-1", lease_s=1.5)
    stalled.send_signal(signal.SIGSTOP)  # a stalled run: no heartbeat, its lease runs out
    try:
        time.sleep(1.8)
        taker = acquire_run_lock(S3StateStore(location), "p", "run-2")
    finally:
        stalled.send_signal(signal.SIGCONT)
    time.sleep(1.0)  # the stalled run's heartbeat is overdue: it renews now, and fails
    out, err = stalled.communicate("\n", timeout=30)
    assert out.strip() == "released"
    assert "run run-1 lost its run lock" in err
    assert "is no longer run run-1's; left in place" in err
    assert _lock_body(s3_client, s3_bucket)["run_id"] == "run-2"
    taker.ensure_held()
    taker.release()
    assert not _lock_exists(s3_client, s3_bucket)


def test_of_two_runs_taking_over_an_expired_lock_only_one_wins(s3_bucket, s3_client):
    location = f"s3://{s3_bucket}/state"
    _killed_holder(location, "run-1", lease_s=1.0)
    loser = S3StateStore(location)
    winner_locks = []

    def winner_takes_over_first(params, **_):
        # The loser has read run-1's expired lock and is about to PUT with If-Match on its
        # ETag: the winner takes the lock over just before, so that ETag is stale.
        if "IfMatch" in params and not winner_locks:
            winner_locks.append(acquire_run_lock(S3StateStore(location), "p", "run-A"))

    loser.client.meta.events.register(
        "before-parameter-build.s3.PutObject", winner_takes_over_first
    )
    with pytest.raises(StateError, match=r"^pipeline p: locked by run run-A since "):
        acquire_run_lock(loser, "p", "run-B")
    assert len(winner_locks) == 1
    assert _lock_body(s3_client, s3_bucket)["run_id"] == "run-A"
    winner_locks[0].ensure_held()
    winner_locks[0].release()
    assert not _lock_exists(s3_client, s3_bucket)
