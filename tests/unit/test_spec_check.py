"""spec_check: parsing reads names, check() resolves them, naming the file and the key."""

from __future__ import annotations

import sys

import pytest

from sluiceway import pipeline
from sluiceway.errors import SpecError, TransformError
from sluiceway.spec import load_spec, parse_spec
from sluiceway.spec_check import (
    BUILTIN_TRANSFORM_NAMES,
    check,
    check_stream_spec,
    check_transform,
)
from sluiceway.stream_spec import load_stream_spec, parse_stream_spec
from sluiceway.transforms import BUILTIN_TRANSFORMS

BASE = """
[pipeline]
name = "p"
output = "/data/out"

[connections.db]
engine = "postgresql"
host = "127.0.0.1"
password_env = "PW"

[tables.orders]
table = "public.orders"
primary_key = ["o_orderkey"]
"""

STREAM = """
[pipeline]
name = "clicks"
output = "/data/out"

[source]
kind = "files"
path = "/data/in"

[events]
schema = "event_id string, event_time timestamp"
event_id = "event_id"
event_time = "event_time"
"""


def _check_error(spec) -> str:
    with pytest.raises(SpecError) as info:
        check(spec)
    return str(info.value)


def test_builtin_names_are_the_registrys():
    assert list(BUILTIN_TRANSFORM_NAMES) == list(BUILTIN_TRANSFORMS)


def test_example_specs_check():
    check(load_spec("pipelines/tpch_demo.toml"))
    check_stream_spec(load_stream_spec("pipelines/clickstream.toml"))
    assert pipeline.check is check  # the name the pipeline module offers


def test_parsing_reads_names_and_check_resolves_them():
    spec = parse_spec(BASE + 'transforms = [{ name = "no_such_transform" }]\n', "x.toml")

    assert spec.table("orders").transforms[0].name == "no_such_transform"
    assert _check_error(spec) == (
        "x.toml: tables.orders.transforms[0].name: transform 'no_such_transform': not a "
        "built-in (normalize_column_names, cast_to_schema, dedupe_latest, with_date_partitions, "
        "with_hashed_columns, with_audit_columns) and not a dotted path like "
        "'package.module:function'"
    )


def test_run_checks_the_spec_before_anything_else(tmp_path):
    text = BASE.replace('"/data/out"', f'"{tmp_path}"') + 'transforms = [{ name = "nope" }]\n'
    spec = parse_spec(text, "x.toml")

    with pytest.raises(SpecError, match=r"^x.toml: tables.orders.transforms\[0\].name: "):
        pipeline.run(None, spec)  # type: ignore[arg-type]  # it never gets as far as Spark
    assert list(tmp_path.iterdir()) == []  # no lock, no state, no report


def test_unresolvable_builder_names_the_output():
    text = BASE + '[outputs.gold]\nbuilder = "sluiceway_no_such_pkg.b:build"\ninputs = ["orders"]\n'
    message = _check_error(parse_spec(text, "x.toml"))

    assert message.startswith(
        "x.toml: outputs.gold.builder: transform 'sluiceway_no_such_pkg.b:build': "
        "cannot import module 'sluiceway_no_such_pkg.b'"
    )


def test_a_later_step_is_named_by_its_index():
    steps = '[{ name = "dedupe_latest" }, { name = "sluiceway.transforms:no_such_fn" }]'
    message = _check_error(parse_spec(BASE + f"transforms = {steps}\n", "x.toml"))

    assert message == (
        "x.toml: tables.orders.transforms[1].name: transform 'sluiceway.transforms:no_such_fn': "
        "'sluiceway.transforms' has no attribute 'no_such_fn'"
    )


def test_stream_spec_transforms_are_checked():
    text = STREAM + 'transforms = [{ name = "sluiceway.transforms:no_such_fn" }]\n'
    spec = parse_stream_spec(text, "s.toml")

    with pytest.raises(SpecError) as info:
        check_stream_spec(spec)
    assert str(info.value).startswith(
        "s.toml: events.transforms[0].name: transform 'sluiceway.transforms:no_such_fn'"
    )


@pytest.fixture
def spark_module(tmp_path, monkeypatch):
    """acme_steps.steps, in a package whose __init__ imports pyspark too, where pyspark
    cannot be imported (as on a laptop without it)."""
    monkeypatch.setitem(sys.modules, "pyspark", None)
    package = tmp_path / "acme_steps"
    package.mkdir()
    (package / "__init__.py").write_text("from pyspark.sql import functions as F\n")
    (package / "steps.py").write_text(
        "from pyspark.sql import DataFrame\n\n"
        + "def keep_eu(df: DataFrame) -> DataFrame:\n    return df\n\n"
        + "try:\n    from fast import keep_us\nexcept ImportError:\n    keep_us = keep_eu\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "acme_steps.steps"


def test_without_pyspark_a_module_is_checked_by_its_source(spark_module):
    check_transform(f"{spark_module}:keep_eu")
    check_transform(f"{spark_module}.keep_us")
    with pytest.raises(TransformError) as info:
        check_transform(f"{spark_module}:keep_asia")
    assert str(info.value) == (
        f"transform '{spark_module}:keep_asia': '{spark_module}' has no attribute 'keep_asia'"
    )


def test_without_pyspark_a_missing_module_is_still_an_error(spark_module):
    with pytest.raises(TransformError, match="cannot import module 'acme_steps.nope'"):
        check_transform("acme_steps.nope:keep_eu")


def test_a_module_failing_for_another_reason_is_not_excused(tmp_path, monkeypatch):
    (tmp_path / "acme_broken.py").write_text("import acme_no_such_dependency\ndef f(df): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(TransformError, match="No module named 'acme_no_such_dependency'"):
        check_transform("acme_broken:f")
