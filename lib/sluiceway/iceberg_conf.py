"""The Spark settings of Iceberg catalogs, with the standard library only.

The sink registers its catalogs at run time (`sinks/iceberg.py`, which adds a jdbc
catalog's credentials); `deploy glue` and `submit emr` pass the same settings, less any
secret, as the job's `--conf`s (`deploy/iceberg.py`), where Spark is not installed.
"""

from __future__ import annotations

from collections.abc import Mapping

from sluiceway.spec import IcebergCatalog

# Iceberg's SQL extensions (MERGE INTO, CALL procedures); a static setting: it must be
# given when the session is built.
ICEBERG_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
GLUE_CATALOG_IMPL = "org.apache.iceberg.aws.glue.GlueCatalog"
S3_FILE_IO = "org.apache.iceberg.aws.s3.S3FileIO"
JDBC_CATALOG_IMPL = "org.apache.iceberg.jdbc.JdbcCatalog"


def catalog_prefix(catalog: IcebergCatalog) -> str:
    return f"spark.sql.catalog.{catalog.name}"


def catalog_settings(catalog: IcebergCatalog) -> dict[str, str]:
    """The settings that declare `catalog`, none of them a secret (a jdbc catalog's URI
    and login come from its connection's credentials at run time)."""
    prefix = catalog_prefix(catalog)
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.warehouse": catalog.warehouse,
    }
    if catalog.type == "hadoop":
        conf[f"{prefix}.type"] = "hadoop"
    elif catalog.type == "glue":
        conf[f"{prefix}.catalog-impl"] = GLUE_CATALOG_IMPL
        conf[f"{prefix}.io-impl"] = S3_FILE_IO
    else:
        conf[f"{prefix}.catalog-impl"] = JDBC_CATALOG_IMPL
        # The catalog's tables are created on first use, in the V1 layout every Iceberg
        # release can read.
        conf[f"{prefix}.jdbc.schema-version"] = "V1"
    return conf


def aws_client_settings(
    catalog: IcebergCatalog, env: Mapping[str, str], region: str | None
) -> dict[str, str]:
    """A glue catalog's AWS clients pointed where boto3 points: the region boto3 resolved
    and the endpoints of AWS_ENDPOINT_URL_GLUE / _S3, else AWS_ENDPOINT_URL (a local
    endpoint, addressed path-style like S3A's).

    Checked against moto with iceberg-aws-bundle 1.10.0: without `client.region` the Glue
    client finds no region (the Java SDK reads AWS_REGION, not boto3's AWS_DEFAULT_REGION);
    an `s3.endpoint` naming a host (http://localhost:...) fails without path-style.
    Credentials are not set here: the SDK's default chain reads the same AWS_* variables
    and profile boto3 does, and a key in a Spark setting would be listed with the
    session's settings."""
    if catalog.type != "glue":
        return {}
    prefix = catalog_prefix(catalog)
    conf = {}
    if region:
        conf[f"{prefix}.client.region"] = region
    glue = env.get("AWS_ENDPOINT_URL_GLUE") or env.get("AWS_ENDPOINT_URL")
    if glue:
        conf[f"{prefix}.glue.endpoint"] = glue
    s3 = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if s3:
        conf[f"{prefix}.s3.endpoint"] = s3
        conf[f"{prefix}.s3.path-style-access"] = "true"
    return conf
