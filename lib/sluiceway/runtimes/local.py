"""A SparkSession for local runs (CLI, tests, spark-submit on a laptop or server)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from sluiceway import jars

# Settings every Sluiceway session needs, on any platform. Runtimes apply them on top of
# what the platform gives (Glue/EMR set their own master, memory and S3 connector).
PIPELINE_CONF: dict[str, str] = {
    # Rerunning a window rewrites only the partitions it touches.
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # Timestamps are planned, compared and written in UTC; see sources/jdbc.py.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def java_options() -> str:
    """JVM options for local drivers and executors: UTC, and our quieter log4j config."""
    log_conf = Path(__file__).with_name("log4j2.properties")
    return f"-Duser.timezone=UTC -Dlog4j2.configurationFile={log_conf.as_uri()}"


def apply_pipeline_conf(spark: SparkSession) -> SparkSession:
    """Apply the session settings pipelines rely on to a session someone else built."""
    for key, value in PIPELINE_CONF.items():
        spark.conf.set(key, value)
    return spark


def build_local_session(
    app_name: str = "sluiceway",
    master: str | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Start (or reuse) a local SparkSession with the pinned JDBC jars on its classpath."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    java_opts = java_options()
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master or os.environ.get("SLUICEWAY_SPARK_MASTER", "local[*]"))
        .config("spark.jars", ",".join(str(p) for p in jars.local_jar_paths()))
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.executor.extraJavaOptions", java_opts)
        # Local mode runs everything in the driver JVM; 1g (Spark's default) is too small
        # to cache a table of a few million rows without spilling.
        .config("spark.driver.memory", os.environ.get("SLUICEWAY_DRIVER_MEMORY", "2g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("SLUICEWAY_SHUFFLE_PARTITIONS", "8"))
    )
    for key, value in {**PIPELINE_CONF, **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
