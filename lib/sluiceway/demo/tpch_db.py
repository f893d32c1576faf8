"""TPC-H demo data in PostgreSQL: generate with tpchgen-cli, bulk load with COPY, mutate.

Dev and demo tooling for the example pipelines, the integration tests and the benchmarks.
The pipeline runtime never imports this module; psycopg is imported inside the functions
that need it (the `demo` extra).

Every table gets `updated_at timestamptz NOT NULL DEFAULT now()`. Loaded rows carry distinct
times one minute apart before LOADED_AT, in file order, so that runs are reproducible and an
overlap window re-reads only a handful of them (not the whole table, as one shared load time
would); `mutate` stamps what it inserts or changes with
one transaction-wide time strictly later than any existing updated_at: the shape incremental
extraction by watermark expects.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluiceway.errors import SluicewayError

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

LOADED_AT = datetime(2024, 1, 1, tzinfo=UTC)
"""Upper bound of loaded rows' updated_at (row n of a file gets LOADED_AT - n minutes);
earlier than any mutation."""

# Column name -> PostgreSQL type, in file order; the TPC-H spec types (section 1.4). Order
# keys are bigint because they pass 2^31 from scale factor ~350; the other keys stay integer.
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "region": (
        ("r_regionkey", "integer"),
        ("r_name", "char(25)"),
        ("r_comment", "varchar(152)"),
    ),
    "nation": (
        ("n_nationkey", "integer"),
        ("n_name", "char(25)"),
        ("n_regionkey", "integer"),
        ("n_comment", "varchar(152)"),
    ),
    "supplier": (
        ("s_suppkey", "integer"),
        ("s_name", "char(25)"),
        ("s_address", "varchar(40)"),
        ("s_nationkey", "integer"),
        ("s_phone", "char(15)"),
        ("s_acctbal", "numeric(15,2)"),
        ("s_comment", "varchar(101)"),
    ),
    "customer": (
        ("c_custkey", "integer"),
        ("c_name", "varchar(25)"),
        ("c_address", "varchar(40)"),
        ("c_nationkey", "integer"),
        ("c_phone", "char(15)"),
        ("c_acctbal", "numeric(15,2)"),
        ("c_mktsegment", "char(10)"),
        ("c_comment", "varchar(117)"),
    ),
    "part": (
        ("p_partkey", "integer"),
        ("p_name", "varchar(55)"),
        ("p_mfgr", "char(25)"),
        ("p_brand", "char(10)"),
        ("p_type", "varchar(25)"),
        ("p_size", "integer"),
        ("p_container", "char(10)"),
        ("p_retailprice", "numeric(15,2)"),
        ("p_comment", "varchar(23)"),
    ),
    "partsupp": (
        ("ps_partkey", "integer"),
        ("ps_suppkey", "integer"),
        ("ps_availqty", "integer"),
        ("ps_supplycost", "numeric(15,2)"),
        ("ps_comment", "varchar(199)"),
    ),
    "orders": (
        ("o_orderkey", "bigint"),
        ("o_custkey", "integer"),
        ("o_orderstatus", "char(1)"),
        ("o_totalprice", "numeric(15,2)"),
        ("o_orderdate", "date"),
        ("o_orderpriority", "char(15)"),
        ("o_clerk", "char(15)"),
        ("o_shippriority", "integer"),
        ("o_comment", "varchar(79)"),
    ),
    "lineitem": (
        ("l_orderkey", "bigint"),
        ("l_partkey", "integer"),
        ("l_suppkey", "integer"),
        ("l_linenumber", "integer"),
        ("l_quantity", "numeric(15,2)"),
        ("l_extendedprice", "numeric(15,2)"),
        ("l_discount", "numeric(15,2)"),
        ("l_tax", "numeric(15,2)"),
        ("l_returnflag", "char(1)"),
        ("l_linestatus", "char(1)"),
        ("l_shipdate", "date"),
        ("l_commitdate", "date"),
        ("l_receiptdate", "date"),
        ("l_shipinstruct", "char(25)"),
        ("l_shipmode", "char(10)"),
        ("l_comment", "varchar(44)"),
    ),
}

PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "region": ("r_regionkey",),
    "nation": ("n_nationkey",),
    "supplier": ("s_suppkey",),
    "customer": ("c_custkey",),
    "part": ("p_partkey",),
    "partsupp": ("ps_partkey", "ps_suppkey"),
    "orders": ("o_orderkey",),
    "lineitem": ("l_orderkey", "l_linenumber"),
}

# The tables the demo pipelines extract incrementally by updated_at.
UPDATED_AT_INDEXED = ("customer", "orders", "lineitem")

_COPY_CHUNK = 1 << 20
_LOAD_WORKERS = 4

# TPC-H spec 4.2.3 value domains, used for realistic new rows.
_CURRENT_DATE = date(1995, 6, 17)
_PRIORITIES = ("1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW")
_INSTRUCTIONS = ("DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN")
_MODES = ("REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB")
_WORDS = ("furiously", "careful", "blithely", "ironic", "final", "regular", "pending", "deposits")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class MutationSummary:
    """What one `mutate` call inserted and changed, all stamped updated_at = `at`."""

    new_order_keys: tuple[int, ...]
    updated_order_keys: tuple[int, ...]
    new_lineitems: int
    updated_lineitems: int
    at: datetime


# --------------------------------------------------------------------------------------------
# generate
# --------------------------------------------------------------------------------------------


def scale_dir_name(scale: float) -> str:
    """The cache directory for one scale factor: sf1, sf0.01, ..."""
    return f"sf{scale:g}"


def generate(scale: float, out_dir: Path) -> dict[str, Path]:
    """Generate the eight TPC-H tables as CSV under out_dir/sf<scale>/, once per scale.

    Files are `<table>.csv` with a header row. A directory is only published (renamed into
    place, then marked complete) once tpchgen-cli succeeded, so an interrupted run is redone.
    """
    if scale <= 0:
        raise SluicewayError(f"TPC-H scale factor must be positive, got {scale}")
    out_dir = Path(out_dir)
    target = out_dir / scale_dir_name(scale)
    files = {table: target / f"{table}.csv" for table in TABLES}
    marker = target / ".complete"
    if marker.exists() and all(path.is_file() for path in files.values()):
        log.info("TPC-H scale %s: using cached files in %s", scale, target)
        return files

    exe = _tpchgen_executable()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=out_dir))
    # One file per table: the loader streams one COPY per table, and tpchgen-cli already
    # generates a single file on all threads.
    threads = min(os.cpu_count() or 1, 16)
    cmd = [
        exe,
        *_csv_format_args(exe),
        "--scale-factor",
        str(scale),
        "--output-dir",
        str(staging),
        "--num-threads",
        str(threads),
    ]
    log.info("TPC-H scale %s: %s", scale, " ".join(cmd))
    try:
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise SluicewayError(f"cannot run {exe}: {exc}") from exc
        if result.returncode != 0:
            raise SluicewayError(
                f"tpchgen-cli failed with exit code {result.returncode} for scale {scale}: "
                + (result.stderr.strip() or result.stdout.strip())[-2000:]
            )
        missing = [t for t in TABLES if not (staging / f"{t}.csv").is_file()]
        if missing:
            raise SluicewayError(f"tpchgen-cli did not write {', '.join(missing)} under {staging}")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    marker.write_text(f"scale={scale}\n")
    return files


def _tpchgen_executable() -> str:
    # The venv's bin directory is not on PATH when its python is run without activation.
    found = shutil.which("tpchgen-cli") or shutil.which(
        "tpchgen-cli", path=str(Path(sys.executable).parent)
    )
    if found is None:
        raise SluicewayError(
            "tpchgen-cli not found on PATH or next to the Python interpreter; "
            "install it with `pip install 'sluiceway[demo]'` (or `pip install tpchgen-cli`)"
        )
    return found


def _csv_format_args(exe: str) -> list[str]:
    """CSV output: the `csv` subcommand from 4.0 (which dropped --format), --format before."""
    try:
        version = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, check=False
        ).stdout
    except OSError as exc:
        raise SluicewayError(f"cannot run {exe}: {exc}") from exc
    words = version.split()
    major = words[-1].split(".")[0] if words else ""
    if major.isdigit() and int(major) < 4:
        return ["--format=csv"]
    return ["csv"]


# --------------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------------


def load(conninfo: str, scale: float, data_dir: Path, schema: str = "public") -> dict[str, int]:
    """(Re)create the TPC-H tables in `schema` and bulk load scale `scale` with COPY.

    `data_dir` is the cache `generate` writes to (files are generated first if missing).
    Each table is dropped, created, loaded with COPY FREEZE, given its primary key (and an
    updated_at index for customer, orders, lineitem) in one transaction, then analyzed.
    Returns the number of rows loaded per table.
    """
    files = generate(scale, data_dir)
    for table, path in files.items():
        _check_header(table, path)

    with _connect(conninfo, autocommit=True) as conn:
        conn.execute(_sql().SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_ident(schema)))

    # Largest first so the long COPY of lineitem starts at once.
    order = sorted(files, key=lambda t: files[t].stat().st_size, reverse=True)
    with ThreadPoolExecutor(max_workers=_LOAD_WORKERS, thread_name_prefix="tpch-load") as pool:
        futures = {t: pool.submit(_load_table, conninfo, schema, t, files[t]) for t in order}
        counts = {t: futures[t].result() for t in TABLES}
    log.info("TPC-H scale %s loaded into schema %s: %s", scale, schema, counts)
    return counts


def _check_header(table: str, path: Path) -> None:
    with path.open("r", encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    expected = [name for name, _ in TABLES[table]]
    if header != expected:
        raise SluicewayError(
            f"{path}: header {header} does not match the {table} columns {expected}"
        )


def _load_table(conninfo: str, schema: str, table: str, path: Path) -> int:
    sql = _sql()
    qualified = _ident(schema, table)
    columns = [name for name, _ in TABLES[table]]
    column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {} NOT NULL").format(sql.Identifier(name), sql.SQL(pg_type))
        for name, pg_type in TABLES[table]
    )
    with _connect(conninfo) as conn, conn.transaction():
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(qualified))
        # Loaded rows take LOADED_AT - n minutes through the column default; only after
        # the load does the default become now().
        load_seq = _ident(schema, f"{table}_load_seq")
        conn.execute(sql.SQL("DROP SEQUENCE IF EXISTS {}").format(load_seq))
        conn.execute(sql.SQL("CREATE SEQUENCE {}").format(load_seq))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} ({}, updated_at timestamptz NOT NULL"
                " DEFAULT {} - nextval({}) * interval '1 minute')"
            ).format(
                qualified,
                definitions,
                sql.Literal(LOADED_AT),
                sql.Literal(f"{schema}.{table}_load_seq"),
            )
        )
        with conn.cursor() as cur:
            # FREEZE: the table was created in this transaction, so rows can be written
            # frozen and later reads need not set hint bits (rewrite every page) first.
            copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, FREEZE true)").format(
                qualified, column_list
            )
            with path.open("rb") as handle, cur.copy(copy_sql) as copy:
                handle.readline()  # header, checked by _check_header
                while chunk := handle.read(_COPY_CHUNK):
                    copy.write(chunk)
            rows = cur.rowcount
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN updated_at SET DEFAULT now()").format(qualified)
        )
        conn.execute(sql.SQL("DROP SEQUENCE {}").format(load_seq))
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
                qualified, sql.SQL(", ").join(sql.Identifier(c) for c in PRIMARY_KEYS[table])
            )
        )
        if table in UPDATED_AT_INDEXED:
            conn.execute(
                sql.SQL("CREATE INDEX {} ON {} (updated_at)").format(
                    sql.Identifier(f"{table}_updated_at_idx"), qualified
                )
            )
    with _connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("ANALYZE {}").format(qualified))
        if rows < 0:  # psycopg reports -1 when the server sent no row count
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(qualified)).fetchone()
            rows = int(row[0]) if row else 0
    log.info("loaded %s.%s: %s rows", schema, table, rows)
    return rows


# --------------------------------------------------------------------------------------------
# mutate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    linenumber: int
    partkey: int
    suppkey: int
    quantity: Decimal
    extendedprice: Decimal
    discount: Decimal
    tax: Decimal
    linestatus: str


def mutate(
    conninfo: str,
    new_orders: int,
    updated_orders: int,
    seed: int = 0,
    schema: str = "public",
) -> MutationSummary:
    """Insert `new_orders` orders and change `updated_orders` existing ones, in one transaction.

    New orders take keys above the current maximum, an existing customer, an o_orderdate in
    the loaded date range and 1-7 line items priced from existing part/supplier pairs. Updated
    orders (chosen by `seed`) flip their status (open -> shipped, shipped -> reopened), and
    each of their line items gets a new quantity with a consistent l_extendedprice and the
    new l_linestatus; o_totalprice is recomputed. Every inserted or changed row gets
    updated_at = `at`, strictly later than any updated_at before. With the same data and
    seed the same keys are chosen and the same values written.
    """
    if new_orders < 0 or updated_orders < 0:
        raise SluicewayError(
            f"new_orders and updated_orders must be >= 0, got {new_orders} and {updated_orders}"
        )
    sql = _sql()
    orders = _ident(schema, "orders")
    lineitem = _ident(schema, "lineitem")
    customer = _ident(schema, "customer")
    rng = random.Random(seed)

    with _connect(conninfo) as conn, conn.transaction(), conn.cursor() as cur:
        # Blocks concurrent writers (a second mutate) but not readers: the key range and
        # the chosen orders cannot move under us.
        cur.execute(
            sql.SQL("LOCK TABLE {}, {} IN SHARE ROW EXCLUSIVE MODE").format(orders, lineitem)
        )
        cur.execute(
            sql.SQL(
                "SELECT count(*), min(o_orderkey), max(o_orderkey),"
                " min(o_orderdate), max(o_orderdate), max(updated_at) FROM {}"
            ).format(orders)
        )
        n_orders, min_key, max_key, min_date, max_date, orders_max_ts = _one(cur)
        if n_orders == 0:
            raise SluicewayError(f"{schema}.orders is empty: load() the TPC-H data first")
        if updated_orders > n_orders:
            raise SluicewayError(
                f"cannot update {updated_orders} orders: {schema}.orders has {n_orders}"
            )
        cur.execute(
            sql.SQL("SELECT min(l_orderkey), max(l_orderkey), max(updated_at) FROM {}").format(
                lineitem
            )
        )
        min_line_key, max_line_key, lineitem_max_ts = _one(cur)
        if new_orders and max_line_key is None:
            raise SluicewayError(f"{schema}.lineitem is empty: load() the TPC-H data first")
        cur.execute("SELECT now(), clock_timestamp()")
        now, clock = _one(cur)
        latest = max(ts for ts in (orders_max_ts, lineitem_max_ts) if ts is not None)
        at: datetime = max(now, latest + timedelta(microseconds=1))
        if at > clock:
            # A clock behind the newest updated_at: still strictly later, but say so.
            log.warning("updated_at %s is ahead of the server clock %s", at, clock)

        m = _Mutation(cur, orders, lineitem, customer, rng, seed, at)
        updated_keys = _pick_existing_orders(m, updated_orders, n_orders, (min_key, max_key))
        updated_lines = _update_orders(m, updated_keys)

        new_keys = list(range(max_key + 1, max_key + 1 + new_orders))
        new_lines = _insert_orders(m, new_keys, (min_date, max_date), (min_line_key, max_line_key))

    summary = MutationSummary(
        new_order_keys=tuple(new_keys),
        updated_order_keys=tuple(updated_keys),
        new_lineitems=new_lines,
        updated_lineitems=updated_lines,
        at=at,
    )
    log.info(
        "mutated %s: %s new orders (%s lines), %s updated orders (%s lines) at %s",
        schema,
        new_orders,
        new_lines,
        updated_orders,
        updated_lines,
        at,
    )
    return summary


@dataclass(frozen=True)
class _Mutation:
    """One mutate() transaction: its cursor, the tables, the seeded choices, its updated_at."""

    cur: psycopg.Cursor[Any]
    orders: Any
    lineitem: Any
    customer: Any
    rng: random.Random
    seed: int
    at: datetime


def _pick_existing_orders(
    m: _Mutation, count: int, n_orders: int, key_range: tuple[int, int]
) -> list[int]:
    """`count` distinct existing order keys, determined by the data and the seed."""
    cur, orders, rng, seed = m.cur, m.orders, m.rng, m.seed
    sql = _sql()
    if count == 0:
        return []
    if 2 * count > n_orders:
        # Most of the table: rank every key by a seeded hash (one scan and a top-N sort).
        cur.execute(
            sql.SQL(
                "SELECT o_orderkey FROM {} ORDER BY md5(o_orderkey::text || ':' || %s::text),"
                " o_orderkey LIMIT %s"
            ).format(orders),
            (seed, count),
        )
        return sorted(row[0] for row in cur.fetchall())
    # A few: probe random points of the (sparse) key range for the next existing key, so
    # only the primary key index is read.
    picked: dict[int, None] = {}
    while len(picked) < count:
        probes = [rng.randint(*key_range) for _ in range(2 * (count - len(picked)) + 8)]
        cur.execute(
            sql.SQL(
                "SELECT (SELECT o_orderkey FROM {} WHERE o_orderkey >= t.p"
                " ORDER BY o_orderkey LIMIT 1)"
                " FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(p, i) ORDER BY t.i"
            ).format(orders),
            (probes,),
        )
        for (key,) in cur.fetchall():
            if key is not None and len(picked) < count:
                picked.setdefault(key)
    return sorted(picked)


def _line_total(lines: Sequence[_Line]) -> Decimal:
    """o_totalprice per TPC-H: sum(extendedprice * (1 + tax) * (1 - discount)), to the cent."""
    total = sum(
        (line.extendedprice * (1 + line.tax) * (1 - line.discount) for line in lines),
        Decimal(0),
    )
    return total.quantize(_CENT)


def _order_status(lines: Sequence[_Line]) -> str:
    statuses = {line.linestatus for line in lines}
    return statuses.pop() if len(statuses) == 1 else "P"


def _update_orders(m: _Mutation, keys: Sequence[int]) -> int:
    cur, orders, lineitem, rng, at = m.cur, m.orders, m.lineitem, m.rng, m.at
    if not keys:
        return 0
    sql = _sql()
    cur.execute(
        sql.SQL(
            "SELECT o_orderkey, o_orderstatus, o_totalprice FROM {}"
            " WHERE o_orderkey = ANY(%s) ORDER BY o_orderkey"
        ).format(orders),
        (list(keys),),
    )
    before = {key: (status, total) for key, status, total in cur.fetchall()}
    cur.execute(
        sql.SQL(
            "SELECT l_orderkey, l_linenumber, l_partkey, l_suppkey, l_quantity, l_extendedprice,"
            " l_discount, l_tax, l_linestatus FROM {}"
            " WHERE l_orderkey = ANY(%s) ORDER BY l_orderkey, l_linenumber"
        ).format(lineitem),
        (list(keys),),
    )
    lines_by_order: dict[int, list[_Line]] = {key: [] for key in keys}
    for key, *values in cur.fetchall():
        lines_by_order[key].append(_Line(*values))

    order_rows: list[tuple[int, str, Decimal]] = []
    line_rows: list[tuple[int, int, Decimal, Decimal, str]] = []
    for key in keys:
        old_status, old_total = before[key]
        # Open or partly shipped orders ship completely; shipped ones are reopened.
        new_status = "O" if old_status == "F" else "F"
        new_lines = []
        for line in lines_by_order[key]:
            unit_price = line.extendedprice / line.quantity  # p_retailprice, exact in TPC-H
            quantity = Decimal((int(line.quantity) - 1 + rng.randint(1, 49)) % 50 + 1)
            new_lines.append(
                _Line(
                    line.linenumber,
                    line.partkey,
                    line.suppkey,
                    quantity,
                    (unit_price * quantity).quantize(_CENT),
                    line.discount,
                    line.tax,
                    new_status,
                )
            )
        total = _line_total(new_lines)
        if total == old_total and new_lines:
            # Rare coincidence: one more unit on the first line keeps the change visible.
            first = new_lines[0]
            unit_price = first.extendedprice / first.quantity
            quantity = first.quantity % 50 + 1
            new_lines[0] = _Line(
                first.linenumber,
                first.partkey,
                first.suppkey,
                quantity,
                (unit_price * quantity).quantize(_CENT),
                first.discount,
                first.tax,
                new_status,
            )
            total = _line_total(new_lines)
        order_rows.append((key, new_status, total))
        line_rows += [
            (key, line.linenumber, line.quantity, line.extendedprice, line.linestatus)
            for line in new_lines
        ]

    cur.execute(
        sql.SQL(
            "UPDATE {} AS o SET o_orderstatus = u.status, o_totalprice = u.total,"
            " updated_at = %s"
            " FROM unnest(%s::bigint[], %s::char(1)[], %s::numeric(15,2)[]) AS u(k, status, total)"
            " WHERE o.o_orderkey = u.k"
        ).format(orders),
        (at, *map(list, zip(*order_rows, strict=True))),
    )
    cur.execute(
        sql.SQL(
            "UPDATE {} AS l SET l_quantity = u.quantity, l_extendedprice = u.price,"
            " l_linestatus = u.status, updated_at = %s"
            " FROM unnest(%s::bigint[], %s::integer[], %s::numeric(15,2)[],"
            " %s::numeric(15,2)[], %s::char(1)[]) AS u(k, n, quantity, price, status)"
            " WHERE l.l_orderkey = u.k AND l.l_linenumber = u.n"
        ).format(lineitem),
        (at, *map(list, zip(*line_rows, strict=True))),
    )
    return len(line_rows)


def _insert_orders(
    m: _Mutation,
    keys: Sequence[int],
    date_range: tuple[date, date],
    line_key_range: tuple[int, int],
) -> int:
    cur, orders, lineitem, customer, rng, at = (
        m.cur,
        m.orders,
        m.lineitem,
        m.customer,
        m.rng,
        m.at,
    )
    if not keys:
        return 0
    sql = _sql()
    n_lines = [rng.randint(1, 7) for _ in keys]

    cur.execute(sql.SQL("SELECT min(c_custkey), max(c_custkey) FROM {}").format(customer))
    min_cust, max_cust = _one(cur)
    if min_cust is None:
        raise SluicewayError("the customer table is empty: load() the TPC-H data first")
    cur.execute(
        sql.SQL(
            "SELECT (SELECT c_custkey FROM {} WHERE c_custkey >= t.p"
            " ORDER BY c_custkey LIMIT 1)"
            " FROM unnest(%s::integer[]) WITH ORDINALITY AS t(p, i) ORDER BY t.i"
        ).format(customer),
        ([rng.randint(min_cust, max_cust) for _ in keys],),
    )
    custkeys = [row[0] for row in cur.fetchall()]

    # Part, supplier and unit price (= p_retailprice) from existing line items, so new lines
    # reference real part/supplier pairs without needing the part or partsupp tables.
    cur.execute(
        sql.SQL(
            "SELECT x.l_partkey, x.l_suppkey, x.l_extendedprice / x.l_quantity"
            " FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(p, i)"
            " CROSS JOIN LATERAL (SELECT l_partkey, l_suppkey, l_extendedprice, l_quantity"
            "   FROM {} WHERE l_orderkey >= t.p ORDER BY l_orderkey, l_linenumber LIMIT 1) AS x"
            " ORDER BY t.i"
        ).format(lineitem),
        ([rng.randint(*line_key_range) for _ in range(sum(n_lines))],),
    )
    templates = cur.fetchall()
    if len(templates) != sum(n_lines):  # pragma: no cover - every probe is <= max(l_orderkey)
        raise SluicewayError("could not sample existing line items for the new orders")

    first_date, last_date = date_range
    span = (last_date - first_date).days
    order_rows = []
    line_rows = []
    template = iter(templates)
    for key, custkey, count in zip(keys, custkeys, n_lines, strict=True):
        orderdate = first_date + timedelta(days=rng.randint(0, span))
        lines = []
        for linenumber in range(1, count + 1):
            partkey, suppkey, unit_price = next(template)
            quantity = Decimal(rng.randint(1, 50))
            shipdate = orderdate + timedelta(days=rng.randint(1, 121))
            commitdate = orderdate + timedelta(days=rng.randint(30, 90))
            receiptdate = shipdate + timedelta(days=rng.randint(1, 30))
            returnflag = rng.choice("RA") if receiptdate <= _CURRENT_DATE else "N"
            line = _Line(
                linenumber,
                partkey,
                suppkey,
                quantity,
                (unit_price * quantity).quantize(_CENT),
                Decimal(rng.randint(0, 10)) / 100,
                Decimal(rng.randint(0, 8)) / 100,
                "O" if shipdate > _CURRENT_DATE else "F",
            )
            lines.append(line)
            line_rows.append(
                (
                    key,
                    line.partkey,
                    line.suppkey,
                    line.linenumber,
                    line.quantity,
                    line.extendedprice,
                    line.discount,
                    line.tax,
                    returnflag,
                    line.linestatus,
                    shipdate,
                    commitdate,
                    receiptdate,
                    rng.choice(_INSTRUCTIONS),
                    rng.choice(_MODES),
                    _comment(rng, 44),
                    at,
                )
            )
        order_rows.append(
            (
                key,
                custkey,
                _order_status(lines),
                _line_total(lines),
                orderdate,
                rng.choice(_PRIORITIES),
                f"Clerk#{rng.randint(1, 1000):09d}",
                0,
                _comment(rng, 79),
                at,
            )
        )

    for name, table, rows in (("orders", orders, order_rows), ("lineitem", lineitem, line_rows)):
        columns = [c for c, _ in TABLES[name]] + ["updated_at"]
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            table, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
        )
        with cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
    return len(line_rows)


def _comment(rng: random.Random, max_len: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(2, 8))]
    return " ".join(words)[:max_len]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _sql() -> Any:
    from psycopg import sql

    return sql


def _ident(*names: str) -> Any:
    return _sql().Identifier(*names)


def _one(cur: psycopg.Cursor[Any]) -> tuple[Any, ...]:
    row = cur.fetchone()
    if row is None:  # pragma: no cover - aggregates always return a row
        raise SluicewayError("query returned no row")
    return tuple(row)


def _connect(conninfo: str, autocommit: bool = False) -> psycopg.Connection[Any]:
    try:
        import psycopg
    except ImportError as exc:
        raise SluicewayError(
            "the TPC-H demo loader needs psycopg: pip install 'sluiceway[demo]'"
        ) from exc
    try:
        return psycopg.connect(conninfo, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise SluicewayError(f"cannot connect to PostgreSQL: {exc}") from exc
