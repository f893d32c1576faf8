"""jobs/glue_stream.py and jobs/emr_stream.py, unchanged, under local spark-submit.

Both run one available_now stream over the same capture files (the files source runs on
every Spark line) and must land the same events and dead letters. The Glue script gets
its arguments from the real awsglue package and, without Glue's JVM classes, the
GlueContext and Job stand-ins of sluiceway.runtimes.glue, as jobs/glue_batch.py does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sluiceway.demo.events import sample_records, write_capture

from .conftest import files_source, ids, read_dataset, write_stream_spec

ROOT = Path(__file__).resolve().parents[3]
SUBMIT_TIMEOUT_S = 600


def _spark_submit(script: str, *args: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", "local[1]",
        "--driver-java-options", "-Duser.timezone=UTC",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.shuffle.partitions=2",
        str(ROOT / "jobs" / script),
        *args,
    ]  # fmt: skip


def test_glue_and_emr_stream_entrypoints_land_the_same_events(spark, tmp_path):
    records = sample_records(200, malformed_share=0.1, seed=7)
    write_capture(tmp_path / "in", records, per_file=50)
    for run in ("glue", "emr"):
        (tmp_path / run).mkdir()
    specs = {
        run: write_stream_spec(tmp_path / run, files_source(tmp_path / "in", 2), name=run)
        for run in ("glue", "emr")
    }
    commands = {
        "glue": _spark_submit(
            "glue_stream.py", "--JOB_NAME", "stream-local", "--spec", str(specs["glue"])
        ),
        "emr": _spark_submit("emr_stream.py", str(specs["emr"])),
    }
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    results = {
        run: subprocess.run(
            cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT_S
        )
        for run, cmd in commands.items()
    }

    for run, result in results.items():
        assert result.returncode == 0, f"{run}: {result.stdout[-4000:]}{result.stderr[-4000:]}"
    glue_log = results["glue"].stdout + results["glue"].stderr
    assert "using the local GlueContext stand-in" in glue_log
    assert "glue job stream-local: committed (local stand-in)" in glue_log
    valid = sorted(r.event_id for r in records if r.event_id is not None)
    for run in specs:
        out = tmp_path / run / "out"
        assert sorted(ids(read_dataset(spark, str(out / "events")))) == valid, run
        dead = read_dataset(spark, str(out / "_dead_letters"))
        assert dead is not None and dead.count() == 20, run
