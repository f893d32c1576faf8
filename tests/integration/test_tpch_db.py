"""The TPC-H demo loader against the real PostgreSQL: generate, COPY load, mutate."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sluiceway.demo.tpch_db import LOADED_AT, generate, load, mutate
from sluiceway.errors import SluicewayError

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only

SCALE = 0.01
TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")

# information_schema spelling of the TPC-H types: (data_type, length, precision, scale).
EXPECTED_COLUMNS = {
    "orders": {
        "o_orderkey": ("bigint", None, 64, 0),
        "o_custkey": ("integer", None, 32, 0),
        "o_orderstatus": ("character", 1, None, None),
        "o_totalprice": ("numeric", None, 15, 2),
        "o_orderdate": ("date", None, None, None),
        "o_orderpriority": ("character", 15, None, None),
        "o_clerk": ("character", 15, None, None),
        "o_shippriority": ("integer", None, 32, 0),
        "o_comment": ("character varying", 79, None, None),
        "updated_at": ("timestamp with time zone", None, None, None),
    },
    "lineitem": {
        "l_orderkey": ("bigint", None, 64, 0),
        "l_partkey": ("integer", None, 32, 0),
        "l_suppkey": ("integer", None, 32, 0),
        "l_linenumber": ("integer", None, 32, 0),
        "l_quantity": ("numeric", None, 15, 2),
        "l_extendedprice": ("numeric", None, 15, 2),
        "l_discount": ("numeric", None, 15, 2),
        "l_tax": ("numeric", None, 15, 2),
        "l_returnflag": ("character", 1, None, None),
        "l_linestatus": ("character", 1, None, None),
        "l_shipdate": ("date", None, None, None),
        "l_commitdate": ("date", None, None, None),
        "l_receiptdate": ("date", None, None, None),
        "l_shipinstruct": ("character", 25, None, None),
        "l_shipmode": ("character", 10, None, None),
        "l_comment": ("character varying", 44, None, None),
        "updated_at": ("timestamp with time zone", None, None, None),
    },
    "customer": {
        "c_custkey": ("integer", None, 32, 0),
        "c_name": ("character varying", 25, None, None),
        "c_nationkey": ("integer", None, 32, 0),
        "c_acctbal": ("numeric", None, 15, 2),
        "c_mktsegment": ("character", 10, None, None),
        "updated_at": ("timestamp with time zone", None, None, None),
    },
    "nation": {
        "n_nationkey": ("integer", None, 32, 0),
        "n_name": ("character", 25, None, None),
        "n_comment": ("character varying", 152, None, None),
        "updated_at": ("timestamp with time zone", None, None, None),
    },
}


@pytest.fixture(scope="module")
def tpch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("tpch")
    generate(SCALE, data_dir)
    return data_dir


@pytest.fixture()
def new_schema(pg_conn_info) -> Iterator[Callable[[], str]]:
    """Makes uniquely named schemas; drops them after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(f"tpch_test_{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    with psycopg.connect(pg_conn_info.libpq_conninfo(), autocommit=True) as conn:
        for schema in made:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def loaded(pg_conn_info, tpch_dir: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """One schema loaded at SCALE for the tests that only read it."""
    schema = f"tpch_test_{uuid.uuid4().hex[:10]}"
    counts = load(pg_conn_info.libpq_conninfo(), SCALE, tpch_dir, schema=schema)
    yield schema, counts
    with psycopg.connect(pg_conn_info.libpq_conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _rows(conninfo: str, query: str, schema: str, params: tuple[object, ...] = ()) -> list[tuple]:
    """Run `query` with the schema as search_path."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return conn.execute(query, params).fetchall()


def _data_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1  # minus the header


def test_generate_writes_every_table_with_a_header_once_per_scale(tpch_dir: Path) -> None:
    files = generate(SCALE, tpch_dir)

    assert sorted(files) == sorted(TABLES)
    assert files["orders"] == tpch_dir / "sf0.01" / "orders.csv"
    assert files["lineitem"].read_text().splitlines()[0].startswith("l_orderkey,l_partkey,")
    assert _data_lines(files["nation"]) == 25
    mtimes = {table: path.stat().st_mtime_ns for table, path in files.items()}
    assert generate(SCALE, tpch_dir) == files
    assert {table: path.stat().st_mtime_ns for table, path in files.items()} == mtimes


def test_generate_without_tpchgen_cli_raises_a_sluiceway_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))

    with pytest.raises(SluicewayError, match="tpchgen-cli not found"):
        generate(SCALE, tmp_path / "cache")


def test_load_row_counts_match_the_generated_files(pg_conn_info, tpch_dir: Path, loaded) -> None:
    schema, counts = loaded
    expected = {table: _data_lines(path) for table, path in generate(SCALE, tpch_dir).items()}

    assert counts == expected
    assert expected["lineitem"] > 50_000
    for table in TABLES:
        (in_db,) = _rows(pg_conn_info.libpq_conninfo(), f"SELECT count(*) FROM {table}", schema)[0]
        assert in_db == expected[table], table


def test_load_creates_tpch_types_not_null_columns_and_keys(pg_conn_info, loaded) -> None:
    schema, _ = loaded
    conninfo = pg_conn_info.libpq_conninfo()
    columns = _rows(
        conninfo,
        "SELECT table_name, column_name, data_type, character_maximum_length,"
        " numeric_precision, numeric_scale, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = %s",
        schema,
        (schema,),
    )
    found = {(t, c): (dt, length, prec, scale) for t, c, dt, length, prec, scale, _, _ in columns}
    for table, expected in EXPECTED_COLUMNS.items():
        for column, spec in expected.items():
            assert found[(table, column)] == spec, f"{table}.{column}"
    assert {nullable for *_, nullable, _ in columns} == {"NO"}
    defaults = {t: d for t, c, *_, d in columns if c == "updated_at"}
    assert set(defaults) == set(TABLES)
    assert set(defaults.values()) == {"now()"}

    keys = _rows(
        conninfo,
        "SELECT c.relname, array_agg(a.attname ORDER BY k.ord)"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
        " WHERE n.nspname = %s AND i.indisprimary GROUP BY c.relname",
        schema,
        (schema,),
    )
    primary = dict(keys)
    assert primary["lineitem"] == ["l_orderkey", "l_linenumber"]
    assert primary["orders"] == ["o_orderkey"]
    assert primary["partsupp"] == ["ps_partkey", "ps_suppkey"]
    assert set(primary) == set(TABLES)

    indexed = _rows(
        conninfo,
        "SELECT tablename FROM pg_indexes WHERE schemaname = %s AND indexdef LIKE '%%(updated_at)'",
        schema,
        (schema,),
    )
    assert sorted(t for (t,) in indexed) == ["customer", "lineitem", "orders"]


def test_load_stamps_rows_one_minute_apart_before_loaded_at(pg_conn_info, loaded) -> None:
    schema, counts = loaded
    for table in TABLES:
        ((newest, oldest, distinct),) = _rows(
            pg_conn_info.libpq_conninfo(),
            f"SELECT max(updated_at), min(updated_at), count(DISTINCT updated_at) FROM {table}",
            schema,
        )
        assert newest == LOADED_AT - timedelta(minutes=1)
        assert oldest == LOADED_AT - timedelta(minutes=counts[table])
        assert distinct == counts[table]


def test_load_again_replaces_the_tables(pg_conn_info, tpch_dir: Path, new_schema) -> None:
    schema = new_schema()
    conninfo = pg_conn_info.libpq_conninfo()
    first = load(conninfo, SCALE, tpch_dir, schema=schema)
    mutate(conninfo, new_orders=10, updated_orders=10, schema=schema)

    second = load(conninfo, SCALE, tpch_dir, schema=schema)

    assert second == first
    (changed,) = _rows(
        conninfo, "SELECT count(*) FROM orders WHERE updated_at >= %s", schema, (LOADED_AT,)
    )[0]
    assert changed == 0


def test_mutate_inserts_and_updates_orders_stamped_later_than_everything(
    pg_conn_info, tpch_dir: Path, new_schema
) -> None:
    schema = new_schema()
    conninfo = pg_conn_info.libpq_conninfo()
    load(conninfo, SCALE, tpch_dir, schema=schema)
    orders_before = {
        key: (status, total)
        for key, status, total in _rows(
            conninfo, "SELECT o_orderkey, o_orderstatus, o_totalprice FROM orders", schema
        )
    }
    lines_before = {
        (key, number): (quantity, price)
        for key, number, quantity, price in _rows(
            conninfo,
            "SELECT l_orderkey, l_linenumber, l_quantity, l_extendedprice FROM lineitem",
            schema,
        )
    }
    ((min_date, max_date),) = _rows(
        conninfo, "SELECT min(o_orderdate), max(o_orderdate) FROM orders", schema
    )

    summary = mutate(conninfo, new_orders=25, updated_orders=40, seed=11, schema=schema)

    max_key = max(orders_before)
    assert summary.new_order_keys == tuple(range(max_key + 1, max_key + 26))
    assert len(set(summary.updated_order_keys)) == 40
    assert set(summary.updated_order_keys) <= set(orders_before)
    assert summary.at > LOADED_AT

    stamped_orders = _rows(
        conninfo,
        "SELECT o_orderkey, updated_at FROM orders WHERE updated_at > %s",
        schema,
        (LOADED_AT,),
    )
    assert {key for key, _ in stamped_orders} == {
        *summary.new_order_keys,
        *summary.updated_order_keys,
    }
    assert {at for _, at in stamped_orders} == {summary.at}
    stamped_lines = _rows(
        conninfo,
        "SELECT l_orderkey, updated_at FROM lineitem WHERE updated_at > %s",
        schema,
        (LOADED_AT,),
    )
    assert len(stamped_lines) == summary.new_lineitems + summary.updated_lineitems
    assert {at for _, at in stamped_lines} == {summary.at}
    assert summary.updated_lineitems == sum(
        1 for key, _ in lines_before if key in set(summary.updated_order_keys)
    )

    # Every touched order is internally consistent: status from its lines, total from its lines.
    consistency = _rows(
        conninfo,
        "SELECT o.o_orderkey, o.o_orderstatus, o.o_totalprice, o.o_custkey, o.o_orderdate,"
        "  CASE WHEN min(l.l_linestatus) = max(l.l_linestatus) THEN min(l.l_linestatus)"
        "       ELSE 'P' END,"
        "  round(sum(l.l_extendedprice * (1 + l.l_tax) * (1 - l.l_discount)), 2),"
        "  count(*), array_agg(l.l_linenumber ORDER BY l.l_linenumber),"
        "  bool_and(l.l_extendedprice = l.l_quantity * p.p_retailprice),"
        "  bool_and(ps.ps_partkey IS NOT NULL),"
        "  bool_and(c.c_custkey IS NOT NULL)"
        " FROM orders o JOIN lineitem l ON l.l_orderkey = o.o_orderkey"
        " JOIN part p ON p.p_partkey = l.l_partkey"
        " LEFT JOIN partsupp ps ON ps.ps_partkey = l.l_partkey AND ps.ps_suppkey = l.l_suppkey"
        " LEFT JOIN customer c ON c.c_custkey = o.o_custkey"
        " WHERE o.updated_at = %s GROUP BY o.o_orderkey",
        schema,
        (summary.at,),
    )
    assert len(consistency) == 65
    for (
        key,
        status,
        total,
        _,
        orderdate,
        line_status,
        line_total,
        n_lines,
        numbers,
        priced_from_part,
        real_partsupp,
        real_customer,
    ) in consistency:
        assert status == line_status, key
        assert total == line_total, key
        assert priced_from_part and real_partsupp and real_customer, key
        if key in summary.new_order_keys:
            assert 1 <= n_lines <= 7 and numbers == list(range(1, n_lines + 1)), key
            assert min_date <= orderdate <= max_date, key
        else:
            old_status, old_total = orders_before[key]
            assert status != old_status, key
            assert total != old_total, key
    assert summary.new_lineitems == sum(
        row[7] for row in consistency if row[0] in summary.new_order_keys
    )

    changed_lines = _rows(
        conninfo,
        "SELECT l_orderkey, l_linenumber, l_quantity, l_extendedprice FROM lineitem"
        " WHERE l_orderkey = ANY(%s)",
        schema,
        (list(summary.updated_order_keys),),
    )
    for key, number, quantity, price in changed_lines:
        old_quantity, old_price = lines_before[(key, number)]
        assert quantity != old_quantity, (key, number)
        assert price / quantity == old_price / old_quantity, (key, number)

    ((n_orders, n_lines),) = _rows(
        conninfo, "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM lineitem)", schema
    )
    assert n_orders == len(orders_before) + 25
    assert n_lines == len(lines_before) + summary.new_lineitems

    later = mutate(conninfo, new_orders=1, updated_orders=1, seed=12, schema=schema)
    assert later.at > summary.at
    assert later.new_order_keys == (max_key + 26,)


def test_mutate_with_the_same_seed_writes_the_same_rows(
    pg_conn_info, tpch_dir: Path, new_schema
) -> None:
    conninfo = pg_conn_info.libpq_conninfo()
    schemas = [new_schema(), new_schema()]
    summaries = []
    for schema in schemas:
        load(conninfo, SCALE, tpch_dir, schema=schema)
        summaries.append(mutate(conninfo, new_orders=5, updated_orders=20, seed=3, schema=schema))
    # Every column but updated_at (which is the time of each run).
    touched = (
        "SELECT to_jsonb(l) - 'updated_at', to_jsonb(o) - 'updated_at'"
        " FROM lineitem l JOIN orders o ON o.o_orderkey = l.l_orderkey"
        " WHERE o.updated_at > %s ORDER BY l.l_orderkey, l.l_linenumber"
    )

    first, second = (_rows(conninfo, touched, schema, (LOADED_AT,)) for schema in schemas)

    assert summaries[0].updated_order_keys == summaries[1].updated_order_keys
    assert summaries[0].new_order_keys == summaries[1].new_order_keys
    assert summaries[0].new_lineitems == summaries[1].new_lineitems
    assert first == second
    assert len(first) == summaries[0].new_lineitems + summaries[0].updated_lineitems
    other = mutate(conninfo, new_orders=0, updated_orders=20, seed=4, schema=schemas[0])
    assert other.updated_order_keys != summaries[0].updated_order_keys


def test_mutate_refuses_to_update_more_orders_than_exist(
    pg_conn_info, tpch_dir: Path, loaded
) -> None:
    schema, counts = loaded

    with pytest.raises(SluicewayError, match="cannot update"):
        mutate(pg_conn_info.libpq_conninfo(), 0, counts["orders"] + 1, schema=schema)
