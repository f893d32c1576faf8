"""The pipeline spec: a TOML file parsed once into a tree of frozen dataclasses.

Every error names the file, the key path and what is wrong, e.g.
`pipelines/x.toml: tables.orders.split_column: must be a string`.

Parsing needs only the standard library (a `package` or `deploy` runs where Spark is
not installed). The transform and builder names a spec gives are read, not resolved:
`sluiceway.spec_check.check(spec)` resolves them, and `pipeline.run`, `package` and
`deploy` call it before anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from sluiceway.errors import SpecError
from sluiceway.quality_rules import QualityRule
from sluiceway.spec_reader import (
    IDENTIFIER,
    NAME,
    Reader,
    TransformStep,
    parse_package,
    parse_quality,
    parse_transforms,
    read_spec_file,
    top_reader,
)

ENGINES = ("postgresql", "mysql", "redshift")
SOURCE_ENGINES = ("postgresql", "mysql")  # a redshift connection is a load target only
SPLIT_STRATEGIES = ("range", "quantiles")
# The closed value sets: a spec giving another value is refused where it is parsed.
WriteMode = Literal["merge", "append", "overwrite_partitions", "overwrite"]
TABLE_WRITE_MODES: tuple[WriteMode, ...] = get_args(WriteMode)
OUTPUT_WRITE_MODES: tuple[WriteMode, ...] = ("overwrite", "overwrite_partitions")
LoadKind = Literal["jdbc", "redshift"]
LOAD_KINDS: tuple[LoadKind, ...] = get_args(LoadKind)
# Both are idempotent per window: a rerun, or a run after a crash before the watermark
# moved, leaves the target as one run would. There is no `append` load.
LoadMode = Literal["upsert", "overwrite"]
LOAD_MODES: tuple[LoadMode, ...] = get_args(LoadMode)
Via = Literal["jdbc", "data_api"]  # how a Redshift load reaches the cluster
REDSHIFT_VIAS: tuple[Via, ...] = get_args(Via)
COMPRESSIONS = ("snappy", "zstd", "gzip", "lz4", "none", "uncompressed")
SinkFormat = Literal["parquet", "iceberg"]
SINK_FORMATS: tuple[SinkFormat, ...] = get_args(SinkFormat)
IcebergCatalogType = Literal["hadoop", "jdbc", "glue"]
ICEBERG_CATALOG_TYPES: tuple[IcebergCatalogType, ...] = get_args(IcebergCatalogType)
# How an Iceberg table applies updates and deletes: rewrite the files they touch, or write
# delete files that readers merge (cheaper writes, costlier reads until compaction).
IcebergWriteMode = Literal["copy-on-write", "merge-on-read"]
ICEBERG_WRITE_MODES: tuple[IcebergWriteMode, ...] = get_args(IcebergWriteMode)
# Iceberg partition transforms a spec may give in `partition_by` besides a plain column.
PartitionTransform = Literal["identity", "years", "months", "days", "hours", "bucket"]
_TRANSFORM = re.compile(r"^(years|months|days|hours)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")
_BUCKET = re.compile(r"^bucket\(\s*([0-9]+)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$")
# The implicit Iceberg catalog when a spec declares none: a warehouse under the output.
DEFAULT_ICEBERG_CATALOG = "lake"
# The types a run may give that catalog (`--iceberg-catalog`): one spec, local or on Glue.
DEFAULT_CATALOG_TYPES: tuple[IcebergCatalogType, ...] = ("hadoop", "glue")
ICEBERG_CATALOG_HELP = (
    "type of the default Iceberg catalog `lake` (warehouse <output>/warehouse, for specs "
    "without [catalogs]): hadoop (the default) or glue (the Glue Data Catalog; output on S3)"
)
# Glue keeps database and table names in lower case; Athena wants them plain.
_CATALOG_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,254}$")


@dataclass(frozen=True)
class Connection:
    name: str
    engine: str
    host: str | None
    port: int | None
    database: str | None
    user: str | None
    password_env: str | None
    secret_id: str | None
    max_connections: int
    fetch_size: int
    rows_per_partition: int
    options: Mapping[str, str] = field(default_factory=dict)
    # A Glue JDBC connection holding the URL and login (extract_jdbc_conf on Glue, the
    # GetConnection API elsewhere): attached to a deployed Glue job, it is also its VPC path.
    glue_connection: str | None = None


@dataclass(frozen=True)
class ParquetSink:
    path: str
    mode: WriteMode
    compression: str
    quarantine_path: str
    format: Literal["parquet"] = "parquet"


@dataclass(frozen=True)
class PartitionField:
    """One field of an Iceberg partition spec: a column, or a transform of one."""

    transform: PartitionTransform
    column: str
    buckets: int | None = None

    def sql(self) -> str:
        """The field as Spark SQL's PARTITIONED BY clause spells it."""
        if self.transform == "identity":
            return f"`{self.column}`"
        if self.transform == "bucket":
            return f"bucket({self.buckets}, `{self.column}`)"
        return f"{self.transform}(`{self.column}`)"


@dataclass(frozen=True)
class IcebergCatalog:
    """An Iceberg catalog: a warehouse directory (`hadoop`), a JDBC database (`jdbc`,
    whose `connection` names a PostgreSQL connection of the spec) or the Glue Data Catalog
    (`glue`, its warehouse on S3)."""

    name: str
    type: IcebergCatalogType
    warehouse: str
    connection: str | None = None


@dataclass(frozen=True)
class IcebergMaintenance:
    """`sluiceway maintain` settings of one Iceberg table: snapshots younger than
    `keep_days` and the newest `keep_snapshots` are kept; files no snapshot references are
    removed once older than `orphan_days` (a write in flight has such files too)."""

    keep_days: int = 7
    keep_snapshots: int = 10
    orphan_days: int = 3  # Iceberg's own default margin


@dataclass(frozen=True)
class IcebergSink:
    """An Iceberg table (`namespace.table`) in one of the spec's catalogs.

    `path` is the table's location under the catalog's warehouse; rejected rows still go
    to a Parquet quarantine at `quarantine_path`.
    """

    catalog: IcebergCatalog
    table: str
    path: str
    mode: WriteMode
    compression: str
    quarantine_path: str
    partitioning: tuple[PartitionField, ...] = ()
    write_mode: IcebergWriteMode = "copy-on-write"
    target_file_size_bytes: int | None = None
    maintenance: IcebergMaintenance = IcebergMaintenance()
    format: Literal["iceberg"] = "iceberg"

    @property
    def identifier(self) -> str:
        """The table's name in Spark SQL: catalog.namespace.table."""
        return f"{self.catalog.name}.{self.table}"

    def table_properties(self) -> dict[str, str]:
        """The Iceberg table properties the spec sets."""
        props = {
            "write.parquet.compression-codec": (
                "uncompressed" if self.compression == "none" else self.compression
            ),
            "write.delete.mode": self.write_mode,
            "write.update.mode": self.write_mode,
            "write.merge.mode": self.write_mode,
        }
        if self.target_file_size_bytes is not None:
            props["write.target-file-size-bytes"] = str(self.target_file_size_bytes)
        return props


Sink = ParquetSink | IcebergSink


@dataclass(frozen=True)
class CatalogTarget:
    """A Glue Data Catalog table kept in step with a dataset (created, updated, partitioned)."""

    database: str
    table: str


@dataclass(frozen=True)
class JdbcLoad:
    """Load into a PostgreSQL / MySQL table (a serving store) after the Parquet write."""

    connection: str
    table: str
    mode: LoadMode
    key: tuple[str, ...]
    order_by: tuple[str, ...]
    batch_size: int
    kind: Literal["jdbc"] = "jdbc"


@dataclass(frozen=True)
class RedshiftLoad:
    """Load into a Redshift table: staged Parquet, COPY, one MERGE transaction."""

    table: str
    mode: LoadMode
    key: tuple[str, ...]
    order_by: tuple[str, ...]
    via: Via
    iam_role: str
    staging: str  # where Spark writes the staged Parquet
    copy_uri: str | None  # where Redshift reads it, if spelled differently (s3:// vs s3a://)
    connection: str | None = None  # via = "jdbc": a connection with engine = "redshift"
    database: str | None = None  # via = "data_api": the rest
    cluster_identifier: str | None = None
    workgroup_name: str | None = None
    secret_arn: str | None = None
    db_user: str | None = None
    kind: Literal["redshift"] = "redshift"


Load = JdbcLoad | RedshiftLoad


@dataclass(frozen=True)
class TableSpec:
    name: str
    connection: str
    table: str | None
    query: str | None
    primary_key: tuple[str, ...]
    split_column: str | None
    split_strategy: str
    incremental_column: str | None
    overlap_minutes: int
    overlap_ids: int
    hash_columns: tuple[str, ...]
    quality: tuple[QualityRule, ...]
    transforms: tuple[TransformStep, ...]
    partition_by: tuple[str, ...]
    audit: bool
    sink: Sink
    catalog: CatalogTarget | None = None
    load: tuple[Load, ...] = ()
    rows_per_partition: int | None = None  # overrides the connection's, for this table


@dataclass(frozen=True)
class OutputSpec:
    name: str
    builder: str
    inputs: tuple[str, ...]
    params: Mapping[str, Any]
    partition_by: tuple[str, ...]
    sink: Sink
    catalog: CatalogTarget | None = None
    load: tuple[Load, ...] = ()


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    source_file: str
    output_root: str
    state_location: str
    staging_location: str
    hash_salt_env: str | None
    connections: Mapping[str, Connection]
    tables: tuple[TableSpec, ...]
    outputs: tuple[OutputSpec, ...] = ()
    catalogs: Mapping[str, IcebergCatalog] = field(default_factory=dict)
    # The salt from Secrets Manager: what a Glue or EMR job can read (they get no env).
    hash_salt_secret_id: str | None = None
    package_modules: tuple[str, ...] = ()  # [package] modules: user code to ship

    def table(self, name: str) -> TableSpec:
        for table in self.tables:
            if table.name == name:
                return table
        raise SpecError(f"{self.source_file}: tables.{name}: no such table")

    def item(self, name: str) -> TableSpec | OutputSpec:
        """The table or output called `name`."""
        items: tuple[TableSpec | OutputSpec, ...] = (*self.tables, *self.outputs)
        for item in items:
            if item.name == name:
                return item
        raise SpecError(f"{self.source_file}: no table or output named {name!r}")

    def dataset_path(self, name: str) -> str:
        """Where the table or output called `name` is written."""
        return self.item(name).sink.path


def join_path(root: str, path: str) -> str:
    """`path` if absolute (or a URI), else `root/path`."""
    if "://" in path or path.startswith("/"):
        return path
    return f"{root.rstrip('/')}/{path}"


def load_spec(
    path: str | Path,
    output_root: str | None = None,
    state_location: str | None = None,
    iceberg_catalog: str | None = None,
) -> PipelineSpec:
    """Read and validate a pipeline spec; `output_root`/`state_location` override the file's,
    `iceberg_catalog` the type of the default Iceberg catalog."""
    text = read_spec_file(path)
    return parse_spec(
        text,
        str(path),
        output_root=output_root,
        state_location=state_location,
        iceberg_catalog=iceberg_catalog,
    )


def parse_spec(
    text: str,
    source: str = "<spec>",
    output_root: str | None = None,
    state_location: str | None = None,
    iceberg_catalog: str | None = None,
) -> PipelineSpec:
    top, pipe, name = top_reader(
        text, source, "pipeline", "connections", "catalogs", "tables", "outputs", "package"
    )
    pipe.only("name", "output", "state", "staging", "hash_salt_env", "hash_salt_secret_id")
    root = output_root or pipe.get("output", str, required=True)
    # Relative state and staging locations live under the output root.
    state = state_location or join_path(root, pipe.get("state", str, "_state"))
    staging = join_path(root, pipe.get("staging", str, "_staging"))

    conns_reader = top.child("connections", top.get("connections", dict, required=True))
    connections = {
        key: _parse_connection(conns_reader.child(key, value), key)
        for key, value in conns_reader.data.items()
    }
    if not connections:
        conns_reader.fail("", "at least one connection is required")
    catalogs = _parse_catalogs(top, root, connections, iceberg_catalog)
    sinks = _SinkContext(name, root, staging, catalogs)

    tables_reader = top.child("tables", top.get("tables", dict, required=True))
    tables = tuple(
        _parse_table(tables_reader.child(key, value), key, connections, sinks)
        for key, value in tables_reader.data.items()
    )
    if not tables:
        tables_reader.fail("", "at least one table is required")

    outputs_reader = top.child("outputs", top.get("outputs", dict, {}))
    # An output reads tables and the outputs defined above it.
    known = {t.name for t in tables}
    outputs = []
    for key, value in outputs_reader.data.items():
        if key in known:
            outputs_reader.fail(key, "an output may not share its name with a table")
        outputs.append(
            _parse_output(outputs_reader.child(key, value), key, known, connections, sinks)
        )
        known.add(key)

    hash_salt_env = pipe.identifier("hash_salt_env")
    hash_salt_secret_id = pipe.get("hash_salt_secret_id", str)
    if hash_salt_env and hash_salt_secret_id:
        pipe.fail("hash_salt_secret_id", "give hash_salt_env or hash_salt_secret_id, not both")
    for table in tables:
        if table.hash_columns and not (hash_salt_env or hash_salt_secret_id):
            pipe.fail(
                "hash_salt_env",
                f"required (or hash_salt_secret_id): tables.{table.name}.hash_columns is set",
            )
    return PipelineSpec(
        name=name,
        source_file=source,
        output_root=root,
        state_location=state,
        staging_location=staging,
        hash_salt_env=hash_salt_env,
        connections=connections,
        tables=tables,
        outputs=tuple(outputs),
        catalogs=catalogs,
        hash_salt_secret_id=hash_salt_secret_id,
        package_modules=parse_package(top),
    )


def _parse_connection(r: Reader, name: str) -> Connection:
    r.only(
        "engine",
        "host",
        "port",
        "database",
        "user",
        "password_env",
        "secret_id",
        "glue_connection",
        "max_connections",
        "fetch_size",
        "rows_per_partition",
        "options",
    )
    password_env = r.identifier("password_env")
    secret_id = r.get("secret_id", str)
    glue_connection = r.get("glue_connection", str)
    if glue_connection and (password_env or secret_id):
        r.fail("glue_connection", "holds the login itself: drop password_env and secret_id")
    if not (password_env or secret_id or glue_connection):
        r.fail(
            "",
            "needs password_env (an environment variable name), secret_id (Secrets Manager) "
            "or glue_connection (a Glue JDBC connection)",
        )
    host = r.get("host", str)
    if not host and not (secret_id or glue_connection):
        r.fail("host", "is required (or give a secret_id or glue_connection that holds it)")
    options = r.get("options", dict, {})
    for key, value in options.items():
        if key.lower() in ("password", "user"):
            r.fail(
                f"options.{key}",
                "credentials never go in options; use secret_id, glue_connection or password_env",
            )
        if not isinstance(value, str | int | bool):
            r.fail(f"options.{key}", "must be a string, number or boolean")
    return Connection(
        name=name,
        engine=r.choice("engine", ENGINES, ""),
        host=host,
        port=r.get("port", int),
        database=r.get("database", str),
        user=r.get("user", str),
        password_env=password_env,
        secret_id=secret_id,
        glue_connection=glue_connection,
        max_connections=r.positive("max_connections", 4),
        fetch_size=r.positive("fetch_size", 10_000),
        rows_per_partition=r.positive("rows_per_partition", 500_000),
        options={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()},
    )


@dataclass(frozen=True)
class _SinkContext:
    """What parsing a sink needs from the rest of the spec."""

    pipeline: str
    root: str
    staging: str
    catalogs: Mapping[str, IcebergCatalog]


def _parse_catalogs(
    top: Reader,
    root: str,
    connections: Mapping[str, Connection],
    default_type: str | None = None,
) -> dict[str, IcebergCatalog]:
    """`[catalogs.<name>]`: the Iceberg catalogs; none given means one catalog `lake` with
    its warehouse at `<output>/warehouse`, of type `default_type` (the run's
    `--iceberg-catalog`: hadoop, the default, or glue)."""
    reader = top.child("catalogs", top.get("catalogs", dict, {}))
    if not reader.data:
        return {DEFAULT_ICEBERG_CATALOG: _default_catalog(reader, root, default_type)}
    if default_type is not None:
        # A declared catalog's type is the spec's: one run-time switch for several
        # catalogs would be a guess.
        reader.fail(
            "",
            f"--iceberg-catalog {default_type} sets the type of the default catalog, and this "
            "spec declares its catalogs: set `type` in [catalogs.<name>] instead",
        )
    catalogs = {}
    for key, value in reader.data.items():
        c = reader.child(key, value)
        if not NAME.match(key) or key.lower() == "spark_catalog":
            c.fail("", "catalog names must be plain names (letters, digits, _), not spark_catalog")
        c.only("type", "warehouse", "connection")
        kind = c.choice("type", ICEBERG_CATALOG_TYPES, "hadoop")
        warehouse = join_path(root, c.get("warehouse", str, f"warehouse/{key}"))
        connection = c.get("connection", str)
        if kind == "jdbc":
            if connection is None:
                c.fail("connection", "a jdbc catalog needs a connection (a postgresql one)")
            if connection not in connections:
                c.fail("connection", f"unknown connection {connection!r}")
            if connections[connection].engine != "postgresql":
                c.fail("connection", f"{connection!r} is not a postgresql connection")
        elif connection is not None:
            c.fail("connection", "only a jdbc catalog has a connection")
        if kind == "glue":
            warehouse = _glue_warehouse(c, warehouse)
        catalogs[key] = IcebergCatalog(key, kind, warehouse, connection)
    return catalogs


def _default_catalog(reader: Reader, root: str, kind: str | None) -> IcebergCatalog:
    """The implicit catalog `lake`: hadoop unless the run asks for glue (the same spec then
    keeps its tables in the Glue Data Catalog, with the warehouse on the S3 output)."""
    warehouse = join_path(root, "warehouse")
    if kind in (None, "hadoop"):
        return IcebergCatalog(DEFAULT_ICEBERG_CATALOG, "hadoop", warehouse)
    if kind not in DEFAULT_CATALOG_TYPES:
        reader.fail("", f"--iceberg-catalog must be hadoop or glue, got {kind!r}")
    if not warehouse.startswith(("s3://", "s3a://")):
        reader.fail(
            "",
            f"--iceberg-catalog glue keeps the warehouse at <output>/warehouse, which must be on "
            f"S3 (s3://bucket/prefix), got {warehouse!r}",
        )
    return IcebergCatalog(DEFAULT_ICEBERG_CATALOG, "glue", _s3_uri(warehouse))


def _s3_uri(uri: str) -> str:
    return "s3://" + uri.split("://", 1)[1].rstrip("/")


def _glue_warehouse(c: Reader, warehouse: str) -> str:
    """A glue catalog's warehouse: on S3 (its files are read through S3FileIO, and by
    Athena), spelled s3:// whatever the spec used."""
    if not warehouse.startswith(("s3://", "s3a://")):
        c.fail(
            "warehouse",
            f"a glue catalog's warehouse must be on S3 (s3://bucket/prefix), got {warehouse!r}",
        )
    return _s3_uri(warehouse)


def _parse_sink(
    r: Reader,
    default_path: str,
    root: str,
    modes: tuple[WriteMode, ...],
    default_mode: WriteMode,
    quarantine_default: str,
) -> ParquetSink:
    r.only("kind", "format", "path", "mode", "compression", "quarantine_path")
    r.choice("kind", ("parquet",), "parquet")
    return ParquetSink(
        path=join_path(root, r.get("path", str, default_path)),
        mode=r.choice("mode", modes, default_mode),
        compression=r.choice("compression", COMPRESSIONS, "snappy"),
        quarantine_path=join_path(root, r.get("quarantine_path", str, quarantine_default)),
    )


def _parse_any_sink(
    item: Reader,
    name: str,
    kind: str,
    sinks: _SinkContext,
    modes: tuple[WriteMode, ...],
    default_mode: WriteMode,
) -> Sink:
    """The `sink` of a table or output: Parquet files, or (`format = "iceberg"`) a table."""
    r = item.child("sink", item.get("sink", dict, {}))
    if r.choice("format", SINK_FORMATS, "parquet") == "parquet":
        return _parse_sink(
            r, f"{kind}/{name}", sinks.root, modes, default_mode, f"_quarantine/{name}"
        )
    r.only(
        "format",
        "catalog",
        "table",
        "mode",
        "compression",
        "write_mode",
        "target_file_size_mb",
        "quarantine_path",
        "maintenance",
    )
    if item.get("catalog", dict) is not None:
        item.fail("catalog", "is for Parquet datasets; an Iceberg table lives in its sink.catalog")
    if item.get("load", list) is not None:
        # The watermark commits with the Iceberg data, so a load that failed after that
        # commit would never be retried.
        item.fail("load", "is not supported with an Iceberg sink yet")
    default_catalog = next(iter(sinks.catalogs)) if len(sinks.catalogs) == 1 else None
    catalog_name = r.get("catalog", str, default_catalog)
    if catalog_name is None:
        r.fail("catalog", f"is required with several catalogs ({', '.join(sinks.catalogs)})")
    if catalog_name not in sinks.catalogs:
        r.fail("catalog", f"unknown catalog {catalog_name!r} (have: {', '.join(sinks.catalogs)})")
    catalog = sinks.catalogs[catalog_name]
    table = r.get("table", str, f"{sinks.pipeline}.{name}")
    parts = table.split(".")
    if len(parts) != 2 or not all(NAME.match(part) for part in parts):
        r.fail("table", f"{table!r} must be namespace.table (plain names)")
    if catalog.type == "glue" and not all(_CATALOG_NAME.match(part) for part in parts):
        # Iceberg's GlueCatalog refuses other names (Glue keeps them in lower case).
        r.fail("table", f"{table!r}: a glue catalog's names are lower case (letters, digits, _)")
    size_mb = r.get("target_file_size_mb", int)
    if size_mb is not None and size_mb <= 0:
        r.fail("target_file_size_mb", f"must be > 0, got {size_mb}")
    return IcebergSink(
        catalog=catalog,
        table=table,
        path=_table_location(catalog, parts[0], parts[1]),
        mode=r.choice("mode", modes, default_mode),
        compression=r.choice("compression", COMPRESSIONS, "zstd"),
        quarantine_path=join_path(sinks.root, r.get("quarantine_path", str, f"_quarantine/{name}")),
        partitioning=_parse_partitioning(item),
        write_mode=r.choice("write_mode", ICEBERG_WRITE_MODES, "copy-on-write"),
        target_file_size_bytes=size_mb * 1024 * 1024 if size_mb is not None else None,
        maintenance=_parse_maintenance(r),
    )


def _parse_maintenance(sink: Reader) -> IcebergMaintenance:
    """`maintenance = { keep_days = 7, keep_snapshots = 10, orphan_days = 3 }` of an Iceberg
    sink, each key optional."""
    r = sink.child("maintenance", sink.get("maintenance", dict, {}))
    r.only("keep_days", "keep_snapshots", "orphan_days")
    defaults = IcebergMaintenance()
    keep_days = r.get("keep_days", int, defaults.keep_days)
    if keep_days < 0:
        r.fail("keep_days", f"must be >= 0, got {keep_days}")
    return IcebergMaintenance(
        keep_days=keep_days,
        keep_snapshots=r.positive("keep_snapshots", defaults.keep_snapshots),
        orphan_days=r.positive("orphan_days", defaults.orphan_days),
    )


def _table_location(catalog: IcebergCatalog, namespace: str, table: str) -> str:
    """Where the catalog puts a new table: GlueCatalog under `<namespace>.db/` (its
    database has no location of its own), the others under `<namespace>/`."""
    if catalog.type == "glue":
        return f"{catalog.warehouse}/{namespace}.db/{table}"
    return join_path(catalog.warehouse, f"{namespace}/{table}")


def _parse_partitioning(r: Reader) -> tuple[PartitionField, ...]:
    """`partition_by` of an Iceberg table: columns, `years|months|days|hours(col)` or
    `bucket(N, col)`."""
    fields = []
    for index, text in enumerate(r.get("partition_by", list, [])):
        key = f"partition_by[{index}]"
        if not isinstance(text, str):
            r.fail(key, "must be a string")
        if IDENTIFIER.match(text):
            fields.append(PartitionField("identity", text))
        elif match := _TRANSFORM.match(text):
            transform: PartitionTransform = match.group(1)  # type: ignore[assignment]
            fields.append(PartitionField(transform, match.group(2)))
        elif match := _BUCKET.match(text):
            buckets = int(match.group(1))
            if buckets < 1:
                r.fail(key, f"bucket count must be >= 1 in {text!r}")
            fields.append(PartitionField("bucket", match.group(2), buckets))
        else:
            r.fail(
                key,
                f"unknown partition transform {text!r} (use a column, years(col), months(col), "
                "days(col), hours(col) or bucket(N, col))",
            )
    return tuple(fields)


def _parse_catalog(r: Reader, name: str) -> CatalogTarget | None:
    """`catalog = { database = "x", table = "y" }`; the table defaults to the dataset's name."""
    data = r.get("catalog", dict)
    if data is None:
        return None
    c = r.child("catalog", data)
    c.only("database", "table")
    database = c.get("database", str, required=True)
    table = c.get("table", str, name.lower())
    for key, value in (("database", database), ("table", table)):
        if not _CATALOG_NAME.match(value):
            c.fail(key, f"{value!r} must be a lower-case name (letters, digits, _)")
    return CatalogTarget(database=database, table=table)


def _parse_table(
    r: Reader, name: str, connections: Mapping[str, Connection], sinks: _SinkContext
) -> TableSpec:
    if not NAME.match(name):
        r.fail("", "table names must be plain names (letters, digits, _)")
    r.only(
        "connection",
        "table",
        "query",
        "primary_key",
        "split_column",
        "split_strategy",
        "rows_per_partition",
        "incremental_column",
        "overlap_minutes",
        "overlap_ids",
        "hash_columns",
        "quality",
        "transforms",
        "partition_by",
        "audit",
        "sink",
        "catalog",
        "load",
    )
    connection = r.get(
        "connection", str, next(iter(connections)) if len(connections) == 1 else None
    )
    if connection is None:
        r.fail("connection", "is required when the spec has several connections")
    if connection not in connections:
        r.fail("connection", f"unknown connection {connection!r} (have: {', '.join(connections)})")
    if connections[connection].engine not in SOURCE_ENGINES:
        r.fail(
            "connection",
            f"{connection!r} is a {connections[connection].engine} connection; "
            f"tables read from {' or '.join(SOURCE_ENGINES)}",
        )
    table = r.get("table", str)
    query = r.get("query", str)
    if (table is None) == (query is None):
        r.fail("", "give exactly one of `table` or `query`")
    if table is not None:
        for part in table.split("."):
            if not IDENTIFIER.match(part):
                r.fail("table", f"{table!r} is not a plain [schema.]table name")
    primary_key = r.names("primary_key")
    incremental = r.identifier("incremental_column")
    overlap = r.get("overlap_minutes", int, 10)
    if overlap < 0:
        r.fail("overlap_minutes", f"must be >= 0, got {overlap}")
    # Integer cursors (sequences) re-read the last N values: a value allocated before the
    # plan but committed after it would otherwise never be read.
    overlap_ids = r.get("overlap_ids", int, 1000)
    if overlap_ids < 0:
        r.fail("overlap_ids", f"must be >= 0, got {overlap_ids}")
    default_mode: WriteMode = "merge" if primary_key else "append" if incremental else "overwrite"
    sink = _parse_any_sink(r, name, "tables", sinks, TABLE_WRITE_MODES, default_mode)
    if sink.mode == "merge" and not primary_key:
        r.fail("sink.mode", "merge needs a primary_key")
    if incremental and sink.mode in ("overwrite", "overwrite_partitions"):
        r.fail(
            "sink.mode",
            f"{sink.mode!r} with incremental_column would replace the dataset with each "
            "window's rows; use merge (with a primary_key) or append",
        )
    if sink.mode == "append" and not incremental:
        r.fail("sink.mode", "append needs an incremental_column (each window is appended once)")
    load = _parse_loads(
        r, connections, sinks.staging, primary_key, (incremental,) if incremental else ()
    )
    return TableSpec(
        name=name,
        connection=connection,
        table=table,
        query=query,
        primary_key=primary_key,
        split_column=r.identifier("split_column"),
        split_strategy=r.choice("split_strategy", SPLIT_STRATEGIES, "range"),
        incremental_column=incremental,
        overlap_minutes=overlap,
        overlap_ids=overlap_ids,
        hash_columns=r.names("hash_columns"),
        quality=parse_quality(r),
        transforms=parse_transforms(r, "transforms"),
        partition_by=_partition_names(r, sink),
        audit=r.get("audit", bool, True),
        sink=sink,
        catalog=_parse_catalog(r, name),
        load=load,
        rows_per_partition=_optional_positive(r, "rows_per_partition"),
    )


def _optional_positive(r: Reader, key: str) -> int | None:
    """An optional key that, when given, must be > 0."""
    return r.positive(key, 1) if key in r.data else None


def _parse_output(
    r: Reader,
    name: str,
    known: set[str],
    connections: Mapping[str, Connection],
    sinks: _SinkContext,
) -> OutputSpec:
    if not NAME.match(name):
        r.fail("", "output names must be plain names (letters, digits, _)")
    r.only("builder", "inputs", "params", "partition_by", "sink", "catalog", "load")
    builder = r.get("builder", str, required=True)
    inputs = r.names("inputs", NAME)
    if not inputs:
        r.fail("inputs", "at least one input table is required")
    for item in inputs:
        if item not in known:
            r.fail("inputs", f"unknown table or earlier output {item!r}")
    sink = _parse_any_sink(r, name, "outputs", sinks, OUTPUT_WRITE_MODES, "overwrite")
    return OutputSpec(
        name=name,
        builder=builder,
        inputs=inputs,
        params=dict(r.get("params", dict, {})),
        partition_by=_partition_names(r, sink),
        sink=sink,
        catalog=_parse_catalog(r, name),
        load=_parse_loads(r, connections, sinks.staging, (), ()),
    )


def _partition_names(r: Reader, sink: Sink) -> tuple[str, ...]:
    """`partition_by` as given: column names (Parquet), or Iceberg partition fields as text
    (parsed into the sink's `partitioning`)."""
    if isinstance(sink, IcebergSink):
        return tuple(r.get("partition_by", list, []))
    return r.names("partition_by")


def _table_name(r: Reader, key: str) -> str:
    value = r.get(key, str, required=True)
    parts = value.split(".")
    if len(parts) > 2 or not all(IDENTIFIER.match(part) for part in parts):
        r.fail(key, f"{value!r} is not a plain [schema.]table name")
    return str(value)


def _parse_loads(
    r: Reader,
    connections: Mapping[str, Connection],
    staging: str,
    default_key: tuple[str, ...],
    default_order_by: tuple[str, ...],
) -> tuple[Load, ...]:
    """`[[tables.x.load]]` / `[[outputs.x.load]]`: SQL targets loaded after the Parquet write.

    A table's key and order_by default to its primary_key and incremental_column. The mode
    defaults to `upsert` when a key is known, else `overwrite` (DELETE + INSERT in one
    transaction); `append` is refused, since it adds the overlap window's rows again on
    every run and after a crash between the load and the watermark commit.
    """
    loads: list[Load] = []
    for index, item in enumerate(r.get("load", list, [])):
        lr = r.child(f"load[{index}]", item)
        kind = lr.choice("kind", LOAD_KINDS, "")
        common = ("kind", "table", "mode", "key", "order_by")
        if kind == "jdbc":
            lr.only(*common, "connection", "batch_size")
        else:
            lr.only(
                *common,
                "via",
                "connection",
                "iam_role",
                "staging",
                "copy_uri",
                "database",
                "cluster_identifier",
                "workgroup_name",
                "secret_arn",
                "db_user",
            )
        table = _table_name(lr, "table")
        key = lr.names("key") or default_key
        order_by = lr.names("order_by") or default_order_by
        if lr.data.get("mode") == "append":
            lr.fail(
                "mode",
                '"append" re-appends rows on every rerun; '
                'use "upsert" (needs key and order_by) or "overwrite"',
            )
        default_mode: LoadMode = "upsert" if key else "overwrite"
        mode = lr.choice("mode", LOAD_MODES, default_mode)
        if mode == "upsert" and not (key and order_by):
            lr.fail(
                "mode",
                "upsert needs key and order_by (the newest row of a key wins)"
                + ("" if "mode" in lr.data else '; give order_by, or mode = "overwrite"'),
            )
        connection = lr.get("connection", str)
        engines = ("postgresql", "mysql") if kind == "jdbc" else ("redshift",)
        if connection is not None:
            if connection not in connections:
                lr.fail("connection", f"unknown connection {connection!r}")
            if connections[connection].engine not in engines:
                lr.fail("connection", f"{connection!r} must be a {' or '.join(engines)} connection")
        if kind == "jdbc":
            if connection is None:
                lr.fail("connection", "is required")
            loads.append(
                JdbcLoad(
                    str(connection), table, mode, key, order_by, lr.positive("batch_size", 10_000)
                )
            )
            continue
        via = lr.choice("via", REDSHIFT_VIAS, "jdbc")
        if via == "jdbc" and connection is None:
            lr.fail("connection", 'is required when via = "jdbc"')
        database = lr.get("database", str)
        cluster, workgroup = lr.get("cluster_identifier", str), lr.get("workgroup_name", str)
        if via == "data_api" and (not database or (cluster is None) == (workgroup is None)):
            lr.fail(
                "",
                'via = "data_api" needs database and one of cluster_identifier or workgroup_name',
            )
        loads.append(
            RedshiftLoad(
                table=table,
                mode=mode,
                key=key,
                order_by=order_by,
                via=via,
                iam_role=lr.get("iam_role", str, required=True),
                staging=join_path(staging, lr.get("staging", str, "redshift")),
                copy_uri=lr.get("copy_uri", str),
                connection=connection,
                database=database,
                cluster_identifier=cluster,
                workgroup_name=workgroup,
                secret_arn=lr.get("secret_arn", str),
                db_user=lr.get("db_user", str),
            )
        )
    return tuple(loads)
