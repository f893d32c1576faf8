"""`sluiceway package`: the artifact set, its manifest and its checks."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from sluiceway import __version__
from sluiceway.deploy.package import PYFILES, WHEEL, build_artifacts, load_artifacts
from sluiceway.errors import DeployError, SpecError

ROOT = Path(__file__).resolve().parents[3]
DEMO_SPEC = ROOT / "pipelines" / "tpch_demo.toml"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_artifacts(DEMO_SPEC, tmp_path_factory.mktemp("dist"))


def test_same_sources_give_the_same_build_and_bytes(built, tmp_path):
    again = build_artifacts(DEMO_SPEC, tmp_path)
    assert (
        again.build == built.build and again.root.name == f"sluiceway-{__version__}-{built.build}"
    )
    for a, b in zip(built.files, again.files, strict=True):
        assert (a.path, a.sha256) == (b.path, b.sha256)
        assert (built.root / a.path).read_bytes() == (again.root / b.path).read_bytes()


def test_manifest_lists_every_file_with_its_checksum(built):
    manifest = json.loads((built.root / "manifest.json").read_text())
    assert (manifest["version"], manifest["build"], manifest["pipeline"]) == (
        __version__,
        built.build,
        "tpch_demo",
    )
    roles = sorted(f["role"] for f in manifest["files"])
    jar_roles = ["jar"] * 3  # the PostgreSQL, MySQL and Redshift drivers travel with the job
    assert roles == ["emr_entrypoint", "glue_script", *jar_roles, "pyfiles", "spec", "wheel"]
    on_disk = sorted(
        p.relative_to(built.root).as_posix() for p in built.root.rglob("*") if p.is_file()
    )
    assert on_disk == sorted(["manifest.json", *(f["path"] for f in manifest["files"])])
    for item in manifest["files"]:
        data = (built.root / item["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item["sha256"] and len(data) == item["bytes"]
    shipped = {f["coordinate"] for f in manifest["files"] if f["role"] == "jar"}
    assert shipped == {
        "org.postgresql:postgresql:42.7.14",
        "com.mysql:mysql-connector-j:9.7.0",
        "com.amazon.redshift:redshift-jdbc42:2.3.0",
    }


def test_zip_holds_the_package_and_nothing_else(built):
    with zipfile.ZipFile(built.root / built.file(PYFILES).path) as archive:
        names = archive.namelist()
    assert "sluiceway/__init__.py" in names and "sluiceway/runtimes/glue.py" in names
    assert "sluiceway/runtimes/log4j2.properties" in names
    assert all(n.startswith("sluiceway/") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_record_matches_its_contents(built):
    with zipfile.ZipFile(built.root / built.file(WHEEL).path) as wheel:
        record = wheel.read(f"sluiceway-{__version__}.dist-info/RECORD").decode().splitlines()
        entries = {line.split(",")[0]: line.split(",")[1:] for line in record}
        assert set(entries) == set(wheel.namelist())
        for name, (digest, size) in entries.items():
            if name.endswith("RECORD"):
                continue
            data = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == f"sha256={expected.decode()}" and int(size) == len(data), name
        metadata = wheel.read(f"sluiceway-{__version__}.dist-info/METADATA").decode()
    assert f"Version: {__version__}" in metadata and "Requires-Python: >=3.11" in metadata


def test_load_artifacts_rejects_a_file_that_changed(built, tmp_path):
    copy = tmp_path / built.root.name
    shutil.copytree(built.root, copy)
    assert load_artifacts(copy).build == built.build
    spec = copy / "pipelines" / "tpch_demo.toml"
    spec.write_text(spec.read_text() + "\n# edited after packaging\n")
    with pytest.raises(DeployError, match=r"tpch_demo.toml: checksum \w+ does not match"):
        load_artifacts(copy)


def test_a_spec_that_does_not_parse_is_never_packaged(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[pipeline]\nname = "x"\noutput = "o"\n')
    out = tmp_path / "dist"
    with pytest.raises(SpecError, match=r"bad.toml: connections: is required"):
        build_artifacts(bad, out)
    assert not out.exists()


def test_a_spec_naming_a_builder_that_does_not_exist_is_never_packaged(tmp_path):
    typo = tmp_path / "typo.toml"
    typo.write_text(DEMO_SPEC.read_text().replace(":join_order_lines", ":join_order_linez", 1))
    out = tmp_path / "dist"
    with pytest.raises(
        SpecError,
        match=r"typo.toml: outputs.order_lines.builder: .* has no attribute 'join_order_linez'",
    ):
        build_artifacts(typo, out)
    assert not out.exists()


def test_missing_jars_are_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SLUICEWAY_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(DeployError, match=r"jars not fetched: postgresql-42.7.14.jar"):
        build_artifacts(DEMO_SPEC, tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


def test_the_package_table_ships_the_modules_it_names_and_refuses_what_is_not_there(
    tmp_path, monkeypatch
):
    helpers = tmp_path / "user_code" / "acme_helpers"
    helpers.mkdir(parents=True)
    (helpers / "__init__.py").write_text("")
    (helpers / "dates.py").write_text("EPOCH = 0\n")
    monkeypatch.syspath_prepend(str(helpers.parent))
    spec = tmp_path / "with_helpers.toml"
    spec.write_text(DEMO_SPEC.read_text() + '\n[package]\nmodules = ["acme_helpers.dates"]\n')
    built = build_artifacts(spec, tmp_path / "dist")
    with zipfile.ZipFile(built.root / built.file(PYFILES).path) as archive:
        assert {"acme_helpers/__init__.py", "acme_helpers/dates.py"} <= set(archive.namelist())

    spec.write_text(DEMO_SPEC.read_text() + '\n[package]\nmodules = ["acme_nowhere"]\n')
    with pytest.raises(
        DeployError, match=r"with_helpers.toml: package.modules\[0\]: cannot find acme_nowhere"
    ):
        build_artifacts(spec, tmp_path / "dist2")
    spec.write_text(DEMO_SPEC.read_text() + '\n[package]\nmodules = ["acme-helpers"]\n')
    with pytest.raises(SpecError, match=r"package.modules\[0\]: 'acme-helpers' is not a module"):
        build_artifacts(spec, tmp_path / "dist3")
