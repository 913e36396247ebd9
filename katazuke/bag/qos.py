"""QoS choices for recording and playback, as plain data (no rclpy here).

A :class:`QosSpec` is the part of a QoS profile that decides whether two endpoints
match: reliability, durability and the history depth. ``katazuke.bag.ros`` turns it
into an ``rclpy`` ``QoSProfile``; bags store full profiles as rosbags ``Qos`` tuples.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["QosSpec", "subscription_for", "playback_for", "to_bag_qos", "RECORD_DEPTH"]

RECORD_DEPTH = 1000
PLAY_DEPTH = 100
LATCHED_TOPICS = ("/tf_static",)


@dataclass(frozen=True)
class QosSpec:
    """Reliability/durability/depth of one endpoint.

    Attributes:
        reliable: RELIABLE when True, else BEST_EFFORT.
        transient_local: TRANSIENT_LOCAL durability when True, else VOLATILE.
        depth: KEEP_LAST depth (messages).
    """

    reliable: bool = True
    transient_local: bool = False
    depth: int = 10


def subscription_for(offered: Sequence[QosSpec], depth: int = RECORD_DEPTH) -> QosSpec:
    """The recorder's subscription QoS compatible with every offered publisher QoS.

    A reliable subscription never matches a best-effort publisher, and a transient-local
    subscription never matches a volatile one, so: reliable only when every publisher is
    reliable, transient-local only when every publisher is (to receive latched data).

    Args:
        offered: the publishers' QoS (empty: nobody publishes yet; reliable, volatile).
        depth: the subscription's queue depth.
    """
    if not offered:
        return QosSpec(True, False, depth)
    return QosSpec(reliable=all(o.reliable for o in offered),
                   transient_local=all(o.transient_local for o in offered), depth=depth)


def _from_bag_qos(q: object) -> QosSpec:
    # rosbags.interfaces.Qos: reliability/durability enums (1 = RELIABLE / TRANSIENT_LOCAL).
    rel = getattr(q, "reliability").value
    dur = getattr(q, "durability").value
    depth = int(getattr(q, "depth") or 0)
    return QosSpec(reliable=(rel != 2), transient_local=(dur == 1), depth=depth)


def playback_for(topic: str, stored: Sequence[object], latched: bool | None = None) -> QosSpec:
    """The publisher QoS to replay ``topic`` with.

    Args:
        topic: topic name.
        stored: the recorded ``offered_qos_profiles`` (rosbags ``Qos`` tuples), may be empty.
        latched: ROS 1 ``latching`` flag when the bag is a ROS 1 bag, else None.

    Returns:
        Reliable unless every recorded publisher was best effort; transient-local when
        every recorded publisher was; without stored profiles reliable volatile, except
        latched topics (``/tf_static``, ROS 1 latching) which are transient-local depth 1.
    """
    specs = [_from_bag_qos(q) for q in stored]
    if specs:
        depth = max([s.depth for s in specs] + [PLAY_DEPTH])
        return QosSpec(reliable=any(s.reliable for s in specs),
                       transient_local=all(s.transient_local for s in specs), depth=depth)
    if latched or (latched is None and topic in LATCHED_TOPICS):
        return QosSpec(True, True, 1)
    return QosSpec(True, False, PLAY_DEPTH)


def to_bag_qos(specs: Sequence[QosSpec]) -> list[object]:
    """rosbags ``Qos`` tuples (for ``offered_qos_profiles``) from offered specs."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)

    zero = QosTime(0, 0)
    return [Qos(QosHistory.KEEP_LAST, int(s.depth),
                QosReliability.RELIABLE if s.reliable else QosReliability.BEST_EFFORT,
                QosDurability.TRANSIENT_LOCAL if s.transient_local else QosDurability.VOLATILE,
                zero, zero, QosLiveliness.AUTOMATIC, zero, False) for s in specs]
