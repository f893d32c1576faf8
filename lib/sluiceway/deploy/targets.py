"""The platforms an artifact set can be built for: what each runs and what it ships.

`sluiceway package SPEC --target NAME` builds a set for one of them: the jars it lacks
(never those it has on its class path already), a check that the set's Python code parses
and imports on the Python it runs, and the target in the manifest, where `deploy glue` and
`submit emr` check it against the Glue version or the application's release label.

What each platform runs (AWS documentation, read when this table was written):
- Glue 5.1: Spark 3.5.6, Scala 2.12, Python 3.11 ("Migrating to AWS Glue 5.1").
- Glue 6.0: Spark 4.1.1, Scala 2.13.17, Python 3.13 ("Migrating to AWS Glue 6.0").
- EMR 7.x: Spark 3.5, Scala 2.12; Python 3.9 by default, 3.11 installed (the jobs are
  started with /usr/bin/python3.11, see deploy/emr.py).
- emr-spark-8.0: Spark 4.0.2, Scala 2.13.16, Python 3.11, 3.12 and 3.13 (its release page).

Glue's Spark jobs have the PostgreSQL, MySQL and Redshift JDBC drivers on the class path
("JDBC connections": Glue 5.0 ships PostgreSQL 42.7.3, MySQL 8.0.33, Redshift 2.1.0.29),
ahead of --extra-jars unless --user-jars-first is set, so a driver of ours would not even
be the one loaded: a Glue set carries none. EMR Serverless puts no JDBC driver on the
class path (drivers go on --jars), so an EMR set carries all three. Iceberg is never
packaged (Glue's --datalake-formats, EMR's /usr/share/aws/iceberg; deploy/iceberg.py), and
neither is a Kinesis reader (Glue's own source; EMR's aws-kinesis connector).

Spark's Kafka source: Glue reads Kafka and MSK natively (its `kafka` connection type, whose
options are those of Spark's Kafka source), so a Glue set carries none of it; EMR
Serverless does not ship it ("Supported streaming connectors": the Kafka connector comes
from Maven), so an EMR set of a Kafka stream carries the connector of the target's Spark
line. MSK's IAM login module (`aws-msk-iam-auth`) goes in every set of a stream that asks
for IAM: neither platform's documentation lists it on the class path. Neither of these
claims about Glue's class path has been checked on Glue itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sluiceway.errors import DeployError

# The Python the package needs (tomllib, datetime.UTC): the wheel's Requires-Python.
REQUIRES_PYTHON = (3, 11)
# Modules PEP 594 removed from the standard library in Python 3.13.
REMOVED_IN_3_13 = frozenset(
    {
        *("aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3"),
        *("mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr"),
        *("spwd", "sunau", "telnetlib", "uu", "xdrlib"),
    }
)
# The JDBC drivers of sluiceway.jars, by Maven group:artifact.
_JDBC_DRIVERS = (
    "org.postgresql:postgresql",
    "com.mysql:mysql-connector-j",
    "com.amazon.redshift:redshift-jdbc42",
)
# Spark's Kafka source and what it needs beside Spark (sluiceway.jars.KAFKA_JARS), by
# group:artifact without the Scala suffix (jars.Jar.family).
_KAFKA_SOURCE = (
    "org.apache.spark:spark-sql-kafka-0-10",
    "org.apache.spark:spark-token-provider-kafka-0-10",
    "org.apache.kafka:kafka-clients",
    "org.apache.commons:commons-pool2",
)


@dataclass(frozen=True)
class Target:
    name: str
    platform: Literal["glue", "emr"]
    spark: str
    scala: str
    python: tuple[int, int]  # the Python the job runs
    provided: tuple[str, ...]  # group:artifact of the pinned jars the platform already has
    glue_version: str | None = None  # a Glue target's GlueVersion
    release_prefix: str | None = None  # an EMR target's release labels start with this

    @property
    def python_text(self) -> str:
        return ".".join(str(part) for part in self.python)

    def describe(self) -> str:
        return f"{self.name} (Spark {self.spark}, Scala {self.scala}, Python {self.python_text})"

    def to_manifest(self) -> dict[str, object]:
        return {
            "name": self.name,
            "platform": self.platform,
            "spark": self.spark,
            "scala": self.scala,
            "python": self.python_text,
            "provided_jars": list(self.provided),
        }


TARGETS: dict[str, Target] = {
    "glue-5.1": Target(
        "glue-5.1", "glue", "3.5.6", "2.12", (3, 11), _JDBC_DRIVERS + _KAFKA_SOURCE, "5.1"
    ),
    "glue-6.0": Target(
        "glue-6.0", "glue", "4.1.1", "2.13", (3, 13), _JDBC_DRIVERS + _KAFKA_SOURCE, "6.0"
    ),
    "emr-7": Target("emr-7", "emr", "3.5", "2.12", (3, 11), (), release_prefix="emr-7."),
    "emr-spark-8": Target(
        "emr-spark-8", "emr", "4.0.2", "2.13", (3, 11), (), release_prefix="emr-spark-8."
    ),
}


def target(name: str) -> Target:
    """The target called `name`; an unknown one is an error listing the known."""
    try:
        return TARGETS[name]
    except KeyError:
        raise DeployError(f"--target {name}: must be one of {', '.join(TARGETS)}") from None


def glue_target(glue_version: str) -> Target:
    """The target of a Glue version (each supported version has one)."""
    return target(f"glue-{glue_version}")


def emr_target(release_label: str) -> Target | None:
    """The target whose releases `release_label` belongs to; None for an unknown line."""
    for candidate in TARGETS.values():
        prefix = candidate.release_prefix
        if prefix is not None and release_label.startswith(prefix):
            return candidate
    return None


def check_glue_version(built_for: Target | None, glue_version: str) -> None:
    """Refuse a set built for another platform or Glue version than the job's."""
    if built_for is None or built_for.glue_version == glue_version:
        return
    wanted = glue_target(glue_version)
    raise DeployError(
        f"the artifact set was built for {built_for.describe()}, but the Glue job runs "
        f"Glue {glue_version}, {wanted.describe()}: rebuild it with `sluiceway package "
        f"--target {wanted.name}` (or deploy with --glue-version {built_for.glue_version})"
        if built_for.platform == "glue"
        else f"the artifact set was built for {built_for.describe()}, not for Glue: rebuild it "
        f"with `sluiceway package --target {wanted.name}`"
    )


def check_release_label(built_for: Target | None, release_label: str, application: str) -> None:
    """Refuse a set built for another platform or EMR line than the application runs."""
    if built_for is None or (
        built_for.release_prefix is not None and release_label.startswith(built_for.release_prefix)
    ):
        return
    runs = emr_target(release_label)
    fix = f"rebuild it with `sluiceway package --target {runs.name}`" if runs else "rebuild it"
    raise DeployError(
        f"the artifact set was built for {built_for.describe()}, but EMR Serverless "
        f"application {application} runs {release_label}: {fix}"
    )


def check_python(built_for: Target, sources: Iterable[tuple[str, bytes]]) -> None:
    """Every module of the set parses and imports on the target's Python.

    The grammar is checked with ast's `feature_version` (it can check a Python older than
    this one, not a newer one); on 3.13 and later an import of a module PEP 594 removed
    is refused too. One error lists every problem, naming the file."""
    import sys

    if built_for.python < REQUIRES_PYTHON:
        raise DeployError(
            f"--target {built_for.name}: runs Python {built_for.python_text}; Sluiceway needs "
            f">= {'.'.join(map(str, REQUIRES_PYTHON))}"
        )
    grammar = built_for.python if built_for.python <= sys.version_info[:2] else None
    problems = []
    for name, data in sources:
        if not name.endswith(".py"):
            continue
        try:
            tree = ast.parse(data, name, feature_version=grammar)
        except SyntaxError as exc:
            problems.append(f"{name}:{exc.lineno}: not Python {built_for.python_text}: {exc.msg}")
            continue
        if built_for.python >= (3, 13):
            problems += [
                f"{name}:{line}: imports {module}, which Python {built_for.python_text} "
                "no longer has (PEP 594)"
                for line, module in _imports(tree)
                if module.split(".")[0] in REMOVED_IN_3_13
            ]
    if problems:
        raise DeployError(
            f"--target {built_for.name}: the set's code would not run on Python "
            f"{built_for.python_text}: " + "; ".join(problems)
        )


def _imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found
