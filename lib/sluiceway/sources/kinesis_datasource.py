"""A Kinesis source for Structured Streaming as a PySpark Python data source (Spark >= 4.0).

    spark.dataSource.register(KinesisDataSource)
    spark.readStream.format("sluiceway-kinesis").options(**KinesisOptions(...).to_options())

Offsets are per-shard sequence numbers (sources/kinesis.py) kept in Spark's checkpoint.
Each micro-batch takes at most `maxRecordsPerBatch` records, shared among the open shards.

The reader is a SimpleDataSourceStreamReader: Spark calls `read(start)` in the Python
worker that plans batches (one thread per shard there), keeps the rows it returns and
ships them with the planned batch, so each record is read from Kinesis once and the
executors make no GetRecords calls. A batch is one Spark partition. After a restart,
a batch in the offset log that was not committed is read again with
`readBetweenOffsets(start, end)`: the same records, up to each shard's end sequence number.
Spark learns where to go on after a restart from the offset log (it calls
`partitions(end, end)` on the wrapper before anything else), so the reader keeps no position.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from pyspark.sql.datasource import DataSource, SimpleDataSourceStreamReader
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


class KinesisDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return FORMAT

    def schema(self) -> str:
        return kinesis.RAW_SCHEMA

    def simpleStreamReader(self, schema: StructType) -> SimpleDataSourceStreamReader:
        return KinesisStreamReader(KinesisOptions.from_options(self.options))


class KinesisStreamReader(SimpleDataSourceStreamReader):
    def __init__(self, opts: KinesisOptions) -> None:
        self.opts = opts
        self._last_read = 0.0
        self._last_read_found = True
        self._client: Any = None

    # The reader is pickled to the executors (for a replay): leave the client behind.
    def __getstate__(self) -> dict[str, Any]:
        return {"opts": self.opts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["opts"])  # type: ignore[misc]

    def _kinesis(self) -> Any:
        if self._client is None:
            self._client = kinesis.make_client(self.opts)
        return self._client

    def initialOffset(self) -> dict[str, Any]:
        return _guarded(self.opts, lambda: kinesis.initial_offset(self.opts, self._kinesis()))

    def read(self, start: dict[str, Any]) -> tuple[Iterator[tuple[Any, ...]], dict[str, Any]]:
        rows, end = _guarded(self.opts, lambda: self._read(start))
        # A list iterator, not a generator: Spark copies it (copy.copy) to send the batch.
        return iter(rows), end

    def _read(self, start: dict[str, Any]) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
        now = time.monotonic()
        # Spark asks every trigger when idle; GetRecords allows 5 calls/s/shard.
        if not self._last_read_found and now - self._last_read < self.opts.poll_interval_s:
            return [], start
        self._last_read = now
        shards = kinesis.list_shards(self.opts, self._kinesis())
        current = kinesis.with_new_shards(self.opts, shards, start)
        positions = current["shards"]
        open_ids = [sid for sid, pos in positions.items() if not pos.get("closed")]
        ended = {s["ShardId"] for s in shards if "EndingSequenceNumber" in s["SequenceNumberRange"]}
        budget = self._budget(len(open_ids))

        def read_shard(sid: str) -> kinesis.ShardBatch:
            return kinesis.read_batch(
                self.opts, self._kinesis(), sid, positions[sid], budget, sid in ended
            )

        with ThreadPoolExecutor(max_workers=max(1, min(16, len(open_ids)))) as pool:
            batches = dict(zip(open_ids, pool.map(read_shard, open_ids), strict=True))
        end = kinesis._ordered({**positions, **{s: b.position for s, b in batches.items()}})
        self._last_read_found = end != start
        rows = [
            kinesis.to_row(self.opts, sid, record)
            for sid, batch in batches.items()
            for record in batch.records
        ]
        return rows, end

    def _budget(self, open_shards: int) -> int:
        """Each open shard's share of a batch: the same when a batch is read and replayed."""
        return max(1, self.opts.max_records_per_batch // max(1, open_shards))

    def readBetweenOffsets(
        self, start: dict[str, Any], end: dict[str, Any]
    ) -> Iterator[tuple[Any, ...]]:
        """Replay a planned batch (after a restart): each shard from `start` to its end seq."""
        begin = start.get("shards", {})
        # The shards that were open when the batch was read shared its budget.
        was_open = [sid for sid in end["shards"] if not begin.get(sid, {}).get("closed")]
        budget = self._budget(len(was_open))
        for shard_id, pos in end["shards"].items():
            before = begin.get(shard_id, {"from": "trim_horizon"})
            if pos.get("seq") and pos.get("seq") != before.get("seq"):
                yield from self._replay(shard_id, before, pos["seq"], budget)

    def _replay(
        self, shard_id: str, start: dict[str, Any], end_seq: str, budget: int
    ) -> Iterator[tuple[Any, ...]]:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._kinesis()
        try:
            for record in kinesis.read_range(
                self.opts, client, shard_id, start, end_seq, limit=budget
            ):
                yield kinesis.to_row(self.opts, shard_id, record)
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
