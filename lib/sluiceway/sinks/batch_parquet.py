"""Partitioned Parquet written once per micro-batch, idempotent by batch id.

Structured Streaming replays a micro-batch whose commit it did not record (a crash, a
kill). This sink makes the replay harmless. Under `<checkpoint>/sink/`:

    staging/<batch>/<output>/...   the batch as Spark wrote it (not visible to readers)
    pending/<batch>.json           the plan: files to move into the datasets, files to delete
    commits/<batch>.json           the batch is in the datasets; rows, files, partitions

A batch is (1) skipped when its commit exists; (2) finished from its plan when a plan
exists: every move whose source is still staged is done, every delete still pending is
done, then the commit is written; (3) otherwise staged, planned and finished. Files are
named after the batch (`part-b000000000042-00003.c000.zstd.parquet`), so a replay
overwrites, never duplicates. A crash between steps leaves either no plan (the staging
is dropped and the batch recomputed) or a complete plan (finished as is).

Small files: each batch writes one file per partition; when a partition holds
`compact_min_files` files below the target size, the batch also rewrites them into files
of about `target_file_mb`, through the same plan (the merged files are staged, moved in,
and the small files deleted), so compaction is exactly-once too. A reader listing a
partition during those moves can see both the merged file and the small ones.

Kill points (`sluiceway.faults`, armed with `SLUICEWAY_KILL_AT`), named after the batch id:

    stream-staged:<batch>      every output staged (and compaction staged), no plan yet
    stream-planned:<batch>     the plan written, nothing moved
    stream-move:<batch>        after each move; `stream-move:3@2` is batch 3's second move
    stream-deleted:<batch>     every move and delete done, no commit record
    stream-committed:<batch>   the commit record written and the plan and staging removed,
                               before Spark records the batch in its own commit log

A batch finished from its plan by a later attempt passes the same points again.

Everything goes through Hadoop's FileSystem, so local paths, s3a:// and EMRFS behave alike.

`file_format = "json"` (a delivery spec's json.gz) stages JSON lines instead of Parquet;
staging, plan, moves and commit are the same, so it is exactly once the same way. Such a
sink never compacts: a JSON file read back would need the schema re-inferred.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from sluiceway import faults
from sluiceway.errors import SinkError
from sluiceway.jvm_errors import SPARK_ERRORS, describe_spark_error
from sluiceway.sinks.parquet import MAX_RECORDS_PER_FILE, HadoopFs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOutput:
    name: str  # a plain name, used for the staging directory
    df: DataFrame
    path: str
    partition_by: tuple[str, ...]


class BatchSink:
    def __init__(
        self,
        spark: SparkSession,
        state_dir: str,
        *,
        compression: str,
        target_file_mb: int,
        compact_min_files: int,
        file_format: str = "parquet",  # or "json": JSON lines, compressed by `compression`
        where: str,
    ) -> None:
        self.spark = spark
        self.state_dir = state_dir.rstrip("/")
        self.compression = compression
        self.target_bytes = target_file_mb * 1024 * 1024
        self.compact_min_files = compact_min_files
        self.file_format = file_format
        self.where = where
        self.fs = HadoopFs(spark)

    def drain(self, batch: DataFrame) -> None:
        """Run a batch's plan without writing it (a replayed batch whose rows are in)."""
        batch.write.format("noop").mode("overwrite").save()

    def _key(self, kind: str, batch_id: int) -> str:
        return f"{self.state_dir}/{kind}/{batch_id:020d}.json"

    def _staging(self, batch_id: int) -> str:
        return f"{self.state_dir}/staging/{batch_id:020d}"

    def committed(self, batch_id: int) -> dict[str, Any] | None:
        """The commit record of `batch_id`, or None if the batch is not in the datasets."""
        text = self.fs.read_text(self._key("commits", batch_id))
        if text is None:
            return None
        try:
            value: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError:
            return None  # torn write: the plan is still there and is finished again
        return value

    def commits(self) -> list[dict[str, Any]]:
        """Every commit record, oldest first."""
        records = []
        for path, _ in self.fs.files(f"{self.state_dir}/commits"):
            if path.endswith(".json"):
                text = self.fs.read_text(path)
                if text:
                    records.append(json.loads(text))
        return sorted(records, key=lambda r: int(r["batch_id"]))

    def write_batch(
        self, batch_id: int, outputs: Sequence[BatchOutput], metrics: dict[str, Any]
    ) -> dict[str, Any]:
        """Put the batch into the datasets exactly once; returns its commit record."""
        try:
            done = self.committed(batch_id)
            if done is not None:
                log.info("batch %d: already committed; skipping the replay", batch_id)
                return done
            plan = self._read_plan(batch_id)
            if plan is None:
                self.fs.delete(self._staging(batch_id))
                plan = self._stage(batch_id, outputs, metrics)
                faults.reached(f"stream-staged:{batch_id}")
                self.fs.write_text(self._key("pending", batch_id), json.dumps(plan))
                faults.reached(f"stream-planned:{batch_id}")
            else:
                log.warning("batch %d: finishing the commit an earlier attempt started", batch_id)
            return self._finish(batch_id, plan)
        except SPARK_ERRORS as exc:
            raise SinkError(f"{self.where}: batch {batch_id}: {describe_spark_error(exc)}") from exc

    def _read_plan(self, batch_id: int) -> dict[str, Any] | None:
        text = self.fs.read_text(self._key("pending", batch_id))
        if text is None:
            return None
        try:
            plan: dict[str, Any] = json.loads(text)
        except json.JSONDecodeError:
            return None  # written before any move started: recompute
        return plan

    def _stage(
        self, batch_id: int, outputs: Sequence[BatchOutput], metrics: dict[str, Any]
    ) -> dict[str, Any]:
        staging = self._staging(batch_id)
        moves: list[list[str]] = []
        deletes: list[str] = []
        partitions: dict[str, list[str]] = {}
        for output in outputs:
            staged = f"{staging}/{output.name}"
            # One task per partition value: one file per partition per batch.
            df = (
                output.df.repartition(*output.partition_by)
                if output.partition_by
                else output.df.coalesce(1)
            )
            writer = (
                df.write.format(self.file_format)
                .mode("overwrite")
                .option("compression", self.compression)
                .option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
            )
            if output.partition_by:
                writer = writer.partitionBy(*output.partition_by)
            writer.save(staged)
            staged_root = self.fs.qualified(staged)
            target_root = output.path.rstrip("/")
            touched: set[str] = set()
            for index, (path, _) in enumerate(self.fs.files(staged)):
                relative = path[len(staged_root) + 1 :]
                directory, _, name = relative.rpartition("/")
                suffix = name.split(".", 1)[1] if "." in name else "parquet"
                final = f"part-b{batch_id:012d}-{index:05d}.{suffix}"
                moves.append([path, "/".join(p for p in (target_root, directory, final) if p)])
                touched.add(directory)
            partitions[output.name] = sorted(touched)
            compact_moves, compact_deletes = self._compact(
                batch_id, output, sorted(touched), f"{staging}/compact-{output.name}"
            )
            moves += compact_moves
            deletes += compact_deletes
        return {
            "batch_id": batch_id,
            "moves": moves,
            "deletes": deletes,
            "partitions": partitions,
            "metrics": metrics,
        }

    def _compact(
        self, batch_id: int, output: BatchOutput, directories: list[str], staged_root: str
    ) -> tuple[list[list[str]], list[str]]:
        """Plan the rewrite of partitions that hold too many small files."""
        moves: list[list[str]] = []
        deletes: list[str] = []
        if self.file_format != "parquet":
            return moves, deletes
        for directory in directories:
            partition = "/".join(p for p in (output.path.rstrip("/"), directory) if p)
            prefix = self.fs.qualified(partition)
            small = [
                (path, size)
                for path, size in self.fs.files(partition)
                if size < self.target_bytes and "/" not in path[len(prefix) + 1 :]
            ]
            if len(small) < self.compact_min_files:
                continue
            total = sum(size for _, size in small)
            count = max(1, math.ceil(total / self.target_bytes))
            staged = f"{staged_root}/{directory}" if directory else staged_root
            # The partition directory is the base path: the files hold only data columns.
            data = self.spark.read.option("basePath", partition).parquet(*[p for p, _ in small])
            (
                data.coalesce(count)
                .write.mode("overwrite")
                .option("compression", self.compression)
                .parquet(staged)
            )
            for index, (path, _) in enumerate(self.fs.files(staged)):
                name = path.rsplit("/", 1)[1]
                suffix = name.split(".", 1)[1] if "." in name else "parquet"
                moves.append([path, f"{partition}/part-c{batch_id:012d}-{index:05d}.{suffix}"])
            deletes += [path for path, _ in small]
            log.info("%s: compacting %d small files in %s", output.name, len(small), partition)
        return moves, deletes

    def _finish(self, batch_id: int, plan: dict[str, Any]) -> dict[str, Any]:
        for src, dst in plan["moves"]:
            self.fs.move(src, dst)
            faults.reached(f"stream-move:{batch_id}")
        for path in plan["deletes"]:
            self.fs.delete(path)
        faults.reached(f"stream-deleted:{batch_id}")
        record = {
            "batch_id": batch_id,
            "committed_at": datetime.now(UTC).isoformat(),
            "files": [dst for _, dst in plan["moves"]],
            "deleted": plan["deletes"],
            "partitions": plan["partitions"],
            "metrics": plan["metrics"],
        }
        self.fs.write_text(self._key("commits", batch_id), json.dumps(record))
        self.fs.delete(self._key("pending", batch_id))
        self.fs.delete(self._staging(batch_id))
        faults.reached(f"stream-committed:{batch_id}")
        return record
