from __future__ import annotations

import json
import os

import pytest

from sluiceway.cli import main
from sluiceway.errors import StateError
from sluiceway.state import LocalStateStore, open_state_store, read_run_reports
from sluiceway.state.s3 import S3StateStore, decode_state, encode_state


def test_local_store_round_trips_and_leaves_no_temp_files(tmp_path):
    store = LocalStateStore(str(tmp_path))
    store.write_json("p/tables/orders.json", {"watermark": {"kind": "int", "value": "7"}})
    store.write_json("p/tables/orders.json", {"watermark": {"kind": "int", "value": "8"}})
    assert store.read_json("p/tables/orders.json") == {"watermark": {"kind": "int", "value": "8"}}
    assert os.listdir(tmp_path / "p" / "tables") == ["orders.json"]
    assert store.list_keys("p") == ["p/tables/orders.json"]
    assert store.read_json("p/tables/missing.json") is None


def test_run_reports_are_read_newest_last_without_the_latest_copy(tmp_path):
    store = LocalStateStore(str(tmp_path))
    for run_id in ("20261201T000000Z-aa", "20261203T000000Z-cc", "20261202T000000Z-bb"):
        store.write_json(f"p/runs/{run_id}.json", {"run_id": run_id})
        store.write_json("p/runs/latest.json", {"run_id": run_id})
    store.write_json("other/runs/20261204T000000Z-dd.json", {"run_id": "other"})

    assert [r["run_id"] for r in read_run_reports(store, "p", 2)] == [
        "20261202T000000Z-bb",
        "20261203T000000Z-cc",
    ]
    assert len(read_run_reports(store, "p", 10)) == 3
    assert read_run_reports(store, "p", 0) == []
    assert read_run_reports(store, "nothing", 5) == []


def test_corrupt_state_is_an_error_not_an_empty_watermark(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "x.json").write_text('{"watermark": ')
    with pytest.raises(StateError, match="not valid JSON"):
        LocalStateStore(str(tmp_path)).read_json("p/x.json")


def test_cli_state_show_and_reset(tmp_path, capsys):
    out = tmp_path / "out"
    store = LocalStateStore(str(out / "_state"))
    store.write_json(
        "tpch_demo/tables/orders.json",
        {"watermark": {"kind": "timestamp", "value": "2024-01-01 00:00:00"}},
    )
    args = ["pipelines/tpch_demo.toml", "--output", str(out)]

    assert main(["state", "show", *args]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["orders"]["watermark"]["value"] == "2024-01-01 00:00:00"
    assert shown["lineitem"] is None

    assert main(["state", "reset", *args, "--table", "orders"]) == 0
    assert "watermark removed" in capsys.readouterr().out
    assert store.read_json("tpch_demo/tables/orders.json") is None


def test_cli_state_reset_refuses_unknown_table_and_keeps_state(tmp_path, capsys):
    out = tmp_path / "out"
    store = LocalStateStore(str(out / "_state"))
    store.write_json("tpch_demo/tables/orders.json", {"watermark": {"kind": "int", "value": "1"}})
    code = main(
        [
            "state",
            "reset",
            "pipelines/tpch_demo.toml",
            "--output",
            str(out),
            "--table",
            "orders",
            "--table",
            "nope",
        ]
    )
    assert code == 1
    assert "tables.nope: no such table" in capsys.readouterr().err
    assert store.read_json("tpch_demo/tables/orders.json") is not None


def test_s3_state_body_round_trips_with_its_checksum():
    value = {"watermark": {"kind": "timestamp", "value": "2024-01-01 00:00:00"}, "n": 1.5}
    body = encode_state(value)
    assert json.loads(body)["_sha256"]
    assert decode_state(body, "s3://b/k") == value


@pytest.mark.parametrize(
    "damage",
    [
        lambda body: body[: len(body) // 2],  # truncated
        lambda body: body.replace(b"2024-01-01", b"2025-01-01"),  # edited
        lambda body: json.dumps({"watermark": 1}).encode(),  # no checksum
        lambda body: b"[]",
    ],
    ids=["truncated", "edited", "no_checksum", "not_an_object"],
)
def test_damaged_s3_state_body_is_an_error_never_a_value(damage):
    body = encode_state({"watermark": {"kind": "timestamp", "value": "2024-01-01 00:00:00"}})
    with pytest.raises(StateError, match=r"^state s3://b/k: "):
        decode_state(damage(body), "s3://b/k")


def test_state_store_is_chosen_by_the_location_scheme(tmp_path):
    assert isinstance(open_state_store(str(tmp_path)), LocalStateStore)
    assert isinstance(open_state_store(f"file://{tmp_path}"), LocalStateStore)
    s3 = open_state_store("s3a://bucket/some/prefix/")
    assert isinstance(s3, S3StateStore)
    assert (s3.bucket, s3.prefix, s3.location) == (
        "bucket",
        "some/prefix",
        "s3a://bucket/some/prefix",
    )
    with pytest.raises(StateError, match="gs://b/x: expected a local path"):
        open_state_store("gs://b/x")


def test_state_on_s3_refuses_a_botocore_without_conditional_writes(monkeypatch):
    # Checked when the store opens, at run start: before any data is written.
    import botocore

    monkeypatch.setattr(botocore, "__version__", "1.35.68")
    with pytest.raises(StateError, match=r"needs botocore >= 1\.35\.69 .*has 1\.35\.68"):
        open_state_store("s3://bucket/state")
    monkeypatch.setattr(botocore, "__version__", "1.35.69")
    assert isinstance(open_state_store("s3://bucket/state"), S3StateStore)


def test_the_installed_botocore_knows_put_object_if_match():
    # The floor's reason, on the botocore the tests run with: IfMatch is in its S3 model.
    import botocore.session

    model = botocore.session.get_session().get_service_model("s3")
    assert "IfMatch" in model.operation_model("PutObject").input_shape.members
