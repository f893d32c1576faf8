"""The job arguments a spec with Iceberg sinks deploys with: Glue's Iceberg and --conf,
EMR's Iceberg jar and --confs, and the refusals (a local warehouse), all without Spark."""

from __future__ import annotations

import shlex

import pytest

from sluiceway.deploy.aws import Uploaded
from sluiceway.deploy.emr import EMR_ICEBERG_JAR, EmrSubmitOptions, spark_submit_parameters
from sluiceway.deploy.iceberg import glue_iceberg_arguments, iceberg_job_conf
from sluiceway.errors import DeployError
from sluiceway.spec import parse_spec

EXT = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
BASE = """
[pipeline]
name = "p"
output = "{output}"

[connections.db]
engine = "postgresql"
host = "db.example"
database = "meta"
user = "loader"
secret_id = "rds/meta"
{catalogs}
[tables.orders]
table = "public.orders"
primary_key = ["id"]
sink = {sink}
"""
GLUE = '\n[catalogs.lake]\ntype = "glue"\nwarehouse = "s3://lake/wh"\n'
JDBC = '\n[catalogs.meta]\ntype = "jdbc"\nconnection = "db"\nwarehouse = "s3a://lake/meta"\n'


def _conf(output="s3://lake/out", catalogs="", sink='{ format = "iceberg" }'):
    spec = parse_spec(BASE.format(output=output, catalogs=catalogs, sink=sink), "p.toml")
    return iceberg_job_conf(spec)


def _uploaded() -> Uploaded:
    base = "s3://art/sluiceway/artifacts/p/0.1.0-abc"
    return Uploaded("art", base, {"pyfiles": f"{base}/s.zip"}, (f"{base}/jars/pg.jar",), 0, 0)


def test_a_spec_without_iceberg_sinks_adds_nothing():
    assert _conf(sink='{ path = "orders" }') == ()
    assert glue_iceberg_arguments(()) == {}


def test_glue_catalog_deploys_as_one_chained_conf_with_glues_own_iceberg():
    conf = _conf(catalogs=GLUE)
    assert conf == (
        ("spark.sql.extensions", EXT),
        ("spark.sql.catalog.lake", "org.apache.iceberg.spark.SparkCatalog"),
        ("spark.sql.catalog.lake.warehouse", "s3://lake/wh"),
        ("spark.sql.catalog.lake.catalog-impl", "org.apache.iceberg.aws.glue.GlueCatalog"),
        ("spark.sql.catalog.lake.io-impl", "org.apache.iceberg.aws.s3.S3FileIO"),
    )
    args = glue_iceberg_arguments(conf)
    assert args["--datalake-formats"] == "iceberg"
    assert args["--conf"] == (
        f"spark.sql.extensions={EXT} "
        "--conf spark.sql.catalog.lake=org.apache.iceberg.spark.SparkCatalog "
        "--conf spark.sql.catalog.lake.warehouse=s3://lake/wh "
        "--conf spark.sql.catalog.lake.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog "
        "--conf spark.sql.catalog.lake.io-impl=org.apache.iceberg.aws.s3.S3FileIO"
    )
    # No local endpoint or region leaks into a deployed job.
    assert not [k for k, _ in conf if "endpoint" in k or "region" in k]


def test_emr_takes_the_platforms_iceberg_jar_and_one_conf_per_setting():
    conf = _conf(catalogs=GLUE)
    options = EmrSubmitOptions("app", "r", "art", spark_conf=(("spark.x", "1"),))
    parts = shlex.split(spark_submit_parameters(options, _uploaded(), conf))
    jars = parts[parts.index("--jars") + 1].split(",")
    assert jars == ["s3://art/sluiceway/artifacts/p/0.1.0-abc/jars/pg.jar", EMR_ICEBERG_JAR]
    confs = [parts[i + 1] for i, part in enumerate(parts) if part == "--conf"]
    assert confs[5:-1] == [f"{k}={v}" for k, v in conf]
    assert confs[-1] == "spark.x=1"  # the user's --conf comes last and wins
    plain = shlex.split(spark_submit_parameters(options, _uploaded()))
    assert EMR_ICEBERG_JAR not in " ".join(plain)


def test_jdbc_catalog_deploys_without_its_uri_or_login():
    conf = dict(_conf(catalogs=JDBC))
    assert conf["spark.sql.catalog.meta.catalog-impl"] == "org.apache.iceberg.jdbc.JdbcCatalog"
    assert conf["spark.sql.catalog.meta.warehouse"] == "s3a://lake/meta"
    # The password (and the user and host, which may come from the secret) are set at run
    # time from the connection's Secrets Manager secret, never as an argument.
    assert not [k for k in conf if k.endswith((".uri", ".jdbc.user", ".jdbc.password"))]


@pytest.mark.parametrize(
    ("output", "catalogs", "where", "hint"),
    [
        ("/data/out", "", "p.toml: catalogs.lake.warehouse", "<pipeline.output>/warehouse"),
        (
            "s3://lake/out",
            '\n[catalogs.lake]\ntype = "hadoop"\nwarehouse = "/tmp/wh"\n',
            "p.toml: catalogs.lake.warehouse",
            "",
        ),
        (
            "s3://lake/out",
            JDBC.replace("s3a://lake/meta", "/srv/meta"),
            "p.toml: catalogs.meta.warehouse",
            "",
        ),
    ],
)
def test_a_local_warehouse_is_refused_naming_the_key(output, catalogs, where, hint):
    with pytest.raises(DeployError) as info:
        _conf(output=output, catalogs=catalogs)
    assert info.value.where == where
    assert "a deployed job needs its" in info.value.message and hint in info.value.message


def test_a_setting_with_whitespace_is_refused():
    spaced = GLUE.replace("s3://lake/wh", "s3://lake/my wh")
    with pytest.raises(DeployError, match=r"p\.toml: catalogs\.lake: .*whitespace"):
        _conf(catalogs=spaced)
