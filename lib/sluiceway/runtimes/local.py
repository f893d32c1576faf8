"""A SparkSession for local runs (CLI, tests, spark-submit on a laptop or server).

S3 locally goes through Hadoop's S3A connector (pinned in jars.py). Its endpoint, region
and credentials come from the standard AWS variables and profile, exactly as boto3 finds
them, so one pipeline runs against a local S3 endpoint (AWS_ENDPOINT_URL) or real S3
unchanged. Glue and EMR use their own S3 connector: nothing here runs there.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyspark.sql import SparkSession

from sluiceway import jars
from sluiceway.iceberg_conf import ICEBERG_EXTENSIONS

log = logging.getLogger(__name__)

# Credentials that refresh themselves (instance profile, container role) are left to
# S3A's own provider chain; anything else boto3 resolves is handed to S3A as is.
_SELF_REFRESHING = ("iam-role", "container-role")

# Settings every Sluiceway session needs, on any platform. Runtimes apply them on top of
# what the platform gives (Glue/EMR set their own master, memory and S3 connector).
PIPELINE_CONF: dict[str, str] = {
    # Rerunning a window rewrites only the partitions it touches.
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # Timestamps are planned, compared and written in UTC; see sources/jdbc.py.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # Dates and timestamps before 1582-10-15 are written as they are (proleptic Gregorian,
    # what Spark 3+, Iceberg, Athena and Redshift read), not refused: Spark 4's default;
    # Spark 3.5's (EXCEPTION) failed the write of a PostgreSQL date '1500-03-01'.
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    # Row counts come from observations on the write itself. When a shuffle's output is
    # empty (an append whose rows all landed already, a batch all quarantined), this rule
    # replaces the rest of the plan, and the observation's metrics with it (checked on
    # Spark 3.5.8 and 4.1.4: `Observation.get` is empty).
    "spark.sql.adaptive.optimizer.excludedRules": (
        "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"
    ),
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


def s3a_settings(env: Mapping[str, str], region: str | None) -> dict[str, str]:
    """Hadoop settings for S3A from the standard AWS variables (no credentials here).

    `s3://` is mapped to S3A too, so the URIs that work on Glue/EMR work locally. A custom
    endpoint (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL) gets path-style access, which
    local S3 servers need; without one S3A talks to AWS with virtual-host addressing.
    """
    settings = {
        "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        # Hadoop 3.3 deletes the parent "directory" markers after every file it creates;
        # keeping them (Hadoop 3.4's default) saves a LIST and a DELETE per file.
        "fs.s3a.directory.marker.retention": "keep",
    }
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        settings["fs.s3a.endpoint"] = endpoint
        settings["fs.s3a.path.style.access"] = "true"
        settings["fs.s3a.connection.ssl.enabled"] = str(
            urlsplit(endpoint).scheme == "https"
        ).lower()
    if region:
        settings["fs.s3a.endpoint.region"] = region
    return settings


def configure_s3a(spark: SparkSession) -> None:
    """Point the session's S3A at the endpoint, region and credentials boto3 would use."""
    from sluiceway import aws

    session = aws.session()
    hadoop_conf: Any = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_settings(os.environ, session.region_name).items():
        hadoop_conf.set(key, value)
    credentials = session.get_credentials()
    if credentials is None or credentials.method in _SELF_REFRESHING:
        return
    # Set on the Hadoop configuration only (never SparkConf), so they are not listed with
    # the session's settings; a profile's temporary credentials are frozen for this run.
    frozen = credentials.get_frozen_credentials()
    hadoop_conf.set("fs.s3a.access.key", frozen.access_key)
    hadoop_conf.set("fs.s3a.secret.key", frozen.secret_key)
    if frozen.token:
        hadoop_conf.set("fs.s3a.session.token", frozen.token)
        provider = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    else:
        hadoop_conf.unset("fs.s3a.session.token")
        provider = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    hadoop_conf.set("fs.s3a.aws.credentials.provider", provider)
    log.debug("S3A credentials from %s", credentials.method)


def build_local_session(
    app_name: str = "sluiceway",
    master: str | None = None,
    extra_conf: Mapping[str, str] | None = None,
    msk_iam: bool = False,
) -> SparkSession:
    """Start (or reuse) a local SparkSession with the pinned JDBC jars, S3A, Iceberg and
    Spark's Kafka source (with MSK's IAM login module when `msk_iam`)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    java_opts = java_options()
    # S3A goes on the JVM class path, not spark.jars: in local mode every spark.jars entry
    # is copied to the executor's work directory, and the AWS SDK bundle is hundreds of MB.
    # Iceberg's runtime (tens of MB) goes there too; its SQL extensions are on in every
    # local session (they add MERGE INTO and the Iceberg procedures, and cost nothing
    # measurable at start-up), while its catalogs are registered by the datasets using them.
    class_path = os.pathsep.join(str(p) for p in (*jars.s3a_jar_paths(), *jars.iceberg_jar_paths()))
    # The Kafka source is small (under 10 MB with kafka-clients): spark.jars, like JDBC.
    kafka = jars.kafka_jar_paths(msk_iam=msk_iam)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master or os.environ.get("SLUICEWAY_SPARK_MASTER", "local[*]"))
        .config("spark.jars", ",".join(str(p) for p in [*jars.local_jar_paths(), *kafka]))
        .config("spark.driver.extraClassPath", class_path)
        .config("spark.executor.extraClassPath", class_path)
        .config("spark.driver.extraJavaOptions", java_opts)
        .config("spark.executor.extraJavaOptions", java_opts)
        # Local mode runs everything in the driver JVM; 1g (Spark's default) is too small
        # to cache a table of a few million rows without spilling.
        .config("spark.driver.memory", os.environ.get("SLUICEWAY_DRIVER_MEMORY", "2g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", os.environ.get("SLUICEWAY_SHUFFLE_PARTITIONS", "8"))
        .config("spark.sql.extensions", ICEBERG_EXTENSIONS)
    )
    for key, value in {**PIPELINE_CONF, **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    configure_s3a(spark)
    return spark


def with_iceberg_extensions(extensions: str) -> str:
    """`spark.sql.extensions` as given, with Iceberg's added (last) if missing."""
    given = [name.strip() for name in extensions.split(",") if name.strip()]
    if ICEBERG_EXTENSIONS not in given:
        given.append(ICEBERG_EXTENSIONS)
    return ",".join(given)


def submitted_session(app_name: str) -> SparkSession:
    """The session local spark-submit configured, with Iceberg's SQL extensions, the
    pipeline settings and S3A.

    The extensions are a static setting, read when the session starts: spark-submit runs
    this script before any session exists, so the builder can still add them to what
    spark-submit was given (its `--conf`s are the JVM's SparkConf defaults)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # the JVM, so SparkConf reads spark-submit's settings
    given = SparkConf().get("spark.sql.extensions", "") or ""
    extensions = with_iceberg_extensions(given)
    builder = SparkSession.builder.appName(app_name).config("spark.sql.extensions", extensions)
    spark = apply_pipeline_conf(builder.getOrCreate())
    configure_s3a(spark)
    return spark
