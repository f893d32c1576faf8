from __future__ import annotations

import json

import pytest

from sluiceway.errors import SluicewayError
from sluiceway.iceberg_conf import aws_client_settings
from sluiceway.sinks.iceberg import catalog_conf, watermark_properties
from sluiceway.sources.credentials import Credentials
from sluiceway.spec import IcebergCatalog


def test_hadoop_catalog_conf_names_the_warehouse():
    conf = catalog_conf(IcebergCatalog("lake", "hadoop", "/data/wh"))
    assert conf == {
        "spark.sql.catalog.lake": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.lake.warehouse": "/data/wh",
        "spark.sql.catalog.lake.type": "hadoop",
    }


def test_jdbc_catalog_conf_points_at_the_connection_database():
    creds = Credentials("u", "secret", "db.local", 5432, "meta")
    conf = catalog_conf(IcebergCatalog("m", "jdbc", "s3://b/wh", "db"), creds)
    assert conf["spark.sql.catalog.m.catalog-impl"] == "org.apache.iceberg.jdbc.JdbcCatalog"
    assert conf["spark.sql.catalog.m.uri"] == "jdbc:postgresql://db.local:5432/meta"
    assert (conf["spark.sql.catalog.m.jdbc.user"], conf["spark.sql.catalog.m.jdbc.password"]) == (
        "u",
        "secret",
    )
    with pytest.raises(SluicewayError, match="needs its credentials"):
        catalog_conf(IcebergCatalog("m", "jdbc", "/wh", "db"))


def test_watermark_properties_carry_the_run_and_a_watermark_only_when_there_is_one():
    mark = {"kind": "timestamp", "value": "2024-01-01T00:00:00"}
    props = watermark_properties("r1", mark)
    assert props["sluiceway.run-id"] == "r1"
    assert json.loads(props["sluiceway.watermark"]) == mark
    assert watermark_properties("r2", None) == {"sluiceway.run-id": "r2"}


def test_glue_catalog_conf_uses_gluecatalog_and_s3fileio():
    conf = catalog_conf(IcebergCatalog("g", "glue", "s3://b/wh"))
    assert conf == {
        "spark.sql.catalog.g": "org.apache.iceberg.spark.SparkCatalog",
        "spark.sql.catalog.g.warehouse": "s3://b/wh",
        "spark.sql.catalog.g.catalog-impl": "org.apache.iceberg.aws.glue.GlueCatalog",
        "spark.sql.catalog.g.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
    }


def test_glue_clients_follow_the_standard_aws_endpoint_variables():
    glue = IcebergCatalog("g", "glue", "s3://b/wh")
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    assert aws_client_settings(glue, env, "eu-west-1") == {
        "spark.sql.catalog.g.client.region": "eu-west-1",
        "spark.sql.catalog.g.glue.endpoint": "http://127.0.0.1:4566",
        "spark.sql.catalog.g.s3.endpoint": "http://127.0.0.1:4566",
        "spark.sql.catalog.g.s3.path-style-access": "true",
    }
    # A service's own variable wins over the general one.
    split = {**env, "AWS_ENDPOINT_URL_S3": "http://s3.local", "AWS_ENDPOINT_URL_GLUE": "http://g"}
    conf = aws_client_settings(glue, split, None)
    assert conf["spark.sql.catalog.g.s3.endpoint"] == "http://s3.local"
    assert conf["spark.sql.catalog.g.glue.endpoint"] == "http://g"
    assert "spark.sql.catalog.g.client.region" not in conf
    # Real AWS: nothing but the region; other catalog types get nothing.
    assert aws_client_settings(glue, {}, "us-east-1") == {
        "spark.sql.catalog.g.client.region": "us-east-1"
    }
    assert aws_client_settings(IcebergCatalog("h", "hadoop", "s3://b/wh"), env, "x") == {}
