"""The Glue job scripts resolve every argument `deploy glue` sets by its full name.

Glue 6.0's awsglue builds getResolvedOptions' parser with allow_abbrev=False (the only
change to awsglue/utils.py between the glue-5.1 and glue-6.0 branches of aws-glue-libs),
so an argument the job reads under another spelling than the one deployed would be
missing there. awsgluedataplanepython 5.1 (installed) is made Glue 6.0's by that one
setting (Glue6ArgumentParser); the argv is built as Glue builds it, from the job's
DefaultArguments and the run's Arguments.
"""

from __future__ import annotations

from pathlib import Path

import awsglue.utils
import pytest

from sluiceway.deploy.aws import Uploaded
from sluiceway.deploy.glue import GlueJobOptions, job_definition
from sluiceway.deploy.package import GLUE_SCRIPT, PYFILES, SPEC, ArtifactSet
from sluiceway.runtimes.glue import (
    BATCH_ARGUMENTS,
    BATCH_OPTIONAL,
    STREAM_ARGUMENTS,
    STREAM_OPTIONAL,
    glue_arguments,
)


class Glue6ArgumentParser(awsglue.utils.GlueArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)


@pytest.fixture
def glue_6(monkeypatch):
    monkeypatch.setattr(awsglue.utils, "GlueArgumentParser", Glue6ArgumentParser)


def deployed_argv(kind: str, run_arguments: dict[str, str], **options: str) -> list[str]:
    """sys.argv of a run: the job's DefaultArguments, the run's Arguments over them."""
    artifacts = ArtifactSet(Path("/set"), "0.1.0", "abc", "p", (), kind)
    uploaded = Uploaded(
        "b",
        "sluiceway/artifacts/p/0.1.0-abc",
        {GLUE_SCRIPT: "s3://b/job.py", SPEC: "s3://b/p.toml", PYFILES: "s3://b/s.zip"},
        ("s3://b/j.jar",),
        0,
        0,
    )
    job = GlueJobOptions(job_name="nightly", role="r", bucket="b", glue_version="6.0", **options)
    arguments = {**job_definition(job, artifacts, uploaded, "arn:r")["DefaultArguments"]}
    arguments |= {**run_arguments, "--JOB_NAME": "nightly"}
    return ["script.py", *[part for pair in arguments.items() for part in pair]]


def test_a_batch_jobs_arguments_resolve_on_glue_6(glue_6):
    argv = deployed_argv(
        "batch", {"--full_refresh": "true"}, output="s3://lake/o", state="s3://lake/s"
    )
    args = glue_arguments(argv, BATCH_ARGUMENTS, optional=BATCH_OPTIONAL)
    assert (args["spec"], args["full_refresh"], args["output"], args["state"]) == (
        "s3://b/p.toml",
        "true",
        "s3://lake/o",
        "s3://lake/s",
    )


def test_a_stream_jobs_arguments_resolve_on_glue_6(glue_6):
    argv = deployed_argv("stream", {}, output="s3://lake/o", checkpoint="s3://lake/c")
    args = glue_arguments(argv, STREAM_ARGUMENTS, optional=STREAM_OPTIONAL)
    assert (args["spec"], args["output"], args["checkpoint"]) == (
        "s3://b/p.toml",
        "s3://lake/o",
        "s3://lake/c",
    )


def test_an_abbreviated_argument_passes_glue_5_and_fails_glue_6(monkeypatch, capsys):
    argv = ["script.py", "--JOB_NAME", "j", "--spec", "s3://b/p.toml", "--full", "true"]
    assert glue_arguments(argv, BATCH_ARGUMENTS)["full_refresh"] == "true"  # 5.1's parser
    monkeypatch.setattr(awsglue.utils, "GlueArgumentParser", Glue6ArgumentParser)
    with pytest.raises(SystemExit) as exited:
        glue_arguments(argv, BATCH_ARGUMENTS)
    assert exited.value.code == 2
    assert "the following arguments are required: --full_refresh" in capsys.readouterr().err
