"""The streaming job on AWS Glue: GlueContext's Kinesis source and forEachBatch.

Glue's forEachBatch runs a micro-batch every `trigger.interval_seconds` (its window)
and keeps the offsets in `trigger.checkpoint`; each batch goes through the same
`streaming.process_batch` as everywhere else. Glue has no AvailableNow here.

With runtimes.glue's local GlueContext stand-in (local spark-submit, where Glue's JVM
classes are missing) there is no Glue Kinesis source: the stream runs as it does under
`sluiceway stream`, through streaming.run_spec, with the spec's own source and trigger.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway import streaming
from sluiceway.errors import SpecError
from sluiceway.runtimes.glue import GlueContextLike, LocalGlueContext
from sluiceway.runtimes.local import apply_pipeline_conf
from sluiceway.sources import kinesis
from sluiceway.spec_check import check_stream_spec
from sluiceway.stream_spec import StreamSpec
from sluiceway.streaming import StopSignal


def read_kinesis(glue_context: Any, opts: kinesis.KinesisOptions) -> DataFrame:
    """GlueContext's Kinesis stream mapped to the raw columns; payloads stay unparsed."""
    options = {
        "typeOfData": "kinesis",
        "streamName": opts.stream,
        "startingPosition": opts.starting_position.upper(),
        "inferSchema": "false",
        "addRecordTimestamp": "true",
        "maxFetchRecordsPerShard": str(opts.max_records_per_batch),
    }
    if opts.endpoint or opts.region:
        options["endpointUrl"] = opts.endpoint or f"https://kinesis.{opts.region}.amazonaws.com"
    raw = glue_context.create_data_frame.from_options(
        connection_type="kinesis", connection_options=options
    )
    columns = set(raw.columns)

    def pick(*names: str, kind: str = "string") -> Any:
        for name in names:
            if name in columns:
                return F.col(name).cast(kind)
        return F.lit(None).cast(kind)

    return raw.select(
        pick("data", kind="binary").alias("data"),
        F.lit(opts.stream).alias("stream"),
        pick("shardId", "shard_id").alias("shard_id"),
        pick("sequenceNumber", "sequence_number").alias("sequence_number"),
        pick("partitionKey", "partition_key").alias("partition_key"),
        pick("approximateArrivalTimestamp", "__src_timestamp", kind="timestamp").alias(
            "arrival_time"
        ),
    )


def run(glue_context: GlueContextLike, spec: StreamSpec, *, stop: StopSignal | None = None) -> None:
    """Run the stream until the Glue job is stopped (the stand-in: until the run ends)."""
    if isinstance(glue_context, LocalGlueContext):
        streaming.run_spec(apply_pipeline_conf(glue_context.spark_session), spec, stop=stop)
        return
    run_on_glue(glue_context, spec)


def run_on_glue(glue_context: Any, spec: StreamSpec) -> None:
    """GlueContext's Kinesis source through Glue's forEachBatch, until the job is stopped."""
    check_stream_spec(spec)
    if spec.source.kind != "kinesis":
        raise SpecError(f"{spec.source_file}: source.kind: the Glue job reads kinesis only")
    spark = apply_pipeline_conf(glue_context.spark_session)
    opts = streaming.kinesis_options(spec)
    kinesis.check_stream(opts)
    prepared = streaming.prepare(read_kinesis(glue_context, opts), spec)
    sink = streaming.open_sink(spark, spec)
    glue_context.forEachBatch(
        frame=prepared,
        batch_function=lambda batch, batch_id: streaming.process_batch(
            spark, spec, sink, batch, batch_id
        ),
        options={
            "windowSize": f"{spec.trigger.interval_seconds} seconds",
            "checkpointLocation": spec.trigger.checkpoint,
        },
    )
