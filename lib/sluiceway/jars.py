"""The JVM jars Sluiceway needs beside Spark: pinned here, and only here.

`fetch_jars()` resolves them from Maven Central with the Ivy jar that ships inside
pyspark (the same resolver `spark-submit --packages` uses), copies them into a local
cache and checks each against its pinned SHA-256. Locally the cached files go on
`spark.jars`; for Glue / EMR the same files are uploaded as `--extra-jars` / `--jars`.
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


def cache_dir() -> Path:
    """Where fetched jars live: $SLUICEWAY_CACHE/jars, else ~/.cache/sluiceway/jars."""
    root = os.environ.get("SLUICEWAY_CACHE") or Path.home() / ".cache" / "sluiceway"
    return Path(root) / "jars"


def required_jars() -> tuple[Jar, ...]:
    return JDBC_JARS + REDSHIFT_JARS


def local_jar_paths() -> list[Path]:
    """Paths of the cached jars; raises if any is missing (run `sluiceway setup`)."""
    paths = [cache_dir() / jar.file_name for jar in required_jars()]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SluicewayError(
            f"jars not fetched: {', '.join(missing)} "
            "(run `sluiceway jars fetch` or scripts/setup.sh)"
        )
    return paths


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ivy_jar() -> Path:
    import pyspark  # only needed at fetch time, never on the cluster

    jars = Path(pyspark.__file__).parent / "jars"
    found = sorted(jars.glob("ivy-*.jar"))
    if not found:
        raise SluicewayError(f"no ivy jar inside pyspark at {jars}; cannot fetch jars")
    return found[-1]


def fetch_jars(java: str = "java") -> list[Path]:
    """Fetch every pinned jar not yet cached, verify its checksum, return all paths."""
    target = cache_dir()
    target.mkdir(parents=True, exist_ok=True)
    for jar in required_jars():
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
    return local_jar_paths()
