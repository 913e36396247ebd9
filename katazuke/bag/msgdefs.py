"""Message definitions from the ament index, for self-describing bags.

rosbag2 stores, per message type, the full definition text (the type followed by every
nested type, separated by ``====...`` / ``MSG: pkg/msg/Type`` lines) and the type's
RIHS01 hash. Both are derived here from the ``.msg`` (or ``.idl``) files that every ROS 2
interface package installs under ``<prefix>/share/<pkg>/msg/``, searched over
``AMENT_PREFIX_PATH`` (so our own ``katazuke_interfaces`` types are found exactly like
``sensor_msgs``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from katazuke.errors import InputError

__all__ = ["MessageDefinitions", "ament_prefixes", "find_definition_file"]


def ament_prefixes(env: dict[str, str] | None = None) -> list[Path]:
    """The install prefixes listed in ``AMENT_PREFIX_PATH`` (in search order)."""
    value = (os.environ if env is None else env).get("AMENT_PREFIX_PATH", "")
    return [Path(p) for p in value.split(os.pathsep) if p]


def _split_type(msgtype: str) -> tuple[str, str, str]:
    parts = msgtype.split("/")
    if len(parts) == 2:  # ROS 1 style 'pkg/Type'
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise InputError(f"message type {msgtype!r} is not of the form 'package/msg/Type'")
    return parts[0], parts[1], parts[2]


def find_definition_file(msgtype: str, prefixes: Iterable[Path]) -> Path | None:
    """The first ``share/<pkg>/<msg|srv>/<Type>.msg`` (else ``.idl``) over ``prefixes``.

    Args:
        msgtype: e.g. ``"sensor_msgs/msg/Image"``.
        prefixes: install prefixes to search, in order.

    Returns:
        The path, or None when no prefix has it.
    """
    pkg, kind, name = _split_type(msgtype)
    for ext in (".msg", ".idl"):
        for prefix in prefixes:
            path = prefix / "share" / pkg / kind / f"{name}{ext}"
            if path.is_file():
                return path
    return None


def _nested_names(node: Any) -> set[str]:
    """Type names referenced anywhere in a rosbags field-definition tree."""
    found: set[str] = set()
    if isinstance(node, str):
        if node.count("/") == 2:
            found.add(node)
    elif isinstance(node, (tuple, list)):
        for item in node:
            found |= _nested_names(item)
    return found


class MessageDefinitions:
    """A rosbags typestore filled on demand from ``.msg``/``.idl`` files.

    Args:
        prefixes: install prefixes to search (default: ``AMENT_PREFIX_PATH``).
        fallback: also use rosbags' built-in ROS 2 Jazzy types for types that no prefix
            installs (e.g. when ``AMENT_PREFIX_PATH`` is unset).
    """

    def __init__(self, prefixes: Iterable[Path] | None = None, fallback: bool = True) -> None:
        from rosbags.typesys import Stores, get_typestore

        self.prefixes = list(ament_prefixes() if prefixes is None else prefixes)
        self.typestore = get_typestore(Stores.EMPTY)
        self._fallback = get_typestore(Stores.ROS2_JAZZY) if fallback else None
        self._cache: dict[str, tuple[str, str]] = {}

    def _load(self, msgtype: str) -> None:
        from rosbags.typesys import get_types_from_idl, get_types_from_msg

        pending = [msgtype]
        while pending:
            name = pending.pop()
            if name in self.typestore.fielddefs:
                continue
            path = find_definition_file(name, self.prefixes)
            if path is not None:
                text = path.read_text(encoding="utf-8")
                try:
                    types = (get_types_from_msg(text, name) if path.suffix == ".msg"
                             else get_types_from_idl(text))
                except Exception as exc:  # rosbags raises its own parser errors
                    raise InputError(f"{path}: cannot parse the definition of {name}: {exc}") from None
                types = {k: v for k, v in types.items() if k == name}
            elif self._fallback is not None and name in self._fallback.fielddefs:
                types = {name: self._fallback.fielddefs[name]}
            else:
                where = ", ".join(str(p) for p in self.prefixes) or "(AMENT_PREFIX_PATH is empty)"
                raise InputError(
                    f"no definition of message type {name} under share/<pkg>/msg of {where}; "
                    "build or install its interface package and source its environment")
            if name not in types:
                raise InputError(f"{path}: does not define {name}")
            self.typestore.register(types)
            pending.extend(_nested_names(types[name][1]) - set(self.typestore.fielddefs))

    def definition(self, msgtype: str) -> tuple[str, str]:
        """The rosbag2 definition text (``ros2msg``) and RIHS01 hash of ``msgtype``.

        Raises:
            InputError: the type (or a nested type) has no definition file.
        """
        if msgtype not in self._cache:
            self._load(msgtype)
            text, _ = self.typestore.generate_msgdef(msgtype, ros_version=2)
            self._cache[msgtype] = (text, self.typestore.hash_rihs01(msgtype))
        return self._cache[msgtype]

    def has(self, msgtype: str) -> bool:
        """True when ``msgtype`` can be resolved."""
        try:
            self.definition(msgtype)
        except InputError:
            return False
        return True
