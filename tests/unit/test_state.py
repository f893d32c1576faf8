from __future__ import annotations

import json
import os

import pytest

from sluiceway.cli import main
from sluiceway.errors import StateError
from sluiceway.state import LocalStateStore


def test_local_store_round_trips_and_leaves_no_temp_files(tmp_path):
    store = LocalStateStore(str(tmp_path))
    store.write_json("p/tables/orders.json", {"watermark": {"kind": "int", "value": "7"}})
    store.write_json("p/tables/orders.json", {"watermark": {"kind": "int", "value": "8"}})
    assert store.read_json("p/tables/orders.json") == {"watermark": {"kind": "int", "value": "8"}}
    assert os.listdir(tmp_path / "p" / "tables") == ["orders.json"]
    assert store.list_keys("p") == ["p/tables/orders.json"]
    assert store.read_json("p/tables/missing.json") is None


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
