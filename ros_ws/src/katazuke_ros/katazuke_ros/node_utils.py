"""Helpers every Katazuke node uses: parameters from config dataclasses, stamps, main().

- :func:`declare_config` declares one ROS parameter per field of a frozen config
  dataclass (with the field's ``help`` as description) and returns the config built
  from the parameter values, so a params YAML and the library config can never drift.
- :func:`run_node` is the body of every node's ``main()``: init, spin with a
  multi-threaded executor (heavy callbacks use their own callback group), clean
  shutdown on Ctrl-C / SIGTERM, ``finally`` destroys the node.
- :func:`replay_qos` is the subscription profile of an input in deterministic replay.
"""
from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import typing
from typing import Any, Callable, TypeVar

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from katazuke.config import load_config
from katazuke.errors import KatazukeError
from katazuke.ros.conversions import sec_to_stamp, stamp_to_sec  # re-exported for the nodes

T = TypeVar("T")

__all__ = ["declare_config", "run_node", "stamp_to_sec", "sec_to_stamp", "LogOnce", "replay_qos"]


def replay_qos(live: QoSProfile, deterministic: bool) -> QoSProfile:
    """``live`` unchanged, or (``deterministic``) reliable KEEP_ALL with its durability.

    In a deterministic replay (``katazuke bag play --deterministic`` publishes reliable
    KEEP_ALL, lock-step with the consumers) nothing may be lost in transport or in a
    reader's history; live, best-effort sensor streams keep their own profile (a reliable
    reader would not match a best-effort camera).
    """
    if not deterministic:
        return live
    return QoSProfile(history=HistoryPolicy.KEEP_ALL, depth=max(1, int(live.depth or 1)),
                      reliability=ReliabilityPolicy.RELIABLE, durability=live.durability)


def _ros_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def _array_type(hint: Any) -> Parameter.Type:
    """ROS array parameter type for a ``tuple[X, ...]`` / ``list[X]`` type hint."""
    args = [a for a in typing.get_args(hint) if a is not Ellipsis]
    elem = args[0] if args else str
    return {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
            float: Parameter.Type.DOUBLE_ARRAY}.get(elem, Parameter.Type.STRING_ARRAY)


def declare_config(node: Node, cls: type[T], prefix: str = "", defaults: Any = None) -> T:
    """Declare a parameter per config field and return the config from their values.

    Args:
        node: the node that owns the parameters.
        cls: a frozen config dataclass (see :mod:`katazuke.config`).
        prefix: parameter-name prefix, e.g. ``"model."``.
        defaults: an instance of ``cls`` whose values are the parameter defaults (None: the
            class defaults). Nested configs use their parent field's default instance, so
            ``sim: EnvConfig = field(default_factory=lambda: EnvConfig(profile="none"))``
            declares ``sim.profile`` with default ``"none"``.

    Raises:
        KatazukeError: a parameter value does not fit the config (message names it).
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if defaults is not None:
            default = getattr(defaults, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            raise KatazukeError(f"{cls.__name__}.{f.name} has no default; nodes need defaults")
        if dataclasses.is_dataclass(default):
            values[f.name] = declare_config(node, type(default), prefix=f"{prefix}{f.name}.",
                                            defaults=default)
            continue
        # Float fields accept integers too (`rate_hz: 25` in YAML or `-p rate_hz:=25`);
        # load_config checks the type afterwards, so typing stays strict where it matters.
        desc = ParameterDescriptor(description=str(f.metadata.get("help", "")),
                                   dynamic_typing=hints.get(f.name) is float)
        name = f"{prefix}{f.name}"
        if default is None:
            # Optional fields: declared as string, '' meaning None.
            p = node.declare_parameter(name, "", desc)
            v = p.value
            values[f.name] = None if v in ("", None) else v
            continue
        if isinstance(default, (tuple, list)) and not default:
            # An empty list has no element type for rclpy to infer (it would become a
            # BYTE_ARRAY); take it from the type hint instead.
            p = node.declare_parameter(name, _array_type(hints.get(f.name)), desc)
            v = p.value if p.value is not None else default
            values[f.name] = list(v) if not isinstance(default, tuple) else tuple(v)
            continue
        p = node.declare_parameter(name, _ros_default(default), desc)
        v = p.value
        if hints.get(f.name) is float and isinstance(v, int):
            v = float(v)
        values[f.name] = v
    return load_config(cls, values, where=f"node '{node.get_name()}' parameters")


class LogOnce:
    """Log each distinct problem once (e.g. a wrong image encoding every frame)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._seen: set[str] = set()

    def error(self, key: str, text: str) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self._node.get_logger().error(text)

    def warn(self, key: str, text: str) -> None:
        if key not in self._seen:
            self._seen.add(key)
            self._node.get_logger().warning(text)

    def clear(self, key: str) -> None:
        self._seen.discard(key)


def run_node(factory: Callable[[], Node], args: list[str] | None = None, threads: int = 1) -> int:
    """Create a node with ``factory`` and spin it until shutdown.

    ``threads`` 1 spins a SingleThreadedExecutor: nodes that do their long work on their own
    thread (sim loop, inference, playback) need no more, and rclpy's MultiThreadedExecutor
    costs a busy core's worth of bookkeeping per process (measured: about half of the
    detector node's CPU). Nodes with callback groups that must run in parallel pass 2+.

    SIGINT and SIGTERM shut down cleanly (the launcher sends SIGINT, then SIGTERM).
    A :class:`KatazukeError` from the factory (bad parameter, missing weights file) is
    logged as one line and the process exits with code 2. A node that shuts itself
    down after a fatal error sets ``self.exit_code`` (non-zero) so the launcher sees the
    failure (``on_exit="shutdown"`` / respawn act on it).
    """
    # rclpy.init installs its own SIGINT/SIGTERM handlers (SignalHandlerOptions.ALL):
    # they wake the executor and make spin() raise ExternalShutdownException, even
    # when the node is idle. A Python-level handler would only run once the executor
    # wakes up, so we deliberately do not install one.
    rclpy.init(args=sys.argv if args is None else args)
    node = None
    exit_code = 0
    try:
        try:
            node = factory()
        except KatazukeError as exc:
            print(f"[ERROR] {exc}", file=sys.stderr, flush=True)
            return 2
        executor = (SingleThreadedExecutor() if threads <= 1
                    else MultiThreadedExecutor(num_threads=threads))
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception as exc:
        if rclpy.ok():
            raise
        # SIGINT shut the context down while the executor was taking a message: rclpy then
        # raises from the take ("Unable to convert call argument", InvalidHandle). That is
        # the shutdown asked for, not a crash: one line, and the node's own exit code.
        print(f"[INFO] shut down while taking a message ({type(exc).__name__})",
              file=sys.stderr, flush=True)
    finally:
        # A second Ctrl-C during clean-up would raise KeyboardInterrupt inside
        # destroy_node; the launcher escalates to SIGTERM/SIGKILL if clean-up hangs.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            exit_code = int(getattr(node, "exit_code", 0) or 0)
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return exit_code
