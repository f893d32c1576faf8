from __future__ import annotations

import json

import pytest

from sluiceway.errors import SluicewayError
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
