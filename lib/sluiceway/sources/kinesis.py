"""Kinesis Data Streams through boto3: shard discovery, offsets, bounded reads, bad-input checks.

Offsets are per-shard positions, JSON-serialisable so Spark keeps them in its checkpoint:

    {"shards": {"shardId-000000000000": {"seq": "4968..."},          read up to and including seq
                "shardId-000000000001": {"from": "trim_horizon"},    nothing read yet
                "shardId-000000000002": {"from": "at_timestamp", "ts": 1764320000000},
                "shardId-000000000003": {"seq": "4968...", "closed": true}}}   read to its end

A batch is read once, on the driver (`read_batch`): its records go to Spark with the
planned batch. After a restart, a planned batch that was not committed is read again from
its offsets (`read_range`), record for record the same.

A closed shard (after a split or merge) is read to its end before its children start, so
records of one partition key stay in order. Children appear in the offsets once all
their parents are closed (or have expired from the stream).

Only the standard library and boto3 are used, so this runs on Spark's executors and in
the Python worker that plans micro-batches.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sluiceway import aws
from sluiceway.errors import CredentialsError, SourceError

log = logging.getLogger(__name__)

# Columns every stream source hands the pipeline (see streaming.RAW_COLUMNS).
RAW_SCHEMA = (
    "data binary, stream string, shard_id string, sequence_number string, "
    "partition_key string, arrival_time timestamp"
)
GET_RECORDS_MAX = 10_000  # the API's per-call maximum
THROTTLED = (
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "ThrottlingException",
    "KMSThrottlingException",
)
_CREDENTIAL_CODES = (
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "AccessDeniedException",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
)
_MAX_EMPTY_POLLS = 50  # consecutive empty responses tolerated inside a known range


@dataclass(frozen=True)
class KinesisOptions:
    stream: str
    region: str | None = None
    endpoint: str | None = None
    starting_position: str = "trim_horizon"  # or "latest"
    max_records_per_batch: int = 100_000
    until_ms: int | None = None  # bounded run: ignore records that arrived after this
    poll_interval_s: float = 1.0  # least time between two reads that found nothing
    max_attempts: int = 8  # per call, on throttling

    def describe(self) -> str:
        where = self.endpoint or f"region {self.region or '(default)'}"
        return f"kinesis stream {self.stream!r} at {where}"

    def to_options(self) -> dict[str, str]:
        """Spark data-source options (strings); the inverse of from_options."""
        values = {
            "stream": self.stream,
            "region": self.region,
            "endpoint": self.endpoint,
            "startingPosition": self.starting_position,
            "maxRecordsPerBatch": self.max_records_per_batch,
            "untilMs": self.until_ms,
            "pollIntervalSeconds": self.poll_interval_s,
            "maxAttempts": self.max_attempts,
        }
        return {k: str(v) for k, v in values.items() if v is not None}

    @classmethod
    def from_options(cls, options: Any) -> KinesisOptions:
        # Spark hands data sources case-insensitive options with lowercased keys.
        lowered = {str(k).lower(): str(v) for k, v in dict(options).items()}

        def get(key: str) -> str | None:
            return lowered.get(key.lower())

        stream = get("stream")
        if not stream:
            raise SourceError("sluiceway-kinesis: the `stream` option is required")
        until = get("untilMs")
        return cls(
            stream=stream,
            region=get("region"),
            endpoint=get("endpoint"),
            starting_position=get("startingPosition") or "trim_horizon",
            max_records_per_batch=int(get("maxRecordsPerBatch") or 100_000),
            until_ms=int(until) if until else None,
            poll_interval_s=float(get("pollIntervalSeconds") or 1.0),
            max_attempts=int(get("maxAttempts") or 8),
        )


def make_client(opts: KinesisOptions) -> Any:
    """A boto3 Kinesis client; credentials come from boto3's default chain, never options.
    Throttling is retried with backoff (standard mode), a few times: see `aws.client`."""
    return aws.client("kinesis", region=opts.region, endpoint=opts.endpoint)


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def describe_error(exc: BaseException, opts: KinesisOptions) -> SourceError | CredentialsError:
    """One clear error for a failed Kinesis call (missing stream, credentials, endpoint)."""
    from botocore import exceptions as bx

    code = _error_code(exc)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return CredentialsError(f"{opts.describe()}: no AWS credentials found ({exc})")
    if code in _CREDENTIAL_CODES:
        return CredentialsError(f"{opts.describe()}: credentials rejected ({code})")
    if code == "ResourceNotFoundException":
        return SourceError(f"{opts.describe()}: stream not found")
    if isinstance(exc, bx.NoRegionError):
        return SourceError(
            f"{opts.describe()}: no AWS region (set source.region or AWS_DEFAULT_REGION)"
        )
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return SourceError(f"{opts.describe()}: cannot reach the endpoint ({exc})")
    message = getattr(exc, "response", {}).get("Error", {}).get("Message") if code else None
    return SourceError(f"{opts.describe()}: {code or type(exc).__name__}: {message or exc}")


def call(
    opts: KinesisOptions,
    fn: Callable[..., Any],
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Any:
    """Call `fn(**kwargs)`, backing off exponentially (with jitter) while throttled."""
    from botocore.exceptions import BotoCoreError, ClientError

    for attempt in range(opts.max_attempts):
        try:
            return fn(**kwargs)
        except ClientError as exc:
            if _error_code(exc) not in THROTTLED or attempt == opts.max_attempts - 1:
                raise
            delay = min(5.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2)
            log.info("%s: throttled (%s); retrying in %.2fs", opts.stream, _error_code(exc), delay)
            sleep(delay)
        except BotoCoreError:
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def check_stream(opts: KinesisOptions, client: Any | None = None) -> int:
    """Fail fast with one clear error unless the stream exists and is readable; shard count."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = client or make_client(opts)
        summary = call(opts, client.describe_stream_summary, StreamName=opts.stream)
    except (BotoCoreError, ClientError) as exc:
        raise describe_error(exc, opts) from exc
    status = summary["StreamDescriptionSummary"]["StreamStatus"]
    if status not in ("ACTIVE", "UPDATING"):
        raise SourceError(f"{opts.describe()}: stream is {status}, not ACTIVE")
    return int(summary["StreamDescriptionSummary"].get("OpenShardCount", 0))


def list_shards(opts: KinesisOptions, client: Any) -> list[dict[str, Any]]:
    """Every shard the stream still holds (open and closed), in shard-id order."""
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": opts.stream}
    while True:
        response = call(opts, client.list_shards, **kwargs)
        shards.extend(response.get("Shards", []))
        token = response.get("NextToken")
        if not token:
            return sorted(shards, key=lambda s: s["ShardId"])
        kwargs = {"NextToken": token}


def _parents(shard: dict[str, Any]) -> list[str]:
    return [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p]


def _ordered(shards: dict[str, dict[str, Any]]) -> dict[str, Any]:
    # Spark compares offsets as JSON text: keep key order stable.
    return {"shards": {sid: dict(sorted(pos.items())) for sid, pos in sorted(shards.items())}}


def initial_offset(opts: KinesisOptions, client: Any, now_ms: int | None = None) -> dict[str, Any]:
    """Where a new query starts: the oldest shards from their start, or every open shard now."""
    shards = list_shards(opts, client)
    ids = {s["ShardId"] for s in shards}
    positions: dict[str, dict[str, Any]] = {}
    if opts.starting_position == "latest":
        ts = now_ms if now_ms is not None else int(time.time() * 1000)
        for shard in shards:
            if "EndingSequenceNumber" not in shard["SequenceNumberRange"]:
                positions[shard["ShardId"]] = {"from": "at_timestamp", "ts": ts}
            else:
                positions[shard["ShardId"]] = {"seq": None, "closed": True}
    else:
        for shard in shards:
            # A shard whose parents expired from the stream is a root: read it from its start.
            if not any(p in ids for p in _parents(shard)):
                positions[shard["ShardId"]] = {"from": "trim_horizon"}
    return _ordered(positions)


def with_new_shards(
    opts: KinesisOptions, shards: list[dict[str, Any]], offset: dict[str, Any]
) -> dict[str, Any]:
    """Add children whose parents are all read to their end (or gone) to the offsets."""
    positions = {k: dict(v) for k, v in offset["shards"].items()}
    present = {s["ShardId"] for s in shards}
    changed = True
    while changed:  # a parent added in this pass may already be closed and empty
        changed = False
        for shard in shards:
            sid = shard["ShardId"]
            if sid in positions:
                continue
            parents = _parents(shard)
            if all(
                (p not in present and p not in positions) or positions.get(p, {}).get("closed")
                for p in parents
            ):
                positions[sid] = {"from": "trim_horizon"}
                changed = True
    return _ordered(positions)


def _iterator(opts: KinesisOptions, client: Any, shard_id: str, pos: dict[str, Any]) -> str:
    kwargs: dict[str, Any] = {"StreamName": opts.stream, "ShardId": shard_id}
    if pos.get("seq"):
        kwargs |= {
            "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
            "StartingSequenceNumber": pos["seq"],
        }
    elif pos.get("from") == "at_timestamp":
        kwargs |= {
            "ShardIteratorType": "AT_TIMESTAMP",
            "Timestamp": datetime.fromtimestamp(pos["ts"] / 1000, tz=UTC),
        }
    else:
        kwargs |= {"ShardIteratorType": "TRIM_HORIZON"}
    return str(call(opts, client.get_shard_iterator, **kwargs)["ShardIterator"])


def _arrival_ms(record: dict[str, Any]) -> int:
    return int(record["ApproximateArrivalTimestamp"].timestamp() * 1000)


def _get_records(
    opts: KinesisOptions,
    client: Any,
    shard_id: str,
    iterator: str,
    limit: int,
    renew: Callable[[], str],
) -> tuple[dict[str, Any], str]:
    """One GetRecords call; an expired iterator is renewed (once per call) from `renew`."""
    from botocore.exceptions import ClientError

    try:
        return call(opts, client.get_records, ShardIterator=iterator, Limit=limit), iterator
    except ClientError as exc:
        if _error_code(exc) != "ExpiredIteratorException":
            raise
    log.info("%s/%s: shard iterator expired; renewing", opts.stream, shard_id)
    iterator = renew()
    return call(opts, client.get_records, ShardIterator=iterator, Limit=limit), iterator


@dataclass(frozen=True)
class ShardBatch:
    """What one batch read from a shard: its records and the position after the last one."""

    position: dict[str, Any]
    records: list[dict[str, Any]]


def read_batch(
    opts: KinesisOptions,
    client: Any,
    shard_id: str,
    pos: dict[str, Any],
    budget: int,
    closed: bool = False,
) -> ShardBatch:
    """The shard's next records from `pos`, at most `budget` of them, and where they end.

    Stops at the budget, at the tip of the shard, at `until_ms`, or at the end of a
    closed shard (then the position is marked closed). For a shard ListShards reports
    `closed`, an empty response is not the end: only a response without a next iterator is.
    `read_range(pos, position["seq"])` reads exactly these records again (a replay).
    """
    if pos.get("closed"):
        return ShardBatch(pos, [])
    last = pos.get("seq")
    state = {"pos": dict(pos)}
    kept: list[dict[str, Any]] = []
    empty = 0

    def renew() -> str:
        return _iterator(opts, client, shard_id, state["pos"])

    iterator = renew()
    while len(kept) < budget:
        want = min(GET_RECORDS_MAX, budget - len(kept))
        response, iterator = _get_records(opts, client, shard_id, iterator, want, renew)
        records = response.get("Records", [])
        for record in records:
            if opts.until_ms is not None and _arrival_ms(record) > opts.until_ms:
                return ShardBatch(_position(last, pos), kept)
            last = record["SequenceNumber"]
            kept.append(record)
            state["pos"] = {"seq": last}
        following = response.get("NextShardIterator")
        if not following:
            return ShardBatch({"seq": last, "closed": True}, kept)
        caught_up = response.get("MillisBehindLatest", 0) == 0
        if len(records) < want and caught_up and not closed:
            break
        empty = 0 if records else empty + 1
        if empty > 5:  # a long gap of trimmed data: carry on in the next batch
            break
        iterator = following
    return ShardBatch(_position(last, pos), kept)


def _position(last: str | None, pos: dict[str, Any]) -> dict[str, Any]:
    return {"seq": last} if last else dict(pos)


def read_range(
    opts: KinesisOptions,
    client: Any,
    shard_id: str,
    start: dict[str, Any],
    end_seq: str,
    sleep: Callable[[float], None] = time.sleep,
    limit: int = GET_RECORDS_MAX,
) -> Iterator[dict[str, Any]]:
    """Yield the shard's records after `start` up to and including `end_seq`, exactly once.

    Used to replay a batch that is in Spark's offset log but was not committed; `limit`
    (the batch's per-shard budget) keeps each GetRecords call from fetching far past it."""
    end = int(end_seq)
    state = {"pos": dict(start)}

    def renew() -> str:
        return _iterator(opts, client, shard_id, state["pos"])

    iterator = renew()
    empty = 0
    limit = max(1, min(GET_RECORDS_MAX, limit))
    while True:
        response, iterator = _get_records(opts, client, shard_id, iterator, limit, renew)
        records = response.get("Records", [])
        for record in records:
            seq = int(record["SequenceNumber"])
            if seq > end:
                return
            yield record
            state["pos"] = {"seq": record["SequenceNumber"]}
            if seq == end:
                return
        following = response.get("NextShardIterator")
        if not following:
            raise SourceError(
                f"{opts.describe()}: shard {shard_id} ended before sequence number {end_seq}; "
                "records planned for this batch are gone"
            )
        empty = 0 if records else empty + 1
        if empty > _MAX_EMPTY_POLLS:
            raise SourceError(
                f"{opts.describe()}: shard {shard_id}: no records after {empty} reads while "
                f"sequence number {end_seq} was still ahead"
            )
        if not records:
            sleep(0.05)
        iterator = following


def to_row(opts: KinesisOptions, shard_id: str, record: dict[str, Any]) -> tuple[Any, ...]:
    """A record as a row of RAW_SCHEMA."""
    arrival = record.get("ApproximateArrivalTimestamp")
    return (
        bytes(record["Data"]),
        opts.stream,
        shard_id,
        record["SequenceNumber"],
        record.get("PartitionKey"),
        arrival.astimezone(UTC) if arrival is not None else None,
    )
