"""The EMR stream job's path (streaming.run_spec with reader "aws-kinesis", what
jobs/emr_stream.py runs) end to end, on a stand-in for EMR's aws-kinesis connector: the
connector's load is replaced by a file stream with exactly the schema the connector gives
(data binary, streamName, partitionKey, sequenceNumber, approximateArrivalTimestamp: no
shard id; spark-sql-kinesis-connector's README and KinesisClientFactory). Everything after
the load is the job's own code: the mapping, parse, dedupe, dead letters, the sink and the
interval trigger, stopped as EMR's cancel stops it (the stop signal). The stream the spec
names exists on kinesalite, for the job's start-up check. Runs on both lines: the
connector path needs no Python data source."""

from __future__ import annotations

import threading
from pathlib import Path

from pyspark.sql import functions as F

from sluiceway.demo.events import sample_records, write_capture
from sluiceway.sources import stream_files
from sluiceway.sources.stream_files import AWS_KINESIS_SCHEMA, CAPTURE_SCHEMA
from sluiceway.stream_spec import load_stream_spec
from sluiceway.streaming import StopSignal, run_spec

from .conftest import ids, kinesis_source, read_dataset, write_stream_spec


def connector_stand_in(captures: Path):
    """load_aws_kinesis's stand-in: the capture files, one per micro-batch, in the
    connector's schema."""

    def load(spark, opts):
        lines = (
            spark.readStream.schema(CAPTURE_SCHEMA)
            .option("maxFilesPerTrigger", 1)
            .json(str(captures))
        )
        return lines.select(
            F.encode("data", "UTF-8").alias("data"),
            F.lit(opts.stream).alias("streamName"),
            F.col("partition_key").alias("partitionKey"),
            F.col("sequence_number").alias("sequenceNumber"),
            F.col("arrival_time").alias("approximateArrivalTimestamp"),
        )

    return load


def test_emr_connector_records_land_once_each_and_bad_ones_as_dead_letters(
    spark, tmp_path, new_stream, monkeypatch
):
    records = sample_records(120, malformed_share=0.1, duplicate_share=0.05, seed=13)
    write_capture(tmp_path / "captures", records, per_file=40)  # three micro-batches
    opts = new_stream(1)
    spec_path = write_stream_spec(tmp_path, kinesis_source(opts), mode="interval")
    spec = load_stream_spec(spec_path)
    monkeypatch.setattr(stream_files, "load_aws_kinesis", connector_stand_in(tmp_path / "captures"))
    seen = []
    stop = StopSignal()  # EMR cancels a streaming run with SIGTERM, which sets this

    def on_batch(record):  # one batch per capture file: stop after the third
        seen.append(record["metrics"]["records"])
        if len(seen) == 3:
            stop.event.set()

    give_up = threading.Timer(240, stop.event.set)  # a stuck stream fails, never hangs
    give_up.start()
    try:
        report = run_spec(spark, spec, reader="aws-kinesis", stop=stop, on_batch=on_batch)
    finally:
        give_up.cancel()

    # The duplicates never reach a batch: dropped by event id before it.
    duplicates = sum(r.kind == "duplicate" for r in records)
    assert report.status == "stopped" and seen and sum(seen) == len(records) - duplicates
    stand_in = stream_files.load_aws_kinesis(spark, opts).schema.simpleString()
    assert stand_in == spark.createDataFrame([], AWS_KINESIS_SCHEMA).schema.simpleString()
    out = tmp_path / "out"
    valid = {r.event_id for r in records if r.kind == "valid"}
    assert sorted(ids(read_dataset(spark, str(out / "events")))) == sorted(valid)
    malformed = [r for r in records if r.kind not in ("valid", "duplicate")]
    dead = read_dataset(spark, str(out / "_dead_letters"))
    assert dead is not None and dead.count() == len(malformed) == 12
    rows = dead.select("payload", "shard_id", "sequence_number", "partition_key").collect()
    assert sorted(bytes(r["payload"]) for r in rows) == sorted(r.data for r in malformed)
    # Where each came from: no shard (the connector has none), its sequence and key.
    assert {r["shard_id"] for r in rows} == {None}
    assert all(r["sequence_number"] and r["partition_key"] for r in rows)
