from __future__ import annotations

import pytest

from sluiceway.demo.tpch_transforms import join_order_lines
from sluiceway.errors import TransformError
from sluiceway.transforms import BUILTIN_TRANSFORMS, dedupe_latest, resolve_transform


def test_resolve_transform_returns_builtin_by_short_name():
    assert resolve_transform("dedupe_latest") is dedupe_latest
    assert set(BUILTIN_TRANSFORMS) == {
        "normalize_column_names",
        "cast_to_schema",
        "dedupe_latest",
        "with_date_partitions",
        "with_hashed_columns",
        "with_audit_columns",
    }


@pytest.mark.parametrize(
    "path",
    [
        "sluiceway.demo.tpch_transforms:join_order_lines",
        "sluiceway.demo.tpch_transforms.join_order_lines",
    ],
)
def test_resolve_transform_imports_colon_or_dotted_path(path):
    assert resolve_transform(path) is join_order_lines


def test_resolve_transform_imports_user_module(tmp_path, monkeypatch):
    package = tmp_path / "acme_jobs"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "steps.py").write_text("def keep_eu(df):\n    return df\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_transform("acme_jobs.steps:keep_eu").__name__ == "keep_eu"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("dedupe_newest", "not a built-in"),
        ("", "not a built-in"),
        ("sluiceway_no_such_pkg.steps:fn", "cannot import module 'sluiceway_no_such_pkg.steps'"),
        ("sluiceway.transforms:no_such_fn", "has no attribute 'no_such_fn'"),
        ("sluiceway.transforms.quality.FAILURES_COLUMN", "is a str, not a function"),
        ("sluiceway.transforms:", "not a built-in"),
    ],
)
def test_resolve_transform_rejects_unresolvable_names_naming_them(name, message):
    with pytest.raises(TransformError, match=message) as raised:
        resolve_transform(name)
    assert repr(name) in str(raised.value)
