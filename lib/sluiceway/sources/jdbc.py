"""Parallel, incremental JDBC extraction from PostgreSQL and MySQL, planned from the data.

Planning asks the database once for the row count, the split column's bounds and the
incremental column's maximum within the window; a skewed split column can ask for
quantiles instead. The read is then one Spark partition per predicate, never more
partitions than the connection's `max_connections`.

Time zones: the Spark session runs in UTC and every connection sets its own session zone
to UTC (PostgreSQL `options=-c TimeZone=UTC`, MySQL `connectionTimeZone` forced to the
session); planning checks the zone the database really uses, and `check_time_zone` the
driver JVM's, whose zone the drivers use for timestamps without time zone. Bounds are
rendered by Spark as UTC strings and sent back as literals, so a timestamp (with or
without time zone, DATETIME or TIMESTAMP) round-trips exactly.

Windows: a run reads from the committed watermark minus an overlap (`overlap_minutes` for
time cursors, `overlap_ids` for integer ones, so a late commit is not lost) up to the
highest value at planning time, but never past the database's clock: one row stamped in
the far future must not freeze extraction at its value.
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

from sluiceway.errors import SourceError, SpecError, located
from sluiceway.sources.credentials import Credentials
from sluiceway.spec import Connection, TableSpec

log = logging.getLogger(__name__)

_HOST = re.compile(r"^[A-Za-z0-9.\-_]+$")
_DATABASE = re.compile(r"^[A-Za-z0-9_\-$]+$")
_EPOCH = datetime(1970, 1, 1)
_UTC_NAMES = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "+00:00", "Z", "UCT", "Universal", "Zulu"}


@dataclass(frozen=True)
class Dialect:
    engine: str
    driver: str
    quote_char: str
    default_port: int
    # Connection properties that make reads stream, fail fast and run in UTC.
    properties: dict[str, str]
    session_zone_sql: str  # the connection's time zone, as the server reports it
    clock_sql: str  # the server's clock, to microseconds

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
            # The driver would send the JVM's zone; this sets the session's, whatever it is.
            "options": "-c TimeZone=UTC",
        },
        "current_setting('TimeZone')",
        "CURRENT_TIMESTAMP",
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
        "@@session.time_zone",
        "CURRENT_TIMESTAMP(6)",
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
    window_start: Any = None  # the cursor value the window starts at (None: a full read)


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
    with located(where, SourceError, doing=source.description):
        return (
            spark.read.format("jdbc")
            .option("url", source.url)
            .option("query", sql)
            .options(**source.properties)
            .load()
        )


def _first_as_strings(df: DataFrame, where: str, source: JdbcSource) -> dict[str, str | None]:
    """The first row with every value as text; timestamps rendered in the session zone (UTC)."""
    with located(where, SourceError, doing=source.description):
        row = df.select([F.col(c).cast("string").alias(c) for c in df.columns]).first()
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


def check_time_zone(spark: SparkSession) -> None:
    """The drivers read timestamps without time zone in the driver JVM's zone: make it UTC.

    In local mode the executors are the driver's JVM, so setting it fixes both; on a
    cluster (Glue and EMR run in UTC) a JVM in another zone is refused before any read.
    """
    jvm: Any = spark.sparkContext._jvm
    zone = str(jvm.java.util.TimeZone.getDefault().getID())
    if zone in _UTC_NAMES:
        return
    if (spark.sparkContext.master or "").startswith("local"):
        log.warning("the JVM runs in %s; switching it to UTC for exact timestamps", zone)
        jvm.java.util.TimeZone.setDefault(jvm.java.util.TimeZone.getTimeZone("UTC"))
        return
    raise SourceError(
        f"the Spark driver JVM runs in time zone {zone}; JDBC timestamps would shift. "
        "Start it with -Duser.timezone=UTC (spark.driver/executor.extraJavaOptions)"
    )


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
    planning = _Planning(spark, source, table, relation, where)
    window: list[str] = []  # the lower bound; the upper one is set once the maximum is known
    inc = q(table.incremental_column) if table.incremental_column else None
    start = None
    if inc and watermark is not None:
        start = _window_start(watermark, table.overlap_minutes, table.overlap_ids)
        window.append(f"{inc} >= {_literal(watermark.kind, start)}")
    stats_df, stats = _stats(planning, window)
    zone = str(stats.get("session_zone") or "")
    if zone not in _UTC_NAMES:
        raise SourceError(
            f"{source.description}: the session time zone is {zone!r}, not UTC; "
            "timestamps would shift (does the connection override `options`?)",
            where=where,
        )
    filters = window
    watermark_after = watermark
    if inc and int(stats.get("row_count") or 0) > 0:
        inc_kind = _kind_of(stats_df.schema["inc_hi"].dataType)
        if inc_kind is None:
            raise SpecError(
                f"{where}.incremental_column: {table.incremental_column!r} must be an integer, "
                f"date or timestamp column, not {stats_df.schema['inc_hi'].dataType.simpleString()}"
            )
        if stats.get("inc_hi") is None:
            raise SourceError(
                f"incremental column {table.incremental_column!r} is all NULL", where=where
            )
        clock = _clock(inc_kind, stats)
        if clock is not None and _to_number(inc_kind, str(stats["inc_hi"])) > _to_number(
            inc_kind, clock
        ):
            log.warning(
                "%s: %s reaches %s, past the database clock %s; those rows wait for a later run",
                where,
                table.incremental_column,
                stats["inc_hi"],
                clock,
            )
            capped = [*window, _upper(inc, inc_kind, clock, with_nulls=watermark is None)]
            stats_df, stats = _stats(planning, capped)
            filters = capped
        if stats.get("inc_hi") is not None:
            watermark_after = Watermark(inc_kind, str(stats["inc_hi"]))
            # Rows committed after planning are left for the next run: the watermark is exact.
            upper = _upper(inc, inc_kind, watermark_after.value, with_nulls=watermark is None)
            filters = [*window, upper]
    rows = int(stats.get("row_count") or 0)
    log.info("%s: %d rows in window", where, rows)
    predicates = _split_predicates(planning, filters, stats, stats_df.schema)
    return ReadPlan(relation, predicates, rows, watermark, watermark_after, start)


def _upper(inc: str, kind: str, value: Any, *, with_nulls: bool) -> str:
    """`inc <= value`; a full read also takes the rows whose cursor is NULL."""
    upper = f"{inc} <= {_literal(kind, value)}"
    return f"({upper} OR {inc} IS NULL)" if with_nulls else upper


@dataclass(frozen=True)
class _Planning:
    """The read being planned: which table of which source, and where the spec sets it."""

    spark: SparkSession
    source: JdbcSource
    table: TableSpec
    relation: str
    where: str


def _stats(planning: _Planning, filters: list[str]) -> tuple[DataFrame, dict[str, str | None]]:
    """One query: rows in the window, split bounds, the cursor's maximum, the clock, the zone."""
    source, table, where = planning.source, planning.table, planning.where
    q = source.dialect.quote
    select = ["COUNT(*) AS row_count"]
    if table.split_column:
        split = q(table.split_column)
        select += [
            f"COUNT({split}) AS split_count",
            f"MIN({split}) AS split_lo",
            f"MAX({split}) AS split_hi",
        ]
    if table.incremental_column:
        select.append(f"MAX({q(table.incremental_column)}) AS inc_hi")
    select += [
        f"{source.dialect.clock_sql} AS db_now",
        f"{source.dialect.session_zone_sql} AS session_zone",
    ]
    stats_sql = f"SELECT {', '.join(select)} FROM {planning.relation}" + _where(filters)
    stats_df = _query(planning.spark, source, stats_sql, where)
    return stats_df, _first_as_strings(stats_df, where, source)


def _clock(kind: str, stats: dict[str, str | None]) -> str | None:
    """The database clock in the cursor's kind (None for integer cursors)."""
    now = stats.get("db_now")
    if kind == "int" or now is None:
        return None
    return now[:10] if kind == "date" else now


def _where(filters: list[str]) -> str:
    return f" WHERE {' AND '.join(filters)}" if filters else ""


def _window_start(watermark: Watermark, overlap_minutes: int, overlap_ids: int) -> Any:
    """Re-read the overlap so late commits with older cursor values are not lost."""
    if watermark.kind == "timestamp":
        return datetime.fromisoformat(watermark.value) - timedelta(minutes=overlap_minutes)
    if watermark.kind == "date":
        return date.fromisoformat(watermark.value) - timedelta(
            days=math.ceil(overlap_minutes / 1440)
        )
    return int(watermark.value) - overlap_ids


def _split_predicates(
    planning: _Planning,
    filters: list[str],
    stats: dict[str, str | None],
    schema: T.StructType,
) -> tuple[str, ...]:
    """Predicates that split the window into balanced partitions on the split column."""
    source, table, where = planning.source, planning.table, planning.where
    rows = int(stats.get("row_count") or 0)
    base = " AND ".join(filters) if filters else "1=1"
    per_partition = table.rows_per_partition or source.rows_per_partition
    wanted = min(source.max_connections, math.ceil(rows / per_partition))
    if not table.split_column or rows == 0:
        return (base,)
    if int(stats.get("split_count") or 0) == 0:
        raise SourceError(
            f"{where}.split_column: {table.split_column!r} is NULL in all {rows} rows; "
            "choose another split column"
        )
    kind = _kind_of(schema["split_lo"].dataType)
    if kind is None:
        raise SpecError(
            f"{where}.split_column: {table.split_column!r} must be an integer, date or timestamp "
            f"column, not {schema['split_lo'].dataType.simpleString()}"
        )
    if wanted <= 1:
        return (base,)
    lo = _to_number(kind, str(stats["split_lo"]))
    hi = _to_number(kind, str(stats["split_hi"]))
    if table.split_strategy == "quantiles":
        bounds = _quantile_bounds(planning, filters, wanted, kind)
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


def _quantile_bounds(planning: _Planning, filters: list[str], buckets: int, kind: str) -> list[int]:
    """Cut points from `buckets` equal-count tiles of the split column.

    A value that fills several tiles (skew) is cut just above, so it gets a partition of
    its own instead of collapsing the plan to one partition. Window
    functions exist in PostgreSQL, MySQL 8 and MariaDB 10.2+; MySQL has no percentile_disc.
    """
    source, where = planning.source, planning.where
    split = source.dialect.quote(planning.table.split_column or "")
    inner = (
        f"SELECT {split} AS s, NTILE({buckets}) OVER (ORDER BY {split}) AS tile "
        f"FROM {planning.relation}" + _where([*filters, f"{split} IS NOT NULL"])
    )
    sql = f"SELECT tile, MIN(s) AS lo, MAX(s) AS hi FROM ({inner}) sluiceway_tiles GROUP BY tile"
    df = _query(planning.spark, source, sql, where)
    with located(where, SourceError, doing=source.description):
        rows = df.select(
            "tile", F.col("lo").cast("string").alias("lo"), F.col("hi").cast("string").alias("hi")
        ).collect()
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
    with located(where, SourceError, doing=source.description):
        return spark.read.jdbc(
            source.url,
            plan.relation,
            predicates=list(plan.predicates),
            properties=dict(source.properties),
        )
