"""Partitioned Parquet writes that are safe to rerun.

Modes:
- `overwrite_partitions`: dynamic partition overwrite; the batch replaces exactly the
  partitions it has rows for.
- `overwrite`: the batch replaces the whole dataset.
- `merge`: upsert by primary key. The partitions the batch touches (where its rows go,
  and where older versions of its keys live) are rebuilt as old rows minus replaced keys
  plus the batch, written to a staging prefix first, then swapped in with a dynamic
  partition overwrite. A rerun of the same batch gives the same dataset.

Local paths, `s3://` and `s3a://` URIs go through the same code: only Spark and the
Hadoop FileSystem API touch storage.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from sluiceway.errors import SinkError
from sluiceway.jvm_errors import SPARK_ERRORS, describe_spark_error

log = logging.getLogger(__name__)

MAX_RECORDS_PER_FILE = 5_000_000
_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class WriteResult:
    path: str
    partitions: tuple[dict[str, Any], ...]  # partition values the write replaced
    removed: tuple[dict[str, Any], ...] = ()  # partitions the write emptied and deleted
    replaced: bool = False  # the write replaced the whole dataset


class HadoopFs:
    """Existence checks and deletes through Hadoop's FileSystem (local, s3a, EMRFS alike)."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm: Any = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, path: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def exists(self, path: str) -> bool:
        p = self._path(path)
        return bool(p.getFileSystem(self._conf).exists(p))

    def has_data(self, path: str) -> bool:
        """A dataset exists once Spark committed it (`_SUCCESS`) or any file is there."""
        p = self._path(path)
        fs = p.getFileSystem(self._conf)
        return bool(fs.exists(p)) and any(
            not s.getPath().getName().startswith((".", "_")) or s.getPath().getName() == "_SUCCESS"
            for s in fs.listStatus(p)
        )

    def delete(self, path: str) -> None:
        p = self._path(path)
        p.getFileSystem(self._conf).delete(p, True)


def partition_text(value: Any) -> str:
    """A partition value as Spark writes it in a directory name, before escaping."""
    if value is None:
        return _DEFAULT_PARTITION
    if isinstance(value, bool):
        return "true" if value else "false"  # Spark's cast to string, not Python's str()
    return str(value)


def partition_path(spark: SparkSession, partition: dict[str, Any]) -> str:
    """`a=1/b=x` exactly as Spark names the directories (same escaping, same NULL name)."""
    jvm: Any = spark.sparkContext._jvm
    utils = jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils
    parts = []
    for column, value in partition.items():
        text = _DEFAULT_PARTITION if value is None else utils.escapePathName(partition_text(value))
        parts.append(f"{utils.escapePathName(column)}={text}")
    return "/".join(parts)


def stored_partitions(
    spark: SparkSession, path: str, partition_by: tuple[str, ...]
) -> dict[tuple[str, ...], str]:
    """The partition directories under `path`: values as Spark wrote them -> `a=1/b=x`."""
    jvm: Any = spark.sparkContext._jvm
    utils = jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils
    base = path.rstrip("/")
    pattern = jvm.org.apache.hadoop.fs.Path(
        base + "/" + "/".join(f"{utils.escapePathName(c)}=*" for c in partition_by)
    )
    fs = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    found = {}
    for status in fs.globStatus(pattern) or []:
        if not status.isDirectory():
            continue
        parts = str(status.getPath().toUri().getPath()).rstrip("/").split("/")[-len(partition_by) :]
        values = tuple(str(utils.unescapePathName(part.split("=", 1)[1])) for part in parts)
        found[values] = "/".join(parts)
    return found


def _sorted(partitions: Any) -> tuple[dict[str, Any], ...]:
    return tuple(sorted(partitions, key=lambda d: [str(v) for v in d.values()]))


def _write(
    df: DataFrame,
    path: str,
    partition_by: tuple[str, ...],
    compression: str,
    *,
    static: bool = False,
) -> tuple[dict[str, Any], ...]:
    """Overwrite `path` with `df` in one Spark job; returns the partitions written.

    The partition values are observed during the write itself, so the data is read once.
    Dynamic partition overwrite (the session default) replaces only those partitions;
    `static` replaces the whole dataset.
    """
    observation = Observation()
    if partition_by:
        # Spark 3.5 cannot hand nested values to Python from an observation: send JSON.
        partitions = F.to_json(F.collect_set(F.struct(*partition_by)))
        # One task per partition value: few, large files instead of tasks x partitions.
        df = df.observe(observation, partitions.alias("partitions")).repartition(*partition_by)
    writer = (
        df.write.mode("overwrite")
        .option("compression", compression)
        .option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
    )
    if static:
        writer = writer.option("partitionOverwriteMode", "static")
    if partition_by:
        writer.partitionBy(*partition_by).parquet(path)
        return _sorted(json.loads(observation.get["partitions"]))
    writer.parquet(path)
    return ()


def _distinct_partitions(
    df: DataFrame, partition_by: tuple[str, ...]
) -> tuple[dict[str, Any], ...]:
    return _sorted(r.asDict() for r in df.select(*partition_by).distinct().collect())


def check_compatible(
    existing: DataFrame, batch: DataFrame, where: str, partition_by: tuple[str, ...] = ()
) -> None:
    """Added columns are fine; a column whose type changes is refused before any write.

    Partition columns are skipped: their types on disk are only inferred from directory names.
    """
    old = {f.name: f.dataType for f in existing.schema.fields if f.name not in partition_by}
    for f in batch.schema.fields:
        if f.name in old and old[f.name] != f.dataType:
            raise SinkError(
                f"{where}: column {f.name!r} changes type from {old[f.name].simpleString()} to "
                f"{f.dataType.simpleString()}; refusing to write an incompatible schema"
            )


def write_parquet(
    spark: SparkSession,
    batch: DataFrame,
    path: str,
    *,
    mode: str,
    partition_by: tuple[str, ...],
    primary_key: tuple[str, ...] = (),
    compression: str = "snappy",
    staging_path: str,
    where: str,
) -> WriteResult:
    """Write `batch` to `path` in the given mode; a failed write leaves `path` as it was."""
    missing = [c for c in (*partition_by, *primary_key) if c not in batch.columns]
    if missing:
        raise SinkError(f"{where}: columns {', '.join(missing)} not in the data to write")
    fs = HadoopFs(spark)
    try:
        _recover(spark, fs, path, partition_by, compression, staging_path, where)
        if not fs.has_data(path):
            return WriteResult(path, _write(batch, path, partition_by, compression), replaced=True)
        existing = spark.read.parquet(path)
        check_compatible(existing, batch, where, partition_by)
        if mode == "overwrite_partitions":
            # Each partition directory is replaced whole from the batch; nothing is read back.
            return WriteResult(path, _write(batch, path, partition_by, compression))
        if mode == "merge":
            staged, touched, present = _stage_merge(
                spark,
                existing,
                batch,
                partition_by,
                primary_key,
                compression,
                f"{staging_path}/merge",
            )
            # A touched partition with no row left (every row moved out) must go.
            kept = set(map(_key, present))
            emptied = tuple(p for p in touched if _key(p) not in kept)
            _swap(spark, fs, staged, path, partition_by, compression, dynamic=True, emptied=emptied)
            fs.delete(staging_path)
            return WriteResult(path, touched, removed=emptied)
        staged, touched = _stage(spark, batch, partition_by, compression, f"{staging_path}/replace")
        _swap(spark, fs, staged, path, partition_by, compression, dynamic=False)
        fs.delete(staging_path)
        return WriteResult(path, touched, replaced=True)
    except SPARK_ERRORS as exc:
        raise SinkError(f"{where}: writing {path} failed: {describe_spark_error(exc)}") from exc


def _recover(
    spark: SparkSession,
    fs: HadoopFs,
    path: str,
    partition_by: tuple[str, ...],
    compression: str,
    staging_path: str,
    where: str,
) -> None:
    """Finish a swap that an earlier run started but did not end.

    A committed staging copy (`_SUCCESS`) means the earlier run may have died while
    replacing `path`: copying it in again is idempotent and brings back any partition
    that was removed but not yet rewritten. An uncommitted one is simply dropped.
    """
    for kind, dynamic in (("merge", True), ("replace", False)):
        staged_path = f"{staging_path}/{kind}"
        if fs.exists(f"{staged_path}/_SUCCESS"):
            log.warning("%s: finishing an interrupted write from %s", where, staged_path)
            staged = spark.read.parquet(staged_path)
            _swap(spark, fs, staged, path, partition_by, compression, dynamic=dynamic)
    fs.delete(staging_path)


def _stage(
    spark: SparkSession,
    df: DataFrame,
    partition_by: tuple[str, ...],
    compression: str,
    staged_path: str,
) -> tuple[DataFrame, tuple[dict[str, Any], ...]]:
    """Write `df` to `staged_path`; returns it read back, and the partitions it has."""
    present = _write(df, staged_path, partition_by, compression)
    return spark.read.schema(df.schema).parquet(staged_path), present


def _stage_merge(
    spark: SparkSession,
    existing: DataFrame,
    batch: DataFrame,
    partition_by: tuple[str, ...],
    primary_key: tuple[str, ...],
    compression: str,
    staged_path: str,
) -> tuple[DataFrame, tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    """Stage old rows minus replaced keys plus the batch, for every partition the batch touches.

    Returns the staged data, the partitions touched and the partitions the staged data has.
    The batch is read several times here, so it is cached for the duration.
    """
    batch = batch.persist()
    try:
        return _stage_merge_cached(
            spark, existing, batch, partition_by, primary_key, compression, staged_path
        )
    finally:
        batch.unpersist()


def _stage_merge_cached(
    spark: SparkSession,
    existing: DataFrame,
    batch: DataFrame,
    partition_by: tuple[str, ...],
    primary_key: tuple[str, ...],
    compression: str,
    staged_path: str,
) -> tuple[DataFrame, tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    types = {f.name: f.dataType for f in batch.schema.fields}
    # Partition column types are inferred from directory names; align them with the batch.
    for column in partition_by:
        existing = existing.withColumn(column, F.col(column).cast(types[column]))
    keys = batch.select(*primary_key)
    touched: tuple[dict[str, Any], ...] = ()
    if partition_by:
        # Partitions where the batch's rows go, and where older versions of its keys live
        # (a key whose partition value changed must leave its old partition).
        moved_from = existing.select(*primary_key, *partition_by).join(
            keys, list(primary_key), how="left_semi"
        )
        touched_df = (
            batch.select(*partition_by).unionByName(moved_from.select(*partition_by)).distinct()
        )
        touched = _distinct_partitions(touched_df, partition_by)
        touched_lit = spark.createDataFrame(list(touched), existing.select(*partition_by).schema)
        match = [existing[c].eqNullSafe(touched_lit[c]) for c in partition_by]
        existing = existing.join(F.broadcast(touched_lit), match, how="left_semi")
    merged = existing.join(keys, list(primary_key), how="left_anti").unionByName(
        batch, allowMissingColumns=True
    )
    staged, present = _stage(spark, merged, partition_by, compression, staged_path)
    return staged, touched, present


def _swap(
    spark: SparkSession,
    fs: HadoopFs,
    staged: DataFrame,
    path: str,
    partition_by: tuple[str, ...],
    compression: str,
    *,
    dynamic: bool,
    emptied: tuple[dict[str, Any], ...] = (),
) -> None:
    """Copy the staged data over `path` (its partitions only, or the whole dataset), then
    remove the `emptied` partition directories."""
    _write(staged, path, partition_by, compression, static=not dynamic)
    for partition in emptied:
        fs.delete(f"{path.rstrip('/')}/{partition_path(spark, partition)}")


def _key(partition: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in partition.values())
