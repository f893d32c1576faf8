"""Read a database's own catalog for `sluiceway init`, laptop-side, with psycopg or pymysql.

Only the catalog and the planner's statistics are read, never the tables themselves:
PostgreSQL's pg_catalog (pg_class.reltuples, pg_index, pg_constraint, pg_trigger) and
pg_stats; MySQL/MariaDB's information_schema (TABLES.TABLE_ROWS, COLUMNS, STATISTICS,
KEY_COLUMN_USAGE, TRIGGERS) and, for columns that lead an index, the optimizer's row
estimates for equal-width slices (EXPLAIN with that index: index dives, no scan). MySQL's
histograms (COLUMN_STATISTICS) and MariaDB's (mysql.column_stats) need privileges an
application user rarely has, and exist only after an explicit ANALYZE, so they are not used.

The rows come back as `spec_guess` values; the guessing is done there. The drivers are
the `init` extra: never needed on a cluster.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sluiceway.errors import SluicewayError, SourceError
from sluiceway.sources.credentials import Credentials
from sluiceway.spec_guess import (
    CatalogColumn,
    CatalogTable,
    ColumnKind,
    ColumnStats,
    ForeignKey,
    column_kind,
    to_number,
)

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1)
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def describe(engine: str, creds: Credentials) -> str:
    """engine host:port/database: safe to print (no credential)."""
    port = creds.port or _DEFAULT_PORTS[engine]
    return f"{engine} {creds.host}:{port}/{creds.database or ''}"


def read_catalog(
    engine: str, creds: Credentials, *, schema: str, slices: int
) -> list[CatalogTable]:
    """Every table and view of `schema` (PostgreSQL) or of the database (MySQL).

    `slices` is how many partitions a range split would make: MySQL's row estimates are
    asked for that many equal-width slices of each indexed column.
    """
    where = describe(engine, creds)
    log.info("reading the catalog of %s", where)
    if engine == "postgresql":
        with _driver_errors(where, "psycopg"):
            return _postgres(creds, schema)
    with _driver_errors(where, "pymysql"):
        return _mysql(creds, slices)


@contextmanager
def _driver_errors(where: str, driver: str) -> Iterator[None]:
    """A missing driver or a database error as one SourceError naming the database."""
    try:
        module = __import__(driver)
    except ImportError as exc:
        raise SluicewayError(
            f"sluiceway init needs {driver}: pip install 'sluiceway[init]'"
        ) from exc
    error_class = module.Error if driver == "psycopg" else module.MySQLError
    try:
        yield
    except error_class as exc:
        raise SourceError(f"{where}: cannot read the catalog: {str(exc).strip()}") from exc


# ---------------------------------------------------------------------------------------
# PostgreSQL

_PG_TABLES = """
SELECT c.oid, c.relname, c.relkind,
       CASE WHEN c.relkind = 'p' THEN (
         SELECT sum(greatest(ch.reltuples, 0)) FROM pg_inherits i
         JOIN pg_class ch ON ch.oid = i.inhrelid WHERE i.inhparent = c.oid)
       ELSE c.reltuples END::float8,
       CASE WHEN c.relkind = 'p' THEN (
         SELECT sum(pg_table_size(i.inhrelid)) FROM pg_inherits i WHERE i.inhparent = c.oid)
       ELSE pg_table_size(c.oid) END::float8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
ORDER BY c.relname
"""
_PG_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
# Plain indexes only: a partial or expression index is no key and no split column.
_PG_INDEXES = """
SELECT i.indrelid, i.indisprimary, i.indisunique,
       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE k.ord <= i.indnkeyatts ORDER BY k.ord)
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indisvalid
"""
_PG_FOREIGN_KEYS = """
SELECT con.conrelid,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       fn.nspname || '.' || fc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord)
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class fc ON fc.oid = con.confrelid JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.contype = 'f' AND n.nspname = %s
ORDER BY con.conname
"""
# tgtype bit 16: the trigger fires on UPDATE.
_PG_UPDATE_TRIGGERS = """
SELECT DISTINCT t.tgrelid FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND NOT t.tgisinternal AND (t.tgtype & 16) <> 0
"""
_PG_STATS = """
SELECT tablename, attname, inherited, null_frac, n_distinct, most_common_vals::text,
       most_common_freqs, histogram_bounds::text
FROM pg_stats WHERE schemaname = %s
"""


def _postgres(creds: Credentials, schema: str) -> list[CatalogTable]:
    import psycopg

    with psycopg.connect(
        host=creds.host,
        port=creds.port or _DEFAULT_PORTS["postgresql"],
        dbname=creds.database,
        user=creds.user,
        password=creds.password,
        connect_timeout=10,
        application_name="sluiceway-init",
        options="-c TimeZone=UTC",
    ) as conn:
        conn.read_only = True

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql, (schema,)).fetchall()

        relations = rows(_PG_TABLES)
        columns = defaultdict(list)
        for oid, name, data_type, not_null, default in rows(_PG_COLUMNS):
            columns[oid].append((name, data_type, not_null, default))
        indexes = defaultdict(list)
        for oid, primary, unique, names in rows(_PG_INDEXES):
            indexes[oid].append((primary, unique, tuple(names)))
        foreign = defaultdict(list)
        for oid, cols, ref_table, ref_cols in rows(_PG_FOREIGN_KEYS):
            foreign[oid].append(ForeignKey(tuple(cols), ref_table, tuple(ref_cols)))
        triggers = {oid for (oid,) in rows(_PG_UPDATE_TRIGGERS)}
        # A partitioned table's statistics are those over its partitions (`inherited`).
        stats = {(t, c, inherited): row for t, c, inherited, *row in rows(_PG_STATS)}
    tables = []
    for oid, name, relkind, reltuples, size in relations:
        kinds = [(c[0], column_kind(c[1])) for c in columns[oid]]
        cols = tuple(
            CatalogColumn(
                name=col,
                data_type=data_type,
                kind=kind,
                nullable=not not_null,
                default=default,
                stats=_pg_column_stats(kind, stats.get((name, col, relkind == "p"))),
            )
            for (col, data_type, not_null, default), (_, kind) in zip(
                columns[oid], kinds, strict=True
            )
        )
        is_view = relkind == "v"
        analyzed = not is_view and reltuples is not None and reltuples >= 0
        estimate = int(reltuples) if analyzed else None
        tables.append(
            CatalogTable(
                schema=schema,
                name=name,
                kind="view" if is_view else "table",
                columns=cols,
                primary_key=next((c for p, _, c in indexes[oid] if p), ()),
                unique_keys=tuple(c for p, u, c in indexes[oid] if u and not p),
                indexed=tuple(dict.fromkeys(c[0] for _, _, c in indexes[oid] if c)),
                foreign_keys=tuple(foreign[oid]),
                rows=estimate,
                row_bytes=size / estimate if estimate and size else None,
                stats_source="pg_class.reltuples",
                update_trigger=oid in triggers,
            )
        )
    return tables


def _pg_column_stats(kind: ColumnKind, row: list[Any] | None) -> ColumnStats | None:
    """pg_stats of one int/date/timestamp column as numbers (others: None)."""
    if row is None or kind == "other":
        return None
    null_frac, n_distinct, common_text, common_freqs, histogram_text = row
    values = _numbers(kind, parse_pg_array(common_text))
    return ColumnStats(
        source="pg_stats",
        null_frac=float(null_frac or 0.0),
        n_distinct=float(n_distinct) if n_distinct is not None else None,
        histogram=tuple(v for v in _numbers(kind, parse_pg_array(histogram_text)) if v is not None),
        common=tuple(
            (v, float(f)) for v, f in zip(values, common_freqs or [], strict=False) if v is not None
        ),
    )


def _numbers(kind: ColumnKind, texts: list[str]) -> list[int | None]:
    """Values as planner numbers; None for what has none (infinity, NULL)."""
    out: list[int | None] = []
    for text in texts:
        try:
            out.append(to_number(kind, text))
        except ValueError:
            out.append(None)
    return out


def parse_pg_array(text: str | None) -> list[str]:
    """The elements of a PostgreSQL array literal: `{1,2}`, `{"2024-01-01 10:00:00+00",...}`."""
    if not text or text in ("{}", "NULL"):
        return []
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text.strip()[1:-1]:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


# ---------------------------------------------------------------------------------------
# MySQL / MariaDB

_MY_TABLES = """
SELECT TABLE_NAME, TABLE_TYPE, TABLE_ROWS, AVG_ROW_LENGTH FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME
"""
_MY_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION
"""
# A prefix index (SUB_PART) is unique only on the prefix: no key, no split column.
_MY_INDEXES = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""
_MY_FOREIGN_KEYS = """
SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME,
       REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION
"""
_MY_UPDATE_TRIGGERS = """
SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS
WHERE EVENT_OBJECT_SCHEMA = %s AND EVENT_MANIPULATION = 'UPDATE'
"""


def _mysql(creds: Credentials, slices: int) -> list[CatalogTable]:
    import pymysql

    database = creds.database or ""
    conn = pymysql.connect(
        host=creds.host,
        port=creds.port or _DEFAULT_PORTS["mysql"],
        user=creds.user,
        password=creds.password,
        database=database,
        charset="utf8mb4",
        connect_timeout=10,
    )
    try:
        with conn.cursor() as cur:
            catalog = _MysqlCatalog.read(cur, database)
            return [
                catalog.table(cur, name, table_type, table_rows, avg_row, slices)
                for name, table_type, table_rows, avg_row in catalog.relations
            ]
    finally:
        conn.close()


@dataclass
class _MysqlCatalog:
    """information_schema's rows for one database, grouped by table."""

    database: str
    relations: list[tuple[Any, ...]]
    columns: dict[str, list[CatalogColumn]]
    # table -> index -> (unique, columns); a prefix-indexed column is None
    indexes: dict[str, dict[str, tuple[bool, list[str | None]]]]
    foreign_keys: dict[str, list[ForeignKey]]
    update_triggers: set[str]

    @staticmethod
    def read(cur: Any, database: str) -> _MysqlCatalog:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            cur.execute(sql, (database,))
            return list(cur.fetchall())

        columns: dict[str, list[CatalogColumn]] = defaultdict(list)
        for table, *column in rows(_MY_COLUMNS):
            columns[table].append(_mysql_column(*column))
        indexes: dict[str, dict[str, tuple[bool, list[str | None]]]] = defaultdict(dict)
        for table, index, non_unique, column, sub_part in rows(_MY_INDEXES):
            _, names = indexes[table].setdefault(index, (not non_unique, []))
            names.append(column if sub_part is None else None)
        parts: dict[tuple[str, str, str], list[tuple[str, str]]] = defaultdict(list)
        for table, name, column, ref_schema, ref_table, ref_column in rows(_MY_FOREIGN_KEYS):
            parts[(table, name, f"{ref_schema}.{ref_table}")].append((column, ref_column))
        foreign: dict[str, list[ForeignKey]] = defaultdict(list)
        for (table, _, ref_table), pairs in parts.items():
            foreign[table].append(
                ForeignKey(tuple(c for c, _ in pairs), ref_table, tuple(r for _, r in pairs))
            )
        return _MysqlCatalog(
            database=database,
            relations=rows(_MY_TABLES),
            columns=columns,
            indexes=indexes,
            foreign_keys=foreign,
            update_triggers={table for (table,) in rows(_MY_UPDATE_TRIGGERS)},
        )

    def table(
        self, cur: Any, name: str, table_type: str, table_rows: Any, avg_row: Any, slices: int
    ) -> CatalogTable:
        is_view = table_type == "VIEW"
        indexes = self.indexes[name]
        complete = {  # indexes over whole columns, by name
            index: tuple(c for c in names if c is not None)
            for index, (_, names) in indexes.items()
            if None not in names
        }
        estimate = None if is_view or table_rows is None else int(table_rows)
        columns = tuple(self.columns[name])
        if estimate:
            columns = _with_range_rows(cur, name, columns, complete, slices)
        return CatalogTable(
            schema=self.database,
            name=name,
            kind="view" if is_view else "table",
            columns=columns,
            primary_key=complete.get("PRIMARY", ()),
            unique_keys=tuple(
                complete[index]
                for index, (unique, _) in indexes.items()
                if unique and index != "PRIMARY" and index in complete
            ),
            indexed=tuple(dict.fromkeys(names[0] for names in complete.values() if names)),
            foreign_keys=tuple(self.foreign_keys[name]),
            rows=estimate,
            row_bytes=float(avg_row) if avg_row else None,
            stats_source="information_schema.TABLES.TABLE_ROWS",
            update_trigger=name in self.update_triggers,
        )


def _mysql_column(
    name: str,
    data_type: str,
    column_type: str,
    nullable: str,
    default: str | None,
    extra: str | None,
) -> CatalogColumn:
    return CatalogColumn(
        name=name,
        data_type=column_type,
        kind=column_kind(data_type),
        nullable=nullable == "YES",
        # MariaDB quotes literal defaults and gives an expression as is; NULL means none.
        default=None if default in (None, "NULL") else default,
        on_update="on update" in (extra or "").lower(),
    )


def _with_range_rows(
    cur: Any,
    table: str,
    columns: tuple[CatalogColumn, ...],
    indexes: dict[str, tuple[str, ...]],
    slices: int,
) -> tuple[CatalogColumn, ...]:
    """Columns that lead an index, with the optimizer's row estimate for each slice."""
    leading: dict[str, str] = {}
    for name, cols in sorted(indexes.items(), key=lambda item: item[0] != "PRIMARY"):
        if cols:
            leading.setdefault(cols[0], name)
    out = []
    for column in columns:
        index = leading.get(column.name)
        if index is None or column.kind == "other":
            out.append(column)
            continue
        stats = _range_estimates(cur, table, column, index, slices)
        out.append(column if stats is None else replace(column, stats=stats))
    return tuple(out)


def _range_estimates(
    cur: Any, table: str, column: CatalogColumn, index: str, slices: int
) -> ColumnStats | None:
    """EXPLAIN's `rows` for `slices` equal-width slices, cut as the planner's range split
    cuts them. The bounds are the index's first and last entries (no scan)."""
    col, relation = _quote(column.name), _quote(table)
    cur.execute(f"SELECT MIN({col}), MAX({col}) FROM {relation}")
    lo_value, hi_value = cur.fetchone()
    if lo_value is None or hi_value is None:
        return None
    kind = column.kind
    lo, hi = to_number(kind, lo_value), to_number(kind, hi_value)
    if hi <= lo:
        return None
    cuts = [lo + (hi - lo) * i // slices for i in range(1, slices)]
    bounds = list(zip([lo, *cuts], [*cuts, hi], strict=True))
    estimates = []
    for i, (a, b) in enumerate(bounds):
        upper = "<=" if i == len(bounds) - 1 else "<"
        cur.execute(
            f"EXPLAIN SELECT 1 FROM {relation} FORCE INDEX ({_quote(index)}) "
            f"WHERE {col} >= %s AND {col} {upper} %s",
            (_from_number(kind, a), _from_number(kind, b)),
        )
        names = [d[0].lower() for d in cur.description]
        estimates.append(float(cur.fetchone()[names.index("rows")] or 0))
    return ColumnStats(
        source=f"EXPLAIN row estimates over index {index}",
        range_rows=tuple(estimates),
        lo=lo,
        hi=hi,
    )


def _from_number(kind: ColumnKind, number: int) -> int | date | datetime:
    if kind == "int":
        return number
    if kind == "date":
        return _EPOCH.date() + timedelta(days=number)
    return _EPOCH + timedelta(microseconds=number)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
