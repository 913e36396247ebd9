"""katazuke_ros: every ROS 2 node executable of Katazuke (ament_python)."""
import os
from pathlib import Path

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
    "navigator": "navigator_node",      # issue 13: cost map, global planner, Navigate action
    "task_manager": "task_manager_node",  # issue 13: Tidy action, instruction topic
    "manipulator": "manipulator_node",  # issue 13: Manipulate action (grasping, IK, arm paths)
    "grounding": "grounding_node",      # issue 14: transcripts -> GroundingResult, questions
    "audio_file_player": "audio_file_player_node",  # issue 14: WAV/FLAC -> AudioData on sim time
    "audio_capture": "audio_capture_node",          # issue 14: microphone -> AudioData
    "asr": "asr_node",                              # issue 14: AudioData -> VAD -> Transcript
    "tts": "tts_node",                              # issue 14: say -> espeak-ng -> AudioData
}

# Launch files and params live at the repository root (launch/); install them into
# share/katazuke_ros so `$(find-pkg-share katazuke_ros)/launch/...` works here and on a
# full ROS 2 install alike.
_HERE = Path(__file__).resolve().parent
_LAUNCH = _HERE.parent.parent.parent / "launch"


def _files(sub: str, pattern: str) -> list[str]:
    # data_files must be relative to this setup.py
    return sorted(os.path.relpath(p, _HERE) for p in (_LAUNCH / sub).glob(pattern) if p.is_file())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", _files(".", "*.xml")),
        (f"share/{PACKAGE}/launch/params", _files("params", "*.yaml")),
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
