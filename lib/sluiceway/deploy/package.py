"""`sluiceway package`: one versioned artifact set for Glue and EMR Serverless alike.

    sluiceway-<version>-<build>/
      manifest.json                        versions, roles, sizes and SHA-256 of every file
      sluiceway-<version>-py3-none-any.whl the library as a wheel (pip, --additional-python-modules)
      sluiceway-<version>.zip              the same modules for --extra-py-files / --py-files,
                                           and the user's packages the spec's transforms
                                           and builders live in
      jobs/glue_batch.py, jobs/emr_batch.py  (a stream spec: jobs/glue_stream.py, emr_stream.py)
      pipelines/<spec>.toml
      jars/<artifact>-<version>.jar        the pinned jars of sluiceway.jars the job needs and
                                           its platform lacks, checksums checked

A set is built for any platform, or for one (`--target`, deploy/targets.py): then it
carries only the jars that platform lacks, its code is checked against the Python it runs,
and the manifest names it, so `deploy glue` / `submit emr` can refuse another platform.

Archives are built here with the standard library, entries sorted and timestamps fixed,
so the same sources always give the same bytes. The build id is a digest of every file's
checksum: rebuilding unchanged sources gives the same id (and the same S3 prefix).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sluiceway
from sluiceway import jars
from sluiceway.errors import DeployError
from sluiceway.spec_check import BUILTIN_TRANSFORM_NAMES

if TYPE_CHECKING:
    from sluiceway.deploy.targets import Target
    from sluiceway.spec import PipelineSpec
    from sluiceway.stream_spec import StreamSpec

    AnySpec = PipelineSpec | StreamSpec

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
# Roles of the files in a set; deploy and submit look files up by role, never by name.
WHEEL, PYFILES, GLUE_SCRIPT, EMR_ENTRYPOINT, SPEC, JAR = (
    "wheel",
    "pyfiles",
    "glue_script",
    "emr_entrypoint",
    "spec",
    "jar",
)
# The job scripts of each kind of spec: a batch pipeline, or a stream (stream_spec.py).
JOB_SCRIPTS = {
    "batch": {GLUE_SCRIPT: "glue_batch.py", EMR_ENTRYPOINT: "emr_batch.py"},
    "stream": {GLUE_SCRIPT: "glue_stream.py", EMR_ENTRYPOINT: "emr_stream.py"},
}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SKIP_DIRS = {"__pycache__"}
_PACKAGE_SUFFIXES = {".py", ".properties", ".typed"}


@dataclass(frozen=True)
class ArtifactFile:
    role: str
    path: str  # relative to the set's root, "/"-separated
    sha256: str
    bytes: int
    coordinate: str | None = None  # Maven coordinate, for jars


@dataclass(frozen=True)
class ArtifactSet:
    root: Path
    version: str
    build: str
    pipeline: str
    files: tuple[ArtifactFile, ...]
    kind: str = "batch"  # "batch" | "stream": which spec, and so which job scripts
    target: str | None = None  # the platform it was built for (deploy/targets.py), or any

    @property
    def built_for(self) -> Target | None:
        from sluiceway.deploy.targets import target

        return target(self.target) if self.target is not None else None

    @property
    def name(self) -> str:
        return f"{self.version}-{self.build}"

    def file(self, role: str) -> ArtifactFile:
        for item in self.files:
            if item.role == role:
                return item
        raise DeployError(f"{self.root}: the artifact set has no {role} file")

    @property
    def jars(self) -> tuple[ArtifactFile, ...]:
        return tuple(item for item in self.files if item.role == JAR)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _source_tree() -> Path:
    """The directory of the installed sluiceway package."""
    return Path(sluiceway.__file__).resolve().parent


def _jobs_dir() -> Path:
    # The job scripts live beside lib/ in a checkout (they are not part of the package).
    jobs_dir = _source_tree().parents[1] / "jobs"
    names = [name for scripts in JOB_SCRIPTS.values() for name in scripts.values()]
    missing = [name for name in names if not (jobs_dir / name).is_file()]
    if missing:
        raise DeployError(
            f"job scripts not found ({', '.join(missing)} under {jobs_dir}); "
            "package from a Sluiceway checkout (pip install -e .)"
        )
    return jobs_dir


def _package_files() -> list[tuple[str, bytes]]:
    """(archive name, bytes) of every module and data file of the sluiceway package."""
    root = _source_tree()
    found = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root.parent)
        if path.is_dir() or _SKIP_DIRS.intersection(rel.parts):
            continue
        if path.suffix in _PACKAGE_SUFFIXES:
            found.append((rel.as_posix(), path.read_bytes()))
    return found


def _user_code_files(spec: AnySpec) -> list[tuple[str, bytes]]:
    """(archive name, bytes) of every module of the user's top-level packages that the
    spec's transforms and builders name, and of those its `[package]` table lists
    ("acme_etl.cleaning:fix" ships package acme_etl whole, as the cluster must import it).
    Sluiceway's own are in the zip already."""
    found: dict[str, bytes] = {}
    for key, name in _named_code(spec):
        top = name.strip().replace(":", ".").split(".")[0]
        if top == "sluiceway" or top in BUILTIN_TRANSFORM_NAMES:
            continue
        module = importlib.util.find_spec(top)
        if module is None or module.origin in (None, "built-in", "frozen"):
            raise DeployError(
                f"cannot find {top} to package it", where=f"{spec.source_file}: {key}"
            )
        if module.submodule_search_locations:  # a package: every module under it
            root = Path(next(iter(module.submodule_search_locations)))
            paths = [p for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts]
        else:
            root, paths = Path(module.origin), [Path(module.origin)]
        for path in paths:
            found[path.relative_to(root.parent).as_posix()] = path.read_bytes()
    return sorted(found.items())


def _named_code(spec: AnySpec) -> list[tuple[str, str]]:
    """(spec key, name) of every transform and builder the spec names, and of every module
    its `[package]` table lists."""
    from sluiceway.spec import PipelineSpec

    if isinstance(spec, PipelineSpec):
        named = [
            (f"tables.{table.name}.transforms[{index}].name", step.name)
            for table in spec.tables
            for index, step in enumerate(table.transforms)
        ]
        named += [(f"outputs.{o.name}.builder", o.builder) for o in spec.outputs]
    else:
        named = [
            (f"events.transforms[{index}].name", step.name)
            for index, step in enumerate(spec.events.transforms)
        ]
    return named + [
        (f"package.modules[{index}]", module) for index, module in enumerate(spec.package_modules)
    ]


def spec_kind(path: Path) -> str:
    """ "stream" for a stream spec (it has an [events] table), else "batch"."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "batch"  # the batch parser reports the file as it is
    return "stream" if "events" in data and "tables" not in data else "batch"


def load_set_spec(
    path: Path, kind: str, output: str | None = None, location: str | None = None
) -> AnySpec:
    """The spec of `kind` at `path`, checked against the code (its names resolve);
    `output`/`location` override its output root and its state (batch) or checkpoint."""
    from sluiceway.spec import load_spec
    from sluiceway.spec_check import check, check_stream_spec
    from sluiceway.stream_spec import load_stream_spec

    if kind == "stream":
        stream = load_stream_spec(path, output, location)
        check_stream_spec(stream)
        return stream
    spec = load_spec(path, output, location)
    check(spec)
    return spec


def _zip_bytes(entries: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _wheel_bytes(version: str, modules: list[tuple[str, bytes]]) -> bytes:
    """A pure-Python wheel (PEP 427) of `modules`, with metadata from this package."""
    dist_info = f"sluiceway-{version}.dist-info"
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            "Name: sluiceway",
            f"Version: {version}",
            f"Summary: {(sluiceway.__doc__ or '').strip()}",
            "Requires-Python: >=3.11",
            "Requires-Dist: boto3>=1.35.69",
            "",
        ]
    )
    wheel = "\n".join(
        [
            "Wheel-Version: 1.0",
            f"Generator: sluiceway {version}",
            "Root-Is-Purelib: true",
            "Tag: py3-none-any",
            "",
        ]
    )
    entry_points = "[console_scripts]\nsluiceway = sluiceway.cli:main\n"
    entries = [
        *modules,
        (f"{dist_info}/METADATA", metadata.encode()),
        (f"{dist_info}/WHEEL", wheel.encode()),
        (f"{dist_info}/entry_points.txt", entry_points.encode()),
    ]
    record = []
    for name, data in sorted(entries):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    entries.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))
    return _zip_bytes(entries)


def _jar_files(wanted: tuple[jars.Jar, ...]) -> list[tuple[jars.Jar, Path]]:
    """The cached files of the `wanted` pinned jars, checksums checked."""
    pairs = [(jar, jars.cache_dir() / jar.file_name) for jar in wanted]
    missing = [path.name for _, path in pairs if not path.is_file()]
    if missing:
        raise DeployError(
            f"jars not fetched: {', '.join(missing)} (run `sluiceway jars fetch` or "
            "scripts/setup.sh)"
        )
    for jar, path in pairs:
        digest = _sha256(path.read_bytes())
        if digest != jar.sha256:
            raise DeployError(
                f"{path}: checksum {digest} does not match the pinned {jar.sha256} "
                "(delete it and run `sluiceway jars fetch`)"
            )
    return pairs


def _jars_for(spec: AnySpec, built_for: Target | None) -> list[tuple[jars.Jar, Path]]:
    """The pinned jars the job needs and its platform lacks: the JDBC drivers for a batch
    pipeline; for a stream, Spark's Kafka source of the target's Spark line when it reads
    Kafka (MSK's IAM login when it asks for it), nothing when it reads Kinesis (the
    platform's own reader)."""
    from sluiceway.stream_spec import StreamSpec

    provided = set(built_for.provided) if built_for is not None else set()
    if not isinstance(spec, StreamSpec):
        wanted = jars.required_jars()
    elif spec.source.kafka is None:
        return []
    elif built_for is None:
        raise DeployError(
            f"{spec.name}: a Kafka stream is packaged for one platform: give --target "
            "(Spark's Kafka source is built per Spark line)"
        )
    else:
        line = jars.spark_line_of(built_for.spark)
        iam = (jars.MSK_IAM_JAR,) if spec.source.kafka.msk_iam else ()
        wanted = (*jars.kafka_jars(line), *iam)
    return _jar_files(tuple(j for j in wanted if j.family not in provided))


def build_artifacts(
    spec_path: str | Path, out_dir: str | Path, target_name: str | None = None
) -> ArtifactSet:
    """Validate the spec, then write the artifact set under `out_dir` (for one platform
    with `target_name`, see deploy/targets.py); return it."""
    from sluiceway.deploy.targets import check_python, target

    built_for = target(target_name) if target_name is not None else None
    spec_file = Path(spec_path)
    kind = spec_kind(spec_file)
    # A spec that does not parse, or names what does not resolve, is never packaged.
    spec = load_set_spec(spec_file, kind)
    version = sluiceway.__version__
    modules = _package_files()
    job_code = modules + _user_code_files(spec)
    jobs_dir = _jobs_dir()
    scripts = JOB_SCRIPTS[kind]
    if built_for is not None:
        script_code = [
            (f"jobs/{name}", (jobs_dir / name).read_bytes()) for name in scripts.values()
        ]
        check_python(built_for, job_code + script_code)
    contents: list[tuple[str, str, bytes | Path, str | None]] = [
        (WHEEL, f"sluiceway-{version}-py3-none-any.whl", _wheel_bytes(version, modules), None),
        (PYFILES, f"sluiceway-{version}.zip", _zip_bytes(job_code), None),
    ]
    for role, name in scripts.items():
        contents.append((role, f"jobs/{name}", jobs_dir / name, None))
    contents.append((SPEC, f"pipelines/{spec_file.name}", spec_file, None))
    for jar, path in _jars_for(spec, built_for):
        contents.append((JAR, f"jars/{jar.file_name}", path, jar.coordinate))
    return _write_set(Path(out_dir), contents, spec.name, kind, target_name)


def _write_set(
    out: Path,
    contents: list[tuple[str, str, bytes | Path, str | None]],
    pipeline: str,
    kind: str,
    target_name: str | None,
) -> ArtifactSet:
    """Write the files and the manifest under a staging directory, then rename it to the
    set's directory: a set on disk is always complete."""
    version = sluiceway.__version__
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".sluiceway-package-", dir=out))
        staging.chmod(0o755)  # mkdtemp's 0700 would follow the set when it is renamed
    except OSError as exc:
        raise DeployError(f"{out}: cannot create the artifact directory: {exc.strerror}") from exc
    try:
        files = []
        for role, rel, source, coordinate in contents:
            data = source.read_bytes() if isinstance(source, Path) else source
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            files.append(ArtifactFile(role, rel, _sha256(data), len(data), coordinate))
        # The target is part of the identity: two targets may get the same files.
        header = f"target\0{target_name}\n" if target_name is not None else ""
        listing = header + "".join(f"{f.path}\0{f.sha256}\n" for f in files)
        build = _sha256(listing.encode())[:12]
        artifacts = ArtifactSet(
            out / f"sluiceway-{version}-{build}",
            version,
            build,
            pipeline,
            tuple(files),
            kind,
            target_name,
        )
        (staging / MANIFEST).write_text(
            json.dumps(_manifest(artifacts), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        if artifacts.root.exists():
            shutil.rmtree(artifacts.root)  # the same build id means the same bytes
        staging.rename(artifacts.root)
    except OSError as exc:
        raise DeployError(f"{out}: cannot write the artifact set: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return artifacts


def _manifest(artifacts: ArtifactSet) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "package": "sluiceway",
        "version": artifacts.version,
        "build": artifacts.build,
        "pipeline": artifacts.pipeline,
        "kind": artifacts.kind,
        "target": built_for.to_manifest() if (built_for := artifacts.built_for) else None,
        "requires_python": ">=3.11",
        "cluster_imports": ["python standard library", "pyspark", "boto3", "sluiceway"],
        "files": [
            {
                k: v
                for k, v in {
                    "role": f.role,
                    "path": f.path,
                    "sha256": f.sha256,
                    "bytes": f.bytes,
                    "coordinate": f.coordinate,
                }.items()
                if v is not None
            }
            for f in artifacts.files
        ],
    }


def load_artifacts(root: str | Path) -> ArtifactSet:
    """Read a set's manifest and check every file against it."""
    base = Path(root)
    manifest_path = base / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeployError(f"{manifest_path}: cannot read manifest: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise DeployError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise DeployError(f"{manifest_path}: not a format {MANIFEST_FORMAT} sluiceway manifest")
    try:
        files = tuple(
            ArtifactFile(
                str(item["role"]),
                str(item["path"]),
                str(item["sha256"]),
                int(item["bytes"]),
                item.get("coordinate"),
            )
            for item in manifest["files"]
        )
        target_entry = manifest.get("target")
        artifacts = ArtifactSet(
            base,
            str(manifest["version"]),
            str(manifest["build"]),
            str(manifest["pipeline"]),
            files,
            str(manifest.get("kind", "batch")),  # sets built before stream jobs are batch
            str(target_entry["name"]) if target_entry else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DeployError(f"{manifest_path}: malformed manifest ({exc!r})") from exc
    for item in files:
        path = base / item.path
        try:
            digest = _sha256(path.read_bytes())
        except OSError as exc:
            raise DeployError(
                f"{path}: listed in the manifest but unreadable: {exc.strerror}"
            ) from exc
        if digest != item.sha256:
            raise DeployError(
                f"{path}: checksum {digest} does not match the manifest's {item.sha256}"
            )
    if artifacts.kind not in JOB_SCRIPTS:
        raise DeployError(f"{manifest_path}: unknown kind {artifacts.kind!r}")
    _ = artifacts.built_for  # an unknown target is refused here, naming the known ones
    for role in (PYFILES, GLUE_SCRIPT, EMR_ENTRYPOINT, SPEC):
        artifacts.file(role)
    return artifacts
