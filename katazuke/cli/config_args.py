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
        kind = type(default) if isinstance(default, (int, float, str)) else str
        parser.add_argument(_option(f.name), dest=f.name, type=kind, default=default,
                            help=f"{help_} (default {default!r})" if help_ else
                            f"default {default!r}")


def config_from_args(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """The ``cls`` config from the options :func:`add_config_arguments` added."""
    from katazuke.config import load_config

    names = [f.name for f in dataclasses.fields(cls) if f.init and hasattr(args, f.name)]
    values = {n: getattr(args, n) for n in names}
    values.update(overrides)
    return load_config(cls, values, where="command line")
