"""Kafka streaming benchmark: Sluiceway's job beside a plain Kafka consumer loop.

    SLUICEWAY_SPARK=4.1 source scripts/env.sh && source .run/services.env
    python benchmarks/stream_kafka.py [--records 200000] [--partitions 4] [--repeat 3]
                                      [--rate R] [--seconds 30] [--interval 1]
                                      [--max-records-per-batch N]

Against the local broker (scripts/services.py start kafka): the runs streambench.py
describes. The plain loop is one kafka-python consumer with every partition assigned,
read from the start; the job reads with Spark's Kafka source. A record's arrival time is
its Kafka timestamp (the producer's send time). Prints results and the load averages;
never part of the test suite.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import streambench

from sluiceway.demo.events import SampleRecord, create_topic, send_to_kafka


def _bootstrap() -> str:
    bootstrap = os.environ.get("SLUICEWAY_KAFKA_BOOTSTRAP")
    if not bootstrap:
        raise SystemExit("SLUICEWAY_KAFKA_BOOTSTRAP is not set (source .run/services.env)")
    return bootstrap


def create(partitions: int) -> tuple[str, str]:
    """A new topic; `where` is (bootstrap servers, topic)."""
    where = (_bootstrap(), f"bench-{uuid.uuid4().hex[:8]}")
    create_topic(*where, partitions)
    return where


def send(where: tuple[str, str], records: list[SampleRecord], rate: float | None) -> None:
    send_to_kafka(*where, records, rate=rate)


def source_toml(where: tuple[str, str]) -> str:
    return f'''kind = "kafka"
bootstrap_servers_env = "SLUICEWAY_KAFKA_BOOTSTRAP"
topics = ["{where[1]}"]'''


def plain_loop(
    where: tuple[str, str],
    stop: threading.Event,
    want: int | None,
    latencies: list[float] | None = None,
) -> tuple[int, float]:
    """Read every partition from its start with one consumer; returns (records, seconds)."""
    from kafka import KafkaConsumer, TopicPartition

    bootstrap, topic = where

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    count, started = 0, time.monotonic()
    try:
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=200, max_records=10_000)
            got = time.time()
            for records in batches.values():
                count += len(records)
                if latencies is not None:
                    latencies.extend(got - r.timestamp / 1000 for r in records)
            if want is not None and count >= want:
                break
    finally:
        consumer.close()
    return count, time.monotonic() - started


SOURCE = streambench.Source(
    loop_name="plain Kafka consumer loop",
    create=create,
    send=send,
    loop=plain_loop,
    source_toml=source_toml,
)

if __name__ == "__main__":
    streambench.main(SOURCE, __doc__, default_records=200_000)
