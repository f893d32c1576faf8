"""The artifact set in a clean Python with only pyspark and boto3: what Glue and EMR provide.

A fresh venv gets pyspark (this line's version) and boto3 and nothing else; the packaged
zip goes on --py-files and the packaged jobs/emr_batch.py runs a small pipeline against
the real PostgreSQL under that venv's spark-submit, with one transform from a user package
and an output whose builder lives in a user module (outside sluiceway, a module of its own),
which imports a helper package named only in the spec's [package] table: only the zip
carries them there. The wheel then installs there too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pyspark
import pytest

from sluiceway.deploy.package import EMR_ENTRYPOINT, PYFILES, SPEC, WHEEL, build_artifacts

from .dbs import write_spec

ROOT = Path(__file__).resolve().parents[2]


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: int = 900) -> str:
    result = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{cmd[:3]}...: {result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory) -> Path:
    """A new venv with only pyspark==<this line's> and boto3 (pip's cache keeps this quick)."""
    venv = tmp_path_factory.mktemp("clean") / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", str(venv)], env, venv.parent)
    run(
        [
            str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile",
            "--disable-pip-version-check", f"pyspark=={pyspark.__version__}", "boto3",
        ],
        env,
        venv.parent,
    )  # fmt: skip
    return venv


@pytest.fixture
def events_table(pg_conn_info):
    table = f"events_{uuid.uuid4().hex[:8]}"
    rows = [
        (1, "click", "alice@example.com", "2024-01-05 10:00:00+00", "2024-01-05"),
        (2, "view", "bob@example.com", "2024-01-06 11:30:00+00", "2024-01-06"),
        (3, "click", None, "2024-02-01 00:00:00+00", "2024-02-01"),
        (4, "buy", "carol@example.com", "2024-02-29 23:59:59+00", "2024-02-29"),
    ]
    pg_conn_info.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, kind text NOT NULL, email text, "
        "updated_at timestamptz NOT NULL, day date NOT NULL)",
        f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s)",
        params=rows,
    )
    yield table, rows
    pg_conn_info.execute(f"DROP TABLE {table}")


USER_TRANSFORM = """
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def with_kind_length(df: DataFrame) -> DataFrame:
    return df.withColumn("kind_length", F.length("kind"))
"""


# A builder in a module of its own (not a package), using a helper package it imports.
USER_BUILDER = """
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from acme_common.names import KIND


def count_by_kind(events: DataFrame) -> DataFrame:
    return events.groupBy(KIND).agg(F.count(F.lit(1)).alias("events")).select(KIND, "events")
"""


def test_packaged_zip_runs_a_pipeline_in_a_clean_python(
    spark, tmp_path, pg_conn_info, events_table, clean_venv, monkeypatch
):
    table, rows = events_table
    # The user's own package, importable where `package` runs, nowhere in the clean venv.
    user = tmp_path / "user_code" / "acme_etl"
    user.mkdir(parents=True)
    (user / "__init__.py").write_text("")
    (user / "columns.py").write_text(USER_TRANSFORM)
    (user.parent / "acme_gold.py").write_text(USER_BUILDER)
    (user.parent / "acme_common").mkdir()
    (user.parent / "acme_common" / "__init__.py").write_text("")
    (user.parent / "acme_common" / "names.py").write_text('KIND = "kind"\n')
    monkeypatch.syspath_prepend(str(user.parent))
    spec_path = write_spec(
        tmp_path,
        pg_conn_info,
        f"""
        [tables.events]
        table = "public.{table}"
        primary_key = ["id"]
        incremental_column = "updated_at"
        hash_columns = ["email"]
        partition_by = ["day_year", "day_month"]
        transforms = [
          {{ name = "with_date_partitions", params = {{ column = "day", prefix = "day_", grain = "month" }} }},
          {{ name = "acme_etl.columns:with_kind_length" }},
        ]
        quality = [{{ rule = "accepted_values", column = "kind", values = ["click", "view", "buy"] }}]

        [outputs.kinds]
        builder = "acme_gold:count_by_kind"
        inputs = ["events"]
        sink = {{ path = "gold/kinds", mode = "overwrite" }}

        [package]
        modules = ["acme_common"]
        """,
        name="clean",
    )
    text = spec_path.read_text().replace("[pipeline]", '[pipeline]\nhash_salt_env = "SALT"', 1)
    spec_path.write_text(text)
    artifacts = build_artifacts(spec_path, tmp_path / "dist")
    zip_path = artifacts.root / artifacts.file(PYFILES).path
    python = str(clean_venv / "bin" / "python")
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "PYTHONPATH",
            "VIRTUAL_ENV",
            "SPARK_HOME",
            "PYSPARK_PYTHON",
            "PYSPARK_DRIVER_PYTHON",
        )
    }
    env |= {
        "PYSPARK_PYTHON": python,
        "PYSPARK_DRIVER_PYTHON": python,
        pg_conn_info.password_env: pg_conn_info.password,
        "SALT": "clean-salt",
    }
    work = tmp_path / "work"
    work.mkdir()

    # Clean: no sluiceway, no user package, no psycopg, no awsglue; then every module imports
    # from the zip alone.
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('sluiceway', 'acme_etl', 'acme_gold', 'acme_common', 'psycopg', "
        "'awsglue', 'chispa') if u.find_spec(m)])"
    )
    assert run([python, "-c", probe], env, work).strip() == "[]"
    # The Kinesis Python data source needs pyspark.sql.datasource, which exists from Spark 4.0
    # on; on PySpark 3.5 clusters it is never imported (batch jobs and the EMR Kinesis
    # connector path do not touch it), so only there it is left out of the import sweep.
    imports = (
        "import pkgutil, sys, sluiceway, pyspark\n"
        "spark4_only = {'sluiceway.sources.kinesis_datasource'}\n"
        "names = [m.name for m in pkgutil.walk_packages(sluiceway.__path__, 'sluiceway.')]\n"
        "if pyspark.__version__ < '4':\n"
        "    names = [n for n in names if n not in spark4_only]\n"
        "for name in names: __import__(name)\n"
        "assert sluiceway.__file__.startswith(sys.argv[1]), sluiceway.__file__\n"
        "print(len(names), sorted(m for m in ('psycopg', 'pymysql', 'awsglue') if m in sys.modules))\n"
    )
    out = run([python, "-c", imports, str(zip_path)], {**env, "PYTHONPATH": str(zip_path)}, work)
    count, loaded = out.split(" ", 1)
    assert int(count) >= 30 and loaded.strip() == "[]"
    user_files = {"acme_etl/__init__.py", "acme_etl/columns.py", "acme_gold.py"}
    user_files |= {"acme_common/__init__.py", "acme_common/names.py"}
    assert user_files <= set(zipfile.ZipFile(zip_path).namelist())

    out = run(
        [
            str(clean_venv / "bin" / "spark-submit"),
            "--master", "local[1]",
            "--py-files", str(zip_path),
            "--jars", ",".join(str(artifacts.root / j.path) for j in artifacts.jars),
            "--driver-java-options", "-Duser.timezone=UTC",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.shuffle.partitions=2",
            str(artifacts.root / artifacts.file(EMR_ENTRYPOINT).path),
            "--spec", str(artifacts.root / artifacts.file(SPEC).path),
        ],
        env,
        work,
    )  # fmt: skip
    assert "succeeded, 2 datasets, 7 rows written" in out, out
    kinds = spark.read.parquet(str(tmp_path / "out" / "gold" / "kinds"))
    assert sorted((r["kind"], r["events"]) for r in kinds.collect()) == [
        ("buy", 1),
        ("click", 2),
        ("view", 1),
    ]

    written = spark.read.parquet(str(tmp_path / "out" / "tables" / "events"))
    got = sorted(
        (r["id"], r["kind"], r["kind_length"], r["day_year"], r["day_month"])
        for r in written.collect()
    )
    assert got == sorted((r[0], r[1], len(r[1]), int(r[4][:4]), int(r[4][5:7])) for r in rows)
    hashed = {r["id"]: r["email"] for r in written.collect()}
    assert hashed[3] is None and len(hashed[1]) == 64 and hashed[1] != "alice@example.com"

    # The wheel installs into the same clean Python and provides the `sluiceway` command.
    wheel = artifacts.root / artifacts.file(WHEEL).path
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], env, work)
    version = run(
        [python, "-c", "import importlib.metadata as m; print(m.version('sluiceway'))"], env, work
    )
    assert version.strip() == artifacts.version
    assert "deploy" in run([str(clean_venv / "bin" / "sluiceway"), "--help"], env, work)
