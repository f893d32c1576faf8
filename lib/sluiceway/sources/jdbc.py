"""Parallel, incremental JDBC extraction from PostgreSQL and MySQL, planned from the data.

Planning asks the database once for the row count, the split column's bounds and the
incremental column's maximum within the window; a skewed split column can ask for
quantiles instead. The read is then one Spark partition per predicate, never more
partitions than the connection's `max_connections`.

Time zones: the JVM and the Spark session run in UTC, the PostgreSQL driver sets the
session TimeZone from the JVM, and the MySQL URL forces the session to UTC. Bounds are
rendered by Spark as UTC strings and sent back as literals, so a timestamp (with or
without time zone, DATETIME or TIMESTAMP) round-trips exactly.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sluiceway.errors import SourceError, SpecError
from sluiceway.jvm_errors import SPARK_ERRORS, describe_spark_error
from sluiceway.sources.credentials import Credentials
from sluiceway.spec import Connection, TableSpec

log = logging.getLogger(__name__)

_HOST = re.compile(r"^[A-Za-z0-9.\-_]+$")
_DATABASE = re.compile(r"^[A-Za-z0-9_\-$]+$")
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Dialect:
    engine: str
    driver: str
    quote_char: str
    default_port: int
    # Connection properties that make reads stream, fail fast and run in UTC.
    properties: dict[str, str]

    def quote(self, name: str) -> str:
        return ".".join(f"{self.quote_char}{part}{self.quote_char}" for part in name.split("."))


DIALECTS = {
    "postgresql": Dialect(
        "postgresql",
        "org.postgresql.Driver",
        '"',
        5432,
        {
            "ApplicationName": "sluiceway",
            "connectTimeout": "10",
            "loginTimeout": "15",
            "tcpKeepAlive": "true",
        },
    ),
    "mysql": Dialect(
        "mysql",
        "com.mysql.cj.jdbc.Driver",
        "`",
        3306,
        # useCursorFetch makes fetchsize stream instead of buffering the whole result.
        {
            "connectTimeout": "10000",
            "useCursorFetch": "true",
            "connectionTimeZone": "UTC",
            "forceConnectionTimeZoneToSession": "true",
            "tinyInt1isBit": "true",
        },
    ),
}


@dataclass(frozen=True)
class Watermark:
    """The highest incremental-column value committed so far."""

    kind: str  # "int" | "date" | "timestamp"
    value: str  # int as text, ISO date, or "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value}

    @staticmethod
    def from_json(data: dict[str, str]) -> Watermark:
        return Watermark(kind=data["kind"], value=data["value"])


@dataclass(frozen=True)
class JdbcSource:
    """Everything needed to open connections; `properties` holds the password (not repr'd)."""

    dialect: Dialect
    url: str
    description: str  # engine host:port/database, safe to log
    properties: dict[str, str] = field(repr=False)
    max_connections: int = 4
    rows_per_partition: int = 500_000


@dataclass(frozen=True)
class ReadPlan:
    relation: str
    predicates: tuple[str, ...]
    rows_expected: int
    watermark_before: Watermark | None
    watermark_after: Watermark | None


def jdbc_source(conn: Connection, creds: Credentials) -> JdbcSource:
    dialect = DIALECTS[conn.engine]
    port = creds.port or dialect.default_port
    if not _HOST.match(creds.host):
        raise SpecError(f"connection {conn.name}: host {creds.host!r} is not a host name")
    database = creds.database or ""
    if database and not _DATABASE.match(database):
        raise SpecError(f"connection {conn.name}: database {database!r} is not a database name")
    props = {
        **dialect.properties,
        **conn.options,
        "user": creds.user,
        "password": creds.password,
        "driver": dialect.driver,
        "fetchsize": str(conn.fetch_size),
    }
    return JdbcSource(
        dialect=dialect,
        url=f"jdbc:{dialect.engine}://{creds.host}:{port}/{database}",
        description=f"{dialect.engine} {creds.host}:{port}/{database}",
        properties=props,
        max_connections=conn.max_connections,
        rows_per_partition=conn.rows_per_partition,
    )


def _relation(source: JdbcSource, table: TableSpec) -> str:
    if table.table:
        return source.dialect.quote(table.table)
    return f"({table.query}) sluiceway_src"


def _literal(kind: str, value: Any) -> str:
    if kind == "int":
        return str(int(value))
    if kind == "date":
        return f"DATE '{date.fromisoformat(str(value)).isoformat()}'"
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return f"TIMESTAMP '{ts.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _kind_of(data_type: T.DataType) -> str | None:
    if isinstance(data_type, T.IntegerType | T.LongType | T.ShortType | T.ByteType):
        return "int"
    if isinstance(data_type, T.DecimalType) and data_type.scale == 0:
        return "int"
    if isinstance(data_type, T.DateType):
        return "date"
    if type(data_type).__name__ in ("TimestampType", "TimestampNTZType"):
        return "timestamp"
    return None


def _query(spark: SparkSession, source: JdbcSource, sql: str, where: str) -> DataFrame:
    try:
        return (
            spark.read.format("jdbc")
            .option("url", source.url)
            .option("query", sql)
            .options(**source.properties)
            .load()
        )
    except SPARK_ERRORS as exc:
        raise SourceError(f"{where}: {source.description}: {describe_spark_error(exc)}") from exc


def _first_as_strings(df: DataFrame, where: str, source: JdbcSource) -> dict[str, str | None]:
    """The first row with every value as text; timestamps rendered in the session zone (UTC)."""
    try:
        row = df.select([F.col(c).cast("string").alias(c) for c in df.columns]).first()
    except SPARK_ERRORS as exc:
        raise SourceError(f"{where}: {source.description}: {describe_spark_error(exc)}") from exc
    return row.asDict() if row is not None else {}


def _to_number(kind: str, value: str) -> int:
    """Integers as themselves, dates as days and timestamps as microseconds since 1970."""
    if kind == "int":
        return int(value)
    if kind == "date":
        return (date.fromisoformat(value) - _EPOCH.date()).days
    delta = datetime.fromisoformat(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_number(kind: str, number: int) -> Any:
    if kind == "int":
        return number
    if kind == "date":
        return _EPOCH.date() + timedelta(days=number)
    return _EPOCH + timedelta(microseconds=number)


def plan_read(
    spark: SparkSession,
    source: JdbcSource,
    table: TableSpec,
    watermark: Watermark | None,
    where: str,
) -> ReadPlan:
    """Ask the database for counts and bounds, then build balanced partition predicates."""
    q = source.dialect.quote
    relation = _relation(source, table)
    filters: list[str] = []
    inc = q(table.incremental_column) if table.incremental_column else None
    if inc and watermark is not None:
        filters.append(
            f"{inc} >= {_literal(watermark.kind, _window_start(watermark, table.overlap_minutes))}"
        )
    split = q(table.split_column) if table.split_column else None

    select = ["COUNT(*) AS row_count"]
    if split:
        select += [
            f"COUNT({split}) AS split_count",
            f"MIN({split}) AS split_lo",
            f"MAX({split}) AS split_hi",
        ]
    if inc:
        select.append(f"MAX({inc}) AS inc_hi")
    stats_sql = f"SELECT {', '.join(select)} FROM {relation}" + _where(filters)
    stats_df = _query(spark, source, stats_sql, where)
    stats = _first_as_strings(stats_df, where, source)
    rows = int(stats.get("row_count") or 0)
    log.info("%s: %d rows in window", where, rows)

    watermark_after = watermark
    if inc and rows > 0:
        inc_kind = _kind_of(stats_df.schema["inc_hi"].dataType)
        if inc_kind is None:
            raise SpecError(
                f"{where}.incremental_column: {table.incremental_column!r} must be an integer, "
                f"date or timestamp column, not {stats_df.schema['inc_hi'].dataType.simpleString()}"
            )
        if stats.get("inc_hi") is None:
            raise SourceError(
                f"{where}: incremental column {table.incremental_column!r} is all NULL"
            )
        watermark_after = Watermark(inc_kind, str(stats["inc_hi"]))
        # Rows committed after planning are left for the next run, so the watermark is exact.
        upper = f"{inc} <= {_literal(inc_kind, watermark_after.value)}"
        filters.append(upper if watermark is not None else f"({upper} OR {inc} IS NULL)")

    predicates = _split_predicates(
        spark, source, table, relation, filters, stats, stats_df, rows, where
    )
    return ReadPlan(relation, predicates, rows, watermark, watermark_after)


def _where(filters: list[str]) -> str:
    return f" WHERE {' AND '.join(filters)}" if filters else ""


def _window_start(watermark: Watermark, overlap_minutes: int) -> Any:
    """Re-read the last `overlap_minutes` so late commits with older timestamps are not lost."""
    if watermark.kind == "timestamp":
        return datetime.fromisoformat(watermark.value) - timedelta(minutes=overlap_minutes)
    if watermark.kind == "date":
        return date.fromisoformat(watermark.value) - timedelta(
            days=math.ceil(overlap_minutes / 1440)
        )
    return int(watermark.value)


def _split_predicates(
    spark: SparkSession,
    source: JdbcSource,
    table: TableSpec,
    relation: str,
    filters: list[str],
    stats: dict[str, str | None],
    stats_df: DataFrame,
    rows: int,
    where: str,
) -> tuple[str, ...]:
    base = " AND ".join(filters) if filters else "1=1"
    wanted = min(source.max_connections, math.ceil(rows / source.rows_per_partition))
    if not table.split_column or rows == 0:
        return (base,)
    if int(stats.get("split_count") or 0) == 0:
        raise SourceError(
            f"{where}.split_column: {table.split_column!r} is NULL in all {rows} rows; "
            "choose another split column"
        )
    kind = _kind_of(stats_df.schema["split_lo"].dataType)
    if kind is None:
        raise SpecError(
            f"{where}.split_column: {table.split_column!r} must be an integer, date or timestamp "
            f"column, not {stats_df.schema['split_lo'].dataType.simpleString()}"
        )
    if wanted <= 1:
        return (base,)
    lo = _to_number(kind, str(stats["split_lo"]))
    hi = _to_number(kind, str(stats["split_hi"]))
    if table.split_strategy == "quantiles":
        bounds = _quantile_bounds(spark, source, table, relation, filters, wanted, kind, where)
    else:
        bounds = [lo + (hi - lo) * i // wanted for i in range(1, wanted)]
    # Equal bounds (narrow range, heavy skew) would make empty partitions: drop them.
    cuts = sorted({b for b in bounds if lo < b <= hi})
    if not cuts:
        return (base,)
    split = source.dialect.quote(table.split_column)
    lits = [_literal(kind, _from_number(kind, b)) for b in cuts]
    predicates = [f"{base} AND ({split} < {lits[0]} OR {split} IS NULL)"]
    predicates += [f"{base} AND {split} >= {a} AND {split} < {b}" for a, b in pairwise(lits)]
    predicates.append(f"{base} AND {split} >= {lits[-1]}")
    log.info(
        "%s: %d partitions on %s (%s)",
        where,
        len(predicates),
        table.split_column,
        table.split_strategy,
    )
    return tuple(predicates)


def _quantile_bounds(
    spark: SparkSession,
    source: JdbcSource,
    table: TableSpec,
    relation: str,
    filters: list[str],
    buckets: int,
    kind: str,
    where: str,
) -> list[int]:
    """Cut points from `buckets` equal-count tiles of the split column.

    A value that fills several tiles (skew) is cut just above, so it gets a partition of
    its own instead of collapsing the plan to one partition. Window
    functions exist in PostgreSQL, MySQL 8 and MariaDB 10.2+; MySQL has no percentile_disc.
    """
    split = source.dialect.quote(table.split_column or "")
    inner = (
        f"SELECT {split} AS s, NTILE({buckets}) OVER (ORDER BY {split}) AS tile FROM {relation}"
        + _where([*filters, f"{split} IS NOT NULL"])
    )
    sql = f"SELECT tile, MIN(s) AS lo, MAX(s) AS hi FROM ({inner}) sluiceway_tiles GROUP BY tile"
    df = _query(spark, source, sql, where)
    try:
        rows = df.select(
            "tile", F.col("lo").cast("string").alias("lo"), F.col("hi").cast("string").alias("hi")
        ).collect()
    except SPARK_ERRORS as exc:
        raise SourceError(f"{where}: {source.description}: {describe_spark_error(exc)}") from exc
    tiles = sorted(
        (int(r["tile"]), _to_number(kind, r["lo"]), _to_number(kind, r["hi"])) for r in rows
    )
    cuts = []
    for (_, _, prev_hi), (_, lo, _) in pairwise(tiles):
        # A value spanning two tiles goes wholly below the cut: the smallest step above it
        # (1, one day or one microsecond in these units).
        cuts.append(prev_hi + 1 if lo == prev_hi else lo)
    return cuts


def read(spark: SparkSession, source: JdbcSource, plan: ReadPlan, where: str) -> DataFrame:
    """The planned read: one Spark partition (and one connection) per predicate."""
    try:
        return spark.read.jdbc(
            source.url,
            plan.relation,
            predicates=list(plan.predicates),
            properties=dict(source.properties),
        )
    except SPARK_ERRORS as exc:
        raise SourceError(f"{where}: {source.description}: {describe_spark_error(exc)}") from exc
