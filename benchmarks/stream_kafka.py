"""Kafka streaming benchmark: Sluiceway's job beside a plain Kafka consumer loop.

    SLUICEWAY_SPARK=4.1 source scripts/env.sh && source .run/services.env
    python benchmarks/stream_kafka.py [--records 40000] [--partitions 4] [--rate 400 --seconds 30]

Against the local broker (scripts/services.py start kafka), in one run, as
benchmarks/stream_kinesis.py does for Kinesis:
1. Throughput: N records are sent to a fresh topic, then read to the end (a) by a plain
   kafka-python consumer (one consumer, every partition assigned, from the start) and
   (b) by the streaming job with AvailableNow (Spark's Kafka source, parse, dedupe, dead
   letters, Parquet, exactly-once commits). Records per second, and the ratio.
2. Latency: a producer sends records at a steady rate while both consumers run; the
   latency of a record is (a) when the loop got it, (b) when the job committed the batch
   holding it, minus its Kafka timestamp (the producer's send time). p50 and p95.
Prints results and the load averages; never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

from stream_kinesis import job_latencies, pct

from sluiceway import streaming
from sluiceway.demo.events import EVENT_SCHEMA, create_topic, sample_records, send_to_kafka
from sluiceway.stream_spec import parse_stream_spec


def spec_text(topic: str, out: Path, mode: str, max_records: int) -> str:
    return f"""
[pipeline]
name = "bench"
output = "{out}"
[source]
kind = "kafka"
bootstrap_servers_env = "SLUICEWAY_KAFKA_BOOTSTRAP"
topics = ["{topic}"]
max_records_per_batch = {max_records}
[events]
schema = "{EVENT_SCHEMA}"
event_id = "event_id"
event_time = "event_time"
[trigger]
mode = "{mode}"
interval_seconds = 1
"""


def plain_loop(
    bootstrap: str,
    topic: str,
    stop: threading.Event,
    want: int | None,
    latencies: list[float] | None = None,
) -> tuple[int, float]:
    """Read every partition from its start with one consumer; returns (records, seconds)."""
    from kafka import KafkaConsumer, TopicPartition

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=float, default=400.0, help="records/s in the latency run")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the latency run")
    parser.add_argument("--max-records-per-batch", type=int, default=10_000)
    args = parser.parse_args()

    from sluiceway.runtimes.local import build_local_session

    bootstrap = os.environ.get("SLUICEWAY_KAFKA_BOOTSTRAP")
    if not bootstrap:
        raise SystemExit("SLUICEWAY_KAFKA_BOOTSTRAP is not set (source .run/services.env)")
    print(f"load averages at the start: {os.getloadavg()}")
    spark = build_local_session("sluiceway-bench", master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="sluiceway-bench-"))

    # 1. throughput over a backlog
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, args.partitions)
    sent = send_to_kafka(bootstrap, topic, sample_records(args.records, malformed_share=0.01))
    print(f"sent {sent.records} records to {args.partitions} partitions in {sent.seconds:.1f}s")
    loop_count, loop_seconds = plain_loop(bootstrap, topic, threading.Event(), args.records)
    spec = parse_stream_spec(
        spec_text(topic, work / "throughput", "available_now", args.max_records_per_batch)
    )
    report = streaming.run_spec(spark, spec)
    loop_rate, job_rate = loop_count / loop_seconds, report.total("records") / report.seconds
    batches = [b for b in report.batches if b["metrics"]["records"]]
    commits = [time_of(b) for b in batches]
    later = sum(b["metrics"]["records"] for b in batches[1:])
    sustained = later / (commits[-1] - commits[0]) if len(batches) > 1 else float("nan")
    print(f"\nthroughput ({args.records} records read from a backlog)")
    print(f"  plain Kafka consumer loop:    {loop_rate:8.0f} records/s ({loop_seconds:.1f}s)")
    print(
        f"  sluiceway job, start to end:  {job_rate:8.0f} records/s ({report.seconds:.1f}s, "
        f"{len(batches)} batches, query start included)"
    )
    print(f"  sluiceway job, sustained:     {sustained:8.0f} records/s (after the first batch)")
    print(
        f"  ratio job/loop:               {job_rate / loop_rate:8.2f} start to end, "
        f"{sustained / loop_rate:.2f} sustained"
    )

    # 2. latency at a steady rate
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, args.partitions)
    spec = parse_stream_spec(
        spec_text(topic, work / "latency", "interval", args.max_records_per_batch)
    )
    count = int(args.rate * args.seconds)
    loop_latencies: list[float] = []
    loop_stop = threading.Event()
    job_stop = streaming.StopSignal()
    consumer = threading.Thread(
        target=plain_loop, args=(bootstrap, topic, loop_stop, count, loop_latencies), daemon=True
    )

    def produce() -> None:
        time.sleep(15)  # let the query start before the clock matters
        consumer.start()
        send_to_kafka(bootstrap, topic, sample_records(count, seed=2), rate=args.rate)
        time.sleep(5)  # drain
        loop_stop.set()
        job_stop.event.set()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    report = streaming.run_spec(spark, spec, stop=job_stop)
    producer.join()
    job = job_latencies(spark, report, spec.sink.path)
    print(f"\nlatency ({count} records at {args.rate:.0f}/s, interval trigger 1s)")
    print(
        f"  plain Kafka consumer loop: p50 {pct(loop_latencies, 50):6.2f}s  "
        f"p95 {pct(loop_latencies, 95):6.2f}s  ({len(loop_latencies)} records)"
    )
    print(
        f"  sluiceway job:             p50 {pct(job, 50):6.2f}s  p95 {pct(job, 95):6.2f}s  "
        f"({len(job)} records)"
    )
    print(f"load averages at the end: {os.getloadavg()}")
    spark.stop()


def time_of(batch: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(batch["committed_at"]).timestamp()


if __name__ == "__main__":
    main()
