"""runtimes.batch: job arguments, and a bad spec reported as one line."""

from __future__ import annotations

import pytest

from sluiceway.errors import SluicewayError
from sluiceway.runtimes.batch import parse_flag, run_batch_job


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("False", False), (True, True)])
def test_parse_flag_accepts_glue_strings_and_booleans(value, expected):
    assert parse_flag(value, "full_refresh") is expected


def test_parse_flag_rejects_anything_else():
    with pytest.raises(SluicewayError, match="job argument full_refresh: expected true or false"):
        parse_flag("yes", "full_refresh")


def test_run_batch_job_reports_a_bad_spec_as_one_line_and_status_1(spark, tmp_path, capsys):
    status = run_batch_job(spark, str(tmp_path / "missing.toml"))
    out, err = capsys.readouterr()
    assert status == 1 and out == ""
    assert err.splitlines() == [
        f"sluiceway: error: {tmp_path / 'missing.toml'}: cannot read spec: No such file or directory"
    ]
