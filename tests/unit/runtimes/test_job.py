"""runtimes.job: the one runner of batch and stream jobs, on the test session."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pyspark.errors import StreamingQueryException

from sluiceway import streaming
from sluiceway.demo.events import EVENT_SCHEMA, sample_records, write_capture
from sluiceway.errors import SluicewayError, TransformError
from sluiceway.runtimes.glue import glue_context
from sluiceway.runtimes.job import parse_flag, run_batch_job, run_stream_job
from sluiceway.stream_spec import load_stream_spec


def _files_spec(tmp_path: Path, events_extra: str = "") -> Path:
    """An available_now stream spec over capture files of 40 records, 4 of them malformed."""
    write_capture(tmp_path / "in", sample_records(40, malformed_share=0.1, seed=3), per_file=20)
    text = textwrap.dedent(
        f"""
        [pipeline]
        name = "jobtest"
        output = "{tmp_path / "out"}"

        [source]
        kind = "files"
        path = "{tmp_path / "in"}"

        [events]
        schema = "{EVENT_SCHEMA}"
        event_id = "event_id"
        event_time = "event_time"
        """
    )
    text += textwrap.dedent(events_extra) + '\n[trigger]\nmode = "available_now"\n'
    path = tmp_path / "jobtest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _dead_letters(spark, tmp_path: Path) -> int:
    return spark.read.parquet(str(tmp_path / "out" / "_dead_letters")).count()


def test_run_stream_job_reports_a_bad_spec_as_one_line_and_status_1(spark, tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text("[pipeline\n", encoding="utf-8")

    status = run_stream_job(spark, str(spec))

    out, err = capsys.readouterr()
    assert (status, out) == (1, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(f"sluiceway: error: {spec}: not valid TOML")


def test_run_stream_job_runs_a_files_stream_to_the_end_and_returns_0(spark, tmp_path, capsys):
    status = run_stream_job(spark, str(_files_spec(tmp_path)))

    assert status == 0, capsys.readouterr().err
    assert spark.read.parquet(str(tmp_path / "out" / "events")).count() == 36
    assert _dead_letters(spark, tmp_path) == 4


def test_the_glue_stand_in_runs_the_stream_off_glue(spark, tmp_path, capsys):
    context = glue_context(spark.sparkContext)

    status = run_stream_job(spark, str(_files_spec(tmp_path)), glue_context=context)

    assert status == 0, capsys.readouterr().err
    assert _dead_letters(spark, tmp_path) == 4


def test_an_error_a_micro_batch_raises_is_re_raised_as_is(spark, tmp_path):
    bad_params = 'transforms = [{ name = "with_date_partitions", params = { nope = 1 } }]'
    spec = load_stream_spec(_files_spec(tmp_path, bad_params))

    with pytest.raises(TransformError) as raised:
        streaming.run_spec(spark, spec)

    assert str(raised.value).startswith(
        f"{spec.source_file}: events.transforms: with_date_partitions: "
    )
    assert "nope" in str(raised.value)
    assert isinstance(raised.value.__cause__, StreamingQueryException)


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
