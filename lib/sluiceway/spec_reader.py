"""The parsing toolkit the batch and the stream spec share: typed TOML access, rules, steps.

Standard library only: a spec parses (and `package` / `deploy` run) where Spark is not
installed. Names in a spec are only read here; `sluiceway.spec_check.check` resolves them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from sluiceway.errors import SpecError
from sluiceway.quality_rules import QualityRule

Choice = TypeVar("Choice", bound=str)

# Identifiers from the spec end up in SQL; only plain names are accepted, then quoted.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# Pipeline, table and output names (also directory and state-key names).
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TransformStep:
    """A transform named in a spec: a built-in or a dotted path, and its keyword arguments."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


class Reader:
    """Typed access to one TOML table; errors name the file and the dotted key."""

    def __init__(self, source: str, where: str, data: Any) -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            self.fail("", "must be a table")
        self.data: dict[str, Any] = data

    def error(self, key: str, message: str) -> SpecError:
        path = ".".join(part for part in (self.where, key) if part)
        return SpecError(message, where=f"{self.source}: {path}")

    def fail(self, key: str, message: str) -> NoReturn:
        raise self.error(key, message)

    def only(self, *allowed: str) -> None:
        for key in self.data:
            if key not in allowed:
                self.fail(key, f"unknown key (expected one of: {', '.join(allowed)})")

    def child(self, key: str, data: Any) -> Reader:
        return Reader(self.source, ".".join(p for p in (self.where, key) if p), data)

    def get(
        self, key: str, kind: type | tuple[type, ...], default: Any = None, required: bool = False
    ) -> Any:
        if key not in self.data:
            if required:
                self.fail(key, "is required")
            return default
        value = self.data[key]
        # bool is an int subclass; never accept it where a number is meant.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            names = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            self.fail(key, f"must be a {names}, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[Choice, ...], default: Choice) -> Choice:
        """One of a closed set of strings (a `Literal` type): another value is an error."""
        value = self.get(key, str, default)
        for choice in choices:
            if value == choice:
                return choice
        self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")

    def positive(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if value <= 0:
            self.fail(key, f"must be > 0, got {value}")
        return int(value)

    def names(self, key: str, pattern: re.Pattern[str] = IDENTIFIER) -> tuple[str, ...]:
        value = self.get(key, (list, str), [])
        items = [value] if isinstance(value, str) else value
        for item in items:
            if not isinstance(item, str) or not pattern.match(item):
                self.fail(key, f"{item!r} is not a plain column name")
        return tuple(items)

    def identifier(self, key: str, required: bool = False) -> str | None:
        value = self.get(key, str, required=required)
        if value is not None and not IDENTIFIER.match(value):
            self.fail(key, f"{value!r} is not a plain identifier")
        return value


def read_spec_file(path: str | Path) -> str:
    """The text of a spec file; a missing or unreadable one is a SpecError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror}", where=str(path)) from exc


# The table that makes a spec a batch pipeline or a stream, and the command that runs it.
_KINDS = (("tables", "pipeline", "run"), ("events", "stream", "stream"))


def top_reader(text: str, source: str, *sections: str) -> tuple[Reader, Reader, str]:
    """The spec's top level (only `sections` allowed), its `[pipeline]` table and name."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"not valid TOML: {exc}", where=source) from exc
    # The other kind of spec given to a command: say so, rather than "unknown key".
    for section, kind, command in _KINDS:
        if section in data and section not in sections:
            raise SpecError(f"a {kind} spec ([{section}]): use `sluiceway {command}`", where=source)
    top = Reader(source, "", data)
    top.only(*sections)
    pipe = top.child("pipeline", top.get("pipeline", dict, required=True))
    name = pipe.get("name", str, required=True)
    if not NAME.match(name):
        pipe.fail("name", f"{name!r} must be a plain name (letters, digits, _)")
    return top, pipe, name


# A module name as Python imports it: "acme_common" or "acme_common.helpers".
MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_package(top: Reader) -> tuple[str, ...]:
    """`[package] modules = ["acme_common", ...]`: the user's modules a deployed job needs
    beyond those the spec's transforms and builders name (a helper package they import);
    `package` ships each one's top-level package whole."""
    r = top.child("package", top.get("package", dict, {}))
    r.only("modules")
    modules = r.get("modules", list, [])
    for index, module in enumerate(modules):
        if not isinstance(module, str) or not MODULE_NAME.match(module):
            r.fail(f"modules[{index}]", f"{module!r} is not a module name like 'acme_common'")
    return tuple(modules)


def parse_transforms(r: Reader, key: str) -> tuple[TransformStep, ...]:
    """`transforms = [{ name = "...", params = {...} }, ...]`; names are resolved by check()."""
    steps = []
    for index, item in enumerate(r.get(key, list, [])):
        step = r.child(f"{key}[{index}]", item)
        step.only("name", "params")
        step_name = step.get("name", str, required=True)
        steps.append(TransformStep(step_name, dict(step.get("params", dict, {}))))
    return tuple(steps)


def parse_quality(r: Reader) -> tuple[QualityRule, ...]:
    """`quality = [{ rule = "not_null", column = "x" }, ...]` as QualityRule values."""
    rules = []
    for index, item in enumerate(r.get("quality", list, [])):
        rule = r.child(f"quality[{index}]", item)
        rule.only("rule", "column", "values", "min", "max")
        values = rule.get("values", list)
        try:
            rules.append(
                QualityRule(
                    kind=rule.get("rule", str, required=True),
                    column=rule.identifier("column", required=True) or "",
                    values=tuple(values) if values is not None else None,
                    min=rule.data.get("min"),
                    max=rule.data.get("max"),
                )
            )
        except ValueError as exc:
            rule.fail("", str(exc))
    return tuple(rules)
