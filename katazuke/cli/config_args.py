"""Command-line options generated from a frozen config dataclass (not a command).

A bench CLI declares nothing twice: each field of the capability's config becomes one option
(``node_seconds`` -> ``--node-seconds``, help from the field's ``help`` metadata; a bool field
that defaults to False becomes a flag, one that defaults to True a ``--no-...`` flag), and
:func:`config_from_args` builds the config back (``katazuke.config.load_config`` checks it).
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, TypeVar

__all__ = ["add_config_arguments", "config_from_args"]

T = TypeVar("T")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, *,
                         skip: tuple[str, ...] = ()) -> None:
    """Add one option per init field of the dataclass ``cls`` (except ``skip``)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        help_ = str(f.metadata.get("help", "")).replace("%", "%%")  # argparse formats help with %
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if hints[f.name] is bool:
            if default:
                parser.add_argument(_option("no_" + f.name), dest=f.name, action="store_false",
                                    help=f"do not: {help_}" if help_ else None)
            else:
                parser.add_argument(_option(f.name), dest=f.name, action="store_true",
                                    help=help_ or None)
            continue
        item = _tuple_item(hints[f.name])
        if item is not None:  # tuple[X, ...]: a comma-separated list
            shown = ",".join(str(v) for v in default)
            parser.add_argument(_option(f.name), dest=f.name, type=_comma_list(item),
                                default=tuple(default),
                                help=f"{help_}; comma-separated (default {shown!r})")
            continue
        kind = type(default) if isinstance(default, (int, float, str)) else str
        parser.add_argument(_option(f.name), dest=f.name, type=kind, default=default,
                            help=f"{help_} (default {default!r})" if help_ else
                            f"default {default!r}")


def _tuple_item(hint: Any) -> type | None:
    """``X`` of a ``tuple[X, ...]`` hint with X in (int, float, str), else None."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in (int, float, str):
            return args[0]
    return None


def _comma_list(item: type) -> Any:
    def parse(text: str) -> tuple:
        try:
            return tuple(item(v.strip()) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {item.__name__} values, got {text!r}") from None
    parse.__name__ = f"{item.__name__} list"
    return parse


def config_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """The ``cls`` config from the options :func:`add_config_arguments` added."""
    from katazuke.config import load_config

    names = [f.name for f in dataclasses.fields(cls) if f.init and hasattr(args, f.name)]
    values = {n: getattr(args, n) for n in names}
    values.update(overrides)
    return load_config(cls, values, where="command line")
