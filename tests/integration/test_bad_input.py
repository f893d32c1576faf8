"""Bad input: one clear error line, a non-zero exit, no output and no state written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluiceway.errors import SourceError
from sluiceway.sources import jdbc
from sluiceway.sources.credentials import resolve_credentials
from sluiceway.spec import load_spec

from .dbs import Db, mysql, pg, write_spec

TABLE = """
[tables.orders]
table = "{table}"
primary_key = ["id"]
split_column = "{split}"
incremental_column = "updated_at"
{extra}
"""


def _prepare(db: Db) -> None:
    db.execute(
        "DROP TABLE IF EXISTS bad_input",
        "CREATE TABLE bad_input (id int PRIMARY KEY, s int, updated_at timestamp NOT NULL)",
        "INSERT INTO bad_input VALUES (1, NULL, TIMESTAMP '2024-01-01 00:00:00'), "
        "(2, NULL, TIMESTAMP '2024-01-01 00:00:00')",
    )


def _run_cli(
    spec: Path, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _assert_one_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("sluiceway: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _assert_nothing_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert not (out / "tables").exists()
    assert not (out / "_state" / "t" / "tables").exists()


@pytest.fixture(scope="module")
def pg_db() -> Db:
    db = pg()
    _prepare(db)
    return db


CASES = {
    "missing_table": (
        dict(table="no_such_table", split="id", extra=""),
        {},
        ("tables.orders", "no_such_table"),
    ),
    "wrong_password": (
        dict(table="bad_input", split="id", extra=""),
        {"SLUICEWAY_PG_PASSWORD": "wrong"},
        ("tables.orders", "password authentication failed"),
    ),
    "split_all_null": (
        dict(table="bad_input", split="s", extra=""),
        {},
        ("tables.orders.split_column", "NULL in all 2 rows"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_bad_source_input_fails_cleanly(tmp_path, pg_db, case):
    fields, env, needles = CASES[case]
    spec = write_spec(tmp_path, pg_db, TABLE.format(**fields))
    _assert_one_error(_run_cli(spec, env), str(spec), *needles)
    _assert_nothing_written(tmp_path)


def test_cli_unreachable_host_fails_fast_and_cleanly(tmp_path, pg_db):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    unreachable = Db(**{**pg_db.__dict__, "port": 1})
    spec = write_spec(tmp_path, unreachable, TABLE.format(table="bad_input", split="id", extra=""))
    _assert_one_error(_run_cli(spec), "tables.orders", "127.0.0.1:1")
    _assert_nothing_written(tmp_path)


def test_cli_unknown_transform_fails_before_spark_starts(tmp_path, pg_db):
    spec = write_spec(
        tmp_path,
        pg_db,
        TABLE.format(
            table="bad_input", split="id", extra='transforms = [{ name = "my_pkg.nope:clean" }]'
        ),
    )
    result = _run_cli(spec)
    _assert_one_error(result, "tables.orders.transforms[0].name", "my_pkg.nope:clean")
    assert "starting Spark" not in result.stdout
    _assert_nothing_written(tmp_path)


def test_cli_malformed_spec_fails_before_spark_starts(tmp_path):
    spec = tmp_path / "broken.toml"
    spec.write_text('[pipeline]\nname = "t"\noutput = "x"\n[tables.orders\n')
    result = _run_cli(spec)
    _assert_one_error(result, str(spec), "not valid TOML")
    assert "starting Spark" not in result.stdout


def test_cli_missing_password_variable_names_it(tmp_path, pg_db):
    spec = write_spec(tmp_path, pg_db, TABLE.format(table="bad_input", split="id", extra=""))
    env = {k: v for k, v in os.environ.items() if k != "SLUICEWAY_PG_PASSWORD"}
    result = subprocess.run(
        [sys.executable, "-m", "sluiceway.cli", "run", str(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    _assert_one_error(result, "SLUICEWAY_PG_PASSWORD is not set")
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("db", [pg(), mysql()], ids=["postgresql", "mysql"])
def test_wrong_password_is_a_source_error_that_never_shows_the_password(
    spark, tmp_path, db, monkeypatch
):
    spec = load_spec(
        write_spec(tmp_path, db, TABLE.format(table="bad_input", split="id", extra=""))
    )
    monkeypatch.setenv(db.password_env, "not-the-password-123")
    conn = spec.connections["db"]
    source = jdbc.jdbc_source(conn, resolve_credentials(conn))
    assert "not-the-password-123" not in repr(source)
    with pytest.raises(SourceError) as info:
        jdbc.plan_read(spark, source, spec.table("orders"), None, "tables.orders")
    message = str(info.value)
    assert "not-the-password-123" not in message
    assert ("password authentication failed" in message) or ("Access denied" in message), message
