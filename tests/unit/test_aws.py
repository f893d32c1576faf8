"""botocore failures as one line naming the bucket and the endpoint (no server needed)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from sluiceway.aws import describe_aws_error, split_s3_uri


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return boto3.client("s3", region_name="us-east-1")


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "HeadBucket",
    )


def test_missing_bucket_names_bucket_and_endpoint_with_its_variable(s3):
    assert describe_aws_error(_client_error("404", 404), s3, "b") == (
        "bucket b does not exist at http://127.0.0.1:9 (AWS_ENDPOINT_URL)"
    )


def test_denied_access_names_bucket_code_and_what_to_check(s3):
    text = describe_aws_error(_client_error("403", 403), s3, "b")
    assert text.startswith(
        "access denied to bucket b at http://127.0.0.1:9 (AWS_ENDPOINT_URL) (403)"
    )
    assert "AWS_PROFILE" in text
    assert "not allowed s3:ListBucket;" in text  # HeadBucket's IAM action


def test_denied_access_names_the_action_aws_names(s3):
    glue = boto3.client("glue", region_name="us-east-1")
    message = "User: arn:aws:iam::1:user/j is not authorized to perform: glue:GetTable on x"
    error = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": message}}, "GetTable"
    )
    assert "not allowed glue:GetTable;" in describe_aws_error(error, glue)
    unnamed = ClientError({"Error": {"Code": "AccessDenied", "Message": ""}}, "PutObject")
    assert "not allowed s3:PutObject;" in describe_aws_error(unnamed, s3, "b")


def test_unreachable_endpoint_and_missing_credentials(s3):
    refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b")
    assert describe_aws_error(refused, s3, "b").startswith(
        "cannot reach http://127.0.0.1:9 (AWS_ENDPOINT_URL) for bucket b: "
    )
    assert describe_aws_error(NoCredentialsError(), s3, "b").startswith(
        "no AWS credentials for bucket b"
    )


def test_other_service_errors_keep_code_and_message(s3):
    error = ClientError({"Error": {"Code": "SlowDown", "Message": "Reduce your rate"}}, "PutObject")
    assert describe_aws_error(error, s3, "b") == "bucket b: SlowDown: Reduce your rate"


def test_s3_uris_split_into_bucket_and_key():
    assert split_s3_uri("s3a://bucket/a/b/") == ("bucket", "a/b")
    assert split_s3_uri("s3://bucket") == ("bucket", "")
    with pytest.raises(ValueError):
        split_s3_uri("/local/path")


def test_the_region_comes_from_aws_region_when_aws_default_region_is_unset(monkeypatch):
    from sluiceway import aws

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert aws.session().region_name == "eu-west-3"
    assert aws.client("s3").meta.region_name == "eu-west-3"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")  # boto3's own variable wins
    assert aws.session().region_name == "us-west-2"
