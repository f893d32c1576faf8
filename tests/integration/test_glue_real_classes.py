"""Where Glue's JVM classes are on the classpath, jobs/glue_batch.py uses the real awsglue.

Glue's classes exist only on Glue, so this test compiles three tiny stand-ins with Glue's
class names (GlueContext, GlueLogger, util.Job) that record what is called on them, puts
them on the driver's classpath, and runs the unchanged entrypoint: the real
awsglue.context.GlueContext and awsglue.job.Job must be the ones used, Job.init and
Job.commit must reach the JVM, and the pipeline must run on the session they wrap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sluiceway import jars

from .dbs import write_spec

ROOT = Path(__file__).resolve().parents[2]

STUBS = {
    "com/amazonaws/services/glue/StubCalls.java": """
package com.amazonaws.services.glue;
import java.nio.file.*;
public final class StubCalls {
  public static void add(String line) {
    try {
      Files.writeString(Paths.get(System.getProperty("glue.stub.calls")), line + "\\n",
          StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    } catch (java.io.IOException e) { throw new RuntimeException(e); }
  }
}
""",
    "com/amazonaws/services/glue/GlueContext.java": """
package com.amazonaws.services.glue;
public class GlueContext {
  public GlueContext(Object sparkContext) { StubCalls.add("GlueContext " + sparkContext.getClass().getName()); }
}
""",
    "com/amazonaws/services/glue/log/GlueLogger.java": """
package com.amazonaws.services.glue.log;
public class GlueLogger { public GlueLogger() {} }
""",
    "com/amazonaws/services/glue/util/Job.java": """
package com.amazonaws.services.glue.util;
import com.amazonaws.services.glue.StubCalls;
public class Job {
  private static boolean initialized = false;
  public static void init(String name, Object session, java.util.Map<String, String> args) {
    initialized = true;
    StubCalls.add("Job.init " + name + " spec=" + args.get("spec"));
  }
  public static boolean isInitialized() { return initialized; }
  public static void commit() { StubCalls.add("Job.commit"); }
}
""",
}


@pytest.fixture(scope="module")
def glue_stub_jar(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("glue-stub-src")
    classes = src / "classes"
    for rel, code in STUBS.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(code)
    java_home = Path(os.environ.get("JAVA_HOME") or "/nonexistent")
    javac, jar_tool = java_home / "bin" / "javac", java_home / "bin" / "jar"
    if not javac.is_file():
        pytest.fail(f"no javac at {javac}: a JDK 17 is needed (scripts/setup.sh installs one)")
    subprocess.run(
        [str(javac), "-d", str(classes), *(str(src / rel) for rel in STUBS)],
        check=True,
        capture_output=True,
    )
    target = src / "glue-stub.jar"
    subprocess.run([str(jar_tool), "cf", str(target), "-C", str(classes), "."], check=True)
    return target


def test_glue_entrypoint_uses_the_real_awsglue_classes_when_glue_is_there(
    spark, tmp_path, pg_conn_info, glue_stub_jar
):
    table = f"glue_real_{uuid.uuid4().hex[:8]}"
    pg_conn_info.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, name text)",
        f"INSERT INTO {table} VALUES (%s, %s)",
        params=[(1, "a"), (2, "b"), (3, "c")],
    )
    try:
        spec = write_spec(
            tmp_path,
            pg_conn_info,
            f'[tables.items]\ntable = "public.{table}"\nprimary_key = ["id"]\n',
            name="glue_real",
        )
        calls = tmp_path / "calls.txt"
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "spark-submit"),
                "--master", "local[1]",
                "--driver-class-path", str(glue_stub_jar),
                "--jars", ",".join(str(p) for p in jars.local_jar_paths()),
                "--driver-java-options", f"-Duser.timezone=UTC -Dglue.stub.calls={calls}",
                "--conf", "spark.ui.enabled=false",
                "--conf", "spark.sql.shuffle.partitions=2",
                str(ROOT / "jobs" / "glue_batch.py"),
                "--JOB_NAME", "nightly", "--spec", str(spec), "--full_refresh", "true",
            ],
            env={**os.environ, "PYSPARK_PYTHON": sys.executable},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )  # fmt: skip
    finally:
        pg_conn_info.execute(f"DROP TABLE {table}")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "succeeded, 1 datasets, 3 rows written" in log
    assert "stand-in" not in log  # the stand-ins were not used
    recorded = calls.read_text().splitlines()
    assert recorded == [
        "GlueContext org.apache.spark.SparkContext",
        f"Job.init nightly spec={spec}",
        "Job.commit",
    ]
    written = spark.read.parquet(str(tmp_path / "out" / "tables" / "items"))
    assert sorted(r["id"] for r in written.collect()) == [1, 2, 3]
