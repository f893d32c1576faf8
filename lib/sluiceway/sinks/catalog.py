"""Glue Data Catalog tables for the datasets a pipeline writes, so Athena and Redshift
Spectrum can query them without a crawler.

Before a write, `GlueCatalog.check` compares the data about to be written with the
existing table: new columns are fine (every Glue column is nullable; older partitions
read them as NULL), a column whose type changes, a change of partition keys, or a column
Glue cannot name apart from another (names are case-insensitive there) is refused, so an
incompatible batch fails before anything is written. After the write, `publish` creates
or updates the table (Parquet SerDe, columns and partition keys from the written schema)
and brings its partitions in line with what the write did: new ones registered with
BatchCreatePartition (100 per call), removed ones dropped with BatchDeletePartition
(25 per call). Existing partitions are left alone, so a rerun registers nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import types as T

from sluiceway import aws
from sluiceway.errors import SinkError
from sluiceway.sinks.parquet import WriteResult, partition_text
from sluiceway.spec import CatalogTarget

log = logging.getLogger(__name__)

CREATE_BATCH = 100  # BatchCreatePartition's limit
DELETE_BATCH = 25  # BatchDeletePartition's limit
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class TableShape:
    """A catalog table's columns and partition keys (lower-case names, Hive type names)."""

    columns: tuple[Column, ...]
    partition_keys: tuple[Column, ...]


@dataclass(frozen=True)
class CatalogUpdate:
    table: str  # database.table
    created: bool
    columns_added: tuple[str, ...]
    partitions_added: int
    partitions_removed: int


def hive_type(data_type: T.DataType) -> str:
    """The Hive/Glue type name of a Spark type, as Athena expects it for Parquet."""
    if isinstance(data_type, T.ArrayType):
        return f"array<{hive_type(data_type.elementType)}>"
    if isinstance(data_type, T.MapType):
        return f"map<{hive_type(data_type.keyType)},{hive_type(data_type.valueType)}>"
    if isinstance(data_type, T.StructType):
        fields = ",".join(f"{f.name.lower()}:{hive_type(f.dataType)}" for f in data_type.fields)
        return f"struct<{fields}>"
    if isinstance(data_type, T.DecimalType):
        return f"decimal({data_type.precision},{data_type.scale})"
    simple = {
        T.StringType: "string",
        T.BooleanType: "boolean",
        T.ByteType: "tinyint",
        T.ShortType: "smallint",
        T.IntegerType: "int",
        T.LongType: "bigint",
        T.FloatType: "float",
        T.DoubleType: "double",
        T.DateType: "date",
        T.TimestampType: "timestamp",
        T.TimestampNTZType: "timestamp",
        T.BinaryType: "binary",
    }
    for spark_type, name in simple.items():
        if isinstance(data_type, spark_type):
            return name
    if isinstance(data_type, T.CharType | T.VarcharType):
        return "string"
    raise ValueError(f"type {data_type.simpleString()} has no Glue/Hive equivalent")


def shape_of(schema: T.StructType, partition_by: Sequence[str], where: str) -> TableShape:
    """The table shape of data with `schema`, written partitioned by `partition_by`."""
    seen: dict[str, str] = {}
    for f in schema.fields:
        other = seen.setdefault(f.name.lower(), f.name)
        if other != f.name:
            raise SinkError(
                f"columns {other!r} and {f.name!r} differ only in case; "
                "the Glue catalog cannot tell them apart",
                where=where,
            )
    by_name = {f.name: f for f in schema.fields}

    def column(f: T.StructField) -> Column:
        try:
            return Column(f.name.lower(), hive_type(f.dataType))
        except ValueError as exc:
            raise SinkError(f"column {f.name!r}: {exc}", where=where) from exc

    keys = set(partition_by)
    return TableShape(
        columns=tuple(column(f) for f in schema.fields if f.name not in keys),
        partition_keys=tuple(column(by_name[name]) for name in partition_by),
    )


def _norm(type_name: str) -> str:
    return type_name.replace(" ", "").lower()


def merge_shapes(existing: TableShape | None, new: TableShape, where: str) -> TableShape:
    """The shape after writing `new` into a table shaped `existing`; incompatible -> SinkError.

    Columns the table has keep their place (older partitions may still hold them); new
    ones are appended.
    """
    if existing is None:
        return new
    old_keys = [(c.name, _norm(c.type)) for c in existing.partition_keys]
    new_keys = [(c.name, _norm(c.type)) for c in new.partition_keys]
    if old_keys != new_keys:

        def show(keys: list[tuple[str, str]]) -> str:
            return ", ".join(f"{n} {t}" for n, t in keys) or "none"

        raise SinkError(
            f"partition keys change from ({show(old_keys)}) to ({show(new_keys)}); "
            "refusing to write: the table's partitions could no longer be read",
            where=where,
        )
    key_names = {c.name for c in existing.partition_keys}
    old = {c.name: c for c in existing.columns}
    added = []
    for column in new.columns:
        if column.name in key_names:
            raise SinkError(f"column {column.name!r} is a partition key of the table", where=where)
        before = old.get(column.name)
        if before is None:
            added.append(column)
        elif _norm(before.type) != _norm(column.type):
            raise SinkError(
                f"column {column.name!r} changes type from {before.type} to "
                f"{column.type}; refusing to write an incompatible schema "
                "(Glue/Athena would misread the existing files)",
                where=where,
            )
    return TableShape((*existing.columns, *added), existing.partition_keys)


def _glue_columns(columns: Iterable[Column]) -> list[dict[str, str]]:
    return [{"Name": c.name, "Type": c.type} for c in columns]


def _shape_from_glue(table: dict[str, Any]) -> TableShape:
    columns = table.get("StorageDescriptor", {}).get("Columns", [])
    keys = table.get("PartitionKeys", [])
    return TableShape(
        tuple(Column(c["Name"].lower(), c["Type"]) for c in columns),
        tuple(Column(c["Name"].lower(), c["Type"]) for c in keys),
    )


def catalog_location(path: str) -> str:
    """The location Glue records: s3:// (what Athena reads), with a trailing slash."""
    if path.startswith("s3a://"):
        path = "s3://" + path.removeprefix("s3a://")
    return path.rstrip("/") + "/"


def _storage(columns: list[dict[str, str]], location: str) -> dict[str, Any]:
    return {
        "Columns": columns,
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "SerdeInfo": {
            "SerializationLibrary": PARQUET_SERDE,
            "Parameters": {"serialization.format": "1"},
        },
    }


class GlueCatalog:
    """Create, update and partition Glue tables (one client, made on first use)."""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("glue")
        return self._client

    def _fail(self, where: str, action: str, exc: BaseException) -> SinkError:
        return SinkError(
            f"Glue catalog: cannot {action}: {aws.describe_aws_error(exc, self.client)}",
            where=where,
        )

    def _get_table(self, database: str, table: str, where: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(self.client.get_table(DatabaseName=database, Name=table)["Table"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                return None
            raise self._fail(where, f"read table {database}.{table}", exc) from exc
        except BotoCoreError as exc:
            raise self._fail(where, f"read table {database}.{table}", exc) from exc

    def exists(self, target: CatalogTarget, where: str) -> bool:
        return self._get_table(target.database, target.table, where) is not None

    def check(
        self, target: CatalogTarget, schema: T.StructType, partition_by: Sequence[str], where: str
    ) -> None:
        """Refuse, before anything is written, data the existing table could not describe."""
        where = f"{where}: Glue table {target.database}.{target.table}"
        existing = self._get_table(target.database, target.table, where)
        merge_shapes(
            _shape_from_glue(existing) if existing else None,
            shape_of(schema, partition_by, where),
            where,
        )

    def publish(
        self,
        target: CatalogTarget,
        schema: T.StructType,
        result: WriteResult,
        *,
        partition_by: Sequence[str],
        compression: str,
        partition_dir: Callable[[dict[str, Any]], str],
        stored: Callable[[], dict[tuple[str, ...], str]],
        where: str,
    ) -> CatalogUpdate:
        """Create or update the table after a successful write, then sync its partitions.

        `partition_dir(partition)` names a partition's directory (`a=1/b=x`) exactly as
        the writer did; `stored()` lists every partition directory of the dataset, needed
        once: when a table is created for a dataset that already had data.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        database, table = target.database, target.table
        name = f"{database}.{table}"
        where = f"{where}: Glue table {name}"
        location = catalog_location(result.path)
        existing = self._get_table(database, table, where)
        old_shape = _shape_from_glue(existing) if existing else None
        shape = merge_shapes(old_shape, shape_of(schema, partition_by, where), where)
        parameters = {
            **((existing or {}).get("Parameters") or {}),
            "classification": "parquet",
            "EXTERNAL": "TRUE",
            "parquet.compression": compression.upper(),
        }
        table_input = {
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": parameters,
            "PartitionKeys": _glue_columns(shape.partition_keys),
            "StorageDescriptor": _storage(_glue_columns(shape.columns), location),
        }
        try:
            if existing is None:
                self._ensure_database(database, where)
                self.client.create_table(DatabaseName=database, TableInput=table_input)
                log.info("catalog: created %s at %s", name, location)
            elif (
                shape != old_shape
                or existing.get("StorageDescriptor", {}).get("Location") != location
                or parameters != existing.get("Parameters")
            ):
                # Only on a change: every UpdateTable adds a table version in Glue.
                self.client.update_table(DatabaseName=database, TableInput=table_input)
                log.info("catalog: updated %s", name)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(where, "create or update the table", exc) from exc

        added = removed = 0
        if partition_by:
            # A new table for data written before: register what is already there too.
            backfill = stored() if existing is None and not result.replaced else {}
            added, removed = self._sync_partitions(
                target, shape, result, partition_dir=partition_dir, backfill=backfill, where=where
            )
        old_names = {c.name for c in old_shape.columns} if old_shape else set()
        return CatalogUpdate(
            table=name,
            created=existing is None,
            columns_added=tuple(c.name for c in shape.columns if c.name not in old_names)
            if old_shape
            else (),
            partitions_added=added,
            partitions_removed=removed,
        )

    def _ensure_database(self, database: str, where: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.get_database(Name=database)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
                raise
            try:
                self.client.create_database(DatabaseInput={"Name": database})
                log.info("catalog: created database %s", database)
            except ClientError as create_exc:
                if create_exc.response.get("Error", {}).get("Code") != "AlreadyExistsException":
                    raise

    def _partitions(self, database: str, table: str) -> set[tuple[str, ...]]:
        pages = self.client.get_paginator("get_partitions").paginate(
            DatabaseName=database, TableName=table
        )
        return {tuple(p["Values"]) for page in pages for p in page.get("Partitions", [])}

    def _sync_partitions(
        self,
        target: CatalogTarget,
        shape: TableShape,
        result: WriteResult,
        *,
        partition_dir: Callable[[dict[str, Any]], str],
        backfill: dict[tuple[str, ...], str],
        where: str,
    ) -> tuple[int, int]:
        from botocore.exceptions import BotoCoreError, ClientError

        database, table = target.database, target.table
        location = catalog_location(result.path)

        def values(partition: dict[str, Any]) -> tuple[str, ...]:
            return tuple(partition_text(v) for v in partition.values())

        dirs = dict(backfill)
        dirs.update({values(p): partition_dir(p) for p in result.partitions})
        written = {values(p) for p in result.partitions}
        gone = {values(p) for p in result.removed}
        try:
            registered = self._partitions(database, table)
            # A write that replaced the dataset leaves exactly its own partitions.
            keep = written if result.replaced else (registered | written | set(backfill))
            keep -= gone
            new = sorted(keep - registered)
            stale = sorted(registered - keep)
            columns = _glue_columns(shape.columns)
            inputs = [
                {"Values": list(v), "StorageDescriptor": _storage(columns, f"{location}{dirs[v]}/")}
                for v in new
            ]
            for start in range(0, len(inputs), CREATE_BATCH):
                response = self.client.batch_create_partition(
                    DatabaseName=database,
                    TableName=table,
                    PartitionInputList=inputs[start : start + CREATE_BATCH],
                )
                _raise_batch_errors(response, "AlreadyExistsException", where, "register")
            for start in range(0, len(stale), DELETE_BATCH):
                response = self.client.batch_delete_partition(
                    DatabaseName=database,
                    TableName=table,
                    PartitionsToDelete=[
                        {"Values": list(v)} for v in stale[start : start + DELETE_BATCH]
                    ],
                )
                _raise_batch_errors(response, "EntityNotFoundException", where, "drop")
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(where, "update partitions", exc) from exc
        log.info(
            "catalog: %s.%s: %d partitions registered, %d dropped",
            database,
            table,
            len(new),
            len(stale),
        )
        return len(new), len(stale)


def _raise_batch_errors(response: dict[str, Any], benign: str, where: str, action: str) -> None:
    """Batch calls report per-partition failures in the response, not as exceptions."""
    errors = [
        e for e in response.get("Errors", []) if e.get("ErrorDetail", {}).get("ErrorCode") != benign
    ]
    if errors:
        first = errors[0]
        detail = first.get("ErrorDetail", {})
        raise SinkError(
            f"Glue catalog: could not {action} {len(errors)} partitions, e.g. "
            f"{first.get('PartitionValues')}: {detail.get('ErrorCode')}: "
            f"{detail.get('ErrorMessage')}",
            where=where,
        )
