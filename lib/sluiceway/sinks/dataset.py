"""Datasets: where a table or output lands, behind one small interface.

A pipeline asks a dataset whether it `exists`, `read`s it (an output's input, a load's
rows), `write`s a batch to it in a mode and asks it to `describe()` itself for the run
report. Everything a kind of dataset needs around the write happens inside it: for the
Parquet dataset, the Glue catalog check before the write and the publish after it.
Iceberg tables (sinks/iceberg.py) implement the same four methods.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from pyspark.sql import Column, DataFrame, SparkSession

from sluiceway import aws
from sluiceway.errors import SinkError, located
from sluiceway.sinks.catalog import GlueCatalog
from sluiceway.sinks.parquet import (
    HadoopFs,
    WriteResult,
    finish_interrupted,
    partition_path,
    stored_partitions,
    write_parquet,
)
from sluiceway.spec import CatalogTarget, WriteMode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """Rows to write, and for an append the read window they come from.

    `window` names the window (a rerun of it replaces its files); `overlap` marks the rows
    of the window an earlier run may already have landed (they are not appended again);
    `commit_properties` (run id, watermark) go into the commit that lands the rows, where
    the dataset has commits (Iceberg); Parquet ignores them.
    """

    df: DataFrame
    window: str | None = None
    overlap: Column | None = None
    # Recorded with the data where the dataset can (an Iceberg commit's snapshot summary).
    commit_properties: Mapping[str, str] = field(default_factory=dict)


class Dataset(Protocol):
    def exists(self) -> bool: ...

    def read(self) -> DataFrame: ...

    def write(self, batch: Batch, mode: WriteMode) -> WriteResult: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class ParquetDataset:
    """Partitioned Parquet files (local or S3), optionally kept in a Glue table."""

    spark: SparkSession
    path: str
    staging: str  # where writes are staged (see sinks/parquet)
    where: str  # the spec location errors name
    partition_by: tuple[str, ...] = ()
    primary_key: tuple[str, ...] = ()
    compression: str = "snappy"
    catalog: CatalogTarget | None = None
    glue: GlueCatalog = field(default_factory=GlueCatalog)
    published: dict[str, Any] | None = None  # the last write's Glue table update

    def __post_init__(self) -> None:
        if self.catalog is not None and not aws.is_s3_uri(self.path):
            log.info("%s: catalog skipped: %s is not on S3", self.where, self.path)
            self.catalog = None  # only datasets on S3 get a Glue table

    def finish_interrupted(self) -> None:
        """Complete a write a killed run had committed (see sinks/parquet)."""
        finish_interrupted(self.spark, self.staging, self.where)

    def exists(self) -> bool:
        """Data is there, and so is its Glue table when the spec asks for one."""
        if not HadoopFs(self.spark).has_data(self.path):
            return False
        target = self.catalog
        return target is None or self.glue.exists(target, self.where)

    def read(self) -> DataFrame:
        with located(self.where, SinkError, doing=f"reading {self.path}"):
            return self.spark.read.parquet(self.path)

    def write(self, batch: Batch, mode: WriteMode) -> WriteResult:
        """Check the catalog (an incompatible schema is refused before anything is
        written), write, then publish the new shape and partitions."""
        target = self.catalog
        if target:
            self.glue.check(target, batch.df.schema, self.partition_by, self.where)
        result = write_parquet(
            self.spark,
            batch.df,
            self.path,
            mode=mode,
            partition_by=self.partition_by,
            primary_key=self.primary_key,
            compression=self.compression,
            staging_path=self.staging,
            where=self.where,
            window=batch.window,
            overlap=batch.overlap,
        )
        if target:
            update = self.glue.publish(
                target,
                batch.df.schema,
                result,
                partition_by=self.partition_by,
                compression=self.compression,
                partition_dir=lambda partition: partition_path(self.spark, partition),
                stored=lambda: stored_partitions(self.spark, result.path, self.partition_by),
                where=self.where,
            )
            self.published = asdict(update)
        return result

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "parquet",
            "path": self.path,
            "partition_by": list(self.partition_by),
            "catalog": asdict(self.catalog) if self.catalog else None,
        }
