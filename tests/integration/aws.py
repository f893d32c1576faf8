"""Helpers for tests against the local moto_server (AWS_ENDPOINT_URL from services.env).

moto is the test double for AWS's control planes; where it lacks an operation or cannot
move a resource's state, the helpers below fill in, and each says so.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

START_HINT = "start it with `python3 scripts/services.py start moto` and source .run/services.env"


def moto_endpoint() -> str:
    """The moto_server URL; fails (never skips) when it is not configured or not answering."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        pytest.fail(
            f"AWS_ENDPOINT_URL is not set: no local AWS endpoint; {START_HINT}", pytrace=False
        )
    problem = None
    try:
        urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=5).close()
    except (urllib.error.URLError, OSError) as exc:
        problem = exc
    if problem is not None:
        pytest.fail(
            f"moto_server at {endpoint} is not answering: {problem}; {START_HINT}", pytrace=False
        )
    return endpoint


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_role(name: str, service: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    role = boto3.client("iam").create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(trust)
    )
    return str(role["Role"]["Arn"])


@contextmanager
def glue_run_transition(transition: dict[str, Any]):
    """Set moto's state-manager transition for Glue job runs, over its HTTP API, then unset."""
    endpoint = moto_endpoint()

    def post(path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{endpoint}/moto-api/state-manager/{path}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).close()

    post("set-transition", {"model_name": "glue::job_run", "transition": transition})
    try:
        yield
    finally:
        post("unset-transition", {"model_name": "glue::job_run"})


def record_calls(client: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every operation `client` calls from now on, with its parameters, in order."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, json.loads(json.dumps(params, default=str))))

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-parameter-build.{service}", record)
    return calls


def add_update_job_shim(glue_client: Any) -> None:
    """moto 5.2.5 does not implement Glue UpdateJob (it answers 500). This shim answers
    UpdateJob for `glue_client` by replacing the job in moto with CreateJob (which moto,
    unlike Glue, lets overwrite a job of the same name), so a later GetJob shows the update.
    The request our code sends is still recorded by `record_calls` and checked exactly."""
    raw = boto3.client("glue")

    def update_job(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = json.loads(params["body"])
        raw.create_job(Name=body["JobName"], **body["JobUpdate"])
        return AWSResponse(None, 200, {}, None), {"JobName": body["JobName"]}

    glue_client.meta.events.register("before-call.glue.UpdateJob", update_job)


class ScriptedRuns:
    """A client that passes every call to moto except the run-state read, which answers
    from a script: moto cannot move a Glue run to FAILED nor an EMR Serverless job run
    through RUNNING/FAILED (its runs are SUCCESS from the start)."""

    def __init__(self, real: Any, operation: str, states: list[tuple[str, dict[str, Any]]]):
        self._real, self._operation, self._states = real, operation, list(states)
        self.polls = 0

    def __getattr__(self, name: str) -> Any:
        if name != self._operation:
            return getattr(self._real, name)

        def scripted(**kwargs: Any) -> dict[str, Any]:
            response = getattr(self._real, name)(**kwargs)  # the run must exist in moto
            self.polls += 1
            state, extra = self._states.pop(0) if len(self._states) > 1 else self._states[0]
            key, state_key = (
                ("JobRun", "JobRunState") if "JobRun" in response else ("jobRun", "state")
            )
            response[key] = {**response[key], state_key: state, **extra}
            return response

        return scripted
