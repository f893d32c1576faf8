"""Which EMR Serverless application a submit uses, checked with botocore's Stubber.

moto rejects the emr-spark-8.0.0 release label (its pattern predates it), so the Spark 4
path is checked here against the service model instead: the Stubber validates every
request's parameters and every answer's shape.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from sluiceway.deploy.aws import AwsClients
from sluiceway.deploy.emr import EmrSubmitOptions, resolve_application
from sluiceway.errors import DeployError

ARN = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00fabc0123456789"


def app(state: str = "CREATED", label: str = "emr-spark-8.0.0", type_: str = "Spark") -> dict:
    return {
        "application": {
            "applicationId": "00fabc0123456789",
            "name": "orders",
            "arn": ARN,
            "releaseLabel": label,
            "type": type_,
            "state": state,
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
        }
    }


@pytest.fixture
def emr():
    client = boto3.client(
        "emr-serverless", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def clients_with(client) -> AwsClients:
    clients = AwsClients()
    clients._cache["emr-serverless"] = client
    return clients


def test_a_spark_4_application_is_created_with_the_emr_spark_8_release(emr):
    client, stubber = emr
    stubber.add_response("list_applications", {"applications": []}, {})
    stubber.add_response(
        "create_application",
        {"applicationId": "00fabc0123456789", "name": "orders", "arn": ARN},
        {"name": "orders", "releaseLabel": "emr-spark-8.0.0", "type": "SPARK"},
    )
    stubber.add_response("get_application", app(), {"applicationId": "00fabc0123456789"})
    options = EmrSubmitOptions("orders", "r", "b", create_application=True, spark="4.0")

    found = resolve_application(clients_with(client), options)

    assert (found.id, found.release_label, found.created) == (
        "00fabc0123456789",
        "emr-spark-8.0.0",
        True,
    )


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            app(label="emr-6.15.0"),
            "runs emr-6.15.0; Sluiceway needs emr-7.x (Spark 3.5) or emr-spark-8.x",
        ),
        (app(state="TERMINATED"), "is TERMINATED"),
        (app(type_="Hive"), "is a Hive application"),
    ],
)
def test_an_application_that_cannot_run_the_job_is_refused(emr, answer, message):
    client, stubber = emr
    stubber.add_response("get_application", answer, {"applicationId": "00fabc0123456789"})
    with pytest.raises(DeployError) as caught:
        resolve_application(clients_with(client), EmrSubmitOptions("00fabc0123456789", "r", "b"))
    assert str(caught.value).startswith("EMR Serverless application 00fabc0123456789 ")
    assert message in str(caught.value)


def test_two_applications_with_the_name_are_ambiguous(emr):
    client, stubber = emr
    summary = {k: v for k, v in app()["application"].items() if k != "applicationId"}
    stubber.add_response(
        "list_applications",
        {
            "applications": [
                {**summary, "id": "00fabc0000000001"},
                {**summary, "id": "00fabc0000000002"},
            ]
        },
        {},
    )
    with pytest.raises(
        DeployError, match="name orders is ambiguous .00fabc0000000001, 00fabc0000000002"
    ):
        resolve_application(clients_with(client), EmrSubmitOptions("orders", "r", "b"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            EmrSubmitOptions("a", "r", "b", timeout_minutes=0),
            "--timeout-minutes 0: must be 5..10080",
        ),
        (EmrSubmitOptions("a", "r", "b", release_label="emr-6.15.0"), "--release-label emr-6.15.0"),
        (
            EmrSubmitOptions("a", "r", "b", python="python3"),
            "--python 'python3': give the interpreter's path",
        ),
        (EmrSubmitOptions("a", "r", "b", spark="3.4"), "--spark 3.4: must be one of 3.5, 4.0"),
    ],
)
def test_bad_submit_options_are_refused_before_any_call(options, message):
    with pytest.raises(DeployError) as caught:
        options.validate()
    assert str(caught.value).startswith(message)
