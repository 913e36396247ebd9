"""The built interface packages: vision_msgs keeps the upstream (Jazzy 4.1.1) layout, our types
keep the layouts the docs and the open issues rely on, and the Tidy action is generated."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros


def _fields(cls) -> dict[str, str]:
    return dict(cls.get_fields_and_field_types())


def test_vision_msgs_has_the_upstream_layout():
    from vision_msgs import msg as v

    assert _fields(v.Point2D) == {"x": "double", "y": "double"}
    assert _fields(v.Pose2D) == {"position": "vision_msgs/Point2D", "theta": "double"}
    assert _fields(v.BoundingBox2D) == {"center": "vision_msgs/Pose2D", "size_x": "double",
                                        "size_y": "double"}
    assert _fields(v.BoundingBox3D) == {"center": "geometry_msgs/Pose", "size": "geometry_msgs/Vector3"}
    assert _fields(v.ObjectHypothesis) == {"class_id": "string", "score": "double"}
    assert _fields(v.ObjectHypothesisWithPose) == {"hypothesis": "vision_msgs/ObjectHypothesis",
                                                   "pose": "geometry_msgs/PoseWithCovariance"}
    for name, box in (("Detection2D", "BoundingBox2D"), ("Detection3D", "BoundingBox3D")):
        assert _fields(getattr(v, name)) == {
            "header": "std_msgs/Header", "results": "sequence<vision_msgs/ObjectHypothesisWithPose>",
            "bbox": f"vision_msgs/{box}", "id": "string"}
        assert _fields(getattr(v, name + "Array")) == {
            "header": "std_msgs/Header", "detections": f"sequence<vision_msgs/{name}>"}
    for name, box in (("BoundingBox2DArray", "BoundingBox2D"), ("BoundingBox3DArray", "BoundingBox3D")):
        assert _fields(getattr(v, name)) == {"header": "std_msgs/Header",
                                             "boxes": f"sequence<vision_msgs/{box}>"}
    assert _fields(v.Classification) == {"header": "std_msgs/Header",
                                         "results": "sequence<vision_msgs/ObjectHypothesis>"}
    assert _fields(v.VisionClass) == {"class_id": "uint16", "class_name": "string"}
    assert _fields(v.LabelInfo) == {"header": "std_msgs/Header",
                                    "class_map": "sequence<vision_msgs/VisionClass>",
                                    "threshold": "float"}
    assert _fields(v.VisionInfo) == {"header": "std_msgs/Header", "method": "string",
                                     "database_location": "string", "database_version": "int32"}


def test_gripper_command_has_the_control_msgs_layout():
    from katazuke_interfaces.msg import GripperCommand

    # control_msgs/GripperCommand: float64 position, float64 max_effort
    assert _fields(GripperCommand) == {"position": "double", "max_effort": "double"}


def test_object_instance_has_what_a_spoken_description_needs():
    from katazuke_interfaces.msg import ObjectInstance

    f = _fields(ObjectInstance)
    assert f["kind"] == "string" and f["dominant_color"] == "string"
    assert f["dominant_color_rgb"] == "std_msgs/ColorRGBA"
    assert f["orientation"] == "geometry_msgs/Quaternion" and f["has_orientation"] == "boolean"
    assert ObjectInstance().orientation.w == 1.0          # identity when unknown


def test_tidy_action_and_task_types():
    from katazuke_interfaces.action import Tidy
    from katazuke_interfaces.msg import TaskItem, TaskStatus

    assert (Tidy.Goal.MODE_TIDY_ALL, Tidy.Goal.MODE_MOVE, Tidy.Goal.MODE_LOOK_AT) == (0, 1, 2)
    assert {"mode", "object_id", "object_description", "container"} <= set(_fields(Tidy.Goal))
    assert _fields(Tidy.Feedback) == {"status": "katazuke_interfaces/TaskStatus"}
    assert _fields(Tidy.Result)["items"] == "sequence<katazuke_interfaces/TaskItem>"
    assert [TaskItem.PENDING, TaskItem.ACTIVE, TaskItem.IN_HAND, TaskItem.PLACED, TaskItem.FAILED,
            TaskItem.SKIPPED] == list(range(6))
    assert _fields(TaskStatus)["items"] == "sequence<katazuke_interfaces/TaskItem>"
    assert TaskStatus.NAVIGATING == 2                     # the value the demo and bags use


def test_speech_and_grasp_types():
    from katazuke_interfaces.msg import (AudioData, GraspCandidate, GraspCandidateArray,
                                         GroundingResult, Transcript)

    assert _fields(AudioData) == {"header": "std_msgs/Header", "sample_rate": "uint32",
                                  "channels": "uint8", "data": "sequence<uint8>"}
    assert {"text", "confidence", "hypotheses", "confidences"} <= set(_fields(Transcript))
    assert {"intent", "target_id", "destination", "clarification_question"} <= set(
        _fields(GroundingResult))
    assert GroundingResult.INTENT_STOP == 4 and GroundingResult.INTENT_CHOICE == 8
    assert {"pose", "width_m", "score", "energy", "planner"} <= set(_fields(GraspCandidate))
    assert _fields(GraspCandidateArray)["candidates"] == "sequence<katazuke_interfaces/GraspCandidate>"
