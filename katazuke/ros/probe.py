"""The one rclpy probe of benches and tests: a node, its executor, and collected messages.

A :class:`Probe` owns its own rclpy ``Context`` (so it never clashes with another rclpy user
in the same process), one node and a ``SingleThreadedExecutor``. :meth:`Probe.collect`
subscribes to a topic and returns the list the messages land in, as
``(receive_time_monotonic_s, msg)`` pairs; :meth:`Probe.wait_for` spins until a condition holds
(with a timeout, never a fixed sleep); :meth:`Probe.spin_for` is a measurement window::

    with Probe("bench_probe") as probe:
        dets = probe.collect("/detections", DetectionArray, "events")
        if not probe.wait_for(lambda: len(dets) >= 5, timeout=90):
            raise KatazukeError("no detections within 90 s")
        n0 = len(dets)
        probe.spin_for(20.0)
        rate_hz = (len(dets) - n0) / 20.0

For a long run that must keep reading while the caller does other work (a tour that also
stops processes), :meth:`Probe.spin_in_background` spins the executor in a thread until
:meth:`Probe.close`.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

__all__ = ["Probe", "qos_profile"]

def qos_profile(qos: Any) -> Any:
    """A ``rclpy.qos.QoSProfile`` for ``qos``.

    Args:
        qos: a ``QoSProfile`` (returned as is), a profile name of :mod:`katazuke.ros.qos`
            (``"sensor"``, ``"state"``, ``"latched"``, ``"command"``, ``"events"``,
            ``"record"``, ``"clock"``) or an int (reliable, volatile, keep last that many).

    Raises:
        ConfigError: an unknown profile name.
    """
    from rclpy.qos import QoSProfile

    from katazuke.errors import ConfigError
    from katazuke.ros import qos as named

    if isinstance(qos, QoSProfile):
        return qos
    if isinstance(qos, int) and not isinstance(qos, bool):
        return QoSProfile(depth=qos)
    if isinstance(qos, str):
        try:
            return named.by_name(qos.lower())
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    raise ConfigError(f"QoS {qos!r}: pass a QoSProfile, a depth, or a profile name of katazuke.ros.qos")


class Probe:
    """One rclpy node + ``SingleThreadedExecutor`` on a private context; a context manager.

    Args:
        name: node name.
        namespace: node namespace ('' = root); relative topic names resolve in it.
        parameter_overrides: node parameters, e.g. ``{"use_sim_time": True}``.
    """

    def __init__(self, name: str = "katazuke_probe", namespace: str = "",
                 parameter_overrides: dict[str, Any] | None = None) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter

        from rclpy.signals import SignalHandlerOptions

        self.context = Context()
        # no rclpy signal handlers: they would turn Ctrl-C / SIGTERM into a silent context
        # shutdown, and a bench waiting on this probe then kept its launched stack running
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        try:
            overrides = [Parameter(k, value=v) for k, v in (parameter_overrides or {}).items()]
            self.node = rclpy.create_node(name, namespace=namespace or None, context=self.context,
                                          parameter_overrides=overrides)
            self.executor = SingleThreadedExecutor(context=self.context)
            self.executor.add_node(self.node)
        except Exception:
            self.context.try_shutdown()
            raise
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------------ subscriptions
    def collect(self, topic: str, msg_type: Any, qos: Any = "events",
                callback: Callable[[Any], None] | None = None, keep: bool = True) -> list:
        """Subscribe to ``topic``; return the list received messages are appended to.

        Args:
            topic: topic name (relative names resolve in the probe's namespace).
            msg_type: message class, e.g. ``sensor_msgs.msg.Image``.
            qos: see :func:`qos_profile`.
            callback: also called with each message (in the executor's thread).
            keep: store ``(time.monotonic() at receipt, msg)`` in the returned list; False
                stores ``(time, None)`` (counting without keeping large messages).

        Returns:
            the list, filled while the probe spins.
        """
        received: list[tuple[float, Any]] = []

        def on_msg(msg: Any) -> None:
            received.append((time.monotonic(), msg if keep else None))
            if callback is not None:
                callback(msg)

        self.node.create_subscription(msg_type, topic, on_msg, qos_profile(qos))
        return received

    def publisher(self, topic: str, msg_type: Any, qos: Any = "command") -> Any:
        """A publisher on the probe's node (see :func:`qos_profile`)."""
        return self.node.create_publisher(msg_type, topic, qos_profile(qos))

    # ------------------------------------------------------------------ spinning
    def spin_once(self, timeout_s: float = 0.02) -> None:
        """Handle at most one ready callback, waiting up to ``timeout_s`` seconds."""
        self.executor.spin_once(timeout_sec=timeout_s)

    def _spinner(self) -> Callable[[], None] | None:
        if self._thread is not None:  # the background thread spins; just give it time
            return None
        return self.spin_once

    def wait_for(self, cond: Callable[[], bool], timeout: float) -> bool:
        """Spin until ``cond()`` holds (True) or ``timeout`` seconds pass (False)."""
        from katazuke.testing import wait_for

        return wait_for(cond, timeout, spin=self._spinner())

    def spin_for(self, seconds: float) -> None:
        """A measurement window: keep receiving for ``seconds`` wall seconds."""
        spin = self._spinner()
        if spin is None:
            time.sleep(max(0.0, seconds))
            return
        from katazuke.testing import spin_for

        spin_for(seconds, spin)

    def spin_in_background(self) -> None:
        """Spin the executor in a daemon thread until :meth:`close` (idempotent).

        Peers with reliable subscriptions would otherwise linger while this process stops
        reading; :meth:`wait_for` and :meth:`spin_for` then only poll.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self.executor.spin,
                                            name=f"probe_{self.node.get_name()}", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ teardown
    def close(self) -> None:
        """Stop spinning, destroy the node, shut the context down (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.executor.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        self.node.destroy_node()
        self.context.try_shutdown()

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
