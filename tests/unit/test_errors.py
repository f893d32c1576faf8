"""errors: the location as data, and the one wrapper for Spark's and botocore's exceptions."""

import pickle

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sluiceway import aws
from sluiceway.errors import SinkError, SluicewayError, SourceError, SpecError, located


def test_where_comes_first_in_the_line_and_stays_apart_from_the_message():
    exc = SinkError("merge needs a primary key", where="p.toml: tables.orders")
    assert str(exc) == "p.toml: tables.orders: merge needs a primary key"
    assert (exc.where, exc.message) == ("p.toml: tables.orders", "merge needs a primary key")
    assert str(SinkError("no place")) == "no place"


def test_located_gives_its_place_only_to_errors_that_have_none():
    with pytest.raises(SinkError) as caught, located("outer"), located("inner"):
        raise SinkError("boom")
    assert str(caught.value) == "inner: boom"

    with pytest.raises(SpecError) as caught, located("outer"):
        raise SpecError("bad key")
    assert caught.value.where == "outer"


def test_located_turns_a_spark_error_into_ours_in_one_line(spark):
    where = located("p.toml: outputs.x", SinkError, doing="reading the input")
    with pytest.raises(SinkError) as caught, where:
        spark.sql("SELECT * FROM no_such_table_anywhere").collect()
    message = caught.value.message
    assert message.startswith("reading the input: ") and "no_such_table_anywhere" in message
    assert "\n" not in message and caught.value.where == "p.toml: outputs.x"


def test_located_turns_a_botocore_error_into_ours_naming_the_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    client = aws.client("s3")
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")
    where = located("p.toml: source", SourceError, doing="reading the spec", aws_client=client)
    with pytest.raises(SourceError) as caught, where:
        raise denied
    assert caught.value.where == "p.toml: source"
    assert caught.value.message.startswith("reading the spec: access denied to the request at ")
    assert caught.value.__cause__ is denied

    unreachable = pytest.raises(SluicewayError, match="cannot reach .* for bucket b")
    with unreachable, located("here", aws_client=client, bucket="b"):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def test_other_exceptions_pass_through_unchanged():
    with pytest.raises(KeyError), located("here"):
        raise KeyError("x")


def test_an_error_keeps_its_place_through_pickling():
    exc = pickle.loads(pickle.dumps(SinkError("m", where="w")))
    assert (type(exc), exc.where, exc.message, str(exc)) == (SinkError, "w", "m", "w: m")
