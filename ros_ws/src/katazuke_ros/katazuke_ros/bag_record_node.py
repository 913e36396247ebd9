"""bag_recorder: record topics into a rosbag2 directory (launchable ``katazuke bag record``).

Parameters: the fields of :class:`katazuke.bag.config.RecordConfig` (``output``,
``storage``, ``topics``, ``all``, ``exclude``, ``flush_interval_s``,
``discovery_period_s``). Subscriptions are raw (serialized CDR) with a QoS matched to
each topic's publishers; a writer thread stores them. Shutdown (SIGINT/SIGTERM) closes
the bag; a SIGKILL leaves a bag readable up to the last flush.
"""
from __future__ import annotations

import datetime

from rclpy.node import Node

from katazuke.bag.config import RecordConfig, split_topics
from katazuke.bag.ros import Recorder
from katazuke.bag.writer import BagWriter
from katazuke.errors import InputError
from katazuke_ros.node_utils import declare_config, run_node


class BagRecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("bag_recorder")
        cfg = declare_config(self, RecordConfig)
        topics = split_topics(cfg.topics)
        if not cfg.all and not topics:
            raise InputError("bag_recorder: set the 'topics' parameter or all:=true")
        out = cfg.output or datetime.datetime.now(datetime.timezone.utc).strftime(
            "rosbag2_%Y_%m_%d-%H_%M_%S")
        self.writer = BagWriter(out, storage=cfg.storage, flush_interval_s=cfg.flush_interval_s)
        self.recorder = Recorder(self, self.writer, topics=topics, record_all=cfg.all,
                                 exclude=split_topics(cfg.exclude),
                                 discovery_period_s=cfg.discovery_period_s)
        self.get_logger().info(f"recording to {out} ({cfg.storage})")

    def close(self) -> None:
        """Called by run_node on shutdown: stop subscriptions, finish the bag."""
        self.recorder.close()
        stats = self.writer.close()
        lost = self.recorder.lost
        self.get_logger().info(
            f"wrote {sum(stats.written.values())} messages to {self.writer.path}"
            + (f"; lost in transport before recording (gaps in the stamps): "
               + ", ".join(f"{t} {n}" for t, n in sorted(lost.items())) if lost else ""))


def main(args: list[str] | None = None) -> int:
    return run_node(BagRecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
