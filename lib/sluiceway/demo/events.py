"""Sample click-stream events for demos, tests and benchmarks: generate, put, capture.

`sample_records` makes a deterministic mix of valid events and malformed records (a
chosen share, exactly rounded) and, optionally, re-sent duplicates of valid events.
`put_records` sends them to a Kinesis stream at a given rate, `send_to_kafka` to a Kafka
topic (kafka-python, a pure-Python client in the `demo` and `test` extras: the job itself
never imports it); `write_capture` writes them as capture files for the files source.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sluiceway.errors import SourceError
from sluiceway.sources import kinesis

# The payload schema of pipelines/clickstream.toml.
EVENT_SCHEMA = (
    "event_id string, event_time timestamp, user_id bigint, event_type string, "
    "amount decimal(12,2), page string"
)
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
PUT_RECORDS_MAX = 500  # the API's per-call maximum
MALFORMED_KINDS = ("truncated", "not_an_object", "wrong_type", "missing_id", "empty")


@dataclass(frozen=True)
class SampleRecord:
    partition_key: str
    data: bytes
    event_id: str | None  # None for a malformed record
    kind: str  # "valid", "duplicate" or one of MALFORMED_KINDS


def _event(rng: random.Random, index: int, at: datetime) -> dict[str, Any]:
    kind = EVENT_TYPES[rng.randrange(len(EVENT_TYPES))]
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_time": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "user_id": rng.randrange(1, 100_000),
        "event_type": kind,
        "amount": f"{rng.randrange(100, 100_000) / 100:.2f}" if kind == "purchase" else None,
        "page": f"/p/{rng.randrange(1000)}",
        "seq": index,
    }


def _malformed(kind: str, event: dict[str, Any]) -> bytes:
    if kind == "truncated":
        return json.dumps(event).encode()[:-7]
    if kind == "not_an_object":
        return json.dumps([event["event_id"], event["user_id"]]).encode()
    if kind == "wrong_type":
        return json.dumps({**event, "user_id": f"user-{event['user_id']}"}).encode()
    if kind == "missing_id":
        return json.dumps({k: v for k, v in event.items() if k != "event_id"}).encode()
    return b" "


def sample_records(
    count: int,
    *,
    malformed_share: float = 0.0,
    duplicate_share: float = 0.0,
    seed: int = 0,
    now: datetime | None = None,
    spread_seconds: float = 0.0,
) -> list[SampleRecord]:
    """`count` records; round(count * malformed_share) are malformed, chosen by `seed`.

    Duplicates (round(count * duplicate_share)) repeat an earlier valid event's payload
    under a new record and count towards `count`. Event times run from `now` minus
    `spread_seconds` to `now`.
    """
    if not 0 <= malformed_share <= 1 or not 0 <= duplicate_share <= 1:
        raise ValueError("shares must be between 0 and 1")
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    bad = set(rng.sample(range(count), round(count * malformed_share)))
    rest = [i for i in range(count) if i not in bad and i > 0]
    dupes = set(rng.sample(rest, min(len(rest), round(count * duplicate_share))))
    records: list[SampleRecord] = []
    valid: list[SampleRecord] = []
    for index in range(count):
        at = now - timedelta(seconds=spread_seconds * (count - index) / max(count, 1))
        event = _event(rng, index, at)
        if index in bad:
            kind = MALFORMED_KINDS[index % len(MALFORMED_KINDS)]
            records.append(SampleRecord(event["event_id"], _malformed(kind, event), None, kind))
        elif index in dupes and valid:
            original = valid[rng.randrange(len(valid))]
            records.append(
                SampleRecord(original.partition_key, original.data, original.event_id, "duplicate")
            )
        else:
            data = json.dumps(event, separators=(",", ":")).encode()
            record = SampleRecord(event["event_id"], data, event["event_id"], "valid")
            records.append(record)
            valid.append(record)
    return records


@dataclass(frozen=True)
class PutResult:
    records: int
    seconds: float
    retried: int


def put_records(
    opts: kinesis.KinesisOptions,
    records: Sequence[SampleRecord],
    *,
    rate: float | None = None,
    client: Any | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PutResult:
    """Put `records` in order, in calls of up to 500, at most `rate` records per second.

    Entries the stream refused (throttling) are sent again, with backoff.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or kinesis.make_client(opts)
    started = time.monotonic()
    sent = retried = 0
    chunk = PUT_RECORDS_MAX if rate is None else max(1, min(PUT_RECORDS_MAX, int(rate)))
    try:
        for offset in range(0, len(records), chunk):
            batch = [
                {"Data": r.data, "PartitionKey": r.partition_key}
                for r in records[offset : offset + chunk]
            ]
            attempt = 0
            while batch:
                response = kinesis.call(
                    opts, client.put_records, StreamName=opts.stream, Records=batch
                )
                failed = [
                    entry
                    for entry, result in zip(batch, response["Records"], strict=True)
                    if result.get("ErrorCode")
                ]
                if failed:
                    attempt += 1
                    if attempt > opts.max_attempts:
                        raise SourceError(f"{opts.describe()}: {len(failed)} records refused")
                    retried += len(failed)
                    time.sleep(min(5.0, 0.1 * 2**attempt))
                batch = failed
            sent += min(chunk, len(records) - offset)
            if on_progress is not None:
                on_progress(sent)
            if rate is not None:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    except (BotoCoreError, ClientError) as exc:
        raise kinesis.describe_error(exc, opts) from exc
    return PutResult(sent, round(time.monotonic() - started, 3), retried)


def create_stream(opts: kinesis.KinesisOptions, shards: int, client: Any | None = None) -> None:
    """Create the stream with `shards` shards (if missing) and wait until it is active."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or kinesis.make_client(opts)
    try:
        try:
            client.create_stream(StreamName=opts.stream, ShardCount=shards)
        except ClientError as exc:
            if kinesis._error_code(exc) != "ResourceInUseException":
                raise
        deadline = time.monotonic() + 60
        while True:
            summary = client.describe_stream_summary(StreamName=opts.stream)
            if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
            if time.monotonic() > deadline:
                raise SourceError(f"{opts.describe()}: not ACTIVE after 60s")
            time.sleep(0.1)
    except (BotoCoreError, ClientError) as exc:
        raise kinesis.describe_error(exc, opts) from exc


def _kafka_error(exc: Exception, bootstrap: str) -> SourceError:
    return SourceError(f"kafka at {bootstrap}: {type(exc).__name__}: {exc}")


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create `topic` with `partitions` partitions (one replica) unless it exists."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sluiceway-produce")
    except KafkaError as exc:
        raise _kafka_error(exc, bootstrap) from exc
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:
        raise _kafka_error(exc, bootstrap) from exc
    finally:
        admin.close()


def check_topic(bootstrap: str, topic: str) -> None:
    """Raise one clear error unless the broker answers and lists `topic`."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sluiceway-produce")
        try:
            topics = set(admin.list_topics())
        finally:
            admin.close()
    except KafkaError as exc:
        raise _kafka_error(exc, bootstrap) from exc
    if topic not in topics:
        raise SourceError(f"kafka at {bootstrap}: topic {topic} not found (--create N makes it)")


def send_to_kafka(
    bootstrap: str,
    topic: str,
    records: Sequence[SampleRecord],
    *,
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PutResult:
    """Send `records` to `topic`, keyed by their partition key, at most `rate` a second.

    Acknowledged by every in-sync replica, idempotent (a retried send is not a duplicate):
    returns once all are acknowledged, or raises.
    """
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    check_topic(bootstrap, topic)
    started = time.monotonic()
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=5, client_id="sluiceway-produce"
        )
    except KafkaError as exc:
        raise _kafka_error(exc, bootstrap) from exc
    try:
        pending = []
        for index, record in enumerate(records, start=1):
            pending.append(
                producer.send(topic, key=record.partition_key.encode(), value=record.data)
            )
            if index % PUT_RECORDS_MAX == 0 or index == len(records):
                producer.flush()
                for future in pending:
                    future.get()  # raises the send's error, if any
                pending = []
                if on_progress is not None:
                    on_progress(index)
            if rate is not None:
                ahead = index / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    except KafkaError as exc:
        raise _kafka_error(exc, bootstrap) from exc
    finally:
        producer.close()
    return PutResult(len(records), round(time.monotonic() - started, 3), 0)


def write_capture(
    directory: str | Path,
    records: Sequence[SampleRecord],
    *,
    stream: str = "capture",
    shards: int = 4,
    per_file: int = 1000,
    arrival: datetime | None = None,
) -> list[Path]:
    """Write `records` as capture files (JSON lines) the files source reads, in order."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    arrival = arrival or datetime.now(UTC)
    stamp = f"{arrival:%Y%m%dT%H%M%S%f}"
    paths = []
    for file_index, offset in enumerate(range(0, len(records), per_file)):
        path = target / f"capture-{stamp}-{file_index:05d}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for index, record in enumerate(records[offset : offset + per_file], start=offset):
                line = {
                    "stream": stream,
                    "shard_id": f"shardId-{index % shards:012d}",
                    "sequence_number": f"{arrival.timestamp() * 1e6:.0f}{index:012d}",
                    "partition_key": record.partition_key,
                    "arrival_time": arrival.isoformat(),
                    "data": record.data.decode("utf-8", errors="replace"),
                }
                out.write(json.dumps(line) + "\n")
        paths.append(path)
    return paths
