"""Named QoS profiles for the nodes: a re-export of :mod:`katazuke.ros.qos` (the one home)."""
from katazuke.ros.qos import *  # noqa: F401,F403
from katazuke.ros.qos import __all__  # noqa: F401
