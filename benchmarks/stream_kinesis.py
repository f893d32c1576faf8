"""Kinesis streaming benchmark: Sluiceway's job beside a plain boto3 GetRecords loop.

    SLUICEWAY_SPARK=4.1 source scripts/env.sh && source .run/services.env
    python benchmarks/stream_kinesis.py [--records 40000] [--partitions 4] [--repeat 3]
                                        [--rate R] [--seconds 30] [--interval 1]
                                        [--max-records-per-batch N]

Against the local Kinesis emulator (scripts/services.py start kinesis): the runs
streambench.py describes, `--partitions` being the stream's shards. The plain loop is
one thread per shard calling GetRecords from the shard's start; the job reads with
Sluiceway's Kinesis data source (Spark >= 4.0). A record's arrival time is Kinesis's
ApproximateArrivalTimestamp. Prints results and the load averages; never part of the
test suite.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import streambench

from sluiceway import streaming
from sluiceway.demo.events import SampleRecord, create_stream, put_records
from sluiceway.sources import kinesis


def create(shards: int) -> kinesis.KinesisOptions:
    """A new stream; `where` is its KinesisOptions."""
    endpoint = os.environ.get("SLUICEWAY_KINESIS_ENDPOINT")
    if not endpoint:
        raise SystemExit("SLUICEWAY_KINESIS_ENDPOINT is not set (source .run/services.env)")
    opts = kinesis.KinesisOptions(stream=f"bench-{uuid.uuid4().hex[:8]}", endpoint=endpoint)
    create_stream(opts, shards)
    return opts


def send(opts: kinesis.KinesisOptions, records: list[SampleRecord], rate: float | None) -> None:
    put_records(opts, records, rate=rate)


def source_toml(opts: kinesis.KinesisOptions) -> str:
    return f'''kind = "kinesis"
stream = "{opts.stream}"
region = "us-east-1"
endpoint_env = "SLUICEWAY_KINESIS_ENDPOINT"'''


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


SOURCE = streambench.Source(
    loop_name="plain GetRecords loop",
    create=create,
    send=send,
    loop=plain_loop,
    source_toml=source_toml,
    idle_seconds=streaming.IDLE_SECONDS,
)

if __name__ == "__main__":
    streambench.main(SOURCE, __doc__, default_records=40_000)
