"""The kill-safety harness: the demo pipeline, SIGKILLed at moments spread over its runs,
ends with exactly the datasets of a clean run.

The demo (small scale) runs in a subprocess with its own process group, armed with
`SLUICEWAY_KILL_AT` (see `sluiceway.faults`): it dies, with its JVM, at the chosen point.
Each kill is followed by the next killed run on the same output, then one run to the end.
Phase 1 is the first (full) run, phase 2 the incremental merge run after `demo mutate`.
After each phase every dataset and every watermark must equal those of a clean run on the
same database content: same rows, same values, nothing missing, nothing twice (only the
per-run audit columns `_run_id` and `_extracted_at` may differ).

Catalog publishing is not in the chain: the output is local, where the pipeline keeps no
Glue table (tests/integration/test_catalog.py covers a failed publish being redone).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pyspark
import pytest
from psycopg import sql

from sluiceway.demo.tpch_db import load, mutate
from sluiceway.faults import ENV as KILL_AT

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.01
DATASETS = {
    "nation": "silver/nation",
    "customer": "silver/customer",
    "orders": "silver/orders",
    "lineitem": "bronze/lineitem",
    "order_lines": "gold/order_lines",
    "revenue_by_nation_daily": "gold/revenue_by_nation_daily",
}
PER_RUN = {"_run_id", "_extracted_at"}

# (kill point, what it interrupts). Tables run nation, customer, orders, lineitem, then the
# outputs order_lines and revenue_by_nation_daily.
FULL_RUN = [
    ("plan:customer", "planning, one table committed before it"),
    ("staged:orders", "read and staged, nothing committed"),
    ("swap:orders@3", "inside the swap of a first write"),
    ("commit:lineitem", "written, its watermark not yet committed"),
    ("swap:order_lines@2", "inside the swap of an output"),
    ("planned:revenue_by_nation_daily", "an output's plan committed, nothing moved"),
]
INCREMENTAL_RUN = [
    ("swap:orders@1", "inside a merge's swap: old files of touched partitions still there"),
    ("swapped:lineitem", "merge swapped, staging not dropped, watermark not committed"),
    ("committed:orders", "a watermark committed, the rest of the run not"),
    ("swap:order_lines@1", "inside an output's swap after the inputs changed"),
]

# The chain is the suite's longest test (one Spark start-up per killed run), so each line
# runs a complementary half and CI, which runs both lines, tries every point once. PySpark
# 3.5 takes one point per kind of moment (inside a swap, a plan committed, state not yet
# committed, a watermark committed); 4.x the rest. The kill points and the recovery are the
# project's Python, the same on both lines.
_ON_3_5 = {
    "swap:orders@3",
    "planned:revenue_by_nation_daily",
    "swap:orders@1",
    "committed:orders",
}
_SPARK_3 = pyspark.__version__.startswith("3.")
FULL_RUN = [kill for kill in FULL_RUN if (kill[0] in _ON_3_5) == _SPARK_3]
INCREMENTAL_RUN = [kill for kill in INCREMENTAL_RUN if (kill[0] in _ON_3_5) == _SPARK_3]


@pytest.fixture
def tpch(pg_conn_info):
    schema = f"kill_{uuid.uuid4().hex[:8]}"
    conninfo = pg_conn_info.libpq_conninfo("tpch")
    load(conninfo, SCALE, ROOT / ".cache" / "tpch", schema=schema)
    yield conninfo, schema
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _spec(tmp_path: Path, schema: str, port: int) -> Path:
    text = (ROOT / "pipelines" / "tpch_demo.toml").read_text()
    text = text.replace('table = "public.', f'table = "{schema}.').replace(
        "port = 25432", f"port = {port}"
    )
    spec = tmp_path / "tpch_demo.toml"
    spec.write_text(text)
    return spec


def _run(spec: Path, out: Path, password: str, kill_at: str | None = None):
    env = {
        **os.environ,
        "SLUICEWAY_TPCH_PASSWORD": password,
        "SLUICEWAY_HASH_SALT": "test-salt",
        "SLUICEWAY_SPARK_MASTER": "local[2]",
        "SLUICEWAY_SHUFFLE_PARTITIONS": "2",  # two cores, small data: fewer, larger tasks
    }
    env.pop(KILL_AT, None)
    if kill_at:
        env[KILL_AT] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        start_new_session=True,  # its own process group: the kill takes the JVM with it
    )


def _completed(spec: Path, out: Path, password: str) -> None:
    result = _run(spec, out, password)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert re.search(r"^run \S+: succeeded, 6 datasets", result.stdout, re.M), result.stdout


def _kill_chain(spec: Path, out: Path, password: str, kills: list[tuple[str, str]]) -> None:
    for point, moment in kills:
        result = _run(spec, out, password, point)
        name, _, arrival = point.partition("@")
        assert result.returncode == -signal.SIGKILL, (
            f"{point} ({moment}) was never reached:\n{result.stdout}\n{result.stderr[-3000:]}"
        )
        assert f"sluiceway: killed at {name} (arrival {arrival or 1})" in result.stderr
    _completed(spec, out, password)


def _hashable(value: object) -> object:
    return tuple(map(_hashable, value)) if isinstance(value, list) else value


def _dataset(spark, path: Path) -> Counter:
    df = spark.read.parquet(str(path))
    kept = sorted(set(df.columns) - PER_RUN)
    return Counter(tuple(map(_hashable, row)) for row in df.select(*kept).collect())


def _watermarks(out: Path) -> dict[str, object]:
    tables = out / "_state" / "tpch_demo" / "tables"
    return {p.stem: json.loads(p.read_text())["watermark"] for p in sorted(tables.glob("*.json"))}


def _assert_same(spark, killed: Path, clean: Path, phase: str) -> None:
    quarantines = {
        f"quarantine of {p.name}": f"_quarantine/{p.name}"
        for p in sorted((clean / "_quarantine").glob("*"))
    }
    assert sorted((killed / "_quarantine").glob("*")) == [
        killed / relative for relative in quarantines.values()
    ], phase
    for name, relative in {**DATASETS, **quarantines}.items():
        got, want = _dataset(spark, killed / relative), _dataset(spark, clean / relative)
        assert sum(want.values()) > 0, f"{phase}: {name}: the clean run wrote nothing"
        assert not want - got, f"{phase}: {name}: {sum((want - got).values())} rows missing"
        assert not got - want, f"{phase}: {name}: {sum((got - want).values())} rows extra"
    assert _watermarks(killed) == _watermarks(clean), phase
    assert not [p for p in (killed / "_staging").rglob("*") if p.is_file()], phase


def test_demo_killed_at_every_phase_ends_as_a_clean_run(spark, tmp_path, pg_conn_info, tpch):
    conninfo, schema = tpch
    spec = _spec(tmp_path, schema, pg_conn_info.port)
    password = pg_conn_info.password
    clean, killed = tmp_path / "clean", tmp_path / "killed"

    _completed(spec, clean, password)
    _kill_chain(spec, killed, password, FULL_RUN)
    _assert_same(spark, killed, clean, "full run")

    mutate(conninfo, new_orders=20, updated_orders=30, seed=11, schema=schema)
    _kill_chain(spec, killed, password, INCREMENTAL_RUN)
    _completed(spec, clean, password)
    _assert_same(spark, killed, clean, "incremental run")

    tried = len(FULL_RUN) + len(INCREMENTAL_RUN)
    print(f"\nkill-safety harness: {tried} kill points tried, all runs matched the clean run")
