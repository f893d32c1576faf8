"""jobs/glue_batch.py and jobs/emr_batch.py, unchanged, under local spark-submit.

Both run the demo pipeline against the real PostgreSQL (TPC-H SF 0.01 in a fresh schema),
side by side, and must write the same rows to every dataset, where their --output and
--state arguments (not the spec) say. The Glue script gets its
arguments from the real awsglue package and, without Glue's JVM classes, the GlueContext
and Job stand-ins of sluiceway.runtimes.glue.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sluiceway import jars
from sluiceway.demo.tpch_db import load
from sluiceway.iceberg_conf import ICEBERG_EXTENSIONS
from sluiceway.spec import load_spec

from .tpch import demo_dataset

ROOT = Path(__file__).resolve().parents[2]
SCALE = 0.01
AUDIT_COLUMNS = ("_run_id", "_extracted_at")
SUBMIT_TIMEOUT_S = 1200


def spark_submit(script: str, *args: str) -> list[str]:
    """The command line scripts/demo.sh uses, with the test venv's spark-submit. Iceberg's
    runtime is on the class path and its extensions on, as the platforms have them
    (`deploy glue` / `submit emr` pass the extensions; the jobs do not add them)."""
    log_conf = ROOT / "lib" / "sluiceway" / "runtimes" / "log4j2.properties"
    return [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", "local[2]",
        "--jars", ",".join(str(p) for p in jars.local_jar_paths()),
        "--driver-class-path", os.pathsep.join(str(p) for p in jars.iceberg_jar_paths()),
        "--conf", f"spark.sql.extensions={ICEBERG_EXTENSIONS}",
        "--driver-memory", "2g",
        "--driver-java-options", f"-Duser.timezone=UTC -Dlog4j2.configurationFile={log_conf.as_uri()}",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.sql.shuffle.partitions=4",
        "--conf", "spark.default.parallelism=2",
        str(ROOT / "jobs" / script),
        *args,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def tpch_schema(pg_conn_info):
    schema = f"entry_{uuid.uuid4().hex[:8]}"
    conninfo = pg_conn_info.libpq_conninfo("tpch")
    load(conninfo, SCALE, ROOT / ".cache" / "tpch", schema=schema)
    yield conninfo, schema
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def demo_spec(tmp_path: Path, name: str, schema: str, port: int) -> Path:
    text = (ROOT / "pipelines" / "tpch_demo.toml").read_text()
    text = (
        text.replace('table = "public.', f'table = "{schema}.')
        .replace("port = 25432", f"port = {port}")
        # Never written: the runs get --output and --state, as `deploy`/`submit` send them.
        .replace('output = "out/tpch_demo"', f'output = "{tmp_path / "spec-output" / name}"')
    )
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_glue_and_emr_entrypoints_write_identical_outputs(
    spark, tmp_path, pg_conn_info, tpch_schema
):
    conninfo, schema = tpch_schema
    glue_spec = demo_spec(tmp_path, "glue", schema, pg_conn_info.port)
    emr_spec = demo_spec(tmp_path, "emr", schema, pg_conn_info.port)
    env = {
        **os.environ,
        "SLUICEWAY_TPCH_PASSWORD": pg_conn_info.password,
        "SLUICEWAY_HASH_SALT": "test-salt",
        "PYSPARK_PYTHON": sys.executable,
    }

    def locations(run: str) -> list[str]:
        return ["--output", str(tmp_path / run), "--state", str(tmp_path / f"{run}-state")]

    commands = {
        "glue": spark_submit(
            "glue_batch.py",
            "--JOB_NAME",
            "sluiceway-local",
            "--spec",
            str(glue_spec),
            "--full_refresh",
            "false",
            *locations("glue"),
        ),  # fmt: skip
        "emr": spark_submit("emr_batch.py", "--spec", str(emr_spec), *locations("emr")),
    }
    # Side by side: most of each run is JVM start-up and JDBC round trips, not CPU.
    procs = {
        name: subprocess.Popen(
            cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, cmd in commands.items()
    }
    results = {name: proc.communicate(timeout=SUBMIT_TIMEOUT_S) for name, proc in procs.items()}
    for name, proc in procs.items():
        out, err = results[name]
        assert proc.returncode == 0, f"{name}: {err[-4000:]}"
        assert "succeeded, 6 datasets" in out, f"{name}: {out}"
    # spark-submit's Python runner merges the driver's stderr into its stdout.
    glue_log = "".join(results["glue"])
    assert "using the local GlueContext stand-in" in glue_log
    assert "glue job sluiceway-local: committed (local stand-in)" in glue_log

    # The overrides, not the spec, placed the data and the watermarks.
    assert not (tmp_path / "spec-output").exists()
    for run in ("glue", "emr"):
        assert list((tmp_path / f"{run}-state" / "tpch_demo" / "tables").iterdir()), run

    spec = load_spec(glue_spec)
    names = [t.name for t in spec.tables] + [o.name for o in spec.outputs]
    assert len(names) == 6
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        (orders,) = conn.execute("SELECT COUNT(*) FROM orders").fetchone()
    for name in names:
        frames = []
        for run, run_spec in (("glue", glue_spec), ("emr", emr_spec)):
            df = demo_dataset(spark, run_spec, tmp_path / run, name)
            frames.append(df.drop(*[c for c in AUDIT_COLUMNS if c in df.columns]))
        glue_df, emr_df = frames
        assert glue_df.schema == emr_df.schema, name
        count = glue_df.count()
        assert count > 0 and count == emr_df.count(), name
        if name == "orders":
            assert count == orders
        # Row for row: the multiset difference is empty both ways.
        assert glue_df.exceptAll(emr_df).isEmpty(), name
        assert emr_df.exceptAll(glue_df).isEmpty(), name
