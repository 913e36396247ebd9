"""katazuke_ros: every ROS 2 node executable of Katazuke (ament_python)."""
from setuptools import setup

PACKAGE = "katazuke_ros"

# executable name -> module (each module has main()).
NODES = {
    "talker": "demo_talker",            # custom-message demo / smoke test
    "listener": "demo_listener",
    "sim_bridge": "sim_bridge",
    "detector": "detector_node",
    "object_map": "object_map_node",
    "controller": "controller_node",
    "rotavg_server": "rotavg_node",
    "tour": "tour_node",
    "bag_recorder": "bag_record_node",
    "bag_player": "bag_play_node",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="Katazuke developers",
    maintainer_email="dev@katazuke.invalid",
    description="ROS 2 nodes of Katazuke",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{exe} = {PACKAGE}.{mod}:main" for exe, mod in NODES.items()],
    },
)
