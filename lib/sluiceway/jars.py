"""The JVM jars Sluiceway needs beside Spark: pinned here, and only here.

`fetch_jars()` resolves them from Maven Central with the Ivy jar that ships inside
pyspark (the same resolver `spark-submit --packages` uses), copies them into a local
cache and checks each against its pinned SHA-256. Locally the cached JDBC drivers go on
`spark.jars`; for Glue / EMR the same files are uploaded as `--extra-jars` / `--jars`.

The S3A connector (`hadoop-aws` and the AWS SDK it was built against) is for local runs
only: Glue and EMR bring their own S3 connector, and a second one on their classpath
would clash with it. Its version must equal the Hadoop version inside pyspark, so the set
is chosen from the `hadoop-client-api` jar the installed pyspark ships.

The Iceberg Spark runtime is built per Spark line (and Scala version), so it is chosen
from the installed pyspark's version too. It is for local runs: Glue and EMR ship their own,
with the AWS SDK v2 its GlueCatalog needs (pinned for local runs where S3A lacks it).

Spark's Kafka source (`spark-sql-kafka-0-10`) is built per Spark line too; it and the jars
it needs beside pyspark's (kafka-clients, commons-pool2, the token provider) go on every
local session. MSK's IAM login (`aws-msk-iam-auth`) is added only when a spec asks for it.
An artifact set for a Kafka stream carries the jars of its target's line (deploy/package.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sluiceway.errors import SluicewayError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.jar"

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def family(self) -> str:
        """group:artifact without a Scala suffix (`spark-sql-kafka-0-10_2.13` ->
        `spark-sql-kafka-0-10`): what a platform provides, whatever its Scala."""
        artifact = self.artifact
        for scala in ("_2.12", "_2.13"):
            artifact = artifact.removesuffix(scala)
        return f"{self.group}:{artifact}"


# JDBC drivers. mysql-connector-j's only dependency (protobuf) serves the X DevAPI, not JDBC.
JDBC_JARS: tuple[Jar, ...] = (
    Jar(
        "org.postgresql",
        "postgresql",
        "42.7.14",
        "73914527305a40cce504b0d3d90b23caf565136912d607ae8ae7c5895512332c",
    ),
    Jar(
        "com.mysql",
        "mysql-connector-j",
        "9.7.0",
        "0353648eaa1c91e0f4020c959abf756bc866ffd583df22ae6b6f6e0cbd43eb44",
    ),
)


# hadoop-aws for each Hadoop that a supported pyspark bundles, plus the compile-scope
# dependencies its POM declares (versions from the hadoop-project parent POM):
# PySpark 3.5.x bundles Hadoop 3.3.4 (AWS SDK v1), PySpark 4.1 bundles Hadoop 3.4.2 (SDK v2).
# When pinning, the SHA-1 published beside each jar was checked too.
S3A_JARS: dict[str, tuple[Jar, ...]] = {
    "3.3.4": (
        Jar(
            "org.apache.hadoop",
            "hadoop-aws",
            "3.3.4",
            "53f9ae03c681a30a50aa17524bd9790ab596b28481858e54efd989a826ed3a4a",
        ),
        Jar(
            "com.amazonaws",
            "aws-java-sdk-bundle",
            "1.12.262",
            "873fe7cf495126619997bec21c44de5d992544aea7e632fdc77adb1a0915bae5",
        ),
    ),
    "3.4.2": (
        Jar(
            "org.apache.hadoop",
            "hadoop-aws",
            "3.4.2",
            "d2d24e6b715b5656b9d238bf13b6682a07e2004dd36aad74a73aeb854319f4d9",
        ),
        Jar(
            "software.amazon.awssdk",
            "bundle",
            "2.29.52",
            "62638f33045690c6bc5e496b54b0b2e89a9ad38cbedacdf6e017fea6bc85f55c",
        ),
        Jar(
            "software.amazon.s3.analyticsaccelerator",
            "analyticsaccelerator-s3",
            "1.2.1",
            "11029552e37408e41e689b20150f4b372e0b4f232de321ccafd0fcf443cdfb5a",
        ),
    ),
}


# Redshift's JDBC driver, for the `redshift` sink's statements. Its AWS SDK dependencies only
# serve IAM authentication; password (or Secrets Manager) logins need the jar alone.
REDSHIFT_JARS: tuple[Jar, ...] = (
    Jar(
        "com.amazon.redshift",
        "redshift-jdbc42",
        "2.3.0",
        "133009e292b583654c45e37bce15947d4e17a60a5804f730cb8abd22320b4295",
    ),
)


# Iceberg's Spark runtime per Spark line, at the version the matching platform ships:
# Glue 5.1 has Iceberg 1.10.0 on Spark 3.5, Glue 6.0 has 1.11.0 on Spark 4.1. The runtime
# jar bundles its dependencies (JdbcCatalog included; it uses the pinned PostgreSQL driver).
# When pinning, the SHA-1 published beside each jar was checked too.
ICEBERG_JARS: dict[str, Jar] = {
    "3.5": Jar(
        "org.apache.iceberg",
        "iceberg-spark-runtime-3.5_2.12",
        "1.10.0",
        "70f9471870b2d456167d703c829f098a446b86bb1379eee338c0efa03a341026",
    ),
    "4.1": Jar(
        "org.apache.iceberg",
        "iceberg-spark-runtime-4.1_2.13",
        "1.11.0",
        "d6ea6c5d099288daeb7d5a92061bd3d7d8f296492632b42378e5f2f0e3066242",
    ),
}


# The AWS SDK v2 that Iceberg's GlueCatalog and S3FileIO call (the runtime jar bundles
# iceberg-aws but no SDK), for local runs only: Glue and EMR ship it with their Iceberg.
# PySpark 3.5's S3A is built on SDK v1, so that line gets iceberg-aws-bundle of its
# Iceberg version (SDK v2 clients for Glue, S3, STS, KMS, ...; Apache HTTP shaded).
# PySpark 4.1's S3A already puts SDK v2 (`bundle` 2.29.52) on the class path, which
# Iceberg 1.11 runs with; a second, different SDK v2 beside it would be a clash.
ICEBERG_AWS_JARS: dict[str, tuple[Jar, ...]] = {
    "3.5": (
        Jar(
            "org.apache.iceberg",
            "iceberg-aws-bundle",
            "1.10.0",
            "172370cfc32a5f1ae5399b210e86fc04a366dc29a112d97ac8ffc74df7525596",
        ),
    ),
    "4.1": (),
}


# Spark's Kafka source per Spark line, with the dependencies pyspark does not bundle (its
# lz4, snappy, zstd and slf4j serve kafka-clients); the versions of kafka-clients and
# commons-pool2 are those the connector's POM names. Maven Central serves neither 3.5.8 nor
# 4.1.4 of the connector (pyspark's own versions); the newest it has are 3.5.7 and 4.1.3.
# 4.1.3 it must be on the 4.1 line: 4.1.0-4.1.2 fail a query restarted on a checkpoint
# whose last batch was not committed (NullPointerException in KafkaMicroBatchStream.metrics,
# SPARK-55271; seen here with 4.1.1, fixed in 4.1.3). The bug came with 4.1's real-time
# mode (SPARK-54027), so the 4.0 line (emr-spark-8.0 runs Spark 4.0.2) keeps the
# platform's own 4.0.2. The token provider (delegation tokens only) is served up to 4.0.0
# and 4.1.1 of those lines and kept there: same kafka-clients, same API.
# The tests run 3.5 and 4.1 on PySpark 3.5.8 and 4.1.4; the 4.0 set is only packaged (for
# EMR), never run here. Each was checked against the SHA-1 published beside it when pinned.
KAFKA_JARS: dict[str, tuple[Jar, ...]] = {
    "3.5": (
        Jar(
            "org.apache.spark",
            "spark-sql-kafka-0-10_2.12",
            "3.5.7",
            "184f8bd4a3cd22299c49090d88b894f81fd7546b4ee64879519a0d76a685dbb8",
        ),
        Jar(
            "org.apache.spark",
            "spark-token-provider-kafka-0-10_2.12",
            "3.5.7",
            "9701914db5c6d09628b58d2d2c1ccd2c9ea28f32f83dd6cb21f98b8237531ff4",
        ),
        Jar(
            "org.apache.kafka",
            "kafka-clients",
            "3.4.1",
            "9d0a9058c8ede79db6e54ae378ed16fe8d1bead2894635a4aa6aa0b7981668c6",
        ),
        Jar(
            "org.apache.commons",
            "commons-pool2",
            "2.11.1",
            "ea0505ee7515e58b1ac0e686e4d1a5d9f7d808e251a61bc371aa0595b9963f83",
        ),
    ),
    "4.0": (
        Jar(
            "org.apache.spark",
            "spark-sql-kafka-0-10_2.13",
            "4.0.2",
            "faa232c017b0cb4480c14643eb82abf6d0cac4b4d032059bf999b9246d045eb6",
        ),
        Jar(
            "org.apache.spark",
            "spark-token-provider-kafka-0-10_2.13",
            "4.0.0",
            "f2be3b76f9e6cbe63379d4e4e0dc14f59dbf056ae2ad16ff15ac108004c86767",
        ),
        Jar(
            "org.apache.kafka",
            "kafka-clients",
            "3.9.1",
            "7568b998572d256f0b7bc0afdc1b7a2588b8b08415c62ce314c864a6851ae9d9",
        ),
        Jar(
            "org.apache.commons",
            "commons-pool2",
            "2.12.0",
            "6d3bd18df8410f3e31b031aca582cc109342358a62a2759ebd0c4cdf30d06f8b",
        ),
    ),
    "4.1": (
        Jar(
            "org.apache.spark",
            "spark-sql-kafka-0-10_2.13",
            "4.1.3",
            "cb31ffd9c8f5527dba061db8af671d295562092e4f3f5ff42fc249fab8a8fde6",
        ),
        Jar(
            "org.apache.spark",
            "spark-token-provider-kafka-0-10_2.13",
            "4.1.1",
            "e510adc37b03d01d0a190d0dab472b5538e05eaa77454f7e9477156d7a6820ae",
        ),
        Jar(
            "org.apache.kafka",
            "kafka-clients",
            "3.9.1",
            "7568b998572d256f0b7bc0afdc1b7a2588b8b08415c62ce314c864a6851ae9d9",
        ),
        Jar(
            "org.apache.commons",
            "commons-pool2",
            "2.12.1",
            "5273c8bc8c0dca2211175c0d27efbd7228efae99689aac001a8e1ef8e872e9ef",
        ),
    ),
}

# Amazon MSK's IAM login module for kafka-clients (sasl.mechanism AWS_MSK_IAM). It calls
# the AWS SDK v2, which Glue and EMR put on the class path; locally only PySpark 4.1's S3A
# jars bring one. Needed only by specs that ask for IAM; one jar serves every line.
MSK_IAM_JAR = Jar(
    "software.amazon.msk",
    "aws-msk-iam-auth",
    "2.4.0",
    "8d81eb3a8dbe4a041269e860a5e4b48891c3db2959d768b4715381bec78d97c3",
)


def cache_dir() -> Path:
    """Where fetched jars live: $SLUICEWAY_CACHE/jars, else ~/.cache/sluiceway/jars."""
    root = os.environ.get("SLUICEWAY_CACHE") or Path.home() / ".cache" / "sluiceway"
    return Path(root) / "jars"


def required_jars() -> tuple[Jar, ...]:
    """The jars a job needs on any platform (uploaded to Glue / EMR): the JDBC drivers,
    Redshift's among them."""
    return JDBC_JARS + REDSHIFT_JARS


def pyspark_hadoop_version() -> str:
    """The Hadoop version inside the installed pyspark, from its hadoop-client-api jar."""
    import pyspark  # only needed locally, never on the cluster

    jars = Path(pyspark.__file__).parent / "jars"
    found = sorted(jars.glob("hadoop-client-api-*.jar"))
    if not found:
        raise SluicewayError(f"no hadoop-client-api jar inside pyspark at {jars}")
    return found[-1].name.removeprefix("hadoop-client-api-").removesuffix(".jar")


def s3a_jars(hadoop_version: str | None = None) -> tuple[Jar, ...]:
    """hadoop-aws and its AWS SDK for `hadoop_version` (default: the installed pyspark's)."""
    version = hadoop_version or pyspark_hadoop_version()
    try:
        return S3A_JARS[version]
    except KeyError:
        raise SluicewayError(
            f"no S3A jars pinned for Hadoop {version} (pinned: {', '.join(S3A_JARS)}); "
            "add hadoop-aws of that version and its AWS SDK to S3A_JARS in jars.py"
        ) from None


def pyspark_line() -> str:
    """The installed pyspark's major.minor version (the Spark line), e.g. "3.5"."""
    import pyspark  # only needed locally, never on the cluster

    return ".".join(pyspark.__version__.split(".")[:2])


def iceberg_jar(spark_line: str | None = None) -> Jar:
    """The Iceberg Spark runtime for `spark_line` (default: the installed pyspark's)."""
    line = spark_line or pyspark_line()
    try:
        return ICEBERG_JARS[line]
    except KeyError:
        raise SluicewayError(
            f"no Iceberg runtime pinned for Spark {line} (pinned: {', '.join(ICEBERG_JARS)}); "
            "add iceberg-spark-runtime for that line to ICEBERG_JARS in jars.py"
        ) from None


def iceberg_aws_jars(spark_line: str | None = None) -> tuple[Jar, ...]:
    """The AWS SDK v2 jars Iceberg needs locally beside `spark_line`'s S3A jars."""
    line = spark_line or pyspark_line()
    iceberg_jar(line)  # an unpinned line is refused there, with the fix
    return ICEBERG_AWS_JARS.get(line, ())


def kafka_jars(spark_line: str | None = None) -> tuple[Jar, ...]:
    """Spark's Kafka source for `spark_line` (default: the installed pyspark's) and its deps."""
    line = spark_line or pyspark_line()
    try:
        return KAFKA_JARS[line]
    except KeyError:
        raise SluicewayError(
            f"no Kafka source jars pinned for Spark {line} (pinned: {', '.join(KAFKA_JARS)}); "
            "add spark-sql-kafka-0-10 for that line to KAFKA_JARS in jars.py"
        ) from None


def spark_line_of(version: str) -> str:
    """The line ("4.0") of a Spark version ("4.0.2", or a line itself)."""
    return ".".join(version.split(".")[:2])


def kafka_jar_paths(msk_iam: bool = False) -> list[Path]:
    """Paths of the cached Kafka source jars (plus MSK's IAM module if asked); raises if
    missing."""
    return _cached((*kafka_jars(), *((MSK_IAM_JAR,) if msk_iam else ())))


def iceberg_jar_paths() -> list[Path]:
    """Paths of the cached Iceberg runtime and the AWS SDK it needs (for the local class
    path); raises if missing."""
    return _cached((iceberg_jar(), *iceberg_aws_jars()))


def local_jar_paths() -> list[Path]:
    """Paths of the cached JDBC jars (for `spark.jars`); raises if any is missing."""
    return _cached(required_jars())


def s3a_jar_paths() -> list[Path]:
    """Paths of the cached S3A jars (for the local driver's class path); raises if missing."""
    return _cached(s3a_jars())


def _cached(wanted: tuple[Jar, ...]) -> list[Path]:
    paths = [cache_dir() / jar.file_name for jar in wanted]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SluicewayError(
            f"jars not fetched: {', '.join(missing)} "
            "(run `sluiceway jars fetch` or scripts/setup.sh)"
        )
    return paths


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:  # streamed: the AWS SDK v2 bundle is over 600 MB
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ivy_jar() -> Path:
    import pyspark  # only needed at fetch time, never on the cluster

    jars = Path(pyspark.__file__).parent / "jars"
    found = sorted(jars.glob("ivy-*.jar"))
    if not found:
        raise SluicewayError(f"no ivy jar inside pyspark at {jars}; cannot fetch jars")
    return found[-1]


def fetch_jars(java: str = "java") -> list[Path]:
    """Fetch every pinned jar a local run or a package needs (JDBC, S3A, Iceberg, Kafka)
    not yet cached, verify its checksum, return the paths of a local run's."""
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    wanted = (
        *required_jars(),
        *s3a_jars(),
        iceberg_jar(),
        *iceberg_aws_jars(),
        # Every line's Kafka source (a few MB): `sluiceway package --target` takes the
        # platform's, whatever the local pyspark is.
        *dict.fromkeys(jar for line in KAFKA_JARS for jar in kafka_jars(line)),
        MSK_IAM_JAR,
    )
    for jar in wanted:
        dest = target / jar.file_name
        if dest.is_file() and _sha256(dest) == jar.sha256:
            continue
        log.info("fetching %s", jar.coordinate)
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            cmd = [
                java,
                "-jar",
                str(_ivy_jar()),
                "-dependency",
                jar.group,
                jar.artifact,
                jar.version,
                "-confs",
                "default",
                "-types",
                "jar",
                "-notransitive",
                "-cache",
                str(target.parent / "ivy-cache"),
                "-retrieve",
                f"{tmp}/[artifact]-[revision].[ext]",
            ]
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            fetched = Path(tmp) / jar.file_name
            if result.returncode != 0 or not fetched.is_file():
                tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
                raise SluicewayError(f"could not fetch {jar.coordinate}: {' | '.join(tail)}")
            digest = _sha256(fetched)
            if digest != jar.sha256:
                raise SluicewayError(
                    f"checksum mismatch for {jar.coordinate}: got {digest}, pinned {jar.sha256}"
                )
            os.replace(fetched, dest)
    return [
        *local_jar_paths(),
        *s3a_jar_paths(),
        *iceberg_jar_paths(),
        *kafka_jar_paths(msk_iam=True),
    ]
