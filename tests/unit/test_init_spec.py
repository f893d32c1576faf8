"""`sluiceway init`'s command line: what it refuses before it connects to anything."""

from __future__ import annotations

import pytest

from sluiceway.cli import main
from sluiceway.sources.db_catalog import parse_pg_array

pytestmark = pytest.mark.spark_free  # no Spark: scripts/test.sh runs it on one line only

BASE = [
    "init",
    "--engine=postgresql",
    "--host=127.0.0.1",
    "--port=1",
    "--database=shop",
    "--user=reader",
]
PASSWORD = "pw-value-4711"


@pytest.mark.parametrize(
    "args, message",
    [
        (BASE, "init: give --password-env VAR or --secret-id ID (a password never goes on"),
        (
            ["init", "--engine=postgresql", "--password-env=PW"],
            "init: give --host (or a --secret-id whose secret holds it)",
        ),
        (
            [*BASE, "--password-env=PW", "--max-connections=0"],
            "init: --max-connections, --partition-mb and --partition-rows must be > 0",
        ),
        (
            [*BASE, "--password-env=SLUICEWAY_UNSET_VARIABLE"],
            "init --password-env: environment variable SLUICEWAY_UNSET_VARIABLE is not set",
        ),
        (
            [
                "init",
                "--engine=mysql",
                "--host=h",
                "--database=shop",
                "--schema=other",
                "--user=reader",
                "--password-env=PW",
            ],
            "init: --schema other: a MySQL schema is its database; give it as --database",
        ),
    ],
)
def test_init_refuses_bad_input_with_one_line_and_prints_no_spec(
    args, message, capsys, monkeypatch
):
    monkeypatch.setenv("PW", PASSWORD)
    monkeypatch.delenv("SLUICEWAY_UNSET_VARIABLE", raising=False)

    assert main(args) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"sluiceway: error: {message}"), err
    assert PASSWORD not in err


def test_init_has_no_password_option_not_even_as_an_abbreviation(capsys):
    with pytest.raises(SystemExit):
        main([*BASE, f"--password={PASSWORD}"])
    assert PASSWORD not in capsys.readouterr().err.replace(f"--password={PASSWORD}", "")


def test_password_env_must_be_a_variable_name_and_is_not_echoed(capsys):
    assert main([*BASE, f"--password-env={PASSWORD}!"]) == 1
    err = capsys.readouterr().err
    assert err == "sluiceway: error: init: --password-env must name an environment variable\n"


def test_init_to_a_closed_port_is_one_source_error(capsys, monkeypatch):
    monkeypatch.setenv("PW", PASSWORD)
    assert main([*BASE, "--password-env=PW"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "sluiceway: error: postgresql 127.0.0.1:1/shop: cannot read the catalog: "
    ), err
    assert PASSWORD not in err


@pytest.mark.parametrize(
    "text, items",
    [
        (None, []),
        ("{}", []),
        ("{1,2,3}", ["1", "2", "3"]),
        (
            '{"2024-01-01 10:00:00+00","2024-02-01 00:00:00+00"}',
            ["2024-01-01 10:00:00+00", "2024-02-01 00:00:00+00"],
        ),
        ('{"a,b","c\\"d"}', ["a,b", 'c"d']),
    ],
)
def test_pg_array_text_is_split_into_its_elements(text, items):
    assert parse_pg_array(text) == items
