"""What a deployed job needs for a spec's Iceberg sinks: the platform's own Iceberg, its SQL
extensions and each catalog's settings as Spark confs. No Iceberg jar is uploaded: Glue 5.1
ships Iceberg 1.10.0 (Spark 3.5) and Glue 6.0 1.11.0 (Spark 4.1), enabled by
`--datalake-formats iceberg`; EMR 7.x and emr-spark-8.0 keep their own under
/usr/share/aws/iceberg/lib.

A catalog's settings here never carry a secret: a jdbc catalog's URI and login are added
at run time from its connection's credentials (a Secrets Manager secret on a cluster), by
the same registration that runs locally (`sinks/iceberg.register_catalog`).
"""

from __future__ import annotations

from sluiceway.errors import DeployError
from sluiceway.iceberg_conf import ICEBERG_EXTENSIONS, catalog_settings
from sluiceway.spec import (
    DEFAULT_ICEBERG_CATALOG,
    IcebergCatalog,
    IcebergSink,
    OutputSpec,
    PipelineSpec,
    TableSpec,
    join_path,
)

# EMR Serverless 7.x: "spark.jars=/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
# (Amazon EMR Serverless User Guide, "Using Apache Iceberg with EMR Serverless",
# https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/using-iceberg.html).
# It goes on --jars, not --conf spark.jars: spark-submit drops --conf spark.jars when
# --jars is given (checked with spark-submit --verbose on 3.5.8), and ours always is. The
# same path is used on emr-spark-8.0: its release page lists Iceberg 1.10.1-amzn-0 and no
# jar path (https://docs.amazonaws.cn/en_us/emr/latest/ReleaseGuide/emr-spark800-release.html),
# and the EMR Serverless Iceberg page above gives this one path with no release named.
EMR_ICEBERG_JAR = "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
Conf = tuple[tuple[str, str], ...]


def used_catalogs(spec: PipelineSpec) -> tuple[IcebergCatalog, ...]:
    """The catalogs the spec's Iceberg sinks write to, in spec order."""
    found: dict[str, IcebergCatalog] = {}
    items: tuple[TableSpec | OutputSpec, ...] = (*spec.tables, *spec.outputs)
    for item in items:
        if isinstance(item.sink, IcebergSink):
            found.setdefault(item.sink.catalog.name, item.sink.catalog)
    return tuple(found.values())


def _check_deployable(spec: PipelineSpec, catalog: IcebergCatalog) -> None:
    """A cluster cannot reach a warehouse on a laptop's disk: refuse it, naming the key."""
    if catalog.warehouse.startswith(("s3://", "s3a://")):
        return
    implicit = catalog.name == DEFAULT_ICEBERG_CATALOG and catalog.warehouse == join_path(
        spec.output_root, "warehouse"
    )
    hint = " (the default catalog's warehouse is <pipeline.output>/warehouse)" if implicit else ""
    raise DeployError(
        f"{catalog.warehouse!r} is not on S3; a deployed job needs its {catalog.type} "
        f"catalog's warehouse on S3 (s3://bucket/prefix){hint}",
        where=f"{spec.source_file}: catalogs.{catalog.name}.warehouse",
    )


def iceberg_job_conf(spec: PipelineSpec) -> Conf:
    """The Spark settings a deployed job needs for the spec's Iceberg sinks (none without
    any): the SQL extensions, then each catalog's settings."""
    catalogs = used_catalogs(spec)
    if not catalogs:
        return ()
    conf = [("spark.sql.extensions", ICEBERG_EXTENSIONS)]
    for catalog in catalogs:
        _check_deployable(spec, catalog)
        for key, value in catalog_settings(catalog).items():
            if not value or any(ch.isspace() for ch in value):
                # Glue splits its one --conf argument on whitespace; so would spark-submit.
                raise DeployError(
                    f"{key}={value!r}: a deployed setting cannot be empty or hold whitespace",
                    where=f"{spec.source_file}: catalogs.{catalog.name}",
                )
            conf.append((key, value))
    return tuple(conf)


def glue_iceberg_arguments(conf: Conf) -> dict[str, str]:
    """Glue job arguments for `conf`: Glue's Iceberg, and its one --conf argument chaining
    the settings ("k1=v1 --conf k2=v2", as the Glue guide's Iceberg page spells it)."""
    if not conf:
        return {}
    chained = " --conf ".join(f"{key}={value}" for key, value in conf)
    return {"--datalake-formats": "iceberg", "--conf": chained}
