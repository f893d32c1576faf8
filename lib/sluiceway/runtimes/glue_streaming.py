"""The streaming job on AWS Glue: GlueContext's Kinesis source and forEachBatch.

Glue's forEachBatch runs a micro-batch every `trigger.interval_seconds` (its window)
and keeps the offsets in `trigger.checkpoint`; each batch goes through the same
`streaming.process_batch` as everywhere else. Glue has no AvailableNow here.

A Kafka source runs as it does under `sluiceway stream` (streaming.run_spec on Glue's
session): Spark's own Kafka source, which Glue ships for its `kafka` connection type,
gives topic, partition and offset, where Glue's Kafka frame would give the payload alone.

With runtimes.glue's local GlueContext stand-in (local spark-submit, where Glue's JVM
classes are missing) there is no Glue Kinesis source: the stream runs as it does under
`sluiceway stream`, through streaming.run_spec, with the spec's own source and trigger.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sluiceway import streaming
from sluiceway.errors import SourceError, SpecError
from sluiceway.runtimes.glue import GlueContextLike, LocalGlueContext
from sluiceway.runtimes.local import apply_pipeline_conf
from sluiceway.sources import kinesis
from sluiceway.spec_check import check_stream_spec
from sluiceway.stream_spec import StreamSpec
from sluiceway.streaming import StopSignal

# What Glue's Kinesis source gives (create_data_frame.from_options with classification
# json and inferSchema): each record's payload as ONE string column, named
# "$json$data_infer_schema$_temporary$" ("$json$data_infer_schema$.temporary$" on some
# releases), the schema being inferred from it later; with addRecordTimestamp (Glue 4.0+)
# also "__src_timestamp", the time the stream received the record. No shard id, sequence
# number or partition key. Sources: the Glue API's KinesisStreamingSourceOptions for
# __src_timestamp, and public Glue streaming scripts that read the payload column; neither
# is checked against Glue itself here (the tests use a stand-in with this schema).
GLUE_PAYLOAD_COLUMNS = (
    "$json$data_infer_schema$_temporary$",
    "$json$data_infer_schema$.temporary$",
)
GLUE_ARRIVAL_COLUMN = "__src_timestamp"


def read_kinesis(glue_context: Any, opts: kinesis.KinesisOptions) -> DataFrame:
    """GlueContext's Kinesis stream mapped to the raw columns; payloads stay unparsed."""
    options = {
        "typeOfData": "kinesis",
        "streamName": opts.stream,
        "startingPosition": opts.starting_position.upper(),
        "classification": "json",
        "inferSchema": "true",
        "addRecordTimestamp": "true",
        "maxFetchRecordsPerShard": str(opts.max_records_per_batch),
    }
    if opts.endpoint or opts.region:
        options["endpointUrl"] = opts.endpoint or f"https://kinesis.{opts.region}.amazonaws.com"
    raw = glue_context.create_data_frame.from_options(
        connection_type="kinesis", connection_options=options
    )
    return with_raw_columns(raw, opts.stream)


def with_raw_columns(raw: DataFrame, stream: str) -> DataFrame:
    """Glue's Kinesis columns as the raw columns `streaming.prepare` takes.

    Glue gives no shard or sequence number: valid records still dedupe by event id, and a
    bad record, having no place in the stream, gets a dedupe key of its own (never taken
    for a repeat). A payload column Glue does not give is one clear error, never NULLs
    that would turn every record into an "empty payload" dead letter."""
    payload = next((name for name in GLUE_PAYLOAD_COLUMNS if name in raw.columns), None)
    if payload is None:
        raise SourceError(
            f"Glue's Kinesis source gave the columns {raw.columns}, without the payload "
            f"column ({' or '.join(GLUE_PAYLOAD_COLUMNS)})"
        )
    arrival = (
        F.col(GLUE_ARRIVAL_COLUMN).cast("timestamp")
        if GLUE_ARRIVAL_COLUMN in raw.columns
        else F.lit(None).cast("timestamp")
    )
    no_value = F.lit(None).cast("string")
    return raw.select(
        F.col(f"`{payload}`").cast("binary").alias("data"),
        F.lit(stream).alias("stream"),
        no_value.alias("shard_id"),
        no_value.alias("sequence_number"),
        no_value.alias("partition_key"),
        arrival.alias("arrival_time"),
    )


def run(glue_context: GlueContextLike, spec: StreamSpec, *, stop: StopSignal | None = None) -> None:
    """Run the stream until the Glue job is stopped (the stand-in: until the run ends)."""
    if isinstance(glue_context, LocalGlueContext) or spec.source.kind == "kafka":
        streaming.run_spec(apply_pipeline_conf(glue_context.spark_session), spec, stop=stop)
        return
    run_on_glue(glue_context, spec)


def run_on_glue(glue_context: Any, spec: StreamSpec) -> None:
    """GlueContext's Kinesis source through Glue's forEachBatch, until the job is stopped."""
    check_stream_spec(spec)
    if spec.source.kind != "kinesis":
        raise SpecError(f"{spec.source_file}: source.kind: the Glue job reads kinesis or kafka")
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
