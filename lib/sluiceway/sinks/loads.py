"""Run a spec's `load` targets (jdbc, redshift) for a dataset the pipeline has just written."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from sluiceway import aws
from sluiceway.errors import SpecError
from sluiceway.sinks.jdbc import LoadResult, write_jdbc
from sluiceway.sinks.redshift import DRIVER, DataApiRunner, write_redshift
from sluiceway.sinks.sql import JvmJdbcRunner, SqlRunner
from sluiceway.sources import jdbc
from sluiceway.sources.credentials import Credentials
from sluiceway.spec import Connection, JdbcLoad, Load, RedshiftLoad

log = logging.getLogger(__name__)

_HOST = re.compile(r"^[A-Za-z0-9.\-_]+$")
_DATABASE = re.compile(r"^[A-Za-z0-9_\-$]+$")
REDSHIFT_PORT = 5439


def load_connections(loads: tuple[Load, ...]) -> set[str]:
    """The connections `loads` need credentials for."""
    return {load.connection for load in loads if load.connection is not None}


def redshift_jdbc_runner(spark: SparkSession, conn: Connection, creds: Credentials) -> SqlRunner:
    port = creds.port or REDSHIFT_PORT
    database = creds.database or "dev"
    if not _HOST.match(creds.host):
        raise SpecError(f"connection {conn.name}: host {creds.host!r} is not a host name")
    if not _DATABASE.match(database):
        raise SpecError(f"connection {conn.name}: database {database!r} is not a database name")
    return JvmJdbcRunner(
        spark,
        f"jdbc:redshift://{creds.host}:{port}/{database}",
        f"redshift {creds.host}:{port}/{database}",
        {**conn.options, "user": creds.user, "password": creds.password},
        driver=DRIVER,
    )


def write_load(
    spark: SparkSession,
    df: DataFrame,
    load: Load,
    connections: Mapping[str, Connection],
    credentials: Mapping[str, Credentials],
    where: str,
    *,
    data_api_client: Any | None = None,
) -> LoadResult:
    """Load `df` into one target of the spec."""
    where = f"{where}: load into {load.table}"
    if isinstance(load, JdbcLoad):
        conn = connections[load.connection]
        return write_jdbc(
            spark,
            df,
            jdbc.jdbc_source(conn, credentials[load.connection]),
            load.table,
            mode=load.mode,
            key=load.key,
            order_by=load.order_by,
            batch_size=load.batch_size,
            where=where,
        )
    assert isinstance(load, RedshiftLoad)
    runner: SqlRunner
    if load.via == "jdbc" and load.connection is not None:
        conn = connections[load.connection]
        runner = redshift_jdbc_runner(spark, conn, credentials[load.connection])
    else:
        runner = DataApiRunner(
            data_api_client or aws.client("redshift-data"),
            database=load.database or "",
            cluster_identifier=load.cluster_identifier,
            workgroup_name=load.workgroup_name,
            secret_arn=load.secret_arn,
            db_user=load.db_user,
        )
    return write_redshift(
        spark,
        df,
        runner,
        load.table,
        mode=load.mode,
        key=load.key,
        order_by=load.order_by,
        staging_uri=load.staging,
        copy_uri=load.copy_uri,
        iam_role=load.iam_role,
        where=where,
    )
