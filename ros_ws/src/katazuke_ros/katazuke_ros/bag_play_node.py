"""bag_player: replay a bag with its recorded timing (launchable ``katazuke bag play``).

Parameters: the fields of :class:`katazuke.bag.config.PlayConfig` (``bag``, ``rate``,
``loop``, ``topics``, ``start_offset_s``, ``clock_hz``, ``delay_s``,
``wait_for_subscribers_s``, ``spin_ms``, ``realtime``) and, under ``deterministic.``, those
of :class:`katazuke.bag.ros.DeterministicConfig` (``deterministic.enabled`` replays
lock-step with the consumers; ``frame_topic``, ``ack_topics``, ``ack_timeout_s``,
``discovery_timeout_s``, ``settle_s``). Playback runs on its own thread (the executor
keeps serving parameters and receives the acknowledgements); the node shuts down when the
bag ends (unless ``loop``), with exit code 1 when a frame was not acknowledged in time.
"""
from __future__ import annotations

import threading

from rclpy.node import Node

from katazuke.bag.config import PlayConfig
from katazuke.bag.reader import open_bag
from katazuke.bag.ros import DeterministicConfig, Player
from katazuke.errors import InputError
from katazuke_ros.node_utils import declare_config, run_node


class BagPlayerNode(Node):
    def __init__(self) -> None:
        super().__init__("bag_player")
        self.exit_code = 0  # read by run_node
        cfg = declare_config(self, PlayConfig)
        det = declare_config(self, DeterministicConfig, prefix="deterministic.")
        if not cfg.bag:
            raise InputError("bag_player: set the 'bag' parameter to a bag directory or file")
        self.bag = open_bag(cfg.bag)
        if self.bag.summary.recovery:
            self.get_logger().warning(self.bag.summary.recovery)
        try:
            self.player = Player(self, self.bag, cfg, deterministic=det)
        except BaseException:
            self.bag.close()
            raise
        self._thread = threading.Thread(target=self._run, name="bag-play", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            result = self.player.play()
            t = result.timing.summary_ms()
            self.get_logger().info(
                f"played {sum(result.published.values())} messages; "
                + (f"deterministic: {result.frames} frames, acknowledged {result.acked}, "
                   f"late {result.ack_timeouts}, {result.wall_s:.1f} s wall"
                   if self.player.det.enabled else
                   f"publish-time error median {t['median_ms']:.3f} ms, p99 {t['p99_ms']:.3f} ms"))
            if result.ack_timeouts:
                self.exit_code = 1
        except Exception as exc:  # logged; the node stops with a non-zero exit code
            if not self.context.ok():
                return   # shut down (Ctrl-C, the launcher stopping) while publishing
            self.get_logger().error(f"playback failed: {exc}")
            self.exit_code = 1
        finally:
            self.context.try_shutdown()

    def close(self) -> None:
        """Called by run_node on shutdown: stop playback and close the bag."""
        self.player.stop()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)
        self.bag.close()


def main(args: list[str] | None = None) -> int:
    return run_node(BagPlayerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
