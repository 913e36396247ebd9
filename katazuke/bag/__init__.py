"""Bag tooling on ``rosbags``: write, read, recover and inspect rosbag2 (MCAP/sqlite3)
and ROS 1 bags, plus the playback-timing math.

The names exported here (and ``config``, ``integrity``, ``msgdefs``, ``qos``, ``reader``,
``recover``, ``schedule``, ``writer``) import no ``rclpy``. Two modules do, and are imported by name only:
:mod:`katazuke.bag.ros` (the rclpy recorder and player) and :mod:`katazuke.bag.loadgen`
(the rclpy publisher of synthetic load for the bag benchmark). Neither imports
``katazuke_ros``."""
from katazuke.bag.integrity import ChunkRef, VerifyReport, verify_mcap
from katazuke.bag.msgdefs import MessageDefinitions, ament_prefixes, find_definition_file
from katazuke.bag.qos import QosSpec, playback_for, subscription_for
from katazuke.bag.reader import Bag, BagSummary, TopicSummary, format_summary, open_bag
from katazuke.bag.recover import McapScan, scan_mcap
from katazuke.bag.schedule import PlaybackClock, TimingStats, wait_until
from katazuke.bag.writer import STORAGES, BagWriter, WriterStats

__all__ = ["ChunkRef", "VerifyReport", "verify_mcap", "MessageDefinitions", "ament_prefixes",
           "find_definition_file", "QosSpec", "playback_for", "subscription_for", "Bag", "BagSummary", "TopicSummary", "format_summary", "open_bag",
           "McapScan", "scan_mcap", "PlaybackClock", "TimingStats", "wait_until", "STORAGES",
           "BagWriter", "WriterStats"]
