"""Kafka (Amazon MSK or any broker) through Spark's own Kafka source, `spark-sql-kafka-0-10`.

    kafka_options(source, ...)    the spec's source as the connector's options (strings)
    check_reachable(source)       before Spark: one broker accepts a TCP connection
    check_topics(spark, ...)      with Spark, through kafka-clients' Admin: the topics exist
    read_kafka(spark, options)    the stream, as the raw columns every stream source gives

Offsets are Spark's: per-partition offsets in the query's checkpoint, each micro-batch a
fixed offset range per partition, so a replayed batch reads exactly the same records.
Partitions added to a topic (and new topics matching a pattern) are picked up at the next
batch and read from their start. Nothing here commits offsets to Kafka: the checkpoint is
the only position.

Only the standard library and pyspark are used (the connector is a jar): nothing extra
runs on the cluster.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from sluiceway.errors import SourceError
from sluiceway.stream_spec import KafkaSource

_MSK_IAM = {
    "kafka.sasl.mechanism": "AWS_MSK_IAM",
    # The login module reads credentials from the AWS SDK's default chain (the job's role).
    "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
    "kafka.sasl.client.callback.handler.class": (
        "software.amazon.msk.auth.iam.IAMClientCallbackHandler"
    ),
}
CHECK_TIMEOUT_S = 30


def bootstrap_servers(source: KafkaSource, where: str) -> str:
    """The brokers to start from: $bootstrap_servers_env when set, else bootstrap_servers."""
    from_env = os.environ.get(source.bootstrap_servers_env or "", "").strip()
    if from_env:
        return from_env
    if source.bootstrap_servers:
        return source.bootstrap_servers
    raise SourceError(
        f"${source.bootstrap_servers_env} is not set and no bootstrap_servers is given",
        where=f"{where}: source.bootstrap_servers_env",
    )


def client_settings(source: KafkaSource, where: str) -> dict[str, str]:
    """Kafka client settings (without Spark's `kafka.` prefix): brokers, security, consumer."""
    settings = {
        "bootstrap.servers": bootstrap_servers(source, where),
        "security.protocol": source.security_protocol,
        **dict(source.consumer),
    }
    if source.msk_iam:
        settings |= {key.removeprefix("kafka."): value for key, value in _MSK_IAM.items()}
    return settings


def kafka_options(source: KafkaSource, where: str, *, max_records_per_batch: int) -> dict[str, str]:
    """The options of Spark's Kafka source for this spec."""
    options = {f"kafka.{key}": value for key, value in client_settings(source, where).items()}
    if source.topic_pattern:
        options["subscribePattern"] = source.topic_pattern
    else:
        options["subscribe"] = ",".join(source.topics)
    return options | {
        "startingOffsets": source.starting_offsets,
        "maxOffsetsPerTrigger": str(max_records_per_batch),
        # Records deleted by retention before they were read fail the query, loudly.
        "failOnDataLoss": "true",
    }


def check_reachable(source: KafkaSource, where: str, timeout_s: float = 5.0) -> None:
    """Fail fast, without Spark, unless some bootstrap server accepts a TCP connection."""
    servers = bootstrap_servers(source, where)
    problems = []
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return
        except (OSError, ValueError) as exc:
            problems.append(f"{server.strip()}: {getattr(exc, 'strerror', None) or exc}")
    raise SourceError(
        f"cannot reach any Kafka bootstrap server ({'; '.join(problems)})",
        where=f"{where}: source",
    )


def check_topics(spark: Any, source: KafkaSource, where: str) -> list[str]:
    """The subscribed topics that exist (through kafka-clients' Admin, with the source's own
    security settings); a missing topic or an unanswered request is one clear error."""
    jvm = spark.sparkContext._jvm
    props = jvm.java.util.Properties()
    settings = client_settings(source, where) | {
        "request.timeout.ms": str(CHECK_TIMEOUT_S * 1000 // 2),
        "default.api.timeout.ms": str(CHECK_TIMEOUT_S * 1000),
    }
    for key, value in settings.items():
        if key.startswith(("fetch.", "max.poll", "max.partition", "isolation.")):
            continue  # consumer-only settings: the Admin client would warn about each
        props.setProperty(key, value)
    admin = None
    try:
        admin = jvm.org.apache.kafka.clients.admin.Admin.create(props)
        seconds = jvm.java.util.concurrent.TimeUnit.SECONDS
        names = set(admin.listTopics().names().get(CHECK_TIMEOUT_S, seconds))
    except Exception as exc:  # py4j wraps the JVM's exception; its first line says why
        first = next((line for line in str(exc).splitlines() if "Exception" in line), str(exc))
        raise SourceError(
            f"{source.describe()} at {settings['bootstrap.servers']}: cannot list topics "
            f"({first.strip()})",
            where=f"{where}: source",
        ) from exc
    finally:
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()
    if source.topic_pattern:
        return sorted(n for n in names if _matches(spark, source.topic_pattern, n))
    missing = [t for t in source.topics if t not in names]
    if missing:
        raise SourceError(
            f"topic(s) {', '.join(missing)} not found at {settings['bootstrap.servers']}",
            where=f"{where}: source.topics",
        )
    return list(source.topics)


def _matches(spark: Any, pattern: str, name: str) -> bool:
    """Whether Java's regex (the one the consumer subscribes with) matches the whole name."""
    return bool(spark.sparkContext._jvm.java.util.regex.Pattern.matches(pattern, name))


def read_kafka(spark: Any, options: dict[str, str]) -> Any:  # -> DataFrame
    """The topic(s) as a stream of the raw columns every stream source gives (see
    stream_files.RAW_COLUMNS): topic, partition and offset stand where Kinesis has stream,
    shard and sequence number, the record's key where it has the partition key, and its
    Kafka timestamp (producer or broker time) for the arrival time."""
    from pyspark.sql import functions as F

    raw = spark.readStream.format("kafka").options(**options).load()
    return raw.select(
        F.col("value").alias("data"),
        F.col("topic").alias("stream"),
        F.col("partition").cast("string").alias("shard_id"),
        F.col("offset").cast("string").alias("sequence_number"),
        F.col("key").cast("string").alias("partition_key"),
        F.col("timestamp").alias("arrival_time"),
    )
