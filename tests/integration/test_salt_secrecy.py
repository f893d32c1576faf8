"""The hash salt never shows in a query plan, a log or the event log (what the Spark UI and
the History Server show): a real Spark in a subprocess hashes a column with the event log
on, prints every plan of the write, and the test greps all of it for the salt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SALT = "salt-b7e1-never-printed"

CHILD = """
import hashlib, sys
from pyspark.sql import SparkSession
from sluiceway.transforms import with_hashed_columns

events, out = sys.argv[1], sys.argv[2]
spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.eventLog.enabled", "true")
    .config("spark.eventLog.dir", events)
    .config("spark.eventLog.compress", "false")  # greppable (4.x compresses by default)
    .config("spark.eventLog.rolling.enabled", "false")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("INFO")
salt = sys.stdin.readline().strip()  # never an argument: the test greps the command too
df = spark.createDataFrame([(1, "ann"), (2, None)], "id int, name string")
hashed = with_hashed_columns(df, ["name"], salt)
hashed.explain(extended=True)
hashed.write.parquet(out)
rows = dict(spark.read.parquet(out).collect())
assert rows == {1: hashlib.sha256((salt + "ann").encode()).hexdigest(), 2: None}, rows
spark.stop()
print("hashed ok")
"""


def test_the_salt_is_in_no_plan_log_or_event_log(tmp_path: Path):
    events = tmp_path / "events"
    events.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(events), str(tmp_path / "out")],
        input=SALT + "\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "hashed ok" in result.stdout and "== Physical Plan ==" in result.stdout
    logs = [path for path in events.rglob("*") if path.is_file()]
    event_log = "\n".join(path.read_text(errors="replace") for path in logs)
    for name, text in [("plan", result.stdout), ("log", result.stderr), ("event log", event_log)]:
        assert SALT not in text, name
    # The event log holds the plans (the salt's column is named in them) but not the salt.
    assert "SparkListenerSQLExecutionStart" in event_log and "__sluiceway_salt" in event_log
