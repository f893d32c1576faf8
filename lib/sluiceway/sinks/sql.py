"""What the SQL sinks share: quoted identifiers, target columns, schema checks, JVM JDBC.

Every name that reaches SQL passes the spec's identifier check and is then quoted; the only
values pasted into statements are the staging URI and IAM role of a Redshift COPY, which
are validated and written as escaped string literals. Statements run through the JVM's
`java.sql.DriverManager` (py4j), because a Glue or EMR cluster has no Python DB driver.
"""

from __future__ import annotations

import logging
import operator
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from typing import Any, Protocol

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sluiceway.errors import SinkError
from sluiceway.jvm_errors import SPARK_ERRORS, describe_spark_error
from sluiceway.spec import IDENTIFIER, LOAD_MODES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SqlDialect:
    name: str  # "postgresql" | "mysql" | "redshift"
    quote_char: str
    # Spark type name -> column type for ALTER TABLE ADD COLUMN / CREATE TABLE.
    types: dict[str, str]

    def quote(self, name: str) -> str:
        """`name` ([schema.]name) validated part by part, then quoted."""
        return ".".join(self.quote_part(part) for part in split_name(name))

    def quote_part(self, part: str) -> str:
        if not IDENTIFIER.match(part):
            raise SinkError(f"{part!r} is not a plain identifier")
        return f"{self.quote_char}{part}{self.quote_char}"

    def column_type(self, data_type: T.DataType) -> str:
        if isinstance(data_type, T.DecimalType):
            return f"{self.types['decimal']}({data_type.precision},{data_type.scale})"
        name = type(data_type).__name__
        if name not in self.types:
            raise SinkError(f"no {self.name} column type for {data_type.simpleString()}")
        return self.types[name]


_PG_TYPES = {
    "ByteType": "SMALLINT",
    "ShortType": "SMALLINT",
    "IntegerType": "INTEGER",
    "LongType": "BIGINT",
    "FloatType": "REAL",
    "DoubleType": "DOUBLE PRECISION",
    "decimal": "NUMERIC",
    "StringType": "TEXT",
    "BooleanType": "BOOLEAN",
    "DateType": "DATE",
    "TimestampType": "TIMESTAMPTZ",
    "TimestampNTZType": "TIMESTAMP",
    "BinaryType": "BYTEA",
}
DIALECTS = {
    "postgresql": SqlDialect("postgresql", '"', _PG_TYPES),
    "redshift": SqlDialect(
        "redshift", '"', {**_PG_TYPES, "StringType": "VARCHAR(65535)", "BinaryType": "VARBYTE"}
    ),
    "mysql": SqlDialect(
        "mysql",
        "`",
        {
            "ByteType": "TINYINT",
            "ShortType": "SMALLINT",
            "IntegerType": "INT",
            "LongType": "BIGINT",
            "FloatType": "FLOAT",
            "DoubleType": "DOUBLE",
            "decimal": "DECIMAL",
            "StringType": "LONGTEXT",
            "BooleanType": "BOOLEAN",
            "DateType": "DATE",
            "TimestampType": "DATETIME(6)",
            "TimestampNTZType": "DATETIME(6)",
            "BinaryType": "LONGBLOB",
        },
    ),
}


def split_name(name: str) -> list[str]:
    parts = name.split(".")
    if len(parts) > 2 or not all(IDENTIFIER.match(p) for p in parts):
        raise SinkError(f"{name!r} is not a plain [schema.]table name")
    return parts


@dataclass(frozen=True)
class TargetColumn:
    name: str
    data_type: str  # information_schema.columns.data_type, lower case
    nullable: bool


# information_schema data types by family; a batch column may only load into its family.
_FAMILIES: dict[str, tuple[str, ...]] = {
    "numeric": (
        "smallint",
        "integer",
        "bigint",
        "int",
        "tinyint",
        "mediumint",
        "numeric",
        "decimal",
        "real",
        "double",
        "double precision",
        "float",
    ),
    "string": (
        "character varying",
        "varchar",
        "character",
        "char",
        "text",
        "bpchar",
        "longtext",
        "mediumtext",
        "tinytext",
    ),
    "boolean": ("boolean", "bool"),
    "date": ("date",),
    "timestamp": (
        "timestamp",
        "timestamp without time zone",
        "timestamp with time zone",
        "timestamptz",
        "datetime",
    ),
    "binary": ("bytea", "blob", "longblob", "mediumblob", "varbinary", "binary", "varbyte"),
}
_FAMILY_OF_DB = {name: family for family, names in _FAMILIES.items() for name in names}


def _spark_family(data_type: T.DataType) -> str | None:
    if isinstance(data_type, T.NumericType):
        return "numeric"
    if isinstance(data_type, T.StringType):
        return "string"
    if isinstance(data_type, T.BooleanType):
        return "boolean"
    if isinstance(data_type, T.DateType):
        return "date"
    if type(data_type).__name__ in ("TimestampType", "TimestampNTZType"):
        return "timestamp"
    if isinstance(data_type, T.BinaryType):
        return "binary"
    return None


@dataclass(frozen=True)
class SchemaPlan:
    """How a batch lines up with its target: the columns to load and the columns to add."""

    columns: tuple[str, ...]  # batch columns, named as in the target (added ones included)
    added: tuple[tuple[str, str], ...]  # (column, SQL type) to ALTER TABLE ADD
    create: bool  # the target does not exist yet


def plan_schema(
    batch: T.StructType,
    target: Sequence[TargetColumn],
    dialect: SqlDialect,
    key: Sequence[str],
    where: str,
) -> SchemaPlan:
    """Match batch columns to the target's; refuse incompatible changes before any load.

    Names match case-insensitively (PostgreSQL and Redshift fold unquoted names). A batch
    column the target lacks is added as a nullable column; one whose type family differs
    (text into a number, a date into a boolean...) fails, as does a target NOT NULL column
    the batch does not carry.
    """
    by_lower = {c.name.lower(): c for c in target}
    columns, added = [], []
    for f in batch.fields:
        if not IDENTIFIER.match(f.name):
            raise SinkError(f"column {f.name!r} is not a plain identifier", where=where)
        family = _spark_family(f.dataType)
        if family is None:
            raise SinkError(
                f"column {f.name!r} has type {f.dataType.simpleString()}, "
                "which a SQL table cannot hold",
                where=where,
            )
        existing = by_lower.get(f.name.lower())
        if existing is None:
            added.append((f.name, dialect.column_type(f.dataType)))
            columns.append(f.name)
            continue
        target_family = _FAMILY_OF_DB.get(existing.data_type.lower())
        if target_family is not None and target_family != family:
            raise SinkError(
                f"column {f.name!r} is {existing.data_type} in the target but "
                f"{f.dataType.simpleString()} in the batch; refusing to load an incompatible "
                "schema",
                where=where,
            )
        columns.append(existing.name)
    loaded = {c.lower() for c in columns}
    for k in key:
        if k.lower() not in loaded:
            raise SinkError(f"key column {k!r} is not in the batch", where=where)
    missing = [c.name for c in target if not c.nullable and c.name.lower() not in loaded]
    if missing:
        raise SinkError(
            f"target NOT NULL column(s) {', '.join(missing)} missing from the batch", where=where
        )
    create = not target
    return SchemaPlan(tuple(columns), () if create else tuple(added), create)


def ddl_statements(
    plan: SchemaPlan, batch: T.StructType, table: str, dialect: SqlDialect, key: Sequence[str]
) -> list[str]:
    """CREATE TABLE for a new target (key as PRIMARY KEY), or ALTER TABLE ADD COLUMN."""
    qt = dialect.quote(table)
    if plan.create:
        cols = [
            f"{dialect.quote_part(f.name)} {dialect.column_type(f.dataType)}"
            + (" NOT NULL" if f.name in key else "")
            for f in batch.fields
        ]
        if key:
            cols.append(f"PRIMARY KEY ({', '.join(dialect.quote_part(k) for k in key)})")
        return [f"CREATE TABLE {qt} ({', '.join(cols)})"]
    return [
        f"ALTER TABLE {qt} ADD COLUMN {dialect.quote_part(name)} {sql_type}"
        for name, sql_type in plan.added
    ]


def columns_query(table: str, dialect: SqlDialect) -> tuple[str, tuple[str, ...]]:
    """A parameterised query for the target's columns: (sql with `?` marks, parameters)."""
    parts = split_name(table)
    schema = "DATABASE()" if dialect.name == "mysql" else "current_schema()"
    params: tuple[str, ...]
    if len(parts) == 2:
        schema_sql, params = "?", (parts[0], parts[1])
    else:
        schema_sql, params = schema, (parts[0],)
    # MySQL's information_schema keeps the table's case; PostgreSQL and Redshift fold.
    name_sql = "?" if dialect.name == "mysql" else "lower(?)"
    if len(parts) == 2 and dialect.name != "mysql":
        schema_sql = "lower(?)"
    sql = (
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        f"WHERE table_schema = {schema_sql} AND table_name = {name_sql} "
        "ORDER BY ordinal_position"
    )
    return sql, params


def to_columns(rows: Iterable[Sequence[Any]]) -> list[TargetColumn]:
    return [
        TargetColumn(str(name), str(data_type).lower(), str(nullable).upper() == "YES")
        for name, data_type, nullable in rows
    ]


class SqlRunner(Protocol):
    """Runs statements against a database; `transaction` commits all or nothing."""

    def query(self, sql: str, params: Sequence[str] = ()) -> list[tuple[Any, ...]]: ...

    def run(self, statements: Sequence[str]) -> None: ...

    def transaction(self, statements: Sequence[str]) -> None: ...


@dataclass
class JvmJdbcRunner:
    """Statements over JDBC in the Spark driver's JVM (java.sql.DriverManager via py4j).

    One connection per call; `transaction` turns auto-commit off and rolls back on any
    failure, so a failed batch leaves the target as it was.
    """

    spark: SparkSession
    url: str
    description: str  # safe to log: no password
    properties: dict[str, str] = field(repr=False)
    driver: str = ""
    on_statement: Callable[[str], None] | None = None

    def _connect(self) -> Any:
        jvm: Any = self.spark.sparkContext._jvm
        props = jvm.java.util.Properties()
        for key, value in self.properties.items():
            props.setProperty(key, value)
        try:
            if self.driver:
                # Registers the driver with DriverManager through Spark's wrapper, which makes
                # a jar from spark.jars visible to DriverManager's class-loader check.
                jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverRegistry.register(
                    self.driver
                )
            return jvm.java.sql.DriverManager.getConnection(self.url, props)
        except SPARK_ERRORS as exc:
            raise SinkError(f"{self.description}: {describe_spark_error(exc)}") from exc

    def query(self, sql: str, params: Sequence[str] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            stmt = conn.prepareStatement(sql)
            for index, value in enumerate(params, start=1):
                stmt.setString(index, value)
            result = stmt.executeQuery()
            width = result.getMetaData().getColumnCount()
            rows = []
            while result.next():
                rows.append(tuple(result.getString(i) for i in range(1, width + 1)))
            return rows
        except SPARK_ERRORS as exc:
            raise SinkError(f"{self.description}: {describe_spark_error(exc)}") from exc
        finally:
            conn.close()

    def run(self, statements: Sequence[str]) -> None:
        """Each statement on its own (auto-commit): DDL that must not wait for the batch."""
        conn = self._connect()
        try:
            stmt = conn.createStatement()
            for sql in statements:
                self._execute(stmt, sql)
        except SPARK_ERRORS as exc:
            raise SinkError(f"{self.description}: {describe_spark_error(exc)}") from exc
        finally:
            conn.close()

    def transaction(self, statements: Sequence[str]) -> None:
        conn = self._connect()
        try:
            conn.setAutoCommit(False)
            stmt = conn.createStatement()
            for sql in statements:
                self._execute(stmt, sql)
            conn.commit()
        except SPARK_ERRORS as exc:
            try:
                conn.rollback()
            except SPARK_ERRORS:
                log.warning("%s: rollback failed; the server discards the transaction", self.url)
            raise SinkError(f"{self.description}: {describe_spark_error(exc)}") from exc
        finally:
            conn.close()

    def _execute(self, stmt: Any, sql: str) -> None:
        log.debug("%s: %s", self.description, sql)
        if self.on_statement:
            self.on_statement(sql)
        stmt.execute(sql)


def check_request(
    dialect: SqlDialect, table: str, mode: str, key: Sequence[str], order_by: Sequence[str]
) -> None:
    """Refuse, before anything runs, a load the spec parser would have refused too."""
    if mode not in LOAD_MODES:
        raise SinkError(f"mode must be one of {', '.join(LOAD_MODES)}, got {mode!r}")
    if mode == "upsert" and not (key and order_by):
        raise SinkError("upsert needs a key and an order_by (newest row wins)")
    try:
        dialect.quote(table)  # validates the name
    except SinkError as exc:
        raise SinkError(f"table: {exc}") from exc


def drop_quietly(runner: SqlRunner, sql: str) -> None:
    """Drop staging; a failure here is logged, never hides the error that got us here."""
    try:
        runner.run([sql])
    except SinkError as exc:
        log.warning("could not drop staging: %s", exc)


def select_columns(df: DataFrame, plan: SchemaPlan) -> DataFrame:
    """The batch with its columns renamed to the target's spelling, in plan order."""
    by_lower = {c.lower(): c for c in df.columns}
    return df.select([df[by_lower[c.lower()]].alias(c) for c in plan.columns])


_NULL_KEY_ROWS = "null_key_rows"


def observe_null_keys(df: DataFrame, key: Sequence[str]) -> tuple[DataFrame, Observation]:
    """`df` without its rows that have a NULL in a key column, and an Observation counting them.

    The count is taken by the staging write itself (no Spark job of its own); read it with
    `refuse_null_keys` once that write is done, before the load transaction. Apply this to
    the frame the write takes, above any dedupe: an observation below a shuffle loses its
    metrics when adaptive execution finds that stage empty. The rows are left out so a
    staging table whose key columns are NOT NULL (LIKE the target) still takes the batch.
    """
    by_lower = {c.lower(): c for c in df.columns}
    null_key = reduce(operator.or_, [F.col(by_lower[k.lower()]).isNull() for k in key])
    observation = Observation(f"slw_null_keys_{secrets.token_hex(6)}")
    observed = df.observe(observation, F.count(F.when(null_key, 1)).alias(_NULL_KEY_ROWS))
    return observed.filter(~null_key), observation


def refuse_null_keys(observation: Observation, key: Sequence[str], where: str) -> None:
    """Fail, before the load transaction, if the staged batch held rows with a NULL key part.

    A NULL matches no key, so an upsert would add such rows again on every rerun.
    """
    try:
        count = observation.get.get(_NULL_KEY_ROWS)
    except SPARK_ERRORS as exc:
        raise SinkError(
            f"counting NULL keys in the staged batch: {describe_spark_error(exc)}; "
            "target untouched",
            where=where,
        ) from exc
    if count is None:
        raise SinkError(
            "the staging write reported no count of NULL keys; refusing the upsert, "
            "target untouched",
            where=where,
        )
    if count:
        raise SinkError(
            f"{count} row(s) with a NULL in key column(s) {', '.join(key)}; a NULL "
            "key matches no row, so each rerun would add them again: refusing the upsert, "
            "target untouched",
            where=where,
        )
