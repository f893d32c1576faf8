"""A Kinesis source for Structured Streaming as a PySpark Python data source (Spark >= 4.0).

    spark.dataSource.register(KinesisDataSource)
    spark.readStream.format("sluiceway-kinesis").options(**KinesisOptions(...).to_options())

One input partition per shard with new records; offsets are per-shard sequence numbers
(sources/kinesis.py) kept in Spark's checkpoint. Each micro-batch takes at most
`maxRecordsPerBatch` records, shared among the open shards. The planning step probes
each shard (GetRecords, data discarded) for the last sequence number inside that budget;
the executors then read exactly that range, so a replayed batch reads the same records.

Spark 4.0/4.1 call `latestOffset()` without the start offset. The reader keeps the last
end offset it planned, and learns it after a restart from Spark's `partitions(x, x)`
call (AcceptsLatestSeenOffset), which always comes first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.types import StructType

from sluiceway.sources import kinesis
from sluiceway.sources.kinesis import KinesisOptions

FORMAT = "sluiceway-kinesis"
T = TypeVar("T")


def _guarded(opts: KinesisOptions, fn: Callable[[], T]) -> T:
    """Run `fn`, turning a failed AWS call into one clear Sluiceway error."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn()
    except (BotoCoreError, ClientError) as exc:
        raise kinesis.describe_error(exc, opts) from exc


class ShardRange(InputPartition):
    """The records of one shard after `start`, up to and including `end_seq`."""

    def __init__(self, shard_id: str, start: dict[str, Any], end_seq: str) -> None:
        self.shard_id = shard_id
        self.start = start
        self.end_seq = end_seq


class KinesisDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return FORMAT

    def schema(self) -> str:
        return kinesis.RAW_SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return KinesisStreamReader(KinesisOptions.from_options(self.options))


class KinesisStreamReader(DataSourceStreamReader):
    def __init__(self, opts: KinesisOptions) -> None:
        self.opts = opts
        self._initial: dict[str, Any] | None = None
        self._position: dict[str, Any] | None = None
        self._last_probe = 0.0
        self._last_probe_found = True
        self._client: Any = None

    # The reader is pickled to the executors: leave the client behind.
    def __getstate__(self) -> dict[str, Any]:
        return {"opts": self.opts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["opts"])  # type: ignore[misc]

    def _kinesis(self) -> Any:
        if self._client is None:
            self._client = kinesis.make_client(self.opts)
        return self._client

    def initialOffset(self) -> dict[str, Any]:
        if self._initial is None:
            self._initial = _guarded(
                self.opts, lambda: kinesis.initial_offset(self.opts, self._kinesis())
            )
        return self._initial

    def latestOffset(self) -> dict[str, Any]:
        return _guarded(self.opts, self._latest)

    def _latest(self) -> dict[str, Any]:
        start = self._position or self.initialOffset()
        now = time.monotonic()
        # Spark asks every few milliseconds when idle; GetRecords allows 5 calls/s/shard.
        if not self._last_probe_found and now - self._last_probe < self.opts.poll_interval_s:
            return start
        self._last_probe = now
        shards = kinesis.list_shards(self.opts, self._kinesis())
        current = kinesis.with_new_shards(self.opts, shards, start)
        positions = current["shards"]
        open_ids = [sid for sid, pos in positions.items() if not pos.get("closed")]
        if not open_ids:
            self._last_probe_found = current != start
            self._position = current
            return current
        ended = {s["ShardId"] for s in shards if "EndingSequenceNumber" in s["SequenceNumberRange"]}
        budget = max(1, self.opts.max_records_per_batch // len(open_ids))
        with ThreadPoolExecutor(max_workers=min(16, len(open_ids))) as pool:
            results = dict(
                zip(
                    open_ids,
                    pool.map(
                        lambda sid: kinesis.probe(
                            self.opts, self._kinesis(), sid, positions[sid], budget, sid in ended
                        ),
                        open_ids,
                    ),
                    strict=True,
                )
            )
        merged = {**positions, **{sid: r.position for sid, r in results.items()}}
        end = kinesis._ordered(merged)
        self._last_probe_found = end != start
        self._position = end
        return end

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        # After a restart Spark calls partitions(latest, latest) before anything else.
        self._position = end
        begin = start.get("shards", {})
        ranges: list[InputPartition] = []
        for shard_id, pos in end["shards"].items():
            before = begin.get(shard_id, {"from": "trim_horizon"})
            if pos.get("seq") and pos.get("seq") != before.get("seq"):
                ranges.append(ShardRange(shard_id, before, pos["seq"]))
        return ranges

    def read(self, partition: InputPartition) -> Iterator[tuple[Any, ...]]:
        assert isinstance(partition, ShardRange)
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client = kinesis.make_client(self.opts)
            for record in kinesis.read_range(
                self.opts, client, partition.shard_id, partition.start, partition.end_seq
            ):
                yield kinesis.to_row(self.opts, partition.shard_id, record)
        except (BotoCoreError, ClientError) as exc:
            raise kinesis.describe_error(exc, self.opts) from exc

    def commit(self, end: dict[str, Any]) -> None:
        """Nothing to do: the offsets live in Spark's checkpoint."""


def register(spark: Any) -> None:
    """Make `format("sluiceway-kinesis")` available in this session."""
    spark.dataSource.register(KinesisDataSource)


def read_stream(spark: Any, opts: KinesisOptions) -> Any:
    """The stream of records `opts` names, as a streaming DataFrame (Spark >= 4.0)."""
    register(spark)
    return spark.readStream.format(FORMAT).options(**opts.to_options()).load()
