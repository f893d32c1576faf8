"""Stream sources other than the Python Kinesis source, all giving the same raw columns.

- `read_capture_files`: a directory of JSON-lines capture files (one Kinesis record per
  line, as `sluiceway produce --to-dir` writes them). Runs on any Spark, so the pipeline
  is tested on PySpark 3.5 too, and replays recorded traffic.
- `read_aws_kinesis`: the `aws-kinesis` connector EMR 7.1+ ships. It exposes no shard id,
  so dead letters read through it carry a NULL `shard_id`.

Raw columns: data binary, stream string, shard_id string, sequence_number string,
partition_key string, arrival_time timestamp.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sluiceway.sources.kinesis import KinesisOptions

CAPTURE_SCHEMA = (
    "stream string, shard_id string, sequence_number string, partition_key string, "
    "arrival_time timestamp, data string"
)
RAW_COLUMNS = ("data", "stream", "shard_id", "sequence_number", "partition_key", "arrival_time")


def read_capture_files(spark: SparkSession, path: str, max_files_per_batch: int) -> DataFrame:
    """Stream the capture files under `path`, oldest first, `max_files_per_batch` at a time."""
    records = (
        spark.readStream.schema(CAPTURE_SCHEMA)
        .option("maxFilesPerTrigger", max_files_per_batch)
        .option("mode", "PERMISSIVE")
        .json(path)
    )
    return records.select(
        F.encode(F.col("data"), "UTF-8").alias("data"),
        *[F.col(c) for c in RAW_COLUMNS[1:]],
    )


# The columns EMR's aws-kinesis connector gives (spark-sql-kinesis-connector's README,
# "Check Schema", and its KinesisClientFactory): no shard id.
AWS_KINESIS_SCHEMA = (
    "data binary, streamName string, partitionKey string, sequenceNumber string, "
    "approximateArrivalTimestamp timestamp"
)


def read_aws_kinesis(spark: SparkSession, opts: KinesisOptions) -> DataFrame:
    """Stream through EMR's `aws-kinesis` connector (GetRecords consumer)."""
    return with_aws_kinesis_columns(load_aws_kinesis(spark, opts))


def load_aws_kinesis(spark: SparkSession, opts: KinesisOptions) -> DataFrame:
    """The connector's stream, as it gives it (AWS_KINESIS_SCHEMA)."""
    reader = (
        spark.readStream.format("aws-kinesis")
        .option("kinesis.streamName", opts.stream)
        .option("kinesis.consumerType", "GetRecords")
        .option("kinesis.startingPosition", opts.starting_position.upper())
        .option("kinesis.maxFetchRecordsPerShard", str(opts.max_records_per_batch))
    )
    if opts.region:
        reader = reader.option("kinesis.region", opts.region)
    endpoint = opts.endpoint or (
        f"https://kinesis.{opts.region}.amazonaws.com" if opts.region else None
    )
    if endpoint:
        reader = reader.option("kinesis.endpointUrl", endpoint)
    return reader.load()


def with_aws_kinesis_columns(raw: DataFrame) -> DataFrame:
    """The connector's columns as the raw columns; its records carry no shard id (a dead
    letter's shard is NULL; its place in the stream is the partition key and sequence)."""
    return raw.select(
        F.col("data"),
        F.col("streamName").alias("stream"),
        F.lit(None).cast("string").alias("shard_id"),
        F.col("sequenceNumber").alias("sequence_number"),
        F.col("partitionKey").alias("partition_key"),
        F.col("approximateArrivalTimestamp").alias("arrival_time"),
    )
