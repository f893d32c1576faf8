"""runtimes.glue: the stand-ins for awsglue's GlueContext and Job, on the test session."""

from __future__ import annotations

import pytest
from py4j.protocol import Py4JError

from sluiceway.errors import CredentialsError
from sluiceway.runtimes.glue import (
    LocalGlueContext,
    LocalJob,
    glue_arguments,
    glue_context,
    glue_job,
    glue_jvm_available,
    jdbc_conf_reader,
)


def test_without_glue_jvm_classes_the_stand_ins_wrap_the_running_session(spark):
    assert not glue_jvm_available(spark.sparkContext)
    context = glue_context(spark.sparkContext)
    assert isinstance(context, LocalGlueContext)
    assert context.spark_session is spark and context.sparkSession is spark
    job = glue_job(context)
    assert isinstance(job, LocalJob) and not job.isInitialized()


def test_glue_jvm_check_finds_a_class_that_is_on_the_classpath(spark, monkeypatch):
    # The same Py4J lookup, pointed at a class every JVM has, must answer True.
    monkeypatch.setattr("sluiceway.runtimes.glue.GLUE_CONTEXT_CLASS", "java.lang.String")
    assert glue_jvm_available(spark.sparkContext)


def test_local_job_commit_needs_init_like_glues():
    job = LocalJob(object())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="before Job.init"):
        job.commit()
    job.init("nightly", {"spec": "s3://b/k.toml"})
    job.commit()
    assert job.committed and job.job_name == "nightly"


def test_optional_glue_arguments_are_resolved_only_when_given():
    # awsglue's own getResolvedOptions: it fails on a listed name the job was not given.
    base = ["job.py", "--JOB_NAME", "j", "--spec", "s3://b/s.toml"]
    args = glue_arguments(base, ["JOB_NAME", "spec"], optional=["output", "state"])
    assert "output" not in args and "state" not in args
    given = glue_arguments(
        [*base, "--output", "s3://b/out"], ["JOB_NAME", "spec"], optional=["output", "state"]
    )
    assert given["output"] == "s3://b/out" and "state" not in given


class _GlueLikeContext:
    """A stand-in for Glue's GlueContext: extract_jdbc_conf answers a mapping with more
    keys than Sluiceway reads, or fails on the JVM side the way Py4J reports it."""

    def __init__(self, conf=None, error=None):
        self._conf, self._error = conf, error

    def extract_jdbc_conf(self, connection_name, catalog_id=None):
        if self._error:
            raise self._error
        return self._conf


def test_jdbc_conf_reader_keeps_the_keys_sluiceway_reads():
    conf = {"url": "jdbc:postgresql://h:5432", "user": "u", "password": "p", "enforceSSL": "false"}
    read = jdbc_conf_reader(_GlueLikeContext(conf))
    assert read("rds-orders") == {"url": "jdbc:postgresql://h:5432", "user": "u", "password": "p"}


def test_jdbc_conf_reader_turns_a_glue_side_failure_into_one_error():
    error = Py4JError("An error occurred while calling o42.extractJDBCConf.\nTrace: ...")
    read = jdbc_conf_reader(_GlueLikeContext(error=error))
    with pytest.raises(CredentialsError) as caught:
        read("rds-orders")
    assert str(caught.value) == (
        "Glue connection rds-orders: An error occurred while calling o42.extractJDBCConf."
    )
