"""Specs parse and check, and `sluiceway package` runs, in a Python without pyspark.

A fresh venv (not --system-site-packages) gets boto3, the one runtime dependency, and the
checkout's lib/ on PYTHONPATH: what a laptop that deploys but never runs Spark has. pip's
cache keeps the venv quick to build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluiceway.deploy.package import build_artifacts

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only

ROOT = Path(__file__).resolve().parents[2]
DEMO_SPEC = ROOT / "pipelines" / "tpch_demo.toml"
STREAM_SPEC = ROOT / "pipelines" / "clickstream.toml"
# The environment of the process under test: nothing of this one's Python or Spark.
_DROPPED = ("PYTHONPATH", "VIRTUAL_ENV", "SPARK_HOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    return env | {"PYTHONPATH": str(ROOT / "lib"), "PYTHONDONTWRITEBYTECODE": "1"}


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, env=_env(), cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    if check:
        assert result.returncode == 0, f"{cmd}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> str:
    """A new venv's python with boto3 and no pyspark."""
    venv = tmp_path_factory.mktemp("sparkless") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", str(venv)], venv.parent)
    python = str(venv / "bin" / "python")
    # This test's pip installs into the venv (pip --python): no ensurepip, the cache is shared.
    _run(
        [
            sys.executable, "-m", "pip", "--python", python, "install", "-q",
            "--disable-pip-version-check", "--no-compile", "boto3",
        ],
        venv.parent,
    )  # fmt: skip
    return python


def test_the_venv_has_no_pyspark(python, tmp_path):
    result = _run([python, "-c", "import pyspark"], tmp_path, check=False)
    assert result.returncode == 1 and "No module named 'pyspark'" in result.stderr, result.stderr
    out = _run([python, "-c", "import boto3, sluiceway; print(sluiceway.__file__)"], tmp_path)
    assert out.stdout.strip() == str(ROOT / "lib" / "sluiceway" / "__init__.py")


def test_specs_parse_and_check_without_pyspark(python, tmp_path):
    script = (
        "import sys\n"
        "import sluiceway.cli, sluiceway.deploy.emr, sluiceway.deploy.glue, sluiceway.deploy.package\n"
        "from sluiceway.spec import load_spec\n"
        "from sluiceway.spec_check import check, check_stream_spec\n"
        "from sluiceway.stream_spec import load_stream_spec\n"
        "spec = load_spec(sys.argv[1])\n"
        "check(spec)\n"
        "stream = load_stream_spec(sys.argv[2])\n"
        "check_stream_spec(stream)\n"
        "print(spec.name, len(spec.tables), spec.table('orders').quality[0].name)\n"
        "print(stream.name, ' '.join(f.type_name for f in stream.events.fields))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')))\n"
    )
    out = _run([python, "-c", script, str(DEMO_SPEC), str(STREAM_SPEC)], tmp_path).stdout
    demo, stream, loaded = out.splitlines()
    assert demo == "tpch_demo 4 not_null(o_custkey)"
    assert stream.startswith("clickstream ") and "timestamp" in stream.split()
    assert loaded == "[]"


def test_package_without_pyspark_builds_the_same_set(python, tmp_path):
    result = _run(
        [python, "-m", "sluiceway.cli", "package", str(DEMO_SPEC), "--out", str(tmp_path / "a")],
        tmp_path,
    )
    with_spark = build_artifacts(DEMO_SPEC, tmp_path / "b")  # this process has pyspark

    built = [p.name for p in (tmp_path / "a").iterdir()]
    assert built == [with_spark.root.name], result.stdout
    manifest = json.loads((tmp_path / "a" / built[0] / "manifest.json").read_text())
    assert manifest["pipeline"] == "tpch_demo" and manifest["build"] == with_spark.build
    assert f"build {with_spark.build}" in result.stdout


def test_package_without_pyspark_still_refuses_a_builder_that_does_not_exist(python, tmp_path):
    spec = tmp_path / "typo.toml"
    spec.write_text(
        DEMO_SPEC.read_text().replace(":join_order_lines", ":join_order_linez", 1), "utf-8"
    )
    result = _run(
        [python, "-m", "sluiceway.cli", "package", str(spec), "--out", str(tmp_path / "dist")],
        tmp_path,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == (
        f"sluiceway: error: {spec}: outputs.order_lines.builder: transform "
        "'sluiceway.demo.tpch_transforms:join_order_linez': "
        "'sluiceway.demo.tpch_transforms' has no attribute 'join_order_linez'"
    )
    assert not (tmp_path / "dist").exists()


def test_state_show_without_pyspark(python, tmp_path):
    result = _run(
        [
            python, "-m", "sluiceway.cli", "state", "show", str(DEMO_SPEC),
            "--output", str(tmp_path / "out"),
        ],
        tmp_path,
    )  # fmt: skip
    state = json.loads(result.stdout)
    assert state == {"nation": None, "customer": None, "orders": None, "lineitem": None} | {
        "latest_run": None
    }
