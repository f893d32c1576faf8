"""End to end against a real Kafka broker: exactly once, dead letters, kills, new partitions.

Spark's own Kafka source runs on both PySpark lines, so every test here runs on both.
Records go in through `sluiceway.demo.events.send_to_kafka` (kafka-python), keyed by event
id, so they spread over the topic's partitions.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pyspark

from sluiceway import streaming
from sluiceway.demo.events import sample_records, send_to_kafka
from sluiceway.stream_spec import load_stream_spec

from .conftest import ids, kafka_source, read_dataset, run_stream_cli, write_stream_spec
from .test_stream_kinesis import report_ids

_DEAD_PLACE = ["payload", "error", "topic", "partition", "offset", "key"]


def _places(df, *columns: str) -> Counter:
    return Counter(tuple(row) for row in df.select(*columns).collect())


def test_topic_with_several_partitions_lands_each_valid_record_once_and_every_malformed_one(
    spark, tmp_path, new_topic, kafka_bootstrap
):
    topic = new_topic(4)
    records = sample_records(1200, malformed_share=0.1, seed=31)
    send_to_kafka(kafka_bootstrap, topic, records)
    spec = load_stream_spec(write_stream_spec(tmp_path, kafka_source(topic, max_records=500)))

    report = streaming.run_spec(spark, spec)

    valid = [r.event_id for r in records if r.event_id]
    malformed = sorted(r.data for r in records if r.event_id is None)
    assert len(valid) == 1080 and len(malformed) == 120
    events = read_dataset(spark, spec.sink.path)
    assert sorted(ids(events)) == sorted(valid)
    dead = read_dataset(spark, spec.sink.dead_letter_path)
    assert sorted(bytes(r["payload"]) for r in dead.collect()) == malformed
    # Every record is named by its place in the topic, each place once across both outputs.
    event_places = _places(events, "_topic", "_partition", "_offset")
    dead_places = _places(dead, "topic", "partition", "offset")
    assert max([*event_places.values(), *dead_places.values()]) == 1
    assert not set(event_places) & set(dead_places)
    assert {p[0] for p in [*event_places, *dead_places]} == {topic}
    assert {p[1] for p in [*event_places, *dead_places]} == {0, 1, 2, 3}
    per_partition = Counter(p[1] for p in [*event_places, *dead_places])
    for partition, count in per_partition.items():  # offsets 0..n-1 in each partition
        offsets = sorted(p[2] for p in [*event_places, *dead_places] if p[1] == partition)
        assert offsets == list(range(count))
    assert all(r["error"] and r["key"] and r["arrival_time"] for r in dead.collect())
    assert {r["_source"] for r in events.select("_source").distinct().collect()} == {
        f"kafka:{topic}"
    }
    # 1200 records, at most 500 a batch (maxOffsetsPerTrigger, honoured by AvailableNow).
    sizes = [b["metrics"]["records"] for b in report.batches if b["metrics"]["records"]]
    assert len(sizes) >= 3 and max(sizes) <= 500, sizes


# Each Spark start-up costs ~25 s: the lines share the kill points (CI runs both). A killed
# run restarts on the checkpoint the kill before it left.
if pyspark.__version__.startswith("3."):
    KILLS = ("stream-move:1@2", "stream-committed:2")  # mid-moves; ours committed, not Spark's
else:
    KILLS = ("stream-staged:1", "stream-planned:2")  # staged, no plan; planned, nothing moved


def test_job_killed_mid_batch_restarts_on_its_checkpoint_exactly_once(
    spark, tmp_path, new_topic, kafka_bootstrap
):
    topic = new_topic(3)
    records = sample_records(900, malformed_share=0.1, duplicate_share=0.02, seed=32)
    send_to_kafka(kafka_bootstrap, topic, records)
    spec_path = write_stream_spec(
        tmp_path, kafka_source(topic, max_records=300), sink_extra="compact_min_files = 2"
    )
    spec = load_stream_spec(spec_path)
    sink = Path(spec.trigger.checkpoint) / "sink"

    for point in KILLS:
        result = run_stream_cli(spec_path, point)
        output = f"{point}:\n{result.stdout}\n{result.stderr}"
        assert result.returncode == -signal.SIGKILL, output
        assert f"sluiceway: killed at {point.partition('@')[0]}" in result.stderr, output

    final = run_stream_cli(spec_path, None)
    assert final.returncode == 0, final.stdout + final.stderr
    assert ": succeeded, " in final.stdout, final.stdout

    valid = {r.event_id for r in records if r.event_id}
    written = ids(read_dataset(spark, spec.sink.path))
    assert len(written) == len(valid)  # nothing twice
    assert set(written) == valid  # nothing missing
    dead = read_dataset(spark, spec.sink.dead_letter_path)
    assert dead.count() == 90
    assert max(_places(dead, "partition", "offset").values()) == 1
    assert not list((sink / "staging").glob("*")) and not list((sink / "pending").glob("*"))
    commits = [json.loads(p.read_text()) for p in sorted((sink / "commits").glob("*.json"))]
    assert sum(c["metrics"]["records"] for c in commits) == 900 - 18  # re-sent copies dropped

    # A clean run (never killed) of the same topic into another output lands the same rows
    # (which copy of a re-sent event is kept may differ: compared by payload fields).
    (tmp_path / "clean").mkdir()
    clean = load_stream_spec(
        write_stream_spec(tmp_path / "clean", kafka_source(topic, max_records=300))
    )
    streaming.run_spec(spark, clean)
    fields = list(spec.events.field_names)
    for path, columns in [
        ((spec.sink.path, clean.sink.path), fields),
        ((spec.sink.dead_letter_path, clean.sink.dead_letter_path), _DEAD_PLACE),
    ]:
        killed, once = (sorted(read_dataset(spark, p).select(*columns).collect()) for p in path)
        assert killed == once, columns


def test_second_available_now_run_reads_only_records_added_after_the_first(
    spark, tmp_path, new_topic, kafka_bootstrap
):
    topic = new_topic(3)
    first = sample_records(400, malformed_share=0.05, seed=33)
    send_to_kafka(kafka_bootstrap, topic, first)
    spec = load_stream_spec(write_stream_spec(tmp_path, kafka_source(topic)))
    assert streaming.run_spec(spark, spec).total("records") == 400

    second = sample_records(300, malformed_share=0.1, seed=34)
    resent = [r for r in first if r.event_id][:50]  # re-sent within the dedupe window
    send_to_kafka(kafka_bootstrap, topic, [*second, *resent])
    report = streaming.run_spec(spark, spec)

    assert report.total("records") == 300
    assert report.total("dead_letters") == 30
    assert set(report_ids(spark, spec, report)) == {r.event_id for r in second if r.event_id}
    everything = {r.event_id for r in [*first, *second] if r.event_id}
    written = ids(read_dataset(spark, spec.sink.path))
    assert sorted(written) == sorted(everything)


def test_partitions_added_while_the_job_runs_are_followed(
    spark, tmp_path, new_topic, kafka_bootstrap
):
    from kafka.admin import KafkaAdminClient, NewPartitions

    topic = new_topic(2)
    before, after = sample_records(200, seed=35), sample_records(400, seed=36)
    send_to_kafka(kafka_bootstrap, topic, before)
    spec = load_stream_spec(
        write_stream_spec(tmp_path, kafka_source(topic), mode="interval", interval_seconds=1)
    )
    stop = streaming.StopSignal()
    seen = {"records": 0}

    def grow_then_stop(record: dict) -> None:
        """After the first batch: two more partitions, records on all four; then stop once
        every record has landed."""
        if seen["records"] == 0 and record["metrics"]["records"]:
            admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
            try:
                admin.create_partitions({topic: NewPartitions(4)})
            finally:
                admin.close()
            send_to_kafka(kafka_bootstrap, topic, after)
        seen["records"] += record["metrics"]["records"]
        if seen["records"] >= len(before) + len(after):
            stop.event.set()

    guard = threading.Timer(180, stop.event.set)  # a job that never sees them ends anyway
    guard.start()
    try:
        report = streaming.run_spec(spark, spec, stop=stop, on_batch=grow_then_stop)
    finally:
        guard.cancel()

    assert report.status == "stopped"
    events = read_dataset(spark, spec.sink.path)
    assert sorted(ids(events)) == sorted(r.event_id for r in [*before, *after])
    partitions = Counter(r["_partition"] for r in events.select("_partition").collect())
    assert set(partitions) == {0, 1, 2, 3}, partitions  # the new ones were read
    late = events.where("_partition >= 2").select("event_id").collect()
    assert {r["event_id"] for r in late} <= {r.event_id for r in after}


class GlueWithoutItsSources:
    """A GlueContext stand-in (not runtimes.glue's local one, so the job takes Glue's path)
    whose own sources fail the test: a Kafka spec reads through Spark's Kafka source."""

    def __init__(self, spark) -> None:
        self.spark_session = spark

    @property
    def create_data_frame(self):
        raise AssertionError("Glue's own source was asked for a Kafka stream")

    def forEachBatch(self, *args, **kwargs):  # noqa: N802
        raise AssertionError("Glue's forEachBatch was asked for a Kafka stream")


def _produce(topic: str, count: int, seed: int) -> str:
    """`sluiceway produce --topic` in a subprocess; its summary line."""
    argv = ["produce", "--topic", topic, "--count", str(count), "--malformed", "0.1"]
    result = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", *argv, "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_glue_and_emr_entrypoints_read_a_topic_sluiceway_produce_wrote(
    spark, tmp_path, new_topic, kafka_bootstrap
):
    from sluiceway.runtimes.job import run_stream_job

    topic = new_topic(2)
    out = _produce(topic, 80, seed=41)
    assert f"==> sent 80 records (8 malformed) to {topic}" in out, out
    spec_path = write_stream_spec(tmp_path, kafka_source(topic))
    spec = load_stream_spec(spec_path)

    assert run_stream_job(spark, str(spec_path), glue_context=GlueWithoutItsSources(spark)) == 0
    first = {r.event_id for r in sample_records(80, malformed_share=0.1, seed=41) if r.event_id}
    assert sorted(ids(read_dataset(spark, spec.sink.path))) == sorted(first)

    _produce(topic, 40, seed=42)  # EMR's entrypoint, its default reader: Kafka all the same
    assert run_stream_job(spark, str(spec_path), reader="aws-kinesis") == 0
    second = {r.event_id for r in sample_records(40, malformed_share=0.1, seed=42) if r.event_id}
    written = ids(read_dataset(spark, spec.sink.path))
    assert len(written) == len(first | second) and set(written) == first | second
    dead = read_dataset(spark, spec.sink.dead_letter_path)
    assert dead.count() == 8 + 4
    assert {r["topic"] for r in dead.select("topic").collect()} == {topic}
