"""The TPC-H demo on the test PostgreSQL: its spec pointed at a schema of its own, and the
answers the source gives to check a run against."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.01
REVENUE_SQL = (
    "SELECT n.n_name, SUM(l.l_extendedprice * (1 - l.l_discount)) FROM lineitem l "
    "JOIN orders o ON o.o_orderkey = l.l_orderkey JOIN customer c ON c.c_custkey = o.o_custkey "
    "JOIN nation n ON n.n_nationkey = c.c_nationkey GROUP BY n.n_name"
)


def query(conninfo: str, schema: str, text: str) -> list[tuple]:
    """The rows of `text` run in `schema`."""
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return conn.execute(text).fetchall()


def revenue_by_nation(conninfo: str, schema: str) -> dict[str, object]:
    """The source's revenue per nation: what the gold table must sum to, to the cent."""
    return {name.rstrip(): total for name, total in query(conninfo, schema, REVENUE_SQL)}


def demo_spec(tmp_path: Path, schema: str, port: int, glue_database: str | None = None) -> Path:
    """pipelines/tpch_demo.toml reading `schema` on the test server, written under tmp_path."""
    text = (ROOT / "pipelines" / "tpch_demo.toml").read_text()
    text = text.replace('table = "public.', f'table = "{schema}.').replace(
        "port = 25432", f"port = {port}"
    )
    if glue_database:
        text = text.replace('database = "tpch_demo"', f'database = "{glue_database}"')
    spec = tmp_path / "tpch_demo.toml"
    spec.write_text(text)
    return spec
