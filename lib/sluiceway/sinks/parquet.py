"""Partitioned Parquet writes that survive a kill at any moment and are safe to rerun.

Modes:
- `merge`: upsert by primary key. The partitions the batch touches (where its rows go,
  and where older versions of its keys live) are rebuilt as old rows minus replaced keys
  plus the batch. A key with a NULL part is refused: it could never be matched again.
- `overwrite_partitions`: the batch replaces exactly the partitions it has rows for.
- `overwrite`: the batch replaces the whole dataset.
- `append`: the batch is added as the files of one window (`part-w<window>-...`); a rerun
  of the same window replaces that window's files instead of adding them twice.

Every mode runs the same three steps, so one recovery covers them all:
1. stage: Spark writes the new files under `<staging>/data` (invisible to readers);
2. plan: `<staging>/_plan.json` lists every file to move into the dataset and every old
   file or emptied partition to delete. Writing it (atomically) commits the write;
3. finish: the moves, then the deletes, then the staging is dropped.
A run that dies before step 2 leaves the dataset untouched (its staging is dropped by the
next write); one that dies after it has its plan finished by the next write, or by
`finish_interrupted` at the start of the next run. New files carry fresh names, so a move
never replaces a file the plan deletes. Readers listing the dataset during step 3 may see
a partition's new files beside its old ones (rows twice), never a partition missing.

Partition values are handled as the text Spark writes in directory names (Spark's own
cast to string), the one form the sink, the run report and the Glue catalog share.

Local paths, `s3://` and `s3a://` URIs go through the same code: only Spark and the
Hadoop FileSystem API touch storage.
"""

from __future__ import annotations

import json
import logging
import operator
import secrets
from dataclasses import dataclass
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sluiceway import faults
from sluiceway.errors import SinkError, located
from sluiceway.spec import TABLE_WRITE_MODES, WriteMode

log = logging.getLogger(__name__)

WRITE_MODES = TABLE_WRITE_MODES
MAX_RECORDS_PER_FILE = 5_000_000
_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_PLAN = "_plan.json"

Partition = dict[str, str | None]  # partition column -> value as Spark writes it


@dataclass(frozen=True)
class WriteResult:
    path: str
    partitions: tuple[Partition, ...]  # partition values the write replaced or added to
    removed: tuple[Partition, ...] = ()  # partitions the write emptied and deleted
    replaced: bool = False  # the write replaced the whole dataset
    # An Iceberg write's commit: its snapshot id and what it added and removed.
    commit: dict[str, int] | None = None


class HadoopFs:
    """Listing, moving and small-file IO through Hadoop's FileSystem (local, s3a, EMRFS)."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm: Any = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, path: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(path)

    def _fs(self, path: str) -> Any:
        return self._path(path).getFileSystem(self._conf)

    def exists(self, path: str) -> bool:
        return bool(self._fs(path).exists(self._path(path)))

    def qualified(self, path: str) -> str:
        """`path` in the fully qualified form listings return (`file:/...`, `s3a://b/...`)."""
        return str(self._fs(path).makeQualified(self._path(path))).rstrip("/")

    def _data_files(self, path: str) -> Any:
        """Data files under `path`, lazily: Spark skips any name starting with `_` or `.`."""
        p = self._path(path)
        fs = p.getFileSystem(self._conf)
        if not fs.exists(p):
            return
        root = self.qualified(path)
        listing = fs.listFiles(p, True)
        while listing.hasNext():
            status = listing.next()
            full = str(status.getPath())
            relative = full[len(root) + 1 :] if full.startswith(root + "/") else full
            if not any(part.startswith(("_", ".")) for part in relative.split("/")):
                yield full, int(status.getLen())

    def has_data(self, path: str) -> bool:
        """Whether any data file is there (a lone `_SUCCESS` is no dataset)."""
        return next(iter(self._data_files(path)), None) is not None

    def files(self, path: str) -> list[tuple[str, int]]:
        """Every data file under `path` (recursively), with its size."""
        return sorted(self._data_files(path))

    def read_text(self, path: str) -> str | None:
        p = self._path(path)
        fs = p.getFileSystem(self._conf)
        if not fs.exists(p):
            return None
        stream = fs.open(p)
        try:
            return str(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        """Write through a temporary file and a rename, so readers never see half of it."""
        p = self._path(path)
        fs = p.getFileSystem(self._conf)
        tmp = self._path(f"{path}.tmp")
        out = fs.create(tmp, True)
        try:
            out.write(bytearray(text.encode("utf-8")))
        finally:
            out.close()
        if fs.exists(p):
            fs.delete(p, False)
        if not fs.rename(tmp, p):
            raise SinkError(f"could not rename {tmp} to {path}")

    def move(self, src: str, dst: str) -> None:
        """Move one file; a move an earlier attempt finished is skipped."""
        s, d = self._path(src), self._path(dst)
        fs = s.getFileSystem(self._conf)
        if not fs.exists(s):
            return
        fs.mkdirs(d.getParent())
        if fs.exists(d):  # an earlier attempt's copy (S3 renames copy, then delete)
            fs.delete(d, False)
        if not fs.rename(s, d):
            raise SinkError(f"could not move {src} to {dst}")

    def delete(self, path: str) -> None:
        """Delete a file or a directory tree; a missing one is fine."""
        p = self._path(path)
        fs = p.getFileSystem(self._conf)
        if fs.exists(p):
            fs.delete(p, True)


def partition_text(value: str | None) -> str:
    """A partition value as it stands in a directory name or a Glue partition (unescaped)."""
    return _DEFAULT_PARTITION if value is None else value


def partition_path(spark: SparkSession, partition: Partition) -> str:
    """`a=1/b=x` exactly as Spark names the directories (same escaping, same NULL name)."""
    jvm: Any = spark.sparkContext._jvm
    utils = jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils
    parts = []
    for column, value in partition.items():
        text = _DEFAULT_PARTITION if value is None else utils.escapePathName(value)
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


def partition_texts(partition_by: tuple[str, ...]) -> list[Column]:
    """Partition columns as the text Spark puts in directory names ("" is NULL there too)."""
    return [
        F.when(F.col(c).cast("string") != "", F.col(c).cast("string")).alias(c)
        for c in partition_by
    ]


def _in_partitions(
    df: DataFrame, partitions: DataFrame, partition_by: tuple[str, ...]
) -> DataFrame:
    """The rows of `df` in `partitions` (a frame of partition texts)."""
    hidden = [f"__p_{c}" for c in partition_by]
    texts = [
        text.alias(name) for text, name in zip(partition_texts(partition_by), hidden, strict=True)
    ]
    tagged = df.select("*", *texts)
    match = [tagged[h].eqNullSafe(partitions[c]) for h, c in zip(hidden, partition_by, strict=True)]
    return tagged.join(F.broadcast(partitions), match, how="left_semi").drop(*hidden)


def _key(partition: Partition) -> tuple[str | None, ...]:
    return tuple(partition.values())


def _sorted(partitions: Any) -> tuple[Partition, ...]:
    return tuple(sorted(partitions, key=lambda d: [(v is None, v or "") for v in d.values()]))


def check_compatible(
    existing: T.StructType, batch: DataFrame, where: str, partition_by: tuple[str, ...] = ()
) -> None:
    """Added columns are fine; a column whose type changes is refused before any write."""
    old = {f.name: f.dataType for f in existing.fields if f.name not in partition_by}
    for f in batch.schema.fields:
        if f.name in old and old[f.name] != f.dataType:
            raise SinkError(
                f"column {f.name!r} changes type from {old[f.name].simpleString()} to "
                f"{f.dataType.simpleString()}; refusing to write an incompatible schema",
                where=where,
            )


def read_existing(
    spark: SparkSession, path: str, batch_schema: T.StructType, partition_by: tuple[str, ...]
) -> DataFrame:
    """The dataset with every column any of its files has (merged footers), and partition
    columns typed as in the batch, never inferred from directory names ("01" stays "01")."""
    merged = spark.read.option("mergeSchema", "true").parquet(path).schema
    types = {f.name: f for f in batch_schema.fields}
    fields = [f for f in merged.fields if f.name not in partition_by]
    fields += [types[c] for c in partition_by]
    return spark.read.schema(T.StructType(fields)).parquet(path)


def write_parquet(
    spark: SparkSession,
    batch: DataFrame,
    path: str,
    *,
    mode: WriteMode,
    partition_by: tuple[str, ...],
    primary_key: tuple[str, ...] = (),
    compression: str = "snappy",
    staging_path: str,
    where: str,
    window: str | None = None,
    overlap: Column | None = None,
) -> WriteResult:
    """Write `batch` to `path` in `mode` (see the module doc); a failed or killed write
    leaves `path` as it was, or is finished by the next one.

    `append` needs `window`, a name for the batch's window that a rerun of the same window
    repeats; rows of existing data matching `overlap` that equal a batch row are not
    appended again (the re-read overlap of an append-only table).
    """
    if mode not in WRITE_MODES:
        raise SinkError(
            f"unknown write mode {mode!r} (expected {', '.join(WRITE_MODES)})", where=where
        )
    if mode == "merge" and not primary_key:
        raise SinkError("merge needs a primary key", where=where)
    if mode == "append" and not window:
        raise SinkError("append needs a window name", where=where)
    missing = [c for c in (*partition_by, *primary_key) if c not in batch.columns]
    if missing:
        raise SinkError(f"columns {', '.join(missing)} not in the data to write", where=where)
    fs = HadoopFs(spark)
    name = staging_path.rstrip("/").rsplit("/", 1)[-1]
    target = _Target(spark, fs, path.rstrip("/"), partition_by, staging_path.rstrip("/"), name)
    with located(where, SinkError, doing=f"writing {path} failed"):
        target.recover(where)
        existing = None
        if fs.has_data(path):
            existing = read_existing(spark, path, batch.schema, partition_by)
            check_compatible(existing.schema, batch, where, partition_by)
        if existing is None or mode == "overwrite":
            return target.replace_all(batch, primary_key, compression, where)
        if mode == "merge":
            return target.merge(existing, batch, primary_key, compression, where)
        if mode == "append":
            assert window is not None
            return target.append(existing, batch, window, overlap, compression, where)
        return target.replace_partitions(batch, compression, where)


def finish_interrupted(spark: SparkSession, staging_path: str, where: str) -> bool:
    """Finish the committed write a killed run left under `staging_path`, if any."""
    plan_path = f"{staging_path.rstrip('/')}/{_PLAN}"
    with located(where, SinkError, doing=f"finishing an interrupted write ({plan_path}) failed"):
        plan = HadoopFs(spark).read_text(plan_path)
        if plan is None:
            return False
        log.warning("%s: finishing the write an interrupted run committed", where)
        _finish(HadoopFs(spark), json.loads(plan), staging_path.rstrip("/"))
        return True


def _finish(fs: HadoopFs, plan: dict[str, Any], staging: str) -> None:
    """Moves first, then deletes: a reader never finds a partition missing."""
    name = plan["name"]
    for src, dst in plan["moves"]:
        fs.move(src, dst)
        faults.reached(f"swap:{name}")
    for path in plan["deletes"]:
        fs.delete(path)
    faults.reached(f"swapped:{name}")
    fs.delete(staging)


@dataclass(frozen=True)
class _Target:
    spark: SparkSession
    fs: HadoopFs
    path: str
    partition_by: tuple[str, ...]
    staging: str
    name: str  # the dataset's name, for kill points and file names

    def recover(self, where: str) -> None:
        """Finish a committed plan; drop an uncommitted staging."""
        if not finish_interrupted(self.spark, self.staging, where):
            self.fs.delete(self.staging)

    def replace_all(
        self, batch: DataFrame, primary_key: tuple[str, ...], compression: str, where: str
    ) -> WriteResult:
        present = self._stage(batch, primary_key, compression, where)
        old = [p for p, _ in self.fs.files(self.path)]
        removed = self._dirs_not_in(present) if self.partition_by else []
        self._commit(f"s{secrets.token_hex(4)}", old + removed)
        return WriteResult(self.path, present, replaced=True)

    def replace_partitions(self, batch: DataFrame, compression: str, where: str) -> WriteResult:
        present = self._stage(batch, (), compression, where)
        self._commit(f"s{secrets.token_hex(4)}", self._files_in(present))
        return WriteResult(self.path, present)

    def merge(
        self,
        existing: DataFrame,
        batch: DataFrame,
        primary_key: tuple[str, ...],
        compression: str,
        where: str,
    ) -> WriteResult:
        batch = batch.persist()  # read for the touched partitions, the keys and the write
        try:
            keys = batch.select(*primary_key)
            touched: tuple[Partition, ...] = ()
            if self.partition_by:
                # Partitions where the batch's rows go, and where older versions of its keys
                # live (a key whose partition value changed must leave its old partition).
                moved_from = existing.select(*primary_key, *self.partition_by).join(
                    keys, list(primary_key), how="left_semi"
                )
                both = batch.select(*self.partition_by).unionByName(
                    moved_from.select(*self.partition_by)
                )
                touched = _sorted(
                    r.asDict()
                    for r in both.select(partition_texts(self.partition_by)).distinct().collect()
                )
                lit = self.spark.createDataFrame(
                    [tuple(p.values()) for p in touched],
                    T.StructType([T.StructField(c, T.StringType()) for c in self.partition_by]),
                )
                existing = _in_partitions(existing, lit, self.partition_by)
            merged = existing.join(keys, list(primary_key), how="left_anti").unionByName(
                batch, allowMissingColumns=True
            )
            present = self._stage(merged, primary_key, compression, where)
        finally:
            batch.unpersist()
        if not self.partition_by:
            self._commit(f"s{secrets.token_hex(4)}", [p for p, _ in self.fs.files(self.path)])
            return WriteResult(self.path, (), replaced=True)
        kept = {_key(p) for p in present}
        emptied = tuple(p for p in touched if _key(p) not in kept)
        old = self._files_in(tuple(p for p in touched if _key(p) in kept))
        gone = [f"{self.path}/{partition_path(self.spark, p)}" for p in emptied]
        self._commit(f"s{secrets.token_hex(4)}", old + gone)
        return WriteResult(self.path, touched, removed=emptied)

    def append(
        self,
        existing: DataFrame,
        batch: DataFrame,
        window: str,
        overlap: Column | None,
        compression: str,
        where: str,
    ) -> WriteResult:
        prefix = f"part-w{window}-"
        # An earlier attempt at this window is replaced, so it must not count as landed.
        landed = existing.where(~F.col("_metadata.file_name").startswith(prefix))
        if overlap is not None:
            shared = [c for c in batch.columns if c in landed.columns and not c.startswith("_")]
            seen = landed.where(overlap).select(*shared)
            batch = batch.join(seen, [batch[c].eqNullSafe(seen[c]) for c in shared], "left_anti")
        present = self._stage(batch, (), compression, where)
        earlier = [
            p for p, _ in self.fs.files(self.path) if p.rsplit("/", 1)[-1].startswith(prefix)
        ]
        self._commit(f"w{window}-{secrets.token_hex(4)}", earlier)
        return WriteResult(self.path, present)

    # --- the three steps ---------------------------------------------------------------

    def _stage(
        self, df: DataFrame, primary_key: tuple[str, ...], compression: str, where: str
    ) -> tuple[Partition, ...]:
        """Write `df` under the staging; returns the partitions it has. Observed in the
        write itself: the partition texts, and the rows with a NULL key part (refused)."""
        observation = Observation()
        metrics = [F.count(F.lit(1)).alias("rows")]
        if primary_key:
            null_key = reduce(operator.or_, [F.col(k).isNull() for k in primary_key])
            metrics.append(F.sum(F.when(null_key, 1).otherwise(0)).alias("null_keys"))
        if self.partition_by:
            # Spark 3.5 cannot hand nested values to Python from an observation: send JSON.
            texts = F.struct(*partition_texts(self.partition_by))
            metrics.append(F.to_json(F.collect_set(texts)).alias("partitions"))
        df = df.observe(observation, *metrics)
        writer = df.repartition(*self.partition_by) if self.partition_by else df
        out = (
            writer.write.mode("overwrite")
            .option("partitionOverwriteMode", "static")
            .option("compression", compression)
            .option("maxRecordsPerFile", MAX_RECORDS_PER_FILE)
        )
        if self.partition_by:
            out = out.partitionBy(*self.partition_by)
        out.parquet(f"{self.staging}/data")
        seen = observation.get
        if seen.get("null_keys"):
            self.fs.delete(self.staging)
            raise SinkError(
                f"{seen['null_keys']} rows have a NULL in primary key column(s) "
                f"{', '.join(primary_key)}; refusing to write rows no later run could match",
                where=where,
            )
        faults.reached(f"staged:{self.name}")
        if not self.partition_by:
            return ()
        found = json.loads(seen["partitions"]) if seen.get("partitions") else []
        # to_json leaves NULL fields out: put them back, in partition order.
        return _sorted({c: p.get(c) for c in self.partition_by} for p in found)

    def _commit(self, token: str, deletes: list[str]) -> None:
        """Write the plan (this commits the write), then carry it out."""
        staged_root = self.fs.qualified(f"{self.staging}/data")
        moves = []
        for index, (src, _) in enumerate(self.fs.files(f"{self.staging}/data")):
            directory, _, file_name = src[len(staged_root) + 1 :].rpartition("/")
            suffix = file_name.split(".", 1)[1] if "." in file_name else "parquet"
            dst = "/".join(
                p for p in (self.path, directory, f"part-{token}-{index:05d}.{suffix}") if p
            )
            moves.append([src, dst])
        plan = {"name": self.name, "moves": moves, "deletes": deletes}
        self.fs.write_text(f"{self.staging}/{_PLAN}", json.dumps(plan))
        faults.reached(f"planned:{self.name}")
        _finish(self.fs, plan, self.staging)

    def _files_in(self, partitions: tuple[Partition, ...]) -> list[str]:
        return [
            p
            for partition in partitions
            for p, _ in self.fs.files(f"{self.path}/{partition_path(self.spark, partition)}")
        ]

    def _dirs_not_in(self, present: tuple[Partition, ...]) -> list[str]:
        """Top-level partition directories that the new data does not have."""
        first = self.partition_by[0]
        keep = {partition_path(self.spark, {first: p[first]}) for p in present}
        stored = stored_partitions(self.spark, self.path, (first,))
        return [f"{self.path}/{d}" for d in stored.values() if d not in keep]
