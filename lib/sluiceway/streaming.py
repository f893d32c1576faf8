"""The streaming job: raw records -> parse -> dedupe -> per micro-batch: check, transform, write.

    prepare(raw, spec)          pure, streaming-safe: parse the JSON payload against the
                                spec's schema, tag bad records with `_error`, drop repeated
                                event ids seen within `dedupe_minutes` (Spark keeps the ids
                                in its checkpointed state)
    process_batch(...)          per micro-batch (foreachBatch): quality rules, then valid
                                events through the spec's transforms into Parquet partitioned
                                by event date/hour (a [delivery] spec: Parquet or gzip JSON,
                                by event or arrival date/hour), bad records into the dead
                                letters; both through the batch-id-idempotent sink
    run(spark, spec, raw, ...)  start the query, wait; AvailableNow, interval, SIGTERM

Exactly once: Spark's checkpoint holds the source offsets and the dedupe state; the sink
commits each batch id once (sinks/batch_parquet.py), so a batch replayed after a crash
rewrites the same files instead of adding rows.

The dedupe window is measured on processing time (the micro-batch's timestamp), not on
event time: a duplicate is dropped when it arrives within `dedupe_minutes` of the first
copy, and no event is ever dropped for being late.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.errors import StreamingQueryException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from sluiceway import transforms
from sluiceway.errors import SluicewayError, SourceError, SpecError, TransformError
from sluiceway.jvm_errors import SPARK_ERRORS, describe_spark_error
from sluiceway.sinks.batch_parquet import BatchOutput, BatchSink
from sluiceway.sources import kafka, kinesis
from sluiceway.sources.stream_files import read_aws_kinesis, read_capture_files
from sluiceway.spec_check import check_stream_spec
from sluiceway.stream_spec import EVENT_PARTITIONS, StreamSpec
from sluiceway.transforms.events import (
    with_event_partitions,
    with_parsed_payload,
    with_quality_errors,
)
from sluiceway.transforms.quality import ERROR_COLUMN

log = logging.getLogger(__name__)

DEAD_LETTER_PARTITIONS = ("arrival_date",)
IDLE_SECONDS = 2.5  # a bounded run ends after this long without data (source polls at 1s)
_DEDUPE_KEY = "_dedupe_key"
_INGESTED = "_ingested_at"
# Where a record was in its stream, under its source's own names (the raw columns are
# the same for every source): dead letters carry all of these, valid events (prefixed
# `_`) those that point at the record.
_PLACE: dict[str, dict[str, tuple[str, str]]] = {
    "kafka": {
        "topic": ("stream", "string"),
        "partition": ("shard_id", "int"),
        "offset": ("sequence_number", "bigint"),
        "key": ("partition_key", "string"),
    },
    "kinesis": {
        "stream": ("stream", "string"),
        "shard_id": ("shard_id", "string"),
        "sequence_number": ("sequence_number", "string"),
        "partition_key": ("partition_key", "string"),
    },
}
_EVENT_LINEAGE = {
    "kafka": ("topic", "partition", "offset"),
    "kinesis": ("shard_id", "sequence_number"),
}


def _place(kind: str) -> dict[str, Column]:
    """The record's place in its stream, as named by a `kind` source ("files": Kinesis's)."""
    names = _PLACE.get(kind, _PLACE["kinesis"])
    return {name: F.col(raw).cast(type_) for name, (raw, type_) in names.items()}


# ---------------------------------------------------------------------------------------
# build: pure DataFrame composition


def event_schema(spec: StreamSpec) -> StructType:
    """The payload schema as a StructType (the spec keeps it as plain, validated data)."""
    return StructType.fromJson(spec.events.schema_json())


def prepare(raw: DataFrame, spec: StreamSpec) -> DataFrame:
    """Parse payloads, tag bad records, and drop repeated event ids (streaming-safe).

    Requires the raw columns (data, stream, shard_id, sequence_number, partition_key,
    arrival_time). Adds the schema's fields, `_error`, `_ingested_at`.
    """
    events = spec.events
    parsed = raw.transform(
        with_parsed_payload, "data", event_schema(spec), [events.event_id, events.event_time]
    )
    # A bad record has no trustworthy event id; it is keyed by its place in the stream.
    # Kinesis makes a sequence number unique per partition key within a shard, so the key
    # holds both (EMR's connector gives no shard id). One without a sequence number has no
    # place (Glue's Kinesis source gives none; a capture line that is not JSON reads as
    # all NULL): it gets a key of its own, so it is never taken for a repeat of another.
    key = (
        F.when(
            F.col(ERROR_COLUMN).isNull(),
            F.concat(F.lit("e:"), F.col(events.event_id).cast("string")),
        )
        .when(
            F.col("sequence_number").isNotNull(),
            F.to_json(F.struct("stream", "shard_id", "partition_key", "sequence_number")),
        )
        .otherwise(F.concat(F.lit("u:"), F.expr("uuid()")))
    )
    keyed = parsed.withColumns({_DEDUPE_KEY: key, _INGESTED: F.current_timestamp()})
    if events.dedupe_minutes == 0:
        return keyed.drop(_DEDUPE_KEY)
    return (
        keyed.withWatermark(_INGESTED, f"{events.dedupe_minutes} minutes")
        .dropDuplicatesWithinWatermark([_DEDUPE_KEY])
        .drop(_DEDUPE_KEY)
    )


def with_checks(df: DataFrame, spec: StreamSpec) -> DataFrame:
    """Apply the spec's quality rules; a failing record gets `_error` "quality: ..."."""
    return df.transform(transforms.with_quality_failures, list(spec.events.quality)).transform(
        with_quality_errors
    )


def build_events(
    good: DataFrame, spec: StreamSpec, *, batch_id: int, processed_at: datetime
) -> DataFrame:
    """Valid records -> the spec's transforms -> event date/hour partitions -> audit columns."""
    place = _place(spec.source.kind)
    lineage = _EVENT_LINEAGE.get(spec.source.kind, _EVENT_LINEAGE["kinesis"])
    df = good.select(
        *[F.col(name) for name in spec.events.field_names],
        *[place[name].alias(f"_{name}") for name in lineage],
        F.col("arrival_time").alias("_arrival_time"),
    )
    for step in spec.events.transforms:
        fn = transforms.resolve_transform(step.name)
        try:
            df = df.transform(fn, **step.params)
        except TypeError as exc:
            raise TransformError(
                f"{spec.source_file}: events.transforms: {step.name}: {exc}"
            ) from exc
    if spec.sink.partition_by == EVENT_PARTITIONS:
        df = df.transform(with_event_partitions, spec.events.event_time)
    else:
        # A delivery by arrival time: when the record reached the stream (a capture file
        # may not say; then when this batch ran), read in the session time zone.
        arrived = F.coalesce(F.col("_arrival_time"), F.lit(processed_at).cast("timestamp"))
        df = df.withColumn("_delivery_time", arrived).transform(
            with_event_partitions, "_delivery_time", *spec.sink.partition_by
        )
        df = df.drop("_delivery_time")
    return df.transform(
        transforms.with_audit_columns, f"{spec.name}:{batch_id}", processed_at, _source_name(spec)
    )


def _source_name(spec: StreamSpec) -> str:
    """The `_source` audit value: `kinesis:<stream>`, `kafka:<topics or pattern>`, `files`."""
    source = spec.source
    if source.kafka is not None:
        return f"kafka:{source.kafka.topic_pattern or ','.join(source.kafka.topics)}"
    return f"kinesis:{source.stream}" if source.stream else "files"


def build_dead_letters(bad: DataFrame, kind: str = "kinesis") -> DataFrame:
    """Bad records as dead letters: the raw payload, why, and where it was in the stream
    (named as a `kind` source names it: Kafka's topic/partition/offset/key)."""
    return bad.select(
        F.col("data").alias("payload"),
        F.col(ERROR_COLUMN).alias("error"),
        *[column.alias(name) for name, column in _place(kind).items()],
        F.col("arrival_time"),
        F.col(_INGESTED),
        F.to_date(F.coalesce(F.col("arrival_time"), F.col(_INGESTED))).alias("arrival_date"),
    )


# ---------------------------------------------------------------------------------------
# run: one micro-batch, and the query


@dataclass
class StreamReport:
    pipeline: str
    status: str = "running"  # "succeeded" | "stopped" | "failed"
    batches: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    # The Sluiceway error a micro-batch raised: Spark wraps it in its own exception.
    raised: SluicewayError | None = field(default=None, repr=False, compare=False)

    def total(self, key: str) -> int:
        return sum(int(b["metrics"].get(key, 0)) for b in self.batches)


def open_sink(spark: SparkSession, spec: StreamSpec) -> BatchSink:
    return BatchSink(
        spark,
        f"{spec.trigger.checkpoint.rstrip('/')}/sink",
        compression=spec.sink.compression,
        target_file_mb=spec.sink.target_file_mb,
        compact_min_files=spec.sink.compact_min_files,
        file_format=spec.sink.file_format,
        where=f"{spec.source_file}: sink",
    )


def process_batch(
    spark: SparkSession, spec: StreamSpec, sink: BatchSink, batch: DataFrame, batch_id: int
) -> dict[str, Any]:
    """Write one micro-batch exactly once; returns its commit record."""
    done = sink.committed(batch_id)
    if done is not None:
        # Spark replays a batch it did not mark done; its rows are in already. The plan
        # still runs so the dedupe state of this batch id is written.
        sink.drain(batch)
        return done
    started = time.monotonic()
    processed_at = datetime.now(UTC)
    cached = with_checks(batch, spec).persist()
    try:
        counts = cached.agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.col(ERROR_COLUMN)).alias("bad"),
        ).first()
        assert counts is not None  # an aggregate without grouping returns one row
        metrics: dict[str, Any] = {
            "records": int(counts["rows"]),
            "events": int(counts["rows"]) - int(counts["bad"]),
            "dead_letters": int(counts["bad"]),
        }
        outputs = []
        if metrics["events"]:
            good = cached.transform(transforms.keep_valid)
            events = build_events(good, spec, batch_id=batch_id, processed_at=processed_at)
            outputs.append(BatchOutput("events", events, spec.sink.path, spec.sink.partition_by))
        if metrics["dead_letters"]:
            bad = cached.transform(transforms.keep_quarantined)
            dead = build_dead_letters(bad, spec.source.kind)
            outputs.append(
                BatchOutput(
                    "dead_letters", dead, spec.sink.dead_letter_path, DEAD_LETTER_PARTITIONS
                )
            )
        metrics["seconds"] = 0.0
        record = sink.write_batch(batch_id, outputs, metrics)
    finally:
        cached.unpersist()
    record["metrics"]["seconds"] = round(time.monotonic() - started, 3)
    log.info(
        "batch %d: %d records, %d events, %d dead letters, %d files",
        batch_id,
        metrics["records"],
        metrics["events"],
        metrics["dead_letters"],
        len(record["files"]),
    )
    return record


def query_error(report: StreamReport, exc: BaseException, where: str) -> SluicewayError:
    """The error a failed query ends with: the one its micro-batch raised, re-raised as is;
    else (a failure inside Spark, or in a source's worker) one line naming Spark's."""
    if report.raised is not None:
        return report.raised
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return SourceError(f"streaming query failed: {lines[0] if lines else exc}", where=where)


class StopSignal:
    """Set by SIGTERM (or by hand): the query stops between two micro-batches."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda signum, frame: self.event.set())


def start_query(
    spark: SparkSession,
    spec: StreamSpec,
    raw: DataFrame,
    *,
    trigger: dict[str, Any],
    report: StreamReport,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """Start the streaming query; `trigger` is passed to DataStreamWriter.trigger().

    Each committed batch is added to `report`; an error a batch raises is kept there too.
    """
    sink = open_sink(spark, spec)
    prepared = prepare(raw, spec)

    def each_batch(batch: DataFrame, batch_id: int) -> None:
        try:
            record = process_batch(spark, spec, sink, batch, batch_id)
        except SluicewayError as exc:
            report.raised = exc
            raise
        report.batches.append(record)
        if on_batch is not None:
            on_batch(record)

    writer = (
        prepared.writeStream.queryName(f"sluiceway_{spec.name}")
        .option("checkpointLocation", spec.trigger.checkpoint)
        .foreachBatch(each_batch)
        .trigger(**trigger)
    )
    # The dedupe state is split into `spark.sql.shuffle.partitions` parts when the
    # checkpoint is created (Spark keeps the number there; a restart ignores the
    # session's). Every batch visits each part, so more parts than cores is a fixed cost
    # per batch: 8 parts on 2 cores took 0.45 s a batch, 2 parts 0.12 s. The query takes
    # its own copy of the session's settings when it starts.
    shuffle = spark.conf.get("spark.sql.shuffle.partitions") or "200"
    parts = spec.trigger.state_partitions or spark.sparkContext.defaultParallelism
    spark.conf.set("spark.sql.shuffle.partitions", str(parts))
    try:
        return writer.start()
    except SPARK_ERRORS as exc:
        raise SourceError(
            f"{spec.source_file}: cannot start the stream: {describe_spark_error(exc)}"
        ) from exc
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", shuffle)


def run(
    spark: SparkSession,
    spec: StreamSpec,
    raw: DataFrame,
    *,
    trigger: dict[str, Any],
    until_idle: bool = False,
    stop: StopSignal | None = None,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
    poll_seconds: float = 0.2,
) -> StreamReport:
    """Run the query until it ends (AvailableNow), goes idle (`until_idle`) or is stopped.

    A stop request (SIGTERM) waits for the running micro-batch to finish, up to the
    trigger interval plus a minute, then stops the query.
    """
    started = time.monotonic()
    report = StreamReport(spec.name)
    query = start_query(spark, spec, raw, trigger=trigger, report=report, on_batch=on_batch)
    try:
        _wait(query, spec, report, stop or StopSignal(), until_idle, poll_seconds)
        failure = query.exception()
        if failure is not None:
            raise _failed(report, failure, spec.source_file) from failure
        if report.status == "running":
            report.status = "succeeded"
        return report
    finally:
        if query.isActive:
            query.stop()
        report.seconds = round(time.monotonic() - started, 3)


def _failed(report: StreamReport, exc: BaseException, where: str) -> SluicewayError:
    error = query_error(report, exc, where)
    report.status, report.error = "failed", str(error)
    return error


def _wait(
    query: Any,
    spec: StreamSpec,
    report: StreamReport,
    stop: StopSignal,
    until_idle: bool,
    poll_seconds: float,
) -> None:
    """Poll the query until it ends, is stopped, or (`until_idle`) has nothing to do."""
    idle_polls = 0
    stop_deadline: float | None = None
    while query.isActive:
        try:
            if query.awaitTermination(poll_seconds):
                return
        except StreamingQueryException as exc:
            raise _failed(report, exc, spec.source_file) from exc
        status = query.status
        busy = bool(status["isTriggerActive"])
        if stop.event.is_set():
            if stop_deadline is None:
                log.info("%s: stop requested; finishing the running batch", spec.name)
                stop_deadline = time.monotonic() + spec.trigger.interval_seconds + 60
            if not busy or time.monotonic() > stop_deadline:
                query.stop()
                report.status = "stopped"
                return
        idle_polls = idle_polls + 1 if until_idle and _is_idle(query, status) else 0
        # Idle for longer than the source waits between two empty reads.
        if idle_polls * poll_seconds >= IDLE_SECONDS:
            query.stop()
            return


def _is_idle(query: Any, status: dict[str, Any]) -> bool:
    """No batch running, no data waiting, and at least one batch planned since the start."""
    return (
        not status["isTriggerActive"]
        and not status["isDataAvailable"]
        and status["message"].startswith("Waiting for")
        and query.lastProgress is not None
    )


# ---------------------------------------------------------------------------------------
# sources and triggers

READERS = ("python", "aws-kinesis")
ARRIVAL_SKEW_MS = 2_000


def kinesis_options(spec: StreamSpec, *, until_ms: int | None = None) -> kinesis.KinesisOptions:
    """The Kinesis source settings of a spec; the endpoint comes from `source.endpoint_env`."""
    import os

    source = spec.source
    if source.stream is None:
        raise SpecError(f"{spec.source_file}: source.stream: is required for a kinesis source")
    endpoint = os.environ.get(source.endpoint_env) if source.endpoint_env else None
    region = source.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return kinesis.KinesisOptions(
        stream=source.stream,
        region=region,
        endpoint=endpoint or None,
        starting_position=source.starting_position,
        max_records_per_batch=source.max_records_per_batch,
        until_ms=until_ms,
    )


def preflight(spec: StreamSpec, reader: str = "python") -> None:
    """Every check that needs no Spark: the transforms resolve, the stream answers, the
    capture directory exists."""
    import os

    check_stream_spec(spec)

    if spec.source.kind == "files":
        path = spec.source.path or ""
        if "://" not in path and not os.path.isdir(path):
            raise SourceError(f"{spec.source_file}: source.path: {path} is not a directory")
        return
    if spec.source.kafka is not None:
        kafka.check_reachable(spec.source.kafka, spec.source_file)
        return
    if reader not in READERS:
        raise SpecError(f"unknown reader {reader!r}; expected one of {', '.join(READERS)}")
    kinesis.check_stream(kinesis_options(spec))


def read_kafka_source(spark: SparkSession, spec: StreamSpec) -> DataFrame:
    """The spec's Kafka topics as raw columns, once the brokers list them (any Spark line:
    Spark's own Kafka source, with `maxOffsetsPerTrigger` honoured by AvailableNow too)."""
    source = spec.source.kafka
    assert source is not None  # the spec parser sets it for a kafka source
    where = spec.source_file
    kafka.check_topics(spark, source, where)
    options = kafka.kafka_options(
        source, where, max_records_per_batch=spec.source.max_records_per_batch
    )
    try:
        return kafka.read_kafka(spark, options)
    except SPARK_ERRORS as exc:
        raise SourceError(
            f"cannot read {source.describe()}: {describe_spark_error(exc)} (Spark's Kafka "
            "source, spark-sql-kafka-0-10, must be on the class path: see jars.py)",
            where=f"{where}: source",
        ) from exc


def run_spec(
    spark: SparkSession,
    spec: StreamSpec,
    *,
    mode: str | None = None,
    reader: str = "python",
    stop: StopSignal | None = None,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
) -> StreamReport:
    """Read the spec's source with `reader` and run the job in `mode` (default: the spec's).

    Readers: "python" (the project's Kinesis data source, Spark >= 4.0) or "aws-kinesis"
    (EMR's connector). Files and kafka sources ignore the reader. Every check that needs no data
    (the transforms resolve, the stream exists, credentials work, the endpoint answers)
    runs before the query.
    """
    check_stream_spec(spec)
    mode = mode or spec.trigger.mode
    interval = {"processingTime": f"{spec.trigger.interval_seconds} seconds"}
    if spec.source.kind == "files":
        assert spec.source.path is not None  # the spec parser requires it
        raw = read_capture_files(spark, spec.source.path, spec.source.max_files_per_batch)
        trigger = {"availableNow": True} if mode == "available_now" else interval
        return run(spark, spec, raw, trigger=trigger, stop=stop, on_batch=on_batch)
    if spec.source.kafka is not None:
        raw = read_kafka_source(spark, spec)
        trigger = {"availableNow": True} if mode == "available_now" else interval
        return run(spark, spec, raw, trigger=trigger, stop=stop, on_batch=on_batch)
    if reader not in READERS:
        raise SpecError(f"unknown reader {reader!r}; expected one of {', '.join(READERS)}")
    if reader == "aws-kinesis":
        if mode == "available_now":
            raise SpecError(
                f"{spec.source_file}: trigger.mode: the aws-kinesis connector does not "
                'support available_now; use mode = "interval"'
            )
        opts = kinesis_options(spec)
        kinesis.check_stream(opts)
        raw = read_aws_kinesis(spark, opts)
        return run(spark, spec, raw, trigger=interval, stop=stop, on_batch=on_batch)
    major = int(spark.version.split(".")[0])
    if major < 4:
        raise SourceError(
            f"{spec.source_file}: source: the Kinesis source needs Spark >= 4.0 (Python "
            f"streaming data sources); this is Spark {spark.version}. On EMR use the "
            "aws-kinesis connector (jobs/emr_stream.py), on Glue jobs/glue_stream.py"
        )
    from sluiceway.sources.kinesis_datasource import read_stream

    bounded = mode == "available_now"
    # Spark 4.0/4.1 give Python sources no AvailableNow hook that respects a per-batch
    # limit: the run is bounded by arrival time instead and stops once it is idle. The
    # bound allows for clock skew between this host and Kinesis, so a record put just
    # before the start is never left for the next run (one put just after may be taken).
    until = int(time.time() * 1000) + ARRIVAL_SKEW_MS if bounded else None
    opts = kinesis_options(spec, until_ms=until)
    kinesis.check_stream(opts)
    raw = read_stream(spark, opts)
    trigger = {"processingTime": "0 seconds"} if bounded else interval
    return run(spark, spec, raw, trigger=trigger, until_idle=bounded, stop=stop, on_batch=on_batch)
