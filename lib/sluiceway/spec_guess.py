"""What `sluiceway init` guesses about each table from the database's catalog: pure functions.

The catalog is read by `sources/db_catalog.py` into the plain rows below; everything here
is a function of those rows, so every guess can be tested without a database. Each guess
carries the reason it was made (`Guess.why`), which the written spec shows as a comment.

Numbers in statistics are in the planner's units (sources/jdbc.py): integers as
themselves, dates as days and timestamps as microseconds since 1970-01-01.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sluiceway.errors import SluicewayError
from sluiceway.spec_reader import IDENTIFIER, NAME

ColumnKind = Literal["int", "date", "timestamp", "other"]
TableKind = Literal["table", "view"]

_INT_TYPES = {"smallint", "integer", "int", "bigint", "int2", "int4", "int8", "mediumint"}
_DATE_TYPES = {"date"}
_TIMESTAMP_TYPES = {
    "timestamp",
    "timestamp without time zone",
    "timestamp with time zone",
    "timestamptz",
    "datetime",
}
# Defaults that stamp the time a row was written (PostgreSQL and MySQL/MariaDB spellings).
_NOW_DEFAULT = re.compile(
    r"now\(\)|current_timestamp|localtimestamp|clock_timestamp|statement_timestamp|"
    r"transaction_timestamp",
    re.IGNORECASE,
)
_CHANGE_WORDS = {"updated", "modified", "changed", "mtime", "updatedat", "modifiedat"}
_LAST_WORDS = {"update", "updated", "change", "changed", "modified", "modification", "edit"}
_INSERT_WORDS = {"created", "inserted", "creation", "insert", "added"}
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class ColumnStats:
    """What planner statistics say about how a column's values spread.

    PostgreSQL (`pg_stats`): `histogram` holds equal-count bucket bounds of the values not
    in `common`, which are (value, share of rows) pairs. MySQL/MariaDB: `range_rows` holds
    the optimizer's row estimates for equal-width slices from `lo` to `hi` (EXPLAIN over
    the column's index). `n_distinct` follows pg_stats: > 0 a count, < 0 minus a share of
    the rows.
    """

    source: str
    null_frac: float = 0.0
    n_distinct: float | None = None
    histogram: tuple[int, ...] = ()
    common: tuple[tuple[int, float], ...] = ()
    range_rows: tuple[float, ...] = ()
    lo: int | None = None
    hi: int | None = None


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    data_type: str  # as the catalog spells it, e.g. "timestamp with time zone", "datetime(6)"
    kind: ColumnKind
    nullable: bool = True
    default: str | None = None
    on_update: bool = False  # MySQL's ON UPDATE CURRENT_TIMESTAMP
    stats: ColumnStats | None = None


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class CatalogTable:
    schema: str
    name: str
    kind: TableKind
    columns: tuple[CatalogColumn, ...]
    primary_key: tuple[str, ...] = ()
    unique_keys: tuple[tuple[str, ...], ...] = ()
    indexed: tuple[str, ...] = ()  # columns that lead an index
    foreign_keys: tuple[ForeignKey, ...] = ()
    rows: int | None = None  # the planner's estimate; None when never analyzed
    row_bytes: float | None = None  # average bytes a row takes on disk
    stats_source: str = ""  # where `rows` comes from, e.g. "pg_class.reltuples"
    update_trigger: bool = False  # some trigger fires on UPDATE

    def column(self, name: str) -> CatalogColumn:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Guess:
    """A proposed spec value and why it was proposed."""

    value: Any
    why: str


@dataclass(frozen=True)
class Settings:
    """What the guesses are tuned by (`sluiceway init` options)."""

    max_connections: int = 4
    partition_mb: float = 128.0  # bytes of rows per Spark partition, on disk
    partition_rows: int = 1_000_000  # tables this big get partition_by on a date
    skew_ratio: float = 2.0  # a range partition this many times its fair share is skew


@dataclass(frozen=True)
class Proposal:
    """Everything init writes for one table or view."""

    table: CatalogTable
    name: str  # the spec's key, tables.<name>
    relation: str  # the spec's `table`
    primary_key: Guess | None
    mode: Guess
    split_column: Guess | None
    split_strategy: Guess | None
    rows_per_partition: Guess | None
    incremental_column: Guess | None
    partition_column: Guess | None  # a date column: with_date_partitions by month
    notes: tuple[str, ...]  # comments above the table: size, foreign keys, what was left out


def column_kind(data_type: str) -> ColumnKind:
    """The planner's kind of a catalog type: int, date, timestamp, or other (not a cursor).

    `tinyint` is left out: MySQL's tinyint(1) is read as a boolean.
    """
    base = data_type.lower().split("(")[0].strip().removesuffix(" unsigned")
    if base in _INT_TYPES:
        return "int"
    if base in _DATE_TYPES:
        return "date"
    if base in _TIMESTAMP_TYPES or base.startswith("timestamp"):
        return "timestamp"
    return "other"


def to_number(kind: ColumnKind, value: Any) -> int:
    """An int, date or timestamp value in the planner's units."""
    if kind == "int":
        return int(value)
    if kind == "date":
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        if isinstance(day, datetime):
            day = day.date()
        return (day - _EPOCH.date()).days
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def snake_name(name: str) -> str:
    """A spec key for a catalog name: CamelCase and spaces become snake_case."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_").lower()
    if not text or text[0].isdigit():
        text = f"t_{text}"
    return text


def _words(name: str) -> set[str]:
    return set(snake_name(name).split("_"))


# ---------------------------------------------------------------------------------------
# keys


def choose_key(table: CatalogTable) -> Guess | None:
    """The primary key, else a unique index over NOT NULL columns (merge matches on it)."""
    if table.primary_key and all(IDENTIFIER.match(c) for c in table.primary_key):
        return Guess(table.primary_key, "the primary key")
    not_null = {c.name for c in table.columns if not c.nullable}
    for key in sorted(table.unique_keys, key=len):
        if set(key) <= not_null and all(IDENTIFIER.match(c) for c in key):
            return Guess(key, "no primary key; a unique index over NOT NULL columns")
    return None


# ---------------------------------------------------------------------------------------
# the incremental cursor


def _change_time_name(name: str) -> bool:
    words = _words(name)
    return bool(words & _CHANGE_WORDS) or ("last" in words and bool(words & _LAST_WORDS))


def _insert_time_name(name: str) -> bool:
    return bool(_words(name) & _INSERT_WORDS)


def _now_default(column: CatalogColumn) -> bool:
    return column.default is not None and bool(_NOW_DEFAULT.search(column.default))


def _cursor_reason(table: CatalogTable, column: CatalogColumn) -> tuple[int, str] | None:
    """How sure we are that `column` records each row's last change (higher is surer)."""
    if column.kind not in ("timestamp", "date") or not IDENTIFIER.match(column.name):
        return None
    if column.on_update:
        return 4, "ON UPDATE CURRENT_TIMESTAMP: the database stamps every change"
    if _insert_time_name(column.name):
        return None
    if _change_time_name(column.name):
        reason = f"a {column.kind} named like a change time"
        if _now_default(column):
            return 3, reason + f", default {column.default}"
        return 2, reason
    if _now_default(column) and table.update_trigger:
        return 1, f"default {column.default} and an UPDATE trigger on the table (check it sets it)"
    return None


def choose_incremental(table: CatalogTable) -> tuple[Guess | None, tuple[str, ...]]:
    """The change-time column to read windows by, and notes on the candidates left out."""
    notes: list[str] = []
    ranked = []
    for column in table.columns:
        reason = _cursor_reason(table, column)
        if reason is not None:
            ranked.append((-reason[0], column.kind != "timestamp", column.name, reason[1]))
        elif column.kind in ("timestamp", "date") and _now_default(column):
            notes.append(
                f"{column.name} defaults to {column.default} but looks like an insert time: "
                "updates would be missed, so it is not the incremental_column"
            )
    if not ranked:
        return None, tuple(notes)
    _, _, name, why = min(ranked)
    if table.column(name).nullable:
        why += "; nullable: rows where it is NULL are read by full runs only"
    return Guess(name, why), tuple(notes)


# ---------------------------------------------------------------------------------------
# splitting the read


def _split_candidate(table: CatalogTable, column: CatalogColumn) -> bool:
    return column.kind in ("int", "date", "timestamp") and bool(IDENTIFIER.match(column.name))


def choose_split(table: CatalogTable, key: Guess | None, incremental: Guess | None) -> Guess | None:
    """The column whose range is cut into partitions: an integer key, else a date/timestamp.

    The change-time column is the last resort: recently changed rows crowd its top end.
    """
    cursor = incremental.value if incremental else None
    columns = {c.name: c for c in table.columns}
    key_columns = tuple(key.value) if key else ()
    if len(key_columns) == 1 and columns[key_columns[0]].kind == "int":
        return Guess(key_columns[0], "the integer key")
    indexed = set(table.indexed) | set(key_columns)

    def rank(c: CatalogColumn) -> tuple[bool, bool, bool, bool, int]:
        return (
            c.name == cursor,
            c.kind == "int",  # dates and timestamps first: they spread a composite key's rows
            c.name not in indexed,
            c.nullable,
            table.columns.index(c),
        )

    candidates = sorted(
        (c for c in table.columns if _split_candidate(table, c) and c.name in indexed), key=rank
    )
    if not candidates:
        return None
    best = candidates[0]
    what = "part of the key" if best.name in key_columns else "indexed"
    kind = {"int": "an integer", "date": "a date", "timestamp": "a timestamp"}[best.kind]
    if len(key_columns) > 1:
        why = f"composite key: {kind} column, {what}"
    else:
        reason = "no key" if not key_columns else "the key is not an integer"
        why = f"{reason}: {kind} column, {what}"
    if best.name == cursor:
        why += " (the change-time column: recently changed rows crowd its top end)"
    return Guess(best.name, why)


def _slice_shares(stats: ColumnStats, slices: int) -> tuple[float, ...] | None:
    """The share of non-NULL rows in each of `slices` equal-width slices of the value range:
    what a `range` split would put in each partition."""
    if stats.range_rows:
        total = sum(stats.range_rows)
        return tuple(r / total for r in stats.range_rows) if total > 0 else None
    values = [*stats.histogram, *(v for v, _ in stats.common)]
    if len(values) < 2:
        return None
    lo, hi = min(values), max(values)
    if hi <= lo:
        return None
    width = (hi - lo) / slices
    shares = [0.0] * slices

    def slot(value: float) -> int:
        return min(int((value - lo) / width), slices - 1)

    for value, share in stats.common:
        shares[slot(value)] += share
    buckets = len(stats.histogram) - 1
    in_histogram = max(0.0, 1.0 - stats.null_frac - sum(s for _, s in stats.common))
    for a, b in zip(stats.histogram, stats.histogram[1:], strict=False):
        mass = in_histogram / buckets
        if b <= a:
            shares[slot(a)] += mass
            continue
        for i in range(slot(a), slot(b) + 1):  # spread evenly over the bucket's width
            left, right = max(a, lo + i * width), min(b, lo + (i + 1) * width)
            shares[i] += mass * max(0.0, right - left) / (b - a)
    total = sum(shares)
    return tuple(s / total for s in shares) if total > 0 else None


def choose_strategy(column: CatalogColumn, settings: Settings) -> Guess:
    """`quantiles` when the statistics say a range split would be lopsided, else `range`."""
    stats = column.stats
    slices = settings.max_connections
    if stats is None:
        return Guess("range", "no statistics on this column to show skew")
    shares = _slice_shares(stats, slices)
    if shares is None:
        return Guess("range", f"{stats.source}: too few values to show skew")
    top = max(shares)
    spread = (
        f"{stats.source}: a range split into {slices} puts up to {top:.0%} of rows in one "
        f"partition (even: {1 / slices:.0%})"
    )
    if top * slices >= settings.skew_ratio:
        return Guess("quantiles", f"{spread}: skewed")
    return Guess("range", spread)


def _nice(number: float) -> int:
    """Rounded down to two significant digits, at least 1."""
    if number < 100:
        return max(1, int(number))
    scale = 10 ** (int(math.log10(number)) - 1)
    return int(number // scale * scale)


def choose_rows_per_partition(table: CatalogTable, settings: Settings) -> Guess | None:
    """Rows per Spark partition so that each holds about `partition_mb` of the table."""
    if not table.row_bytes or table.row_bytes <= 0:
        return None
    rows = _nice(settings.partition_mb * 1024 * 1024 / table.row_bytes)
    return Guess(
        rows,
        f"~{table.row_bytes:,.0f} bytes a row on disk: ~{settings.partition_mb:g} MiB a partition",
    )


def choose_partition_column(
    table: CatalogTable, split: Guess | None, incremental: Guess | None, settings: Settings
) -> Guess | None:
    """A NOT NULL date/timestamp to partition a large table's dataset by (by month).

    Never the change-time column: a row would move partition each time it changes.
    """
    if table.rows is None or table.rows < settings.partition_rows:
        return None
    cursor = incremental.value if incremental else None
    names = {c.name.lower() for c in table.columns}
    candidates = [
        c
        for c in table.columns
        if c.kind in ("date", "timestamp")
        and not c.nullable
        and c.name != cursor
        and not _change_time_name(c.name)
        and NAME.match(c.name)
        and not {f"{c.name}_year".lower(), f"{c.name}_month".lower()} & names
    ]
    if not candidates:
        return None
    split_name = split.value if split else None
    best = min(candidates, key=lambda c: (c.name != split_name, table.columns.index(c)))
    return Guess(
        best.name,
        f"~{table.rows:,} rows: a dataset partitioned by month of a NOT NULL {best.kind}",
    )


# ---------------------------------------------------------------------------------------
# the whole table


def propose(table: CatalogTable, name: str, relation: str, settings: Settings) -> Proposal:
    """Every guess for one table or view."""
    notes = list(_size_notes(table))
    notes += [
        f"foreign key ({', '.join(fk.columns)}) -> {fk.ref_table} ({', '.join(fk.ref_columns)})"
        for fk in table.foreign_keys
    ]
    key = choose_key(table)
    incremental, cursor_notes = choose_incremental(table)
    notes += cursor_notes
    if key is None:
        mode = Guess(
            "overwrite",
            ("a view" if table.kind == "view" else "no primary key or unique NOT NULL index")
            + ": read whole and replaced each run",
        )
        if incremental is not None:
            notes.append(
                f"{incremental.value} looks like a change time ({incremental.why}), but without "
                "a key changed rows cannot be matched: add primary_key and incremental_column "
                "together to read only changes"
            )
            incremental = None
    elif incremental is None:
        mode = Guess("overwrite", "no change-time column: each run reads the whole table")
    else:
        mode = Guess("merge", "upsert by key; rows deleted at the source stay in the dataset")
    split = choose_split(table, key, incremental) if table.rows is not None else None
    strategy = choose_strategy(table.column(split.value), settings) if split else None
    return Proposal(
        table=table,
        name=name,
        relation=relation,
        primary_key=key,
        mode=mode,
        split_column=split,
        split_strategy=strategy,
        rows_per_partition=choose_rows_per_partition(table, settings) if split else None,
        incremental_column=incremental,
        partition_column=choose_partition_column(table, split, incremental, settings),
        notes=tuple(notes),
    )


def _size_notes(table: CatalogTable) -> tuple[str, ...]:
    if table.kind == "view":
        return ("no statistics for a view: read in one partition",)
    if table.rows is None:
        return ("never analyzed: no row estimate, read in one partition (run ANALYZE)",)
    return (f"~{table.rows:,} rows ({table.stats_source})",)


def spec_names(tables: list[CatalogTable]) -> dict[str, str]:
    """A unique spec key for each catalog table name."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for table in tables:
        base = snake_name(table.name)
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}_{n}", n + 1
        used.add(candidate)
        names[table.name] = candidate
    return names


def select_tables(
    tables: list[CatalogTable], only: list[str] | None, exclude: list[str] | None
) -> tuple[list[CatalogTable], list[str]]:
    """The tables `--tables`/`--exclude` keep, and notes on those left out for their names.

    A name neither option can find is an error: a typo must not drop a table silently.
    """
    known = {t.name for t in tables}
    for option, names in (("--tables", only), ("--exclude", exclude)):
        unknown = [n for n in names or () if n not in known]
        if unknown:
            raise SluicewayError(
                f"init: {option}: no table or view named {', '.join(map(repr, unknown))} "
                f"(have: {', '.join(sorted(known)) or 'none'})"
            )
    kept, notes = [], []
    for table in tables:
        if (only and table.name not in only) or (exclude and table.name in exclude):
            continue
        if not IDENTIFIER.match(table.name):
            notes.append(f"skipped {table.name!r}: not a plain name; read it with `query = ...`")
            continue
        kept.append(table)
    return kept, notes
