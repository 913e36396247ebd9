"""Frozen-dataclass configs loadable from YAML.

Every algorithm has a ``@dataclass(frozen=True)`` config whose fields carry their
documentation in ``field(metadata={"help": ...})``. :func:`load_config` builds one from
a YAML file or mapping; unknown keys, wrong types and missing files are
:class:`~katazuke.errors.ConfigError` s naming the key and the file.

Range checks are declared once, on the field: ``positive(default, help)``,
``non_negative``, ``finite`` and ``in_range(default, help, lo, hi)`` (or
``field(metadata={"check": "positive", ...})``). :func:`check_fields` is the one function
that enforces them; the :func:`dataclass` decorator of this module runs it before the
class's own ``__post_init__`` (so direct construction is checked too) and
:func:`load_config` runs it for plain dataclasses. Checks that relate several fields stay
as code in ``__post_init__``.

Example:
    >>> @dataclass(frozen=True)
    ... class LqrConfig:
    ...     horizon: int = field(default=10, metadata={"help": "steps"})
    ...     rate_hz: float = positive(20.0, "loop rate (Hz)")
    >>> load_config(LqrConfig, {"horizon": 5}).horizon
    5
    >>> LqrConfig(rate_hz=0.0)
    Traceback (most recent call last):
    ...
    katazuke.errors.ConfigError: LqrConfig.rate_hz must be a finite number > 0; got 0.0
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import MISSING, field
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from katazuke.errors import ConfigError

T = TypeVar("T")

__all__ = ["load_config", "config_to_dict", "field_help", "dataclass", "field", "read_yaml",
           "check_fields", "positive", "non_negative", "finite", "in_range", "CHECKS"]

#: The range rules a field's ``metadata["check"]`` may name -> the text errors show.
CHECKS = {"positive": "a finite number > 0", "non_negative": "a finite number >= 0",
          "finite": "a finite number", "in_range": "a number in [{lo:g}, {hi:g}]"}
_CHECKED = "__katazuke_checked__"


def _checked_field(check: str, default: Any, help: str, extra: Mapping[str, Any] | None = None,
                   **kwargs: Any) -> Any:
    meta = {"help": help, "check": check, **(extra or {}), **kwargs.pop("metadata", {})}
    if default is MISSING:
        return field(metadata=meta, **kwargs)
    return field(default=default, metadata=meta, **kwargs)


def positive(default: Any = MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field that must be a finite number > 0 (each item, for a tuple)."""
    return _checked_field("positive", default, help, **kwargs)


def non_negative(default: Any = MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field that must be a finite number >= 0 (each item, for a tuple)."""
    return _checked_field("non_negative", default, help, **kwargs)


def finite(default: Any = MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field that must be a finite number (each item, for a tuple)."""
    return _checked_field("finite", default, help, **kwargs)


def in_range(default: Any = MISSING, help: str = "", lo: float = -math.inf, hi: float = math.inf,
             **kwargs: Any) -> Any:
    """A dataclass field that must be a number in the closed interval ``[lo, hi]``."""
    if not lo <= hi:
        raise ValueError(f"in_range needs lo <= hi; got [{lo}, {hi}]")
    return _checked_field("in_range", default, help, {"range": (float(lo), float(hi))}, **kwargs)


def _passes(check: str, v: Any, meta: Mapping[str, Any]) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if math.isnan(v):
        return False
    if check == "in_range":
        lo, hi = meta["range"]
        return lo <= v <= hi
    if not math.isfinite(v):
        return False
    return {"positive": v > 0, "non_negative": v >= 0, "finite": True}[check]


def check_fields(cfg: Any) -> None:
    """Enforce every field's declared range rule (``metadata["check"]``) on a config.

    ``None`` passes (optional fields); a tuple or list must pass item by item.

    Raises:
        ConfigError: naming the class, the field, the rule and the value.
        ValueError: a field names an unknown rule (a programming error in the config).
    """
    for f in dataclasses.fields(cfg):
        check = f.metadata.get("check")
        if check is None:
            continue
        if check not in CHECKS:
            raise ValueError(f"{type(cfg).__name__}.{f.name}: unknown check {check!r}; "
                             f"use one of {sorted(CHECKS)}")
        v = getattr(cfg, f.name)
        if v is None:
            continue
        items = v if isinstance(v, (tuple, list)) else (v,)
        if not all(_passes(check, x, f.metadata) for x in items):
            lo, hi = f.metadata.get("range", (0.0, 0.0))
            rule = CHECKS[check].format(lo=lo, hi=hi)
            each = " (each item)" if isinstance(v, (tuple, list)) else ""
            raise ConfigError(f"{type(cfg).__name__}.{f.name} must be {rule}{each}; got {v!r}")


def dataclass(cls: type | None = None, /, **kwargs: Any) -> Any:
    """:func:`dataclasses.dataclass` that also runs :func:`check_fields` on construction.

    The range checks run before the class's own ``__post_init__`` (which keeps the checks
    that relate several fields). Use it exactly like ``dataclasses.dataclass``.
    """
    def wrap(c: type) -> type:
        own = c.__dict__.get("__post_init__")
        inherited = getattr(c, "__post_init__", None)
        if own is not None or not getattr(inherited, _CHECKED, False):
            post = own if own is not None else inherited

            def __post_init__(self: Any, *args: Any) -> None:
                check_fields(self)
                if post is not None:
                    post(self, *args)

            setattr(__post_init__, _CHECKED, True)
            __post_init__.__qualname__ = f"{c.__qualname__}.__post_init__"
            __post_init__.__doc__ = getattr(post, "__doc__", None)
            c.__post_init__ = __post_init__
        return dataclasses.dataclass(c, **kwargs)

    return wrap if cls is None else wrap(cls)


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
                errors.append(str(exc).removeprefix(f"{where}: "))
        raise ConfigError(f"{where}: '{name}' = {value!r} matches none of {tp} "
                          f"({'; '.join(errors)})")
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


def _overlay(base: Any, mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The init fields of the dataclass instance ``base`` with ``mapping`` on top (recursively
    for nested configs); unknown keys are kept so that :func:`load_config` reports them."""
    out: dict[str, Any] = {f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init}
    for k, v in mapping.items():
        cur = out.get(k)
        out[k] = _overlay(cur, v) if isinstance(v, Mapping) and dataclasses.is_dataclass(cur) else v
    return out


def load_config(cls: type[T], source: Mapping[str, Any] | str | os.PathLike | None = None,
                *, where: str | None = None, **overrides: Any) -> T:
    """Build a frozen config dataclass from a mapping or a YAML file.

    Args:
        cls: the config dataclass type.
        source: a mapping, a YAML path, or None for defaults.
        where: text naming the source in error messages.
        **overrides: values that win over ``source``.

    Raises:
        ConfigError: unknown key, wrong type, a value outside its field's range (see
            :func:`check_fields`), or missing file.
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
    defaults = {f.name: f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
                for f in dataclasses.fields(cls)
                if f.init and (f.default is not MISSING or f.default_factory is not MISSING)}
    for k, v in data.items():
        # A partial mapping for a nested config overrides the *field's* default instance
        # (e.g. the bridge's own EnvConfig), not the nested class's defaults.
        if isinstance(v, Mapping) and dataclasses.is_dataclass(defaults.get(k)):
            data[k] = _overlay(defaults[k], v)
    kwargs = {k: _coerce(k, v, hints[k], where) for k, v in data.items()}
    try:
        cfg = cls(**kwargs)
        if not getattr(getattr(cls, "__post_init__", None), _CHECKED, False):
            check_fields(cfg)      # a plain dataclass: its declared ranges still hold
        return cfg
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
