"""Check a parsed spec against the code: every transform and builder it names resolves.

Parsing reads the file alone (standard library); `check` imports what the spec names, so
a misspelt transform fails before a package is built, a job deployed or Spark started,
with the file and the key, as a parse error would:
`pipelines/x.toml: tables.orders.transforms[0].name: transform 'my_pkg.nope:clean': ...`.

Where pyspark is not installed (a laptop running `package` or `deploy`), a module that
imports it cannot be imported; its source is read instead, and it must define the name.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sluiceway.errors import SpecError, TransformError

if TYPE_CHECKING:
    from sluiceway.spec import PipelineSpec
    from sluiceway.spec_reader import TransformStep
    from sluiceway.stream_spec import StreamSpec

# The names sluiceway.transforms.registry maps to its functions; kept here as names so a
# spec checks without importing Spark.
BUILTIN_TRANSFORM_NAMES = (
    "normalize_column_names",
    "cast_to_schema",
    "dedupe_latest",
    "with_date_partitions",
    "with_hashed_columns",
    "with_audit_columns",
)


def check(spec: PipelineSpec) -> None:
    """Resolve every table's transforms and every output's builder, or raise SpecError."""
    for table in spec.tables:
        _check_steps(spec.source_file, f"tables.{table.name}", table.transforms)
    for output in spec.outputs:
        _check_name(spec.source_file, f"outputs.{output.name}.builder", output.builder)


def check_stream_spec(spec: StreamSpec) -> None:
    """Resolve every transform of a stream spec's events, or raise SpecError."""
    _check_steps(spec.source_file, "events", spec.events.transforms)


def _check_steps(source: str, where: str, steps: Iterable[TransformStep]) -> None:
    for index, step in enumerate(steps):
        _check_name(source, f"{where}.transforms[{index}].name", step.name)


def _check_name(source: str, key: str, name: str) -> None:
    try:
        check_transform(name)
    except TransformError as exc:
        raise SpecError(f"{source}: {key}: {exc}") from exc


def check_transform(name: str) -> None:
    """Raise TransformError unless `name` is a built-in or a path to a function."""
    if name.strip() in BUILTIN_TRANSFORM_NAMES:
        return
    try:
        import_transform(name)
    except TransformError as exc:
        if not _for_want_of_pyspark(exc.__cause__):
            raise
        _check_source(name)


def _for_want_of_pyspark(exc: BaseException | None) -> bool:
    """True when `exc` is the import of pyspark failing where pyspark is not installed."""
    if not isinstance(exc, ModuleNotFoundError) or (exc.name or "").split(".")[0] != "pyspark":
        return False
    try:
        return importlib.util.find_spec("pyspark") is None
    except (ImportError, ValueError):
        return True


def _split(name: str) -> tuple[str, str]:
    spec = name.strip()
    if ":" in spec:
        module_name, _, attr_path = spec.partition(":")
    else:
        module_name, _, attr_path = spec.rpartition(".")
    if not module_name or not attr_path:
        raise TransformError(
            f"transform {name!r}: not a built-in ({', '.join(BUILTIN_TRANSFORM_NAMES)}) "
            "and not a dotted path like 'package.module:function'"
        )
    return module_name, attr_path


def import_transform(name: str) -> Callable[..., Any]:
    """The function at "pkg.module:func" or "pkg.module.func" (built-ins are the registry's)."""
    module_name, attr_path = _split(name)
    try:
        target: Any = importlib.import_module(module_name)
    except (ImportError, SyntaxError) as exc:
        raise TransformError(
            f"transform {name!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    for attr in attr_path.split("."):
        try:
            target = getattr(target, attr)
        except AttributeError as exc:
            raise TransformError(
                f"transform {name!r}: {module_name!r} has no attribute {attr_path!r}"
            ) from exc
    if not callable(target):
        raise TransformError(
            f"transform {name!r}: {module_name}.{attr_path} is a "
            f"{type(target).__name__}, not a function"
        )
    return target


def _check_source(name: str) -> None:
    """Without pyspark: the module's source must bind the name's first part at top level."""
    module_name, attr_path = _split(name)
    source = _module_source(name, module_name)
    if source is None:  # no source to read (a compiled module): nothing more to know
        return
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise TransformError(
            f"transform {name!r}: cannot import module {module_name!r}: {exc}"
        ) from exc
    names = _top_level_names(tree.body)
    # A star import or a module __getattr__ may bind anything.
    if not names & {"*", "__getattr__"} and attr_path.split(".")[0] not in names:
        raise TransformError(f"transform {name!r}: {module_name!r} has no attribute {attr_path!r}")


def _module_source(name: str, module_name: str) -> str | None:
    """A module's source, found without running it or its packages' __init__ (they may need
    pyspark too); zip archives on sys.path are searched as well."""
    locations = None
    spec = None
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        fullname = ".".join(parts[:depth])
        loaded = sys.modules.get(fullname)
        if loaded is not None and loaded.__spec__ is not None:
            spec = loaded.__spec__
        elif depth > 1 and locations is None:  # the parent is a module, not a package
            spec = None
        else:
            spec = importlib.machinery.PathFinder.find_spec(fullname, locations)
        if spec is None:
            raise TransformError(
                f"transform {name!r}: cannot import module {module_name!r}: "
                f"No module named {fullname!r}"
            )
        locations = spec.submodule_search_locations
    get_source = getattr(spec.loader, "get_source", None) if spec is not None else None
    return get_source(module_name) if get_source is not None else None


def _top_level_names(body: list[ast.stmt]) -> set[str]:
    """Names a module body binds: functions, classes, assignments and imports, including
    those under a top-level if / try (a fallback import, a version switch)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.If | ast.Try):
            handlers = node.handlers if isinstance(node, ast.Try) else []
            for block in (node.body, node.orelse, *(h.body for h in handlers)):
                names |= _top_level_names(block)
            if isinstance(node, ast.Try):
                names |= _top_level_names(node.finalbody)
    return names
