"""`sluiceway deliver` end to end on the real Kafka broker: gzip JSON lines by arrival hour.

The delivery preset writes JSON through the same exactly-once sink as Parquet, so the one
test here SIGKILLs the real command between two moves of a batch (a file moved into the
prefix, the next still staged), restarts it on its checkpoint, and checks the result file
by file with the standard library: each valid record once under
`arrival_date=YYYY-MM-DD/arrival_hour=H/`, each malformed one once under the error prefix.
Two Spark start-ups a line (the killed run and the one that finishes).
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import signal
import textwrap
from datetime import datetime
from pathlib import Path

from sluiceway.demo.events import EVENT_SCHEMA, sample_records, send_to_kafka

from .conftest import run_stream_cli

# A batch's files, named by the sink: part-b<batch>-<index>.c000.json.gz
_FILE = r"part-b\d{12}-\d{5}\.c000\.json\.gz"
_EVENT_FILE = re.compile(rf"^arrival_date=(\d{{4}}-\d\d-\d\d)/arrival_hour=(\d+)/{_FILE}$")
_ERROR_FILE = re.compile(rf"^arrival_date=(\d{{4}}-\d\d-\d\d)/{_FILE}$")


def _spec(root: Path, topic: str) -> Path:
    text = textwrap.dedent(
        f"""
        [pipeline]
        name = "delivery"
        output = "{root / "out"}"

        [source]
        kind = "kafka"
        bootstrap_servers_env = "SLUICEWAY_KAFKA_BOOTSTRAP"
        topics = ["{topic}"]

        [events]
        schema = "{EVENT_SCHEMA}"
        event_id = "event_id"
        event_time = "event_time"

        [delivery]
        buffer_records = 200
        format = "json.gz"
        prefix_by = "arrival_time"
        prefix = "delivered"
        error_prefix = "errors"

        [trigger]
        mode = "available_now"
        """
    )
    path = root / "delivery.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _lines(root: Path, pattern: re.Pattern[str]) -> list[tuple[re.Match[str], dict]]:
    """Every JSON line of every file under `root`, with its path's match; any other file
    (a leftover, a wrongly named one) fails. Hidden files (local checksums) are skipped,
    as Spark and Athena skip them."""
    rows = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name[0] != "."):
        match = pattern.match(str(path.relative_to(root)))
        assert match, f"unexpected file {path}"
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            rows += [(match, json.loads(line)) for line in lines]
    return rows


def test_deliver_killed_mid_moves_lands_each_record_once_by_arrival_hour(
    tmp_path, new_topic, kafka_bootstrap
):
    topic = new_topic(3)
    records = sample_records(600, malformed_share=0.1, seed=51)
    send_to_kafka(kafka_bootstrap, topic, records)
    spec = _spec(tmp_path, topic)

    # Batch 1: its first file moved, the rest staged.
    killed = run_stream_cli(spec, "stream-move:1", "deliver")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert "sluiceway: killed at stream-move:1" in killed.stderr, killed.stderr
    assert list((tmp_path / "out/_checkpoints/delivery/sink/pending").glob("*.json"))
    moved = [p for p in (tmp_path / "out").rglob("part-b000000000001-*") if p.name[0] != "."]
    assert len(moved) == 1 and "_checkpoints" not in moved[0].parts, moved

    final = run_stream_cli(spec, command="deliver")
    assert final.returncode == 0, final.stdout + final.stderr
    assert "delivering json.gz by arrival_time" in final.stdout, final.stdout
    assert ": succeeded, " in final.stdout, final.stdout

    events = _lines(tmp_path / "out/delivered", _EVENT_FILE)
    valid = sorted(r.event_id for r in records if r.event_id)
    assert len(valid) == 540
    assert sorted(row["event_id"] for _, row in events) == valid  # each once, none missing
    for match, row in events:  # in the prefix of the hour the record reached Kafka (UTC)
        arrived = datetime.fromisoformat(row["_arrival_time"])
        assert (arrived.date().isoformat(), arrived.hour) == (match[1], int(match[2]))
        assert row["_topic"] == topic and "arrival_date" not in row
    errors = _lines(tmp_path / "out/errors", _ERROR_FILE)
    malformed = sorted(r.data for r in records if r.event_id is None)
    assert sorted(base64.b64decode(row["payload"]) for _, row in errors) == malformed
    assert all(row["error"] and row["topic"] == topic for _, row in errors)
    sink = tmp_path / "out/_checkpoints/delivery/sink"
    assert not list((sink / "pending").glob("*")) and not list((sink / "staging").glob("*"))
    assert len(list((sink / "commits").glob("*.json"))) >= 3  # 600 records, 200 a batch
