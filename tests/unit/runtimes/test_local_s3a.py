from __future__ import annotations

from sluiceway.runtimes.local import s3a_settings


def test_real_s3_keeps_virtual_host_addressing_and_maps_s3_to_s3a():
    settings = s3a_settings({}, "eu-west-1")
    assert settings == {
        "fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "fs.AbstractFileSystem.s3.impl": "org.apache.hadoop.fs.s3a.S3A",
        "fs.s3a.directory.marker.retention": "keep",
        "fs.s3a.endpoint.region": "eu-west-1",
    }


def test_a_local_endpoint_gets_path_style_access_without_tls():
    settings = s3a_settings({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}, None)
    assert settings["fs.s3a.endpoint"] == "http://127.0.0.1:4566"
    assert settings["fs.s3a.path.style.access"] == "true"
    assert settings["fs.s3a.connection.ssl.enabled"] == "false"
    assert "fs.s3a.endpoint.region" not in settings


def test_the_s3_specific_endpoint_variable_wins_over_the_general_one():
    settings = s3a_settings(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
            "AWS_ENDPOINT_URL_S3": "https://s3.example:9000",
        },
        "us-east-1",
    )
    assert settings["fs.s3a.endpoint"] == "https://s3.example:9000"
    assert settings["fs.s3a.connection.ssl.enabled"] == "true"
