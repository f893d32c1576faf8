"""AWS Glue: a GlueContext and a Job, the real ones on Glue and local stand-ins elsewhere.

awsglue's Python classes are thin wrappers over Glue's own JVM classes
(com.amazonaws.services.glue.*), which exist only on Glue's workers. `glue_context()`
asks the JVM whether Glue's GlueContext class is there: if it is, the real awsglue
GlueContext and Job are returned; if not (spark-submit on a laptop or in CI), the
stand-ins below, which expose exactly what jobs/glue_batch.py uses. The entrypoint never
asks where it runs; this module is the only place that knows.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, Protocol

from pyspark import SparkContext
from pyspark.sql import SparkSession

from sluiceway import report
from sluiceway.errors import CredentialsError
from sluiceway.sources.credentials import JdbcConfReader, glue_jdbc_conf

log = logging.getLogger(__name__)

GLUE_CONTEXT_CLASS = "com.amazonaws.services.glue.GlueContext"


class GlueContextLike(Protocol):
    """What our Glue entrypoint uses of awsglue.context.GlueContext."""

    @property
    def spark_session(self) -> SparkSession: ...

    def extract_jdbc_conf(self, connection_name: str, catalog_id: str | None = None) -> Any: ...


class JobLike(Protocol):
    """What our Glue entrypoint uses of awsglue.job.Job."""

    def init(self, job_name: str, args: Mapping[str, Any] | None = None) -> None: ...

    def commit(self) -> None: ...


def glue_jvm_available(sc: SparkContext) -> bool:
    """Whether Glue's own JVM classes are on this Spark driver's classpath."""
    from py4j.java_gateway import JavaClass

    jvm: Any = sc._jvm
    node = jvm
    for part in GLUE_CONTEXT_CLASS.split("."):
        node = getattr(node, part)
    # Py4J answers a JavaClass for a class it can load, a JavaPackage for anything else.
    return isinstance(node, JavaClass)


class LocalGlueContext:
    """Stand-in for awsglue's GlueContext where Glue's JVM classes are missing."""

    def __init__(self, sc: SparkContext) -> None:
        self._sc = sc
        self.spark_session = SparkSession.builder.getOrCreate()

    @property
    def sparkSession(self) -> SparkSession:  # noqa: N802 - awsglue's name
        return self.spark_session

    def get_logger(self) -> logging.Logger:
        return logging.getLogger("sluiceway.glue")

    def extract_jdbc_conf(self, connection_name: str, catalog_id: str | None = None) -> Any:
        """What Glue's extract_jdbc_conf answers ("url", "user", "password", "vendor"), read
        through the Glue GetConnection API (moto in tests)."""
        return glue_jdbc_conf(connection_name)


def jdbc_conf_reader(context: GlueContextLike) -> JdbcConfReader:
    """A Glue connection's JDBC settings as the context reads them; a failure on Glue's JVM
    side (a missing connection, no permission) becomes one CredentialsError."""
    from py4j.protocol import Py4JError

    def read(name: str) -> Mapping[str, Any]:
        try:
            conf = context.extract_jdbc_conf(name)
        except Py4JError as exc:
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise CredentialsError(f"Glue connection {name}: {first}") from exc
        # On Glue the answer is a Java map seen through Py4J: copy the keys we read.
        keys = ("url", "fullUrl", "user", "password", "vendor")
        return {key: conf[key] for key in keys if key in conf}

    return read


class LocalJob:
    """Stand-in for awsglue's Job: init and commit are checked and logged, nothing more.

    Glue's Job.commit saves job bookmarks; Sluiceway's jobs disable bookmarks (watermarks
    do that work on every platform), so there is nothing to save locally.
    """

    def __init__(self, glue_context: GlueContextLike) -> None:
        self._glue_context = glue_context
        self.job_name: str | None = None
        self.committed = False

    def init(self, job_name: str, args: Mapping[str, Any] | None = None) -> None:
        if not job_name:
            raise ValueError("Job.init needs a job name (Glue passes --JOB_NAME)")
        self.job_name = job_name
        log.info("glue job %s: initialised (local stand-in)", job_name)

    def isInitialized(self) -> bool:  # noqa: N802 - awsglue's name
        return self.job_name is not None

    def commit(self) -> None:
        # The real Job.commit fails the same way when init was never called.
        if self.job_name is None:
            raise RuntimeError("Job.commit called before Job.init")
        self.committed = True
        log.info("glue job %s: committed (local stand-in)", self.job_name)


def glue_context(sc: SparkContext) -> GlueContextLike:
    """awsglue's GlueContext on Glue; the local stand-in anywhere else."""
    if glue_jvm_available(sc):
        from awsglue.context import GlueContext

        return GlueContext(sc)  # type: ignore[no-any-return]
    log.info("Glue's JVM classes are not on the classpath: using the local GlueContext stand-in")
    return LocalGlueContext(sc)


def glue_job(context: GlueContextLike) -> JobLike:
    """awsglue's Job for a real GlueContext; the local stand-in for the stand-in context."""
    if isinstance(context, LocalGlueContext):
        return LocalJob(context)
    from awsglue.job import Job

    return Job(context)  # type: ignore[no-any-return]


# The arguments each Glue job script reads, in full: Glue 6.0's getResolvedOptions takes no
# abbreviation (allow_abbrev=False), so every name here is exactly the one `deploy glue`
# sets in the job's DefaultArguments (deploy/glue.py) or Glue itself passes (JOB_NAME).
BATCH_ARGUMENTS = ("JOB_NAME", "spec", "full_refresh")
BATCH_OPTIONAL = ("output", "state")
STREAM_ARGUMENTS = ("JOB_NAME", "spec")
STREAM_OPTIONAL = ("output", "checkpoint")


def glue_arguments(
    argv: Sequence[str], names: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, Any]:
    """The job's arguments, resolved by awsglue's own getResolvedOptions; the `optional`
    ones only when given (getResolvedOptions has no optional arguments).

    Like argparse, a missing argument ends the process with one error line and status 2.
    """
    from awsglue.utils import GlueArgumentError, getResolvedOptions

    given = [name for name in optional if f"--{name}" in argv]
    try:
        return dict(getResolvedOptions(list(argv), [*names, *given]))
    except GlueArgumentError as exc:
        _exit_bad_arguments(exc)


def _exit_bad_arguments(exc: Exception) -> NoReturn:
    report.print_error(f"job arguments: {exc}")
    sys.exit(2)


def start_glue_job(args: Mapping[str, Any]) -> tuple[GlueContextLike, JobLike]:
    """The GlueContext and the initialised Job for this run (the stand-ins off Glue)."""
    context = glue_context(SparkContext.getOrCreate())
    job = glue_job(context)
    job.init(args["JOB_NAME"], args)
    return context, job
