from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

_TEST_CONF = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}


@pytest.fixture(scope="session")
def spark(request: pytest.FixtureRequest):
    """The one SparkSession of the test process (a process can start only one SparkContext).

    A run that collected no integration test gets a bare session: local[2], no jars, no
    S3A, no AWS lookups, so the unit tests prove they need none of them. A run with
    integration tests gets the local runtime's session (pinned JDBC drivers and S3A), and
    the unit tests of that run share it.
    """
    from sluiceway.runtimes.local import build_local_session

    if any(item.get_closest_marker("integration") for item in request.session.items):
        session = build_local_session("sluiceway-tests", master="local[2]", extra_conf=_TEST_CONF)
    else:
        session = _bare_session()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _bare_session():
    from pyspark.sql import SparkSession

    from sluiceway.runtimes.local import PIPELINE_CONF, java_options

    builder = (
        SparkSession.builder.appName("sluiceway-unit-tests")
        .master("local[2]")
        .config("spark.driver.extraJavaOptions", java_options())
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in {**PIPELINE_CONF, **_TEST_CONF}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
