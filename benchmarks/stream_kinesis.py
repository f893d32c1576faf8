"""Kinesis streaming benchmark: Sluiceway's job beside a plain boto3 GetRecords loop.

    SLUICEWAY_SPARK=4.1 source scripts/env.sh && source .run/services.env
    python benchmarks/stream_kinesis.py [--records 20000] [--shards 4] [--rate 400 --seconds 30]

Against the local Kinesis emulator (scripts/services.py start kinesis), in one run:
1. Throughput: N records are put into a fresh stream, then read to the end (a) by a
   plain loop, one thread per shard calling GetRecords, and (b) by the streaming job
   with AvailableNow (parse, dedupe, dead letters, Parquet, exactly-once commits).
   Records per second, and the ratio.
2. Latency: a producer puts records at a steady rate while both consumers run; the
   latency of a record is (a) when the loop got it, (b) when the job committed the
   batch holding it, minus its Kinesis arrival time. p50 and p95, and the ratios.
Prints results; never part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sluiceway import streaming
from sluiceway.demo.events import EVENT_SCHEMA, create_stream, put_records, sample_records
from sluiceway.sources import kinesis
from sluiceway.stream_spec import parse_stream_spec


def spec_text(stream: str, out: Path, mode: str, max_records: int) -> str:
    return f"""
[pipeline]
name = "bench"
output = "{out}"
[source]
kind = "kinesis"
stream = "{stream}"
region = "us-east-1"
endpoint_env = "SLUICEWAY_KINESIS_ENDPOINT"
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
    opts: kinesis.KinesisOptions,
    stop: threading.Event,
    want: int | None,
    latencies: list[float] | None = None,
    poll_seconds: float = 0.2,
) -> tuple[int, float]:
    """Read every shard from its start, one thread per shard; returns (records, seconds)."""
    client = kinesis.make_client(opts)
    shards = [s["ShardId"] for s in kinesis.list_shards(opts, client)]
    count = [0]
    lock = threading.Lock()
    started = time.monotonic()

    def consume(shard_id: str) -> None:
        iterator = client.get_shard_iterator(
            StreamName=opts.stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator and not stop.is_set():
            response = client.get_records(ShardIterator=iterator, Limit=10_000)
            got = time.time()
            records = response["Records"]
            with lock:
                count[0] += len(records)
                if latencies is not None:
                    latencies.extend(
                        got - r["ApproximateArrivalTimestamp"].timestamp() for r in records
                    )
                if want is not None and count[0] >= want:
                    stop.set()
            iterator = response.get("NextShardIterator")
            if not records:
                time.sleep(poll_seconds)

    threads = [threading.Thread(target=consume, args=(s,)) for s in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count[0], time.monotonic() - started


def job_latencies(spark: Any, report: streaming.StreamReport, events_path: str) -> list[float]:
    """Commit time of each record's batch minus its arrival time."""
    committed = {
        b["batch_id"]: datetime.fromisoformat(b["committed_at"]).timestamp() for b in report.batches
    }
    rows = spark.read.parquet(events_path).select("_run_id", "_arrival_time").collect()
    return [
        committed[int(r["_run_id"].rsplit(":", 1)[1])] - r["_arrival_time"].timestamp()
        for r in rows
        if int(r["_run_id"].rsplit(":", 1)[1]) in committed
    ]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--rate", type=float, default=400.0, help="records/s in the latency run")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the latency run")
    parser.add_argument("--max-records-per-batch", type=int, default=10_000)
    args = parser.parse_args()

    from sluiceway.runtimes.local import build_local_session

    endpoint = os.environ.get("SLUICEWAY_KINESIS_ENDPOINT")
    if not endpoint:
        raise SystemExit("SLUICEWAY_KINESIS_ENDPOINT is not set (source .run/services.env)")
    spark = build_local_session("sluiceway-bench", master="local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="sluiceway-bench-"))

    # 1. throughput over a backlog
    opts = kinesis.KinesisOptions(stream=f"bench-{uuid.uuid4().hex[:8]}", endpoint=endpoint)
    create_stream(opts, args.shards)
    put = put_records(opts, sample_records(args.records, malformed_share=0.01, seed=1))
    print(f"put {put.records} records into {args.shards} shards in {put.seconds:.1f}s")
    loop_count, loop_seconds = plain_loop(opts, threading.Event(), args.records)
    spec = parse_stream_spec(
        spec_text(opts.stream, work / "throughput", "available_now", args.max_records_per_batch)
    )
    report = streaming.run_spec(spark, spec)
    job_seconds = report.seconds - streaming.IDLE_SECONDS
    loop_rate, job_rate = loop_count / loop_seconds, report.total("records") / job_seconds
    # Sustained: the batches after the first, between the first and the last commit.
    batches = [b for b in report.batches if b["metrics"]["records"]]
    commits = [datetime.fromisoformat(b["committed_at"]).timestamp() for b in batches]
    later = sum(b["metrics"]["records"] for b in batches[1:])
    sustained = later / (commits[-1] - commits[0]) if len(batches) > 1 else float("nan")
    print(f"\nthroughput ({args.records} records read from a backlog)")
    print(f"  plain GetRecords loop:        {loop_rate:8.0f} records/s ({loop_seconds:.1f}s)")
    print(
        f"  sluiceway job, start to end:  {job_rate:8.0f} records/s ({job_seconds:.1f}s, "
        f"{len(batches)} batches, query start included)"
    )
    print(f"  sluiceway job, sustained:     {sustained:8.0f} records/s (after the first batch)")
    print(
        f"  ratio job/loop:               {job_rate / loop_rate:8.2f} start to end, "
        f"{sustained / loop_rate:.2f} sustained"
    )

    # 2. latency at a steady rate
    opts = kinesis.KinesisOptions(stream=f"bench-{uuid.uuid4().hex[:8]}", endpoint=endpoint)
    create_stream(opts, args.shards)
    spec = parse_stream_spec(
        spec_text(opts.stream, work / "latency", "interval", args.max_records_per_batch)
    )
    count = int(args.rate * args.seconds)
    records = sample_records(count, seed=2)
    loop_latencies: list[float] = []
    loop_stop = threading.Event()
    job_stop = streaming.StopSignal()
    consumer = threading.Thread(
        target=plain_loop, args=(opts, loop_stop, count, loop_latencies), daemon=True
    )

    def produce() -> None:
        time.sleep(15)  # let the query start before the clock matters
        consumer.start()
        put_records(opts, records, rate=args.rate)
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
        f"  plain GetRecords loop: p50 {pct(loop_latencies, 50):6.2f}s  "
        f"p95 {pct(loop_latencies, 95):6.2f}s  ({len(loop_latencies)} records)"
    )
    print(
        f"  sluiceway job:         p50 {pct(job, 50):6.2f}s  p95 {pct(job, 95):6.2f}s  "
        f"({len(job)} records)"
    )
    print(
        f"  ratio job/loop:        p50 {pct(job, 50) / pct(loop_latencies, 50):6.1f}x "
        f" p95 {pct(job, 95) / pct(loop_latencies, 95):6.1f}x"
    )
    spark.stop()


if __name__ == "__main__":
    main()
