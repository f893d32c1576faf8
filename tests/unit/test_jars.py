from __future__ import annotations

import pytest

from sluiceway import jars
from sluiceway.errors import SluicewayError


def test_s3a_jars_match_the_hadoop_inside_the_installed_pyspark():
    import pyspark

    hadoop = jars.pyspark_hadoop_version()
    expected = {"3": "3.3.4", "4": "3.4.2"}[pyspark.__version__.split(".")[0]]
    assert hadoop == expected
    hadoop_aws = [j for j in jars.s3a_jars() if j.artifact == "hadoop-aws"]
    assert [j.version for j in hadoop_aws] == [hadoop]


def test_each_hadoop_line_brings_the_aws_sdk_its_hadoop_aws_was_built_against():
    sdk = {
        v: {j.coordinate for j in js if j.artifact != "hadoop-aws"}
        for v, js in jars.S3A_JARS.items()
    }
    assert "com.amazonaws:aws-java-sdk-bundle:1.12.262" in sdk["3.3.4"]
    assert "software.amazon.awssdk:bundle:2.29.52" in sdk["3.4.2"]
    for pinned in jars.S3A_JARS.values():
        assert all(len(j.sha256) == 64 for j in pinned)


def test_unknown_hadoop_version_is_a_clear_error():
    with pytest.raises(SluicewayError, match="no S3A jars pinned for Hadoop 9.9.9"):
        jars.s3a_jars("9.9.9")


def test_cluster_jars_leave_the_s3_connector_to_the_platform():
    assert not {j.artifact for j in jars.required_jars()} & {"hadoop-aws", "bundle"}


def test_each_spark_line_has_the_iceberg_runtime_built_for_it():
    assert jars.iceberg_jar().artifact.startswith(f"iceberg-spark-runtime-{jars.pyspark_line()}_")
    assert {line: jar.version for line, jar in jars.ICEBERG_JARS.items()} == {
        "3.5": "1.10.0",
        "4.1": "1.11.0",
    }
    with pytest.raises(SluicewayError, match="no Iceberg runtime pinned for Spark 9.9"):
        jars.iceberg_jar("9.9")


def test_the_aws_sdk_for_icebergs_glue_catalog_is_pinned_where_s3a_lacks_sdk_v2():
    # 3.5: S3A is on SDK v1, so iceberg-aws-bundle of the line's own Iceberg version.
    (bundle,) = jars.iceberg_aws_jars("3.5")
    assert (bundle.artifact, bundle.version) == (
        "iceberg-aws-bundle",
        jars.iceberg_jar("3.5").version,
    )
    # 4.1: S3A's SDK v2 bundle is already on the class path; a second SDK v2 would clash.
    assert jars.iceberg_aws_jars("4.1") == ()
    assert any(j.group == "software.amazon.awssdk" for j in jars.S3A_JARS["3.4.2"])
    with pytest.raises(SluicewayError, match="no Iceberg runtime pinned for Spark 9.9"):
        jars.iceberg_aws_jars("9.9")
