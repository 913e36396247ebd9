"""Named QoS profiles: the one place where Katazuke chooses reliability and durability.

- ``SENSOR``: camera images, depth, scans: best effort, keep last 1 (a late frame is
  worthless; never queue).
- ``STATE``: high-rate state (joint states, odometry): best effort would lose bag data,
  so reliable, keep last 10.
- ``LATCHED``: state a late joiner must get (object map, /tf_static, task status):
  reliable, transient local, keep last 1.
- ``COMMAND``: commands (cmd_vel, trajectories, gripper): reliable, keep last 1 (only
  the newest command matters).
- ``EVENTS``: discrete events that must all arrive (transcripts, grounding results,
  detections consumed by the map): reliable, keep last 10.
- ``RECORD``: what the bag recorder subscribes with: reliable, deep queue.
- ``CLOCK``: ``/clock`` from a simulator: best effort, keep last 1 (a late tick is
  superseded by the next one).

Nodes import this as ``katazuke_ros.qos`` (a re-export); core tools import
``katazuke.ros.qos``. No side effects at import beyond building the profile objects.
"""
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)

from katazuke.bag.qos import RECORD_DEPTH

__all__ = ["SENSOR", "STATE", "LATCHED", "COMMAND", "EVENTS", "RECORD", "CLOCK", "by_name"]

SENSOR = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                    reliability=ReliabilityPolicy.BEST_EFFORT,
                    durability=DurabilityPolicy.VOLATILE)
STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                   reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.VOLATILE)
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                     reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
EVENTS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
RECORD = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=RECORD_DEPTH,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
CLOCK = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                   reliability=ReliabilityPolicy.BEST_EFFORT,
                   durability=DurabilityPolicy.VOLATILE)

_BY_NAME = {"sensor": SENSOR, "state": STATE, "latched": LATCHED, "command": COMMAND,
            "events": EVENTS, "record": RECORD, "clock": CLOCK}


def by_name(name: str) -> QoSProfile:
    """Profile by its lower-case name; ValueError naming the valid ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown QoS profile {name!r}; use one of {sorted(_BY_NAME)}") from None
