"""Run state on S3: round trips, concurrent commits, and a writer killed mid-write."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from sluiceway.errors import StateError
from sluiceway.state.s3 import S3StateStore

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only

KEY = "p/tables/orders.json"
# The writer commits watermark n+1, n+2, ... and prints each n once its PUT returned.
# The padding makes each object a few hundred KB, so kills also land inside the upload.
WRITER = """
import sys
from sluiceway.state.s3 import S3StateStore

store = S3StateStore(sys.argv[1])
state = store.read_json("p/tables/orders.json")
n = state["watermark"]["value"] if state else 0
print("ready", flush=True)
while True:
    n += 1
    store.write_json(
        "p/tables/orders.json",
        {"watermark": {"kind": "int", "value": n}, "padding": "x" * 300_000},
    )
    print(n, flush=True)
"""
KILL_BUDGET_S = 25.0
MIN_KILLS = 12


def test_s3_store_round_trips_lists_and_deletes(s3_bucket):
    store = S3StateStore(f"s3://{s3_bucket}/state/")
    assert store.read_json(KEY) is None
    store.write_json(KEY, {"watermark": {"kind": "int", "value": "7"}})
    store.write_json(KEY, {"watermark": {"kind": "int", "value": "8"}})
    store.write_json("p/runs/latest.json", {"status": "succeeded"})
    fresh = S3StateStore(f"s3a://{s3_bucket}/state")
    assert fresh.read_json(KEY) == {"watermark": {"kind": "int", "value": "8"}}
    assert fresh.list_keys("p") == ["p/runs/latest.json", KEY]
    assert fresh.delete(KEY) is True
    assert fresh.delete(KEY) is False
    assert fresh.read_json(KEY) is None


def test_a_commit_over_another_runs_newer_state_is_refused(s3_bucket):
    location = f"s3://{s3_bucket}/state"
    first, second = S3StateStore(location), S3StateStore(location)
    assert first.read_json(KEY) is None and second.read_json(KEY) is None
    first.write_json(KEY, {"watermark": {"kind": "int", "value": "1"}})
    with pytest.raises(StateError, match=r"changed by another run since this run read it"):
        second.write_json(KEY, {"watermark": {"kind": "int", "value": "2"}})
    assert S3StateStore(location).read_json(KEY) == {"watermark": {"kind": "int", "value": "1"}}
    # The winner keeps committing: its own write moved its ETag forward.
    first.write_json(KEY, {"watermark": {"kind": "int", "value": "3"}})
    assert second.read_json(KEY) == {"watermark": {"kind": "int", "value": "3"}}


def test_state_is_old_or_new_after_the_writer_is_killed_at_any_point(s3_bucket):
    location = f"s3://{s3_bucket}/state"
    rng = random.Random(20240601)
    committed = 0  # the last watermark a writer confirmed
    kills = landed_unconfirmed = 0
    started = time.monotonic()
    while time.monotonic() - started < KILL_BUDGET_S or kills < MIN_KILLS:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, location],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=os.environ.copy(),
        )
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        confirmed = [int(line) for line in writer.stdout.read().split()]
        writer.stdout.close()
        kills += 1
        last = confirmed[-1] if confirmed else committed
        state = S3StateStore(location).read_json(KEY)  # a damaged object raises here
        assert state is not None or last == 0
        value = state["watermark"]["value"] if state else 0
        # Old (the last confirmed write) or new (the write in flight when killed).
        assert value in (last, last + 1), (kills, last, value)
        landed_unconfirmed += value == last + 1
        committed = value
        if kills >= 200:
            break
    assert kills >= MIN_KILLS
    print(f"{kills} kills, final watermark {committed}, {landed_unconfirmed} landed unconfirmed")
