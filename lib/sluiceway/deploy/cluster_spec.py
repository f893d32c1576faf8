"""The packaged spec as a deployed job will read it, checked for what a cluster has.

A Glue job gets no environment variables from us (its configuration arrives as job
arguments) and an EMR Serverless run gets none we could set without storing the value in
the run's submit parameters. Both lose their local disk when the run ends. So a spec that
reads a password or the hash salt from the environment, or keeps its output, state or
staging on a local path, would fail on the cluster or "succeed" while its data vanished.
`deployed_spec` refuses both before anything is uploaded, naming every key and its fix.
"""

from __future__ import annotations

from sluiceway.deploy.package import SPEC, ArtifactSet
from sluiceway.errors import DeployError
from sluiceway.spec import PipelineSpec, load_spec
from sluiceway.spec_check import check

S3_SCHEMES = ("s3://", "s3a://")


def deployed_spec(
    artifacts: ArtifactSet, platform: str, output: str | None = None, state: str | None = None
) -> PipelineSpec:
    """The set's spec with the run's `--output`/`--state` overrides, checked for `platform`
    (e.g. "a Glue job"): its names resolve, it reads no environment, it writes only to S3."""
    spec = load_spec(artifacts.root / artifacts.file(SPEC).path, output, state)
    check(spec)
    problems = cluster_problems(spec, platform)
    if problems:
        raise DeployError(f"{artifacts.pipeline}: cannot run as {platform}: " + "; ".join(problems))
    return spec


def location_arguments(output: str | None, state: str | None) -> dict[str, str]:
    """The job arguments that carry the run's overrides (none when the spec's own hold)."""
    given = {"--output": output, "--state": state}
    return {key: value for key, value in given.items() if value is not None}


def cluster_problems(spec: PipelineSpec, platform: str) -> list[str]:
    """What in `spec` a cluster run cannot have, one line per key."""
    problems = [
        f"connections.{conn.name}.password_env: {platform} has no ${conn.password_env}; "
        "keep the password in Secrets Manager and set secret_id (or name a glue_connection)"
        for conn in spec.connections.values()
        if conn.password_env
    ]
    if spec.hash_salt_env:
        problems.append(
            f"pipeline.hash_salt_env: {platform} has no ${spec.hash_salt_env}; keep the salt in "
            "Secrets Manager and set hash_salt_secret_id"
        )
    places = (
        ("pipeline.output", spec.output_root, "--output s3://bucket/prefix"),
        ("pipeline.state", spec.state_location, "--state s3://bucket/prefix"),
        ("pipeline.staging", spec.staging_location, "an s3:// staging"),
    )
    for key, location, fix in places:
        if not location.startswith(S3_SCHEMES):
            problems.append(
                f"{key}: {location} is a local path, which {platform} loses when it ends; "
                f"give {fix}"
            )
    return problems
