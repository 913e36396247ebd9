"""Frozen-dataclass configs loadable from YAML.

Every algorithm has a ``@dataclass(frozen=True)`` config whose fields carry their
documentation in ``field(metadata={"help": ...})``. :func:`load_config` builds one from
a YAML file or mapping; unknown keys, wrong types and missing files are
:class:`~katazuke.errors.ConfigError` s naming the key and the file.

Example:
    >>> @dataclass(frozen=True)
    ... class LqrConfig:
    ...     horizon: int = field(default=10, metadata={"help": "steps"})
    >>> load_config(LqrConfig, {"horizon": 5}).horizon
    5
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from katazuke.errors import ConfigError

T = TypeVar("T")

__all__ = ["load_config", "config_to_dict", "field_help", "dataclass", "field", "read_yaml"]


def read_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file, raising :class:`ConfigError` naming the file on any problem."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p} (check the path)")
    try:
        with p.open("r", encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from exc


def _coerce(name: str, value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, value, a, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: '{name}' = {value!r} matches none of {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: '{name}' must be one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: '{name}' must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: '{name}' needs {len(args)} items, got {len(value)}")
            return tuple(_coerce(name, v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        seq = [_coerce(name, v, inner, where) for v in value]
        return tuple(seq) if origin is tuple else seq
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: '{name}' must be a mapping for {tp.__name__}")
        return load_config(tp, value, where=f"{where}:{name}")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{name}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{name}' must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{name}' must be true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: '{name}' must be a string, got {value!r}")
        return value
    return value


def load_config(cls: type[T], source: Mapping[str, Any] | str | os.PathLike | None = None,
                *, where: str | None = None, **overrides: Any) -> T:
    """Build a frozen config dataclass from a mapping or a YAML file.

    Args:
        cls: the config dataclass type.
        source: a mapping, a YAML path, or None for defaults.
        where: text naming the source in error messages.
        **overrides: values that win over ``source``.

    Raises:
        ConfigError: unknown key, wrong type, or missing file.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if source is None:
        data: dict[str, Any] = {}
        where = where or cls.__name__
    elif isinstance(source, Mapping):
        data = dict(source)
        where = where or cls.__name__
    else:
        loaded = read_yaml(source)
        where = where or str(source)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{where}: top level must be a mapping of {cls.__name__} fields")
        data = dict(loaded)
    data.update(overrides)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; "
                          f"valid keys: {sorted(names)}")
    kwargs = {k: _coerce(k, v, hints[k], where) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-dict view of a config (tuples become lists), for YAML/JSON/ROS params."""
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        return v
    return conv(cfg)


def field_help(cls: type, name: str) -> str:
    """The ``help`` metadata of a config field ('' if none)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return str(f.metadata.get("help", ""))
    raise KeyError(name)
