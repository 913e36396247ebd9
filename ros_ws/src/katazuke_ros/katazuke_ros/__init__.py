"""ROS 2 adapters of Katazuke: one module per node, plus shared QoS and node helpers.

Nodes convert messages to numpy, call a ROS-free ``katazuke.*`` library and publish.
"""
__all__ = ["qos", "node_utils"]
