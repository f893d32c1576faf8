"""Per-target artifact sets (deploy/targets.py): jars, the Python check, the manifest."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from sluiceway.deploy.package import PYFILES, build_artifacts, load_artifacts
from sluiceway.deploy.targets import TARGETS, check_python, target
from sluiceway.errors import DeployError

ROOT = Path(__file__).resolve().parents[3]
DEMO_SPEC = ROOT / "pipelines" / "tpch_demo.toml"
STREAM_SPEC = ROOT / "pipelines" / "clickstream.toml"


@pytest.mark.parametrize(
    ("name", "jars"),
    [
        ("glue-5.1", []),  # Glue has the three drivers on its class path, ahead of ours
        ("glue-6.0", []),
        ("emr-7", ["postgresql", "mysql-connector-j", "redshift-jdbc42"]),
        ("emr-spark-8", ["postgresql", "mysql-connector-j", "redshift-jdbc42"]),
    ],
)
def test_a_set_for_a_target_carries_the_jars_it_lacks_and_names_it(tmp_path, name, jars):
    built = build_artifacts(DEMO_SPEC, tmp_path, name)

    assert [j.coordinate.split(":")[1] for j in built.jars] == jars
    manifest = json.loads((built.root / "manifest.json").read_text())
    assert manifest["target"] == TARGETS[name].to_manifest() and manifest["kind"] == "batch"
    assert load_artifacts(built.root).built_for == TARGETS[name]


def test_sets_for_two_targets_with_the_same_files_get_two_build_ids(tmp_path):
    five, six = (build_artifacts(DEMO_SPEC, tmp_path, t) for t in ("glue-5.1", "glue-6.0"))
    assert [f.sha256 for f in five.files] == [f.sha256 for f in six.files]
    assert five.build != six.build and five.root.exists() and six.root.exists()


def test_a_glue_set_needs_no_fetched_jars(tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICEWAY_CACHE", str(tmp_path / "empty-cache"))
    assert build_artifacts(DEMO_SPEC, tmp_path / "dist", "glue-6.0").jars == ()
    with pytest.raises(DeployError, match=r"jars not fetched: postgresql-42.7.14.jar"):
        build_artifacts(DEMO_SPEC, tmp_path / "dist", "emr-7")


def test_a_stream_set_carries_the_stream_scripts_and_no_jars(tmp_path):
    built = build_artifacts(STREAM_SPEC, tmp_path, "emr-spark-8")
    scripts = sorted(f.path for f in built.files if f.path.startswith("jobs/"))
    assert scripts == ["jobs/emr_stream.py", "jobs/glue_stream.py"]
    assert built.kind == "stream" and built.jars == ()
    assert load_artifacts(built.root).kind == "stream"


def test_code_python_3_13_no_longer_has_is_refused_for_glue_6_naming_the_file():
    sources = [
        ("acme/ok.py", b"import json\n"),
        ("acme/mail.py", b"import os\nimport cgi\nfrom telnetlib import Telnet\n"),
    ]
    check_python(target("glue-5.1"), sources)  # Python 3.11 still has both
    with pytest.raises(DeployError) as caught:
        check_python(target("glue-6.0"), sources)
    assert str(caught.value) == (
        "--target glue-6.0: the set's code would not run on Python 3.13: "
        "acme/mail.py:2: imports cgi, which Python 3.13 no longer has (PEP 594); "
        "acme/mail.py:3: imports telnetlib, which Python 3.13 no longer has (PEP 594)"
    )


@pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")
def test_user_code_is_checked_against_the_targets_python(tmp_path, monkeypatch):
    user = tmp_path / "user_code"
    (user / "acme_old").mkdir(parents=True)
    (user / "acme_old" / "__init__.py").write_text("")
    (user / "acme_old" / "steps.py").write_text("import imghdr\n\ndef keep(df):\n    return df\n")
    monkeypatch.syspath_prepend(str(user))
    spec = tmp_path / "old.toml"
    spec.write_text(
        STREAM_SPEC.read_text().replace(
            '{ name = "normalize_column_names" }', '{ name = "acme_old.steps:keep" }'
        )
    )
    built = build_artifacts(spec, tmp_path / "dist", "glue-5.1")
    assert "acme_old/steps.py" in zipfile.ZipFile(built.root / built.file(PYFILES).path).namelist()
    with pytest.raises(DeployError, match=r"acme_old/steps.py:1: imports imghdr"):
        build_artifacts(spec, tmp_path / "dist6", "glue-6.0")
    assert not (tmp_path / "dist6").exists()


def test_an_unknown_target_lists_the_known():
    with pytest.raises(DeployError, match=r"--target glue-4.0: must be one of glue-5.1, glue-6.0"):
        target("glue-4.0")


def kafka_stream_spec(tmp_path: Path, iam: bool) -> Path:
    """The demo click stream read from an MSK topic (with IAM login when `iam`)."""
    source = (
        '[source]\nkind = "kafka"\nbootstrap_servers = "b-1.msk.example:9098"\n'
        'topics = ["clicks"]\n'
        + ('security_protocol = "SASL_SSL"\nsasl_mechanism = "AWS_MSK_IAM"\n' if iam else "")
    )
    text = STREAM_SPEC.read_text()
    start, end = text.index("[source]"), text.index("[events]")
    spec = tmp_path / "clicks_kafka.toml"
    spec.write_text(text[:start] + source + "\n" + text[end:])
    return spec


KAFKA_35 = ["spark-sql-kafka-0-10_2.12:3.5.7", "spark-token-provider-kafka-0-10_2.12:3.5.7"]
KAFKA_35 += ["kafka-clients:3.4.1", "commons-pool2:2.11.1"]
KAFKA_40 = ["spark-sql-kafka-0-10_2.13:4.0.2", "spark-token-provider-kafka-0-10_2.13:4.0.0"]
KAFKA_40 += ["kafka-clients:3.9.1", "commons-pool2:2.12.0"]


@pytest.mark.parametrize(
    ("name", "iam", "jars"),
    [
        ("glue-5.1", False, []),  # Glue ships Spark's Kafka source (its kafka connections)
        ("glue-6.0", True, ["aws-msk-iam-auth:2.4.0"]),
        ("emr-7", False, KAFKA_35),  # EMR Serverless does not: the target's Spark line
        ("emr-spark-8", True, [*KAFKA_40, "aws-msk-iam-auth:2.4.0"]),
    ],
)
def test_a_kafka_stream_set_carries_the_kafka_source_of_its_targets_spark_line(
    tmp_path, name, iam, jars
):
    built = build_artifacts(kafka_stream_spec(tmp_path, iam), tmp_path / "dist", name)

    assert [j.coordinate.split(":", 1)[1] for j in built.jars] == jars
    assert all((built.root / j.path).is_file() for j in built.jars)


def test_a_kafka_stream_is_not_packaged_without_a_target(tmp_path):
    with pytest.raises(DeployError, match=r"a Kafka stream is packaged for one platform: give"):
        build_artifacts(kafka_stream_spec(tmp_path, False), tmp_path / "dist")
    assert not (tmp_path / "dist").exists() or not list((tmp_path / "dist").iterdir())
