"""The mobile manipulator: holonomic base + Franka Panda + pan-tilt head RGB-D camera.

The robot is one URDF generated at run time: a fixed world anchor, three virtual planar
joints (``base_x``, ``base_y`` prismatic, ``base_yaw`` revolute) driven by velocity motors
whose force is limited by floor traction (``mu * m * g``), the base body, the Panda arm and
hand from ``pybullet_data/franka_panda`` (collision meshes used for both collision and
rendering to keep triangle counts low), and a mast with ``head_pan_joint`` /
``head_tilt_joint`` carrying the camera. Grasps hold only by friction: the fingers are
position controlled with a force limit, nothing is welded to the hand.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

import numpy as np

__all__ = ["ARM_JOINTS", "FINGER_JOINTS", "HEAD_JOINTS", "BASE_JOINTS", "JOINT_NAMES",
           "write_robot_urdf", "RobotModel", "ARM_HOME", "HEAD_CAMERA_LINK"]

ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
HEAD_JOINTS = ("head_pan_joint", "head_tilt_joint")
BASE_JOINTS = ("base_x_joint", "base_y_joint", "base_yaw_joint")
JOINT_NAMES = ARM_JOINTS + FINGER_JOINTS + HEAD_JOINTS
HEAD_CAMERA_LINK = "head_camera_optical_frame"
GRASP_LINK = "panda_grasptarget"
# folded over the base, low in the head camera's view
ARM_HOME = np.array([0.0, -1.7, 0.0, -3.0, 0.0, 1.5, 0.785])
BASE_HEIGHT = 0.36      # top of the base body (arm mount), m
MAST_HEIGHT = 1.25      # head pan axis height above the floor, m


def _inertial(mass: float, size: float = 0.1) -> str:
    i = mass * size * size / 6
    return (f'<inertial><origin xyz="0 0 0"/><mass value="{mass}"/>'
            f'<inertia ixx="{i}" ixy="0" ixz="0" iyy="{i}" iyz="0" izz="{i}"/></inertial>')


def write_robot_urdf(folder: str, data_path: str, base_mass: float = 40.0) -> str:
    """Write the combined robot URDF into ``folder`` and return its path.

    The file name carries a hash of the content, so concurrent environments sharing a
    cache folder reuse one file (written atomically) and nothing needs cleaning up.

    Args:
        folder: output folder (must exist).
        data_path: the ``pybullet_data`` directory holding ``franka_panda/``.
        base_mass: mass of the base body (kg).
    """
    panda_dir = os.path.join(data_path, "franka_panda")
    with open(os.path.join(panda_dir, "panda.urdf"), encoding="utf-8") as fh:
        panda = fh.read()
    body = panda[panda.index("<robot"):]
    body = body[body.index(">") + 1: body.rindex("</robot>")]
    # render the light collision meshes instead of the ~100k-triangle visual ones
    body = body.replace("package://meshes/visual/", "package://meshes/collision/")
    body = body.replace("package://meshes/", os.path.join(panda_dir, "meshes") + "/")
    body = re.sub(r"<mimic[^>]*/>", "", body)
    bx, by, bz = 0.55, 0.45, BASE_HEIGHT - 0.06
    mast_h = MAST_HEIGHT - BASE_HEIGHT
    head = f"""
  <link name="world_anchor">{_inertial(0.0)}</link>
  <link name="base_x_link">{_inertial(1.0)}</link>
  <link name="base_y_link">{_inertial(1.0)}</link>
  <joint name="base_x_joint" type="prismatic"><parent link="world_anchor"/><child link="base_x_link"/>
    <axis xyz="1 0 0"/><limit lower="-10" upper="10" effort="1000" velocity="1.0"/></joint>
  <joint name="base_y_joint" type="prismatic"><parent link="base_x_link"/><child link="base_y_link"/>
    <axis xyz="0 1 0"/><limit lower="-10" upper="10" effort="1000" velocity="1.0"/></joint>
  <joint name="base_yaw_joint" type="continuous"><parent link="base_y_link"/><child link="base_link"/>
    <axis xyz="0 0 1"/><limit effort="500" velocity="1.5"/></joint>
  <link name="base_link">
    <inertial><origin xyz="0 0 {0.06 + bz / 2}"/><mass value="{base_mass}"/>
      <inertia ixx="1.5" ixy="0" ixz="0" iyy="1.5" iyz="0" izz="2.0"/></inertial>
    <visual><origin xyz="0 0 {0.06 + bz / 2}"/><geometry><box size="{bx} {by} {bz}"/></geometry>
      <material name="base_grey"><color rgba="0.25 0.25 0.28 1"/></material></visual>
    <collision><origin xyz="0 0 {0.06 + bz / 2}"/><geometry><box size="{bx} {by} {bz}"/></geometry></collision>
    <visual><origin xyz="-0.18 0 {BASE_HEIGHT + mast_h / 2}"/><geometry><cylinder radius="0.03" length="{mast_h}"/></geometry>
      <material name="mast_grey"><color rgba="0.5 0.5 0.5 1"/></material></visual>
  </link>
  <joint name="panda_mount" type="fixed"><parent link="base_link"/><child link="panda_link0"/>
    <origin xyz="0.12 0 {BASE_HEIGHT}"/></joint>
  <link name="head_pan_link">{_inertial(0.3)}</link>
  <joint name="head_pan_joint" type="revolute"><parent link="base_link"/><child link="head_pan_link"/>
    <origin xyz="-0.18 0 {MAST_HEIGHT}"/><axis xyz="0 0 1"/>
    <limit lower="-2.6" upper="2.6" effort="10" velocity="2.0"/></joint>
  <link name="head_tilt_link">{_inertial(0.3)}
    <visual><origin xyz="0.03 0 0.02"/><geometry><box size="0.06 0.14 0.04"/></geometry>
      <material name="head_black"><color rgba="0.1 0.1 0.1 1"/></material></visual>
  </link>
  <joint name="head_tilt_joint" type="revolute"><parent link="head_pan_link"/><child link="head_tilt_link"/>
    <origin xyz="0 0 0.05"/><axis xyz="0 1 0"/>
    <limit lower="-0.5" upper="1.3" effort="10" velocity="2.0"/></joint>
  <link name="{HEAD_CAMERA_LINK}">{_inertial(0.0)}</link>
  <joint name="head_camera_joint" type="fixed"><parent link="head_tilt_link"/><child link="{HEAD_CAMERA_LINK}"/>
    <origin xyz="0.07 0 0.02" rpy="-1.5707963 0 -1.5707963"/></joint>
"""
    text = f'<?xml version="1.0"?>\n<robot name="katazuke_robot">{head}{body}</robot>\n'
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = os.path.join(folder, f"katazuke_robot_{digest}.urdf")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return path


@dataclass
class JointInfo:
    """Index and limits of one joint of the robot body."""

    name: str
    index: int
    lower: float
    upper: float
    effort: float
    velocity: float


class RobotModel:
    """Joint bookkeeping for the loaded robot body.

    Args:
        client: the BulletClient holding the robot.
        uid: robot body id.
    """

    def __init__(self, client, uid: int):
        self.client = client
        self.uid = uid
        self.joints: dict[str, JointInfo] = {}
        self.links: dict[str, int] = {}
        self._edges: list[tuple[int, int, bool]] = []  # (parent link, child link, fixed)
        for j in range(client.getNumJoints(uid)):
            info = client.getJointInfo(uid, j)
            name = info[1].decode()
            self.links[info[12].decode()] = j
            self._edges.append((int(info[16]), j, info[2] == 4))
            if info[2] != 4:  # not fixed
                self.joints[name] = JointInfo(name, j, info[8], info[9], info[10], info[11])
        self.root = client.getBodyInfo(uid)[0].decode()  # the base link (index -1)
        self.movable = [self.joints[n].index for n in sorted(self.joints, key=lambda n:
                                                             self.joints[n].index)]

    def index(self, name: str) -> int:
        """Joint index of ``name``."""
        return self.joints[name].index

    def link(self, name: str) -> int:
        """Link index of ``name``."""
        return self.links[name]

    def edges(self) -> list[tuple[str, str, bool]]:
        """The link tree: ``(parent, child, fixed)`` link names, one per joint, in joint
        order (the parent of the first joints is :attr:`root`)."""
        names = {j: n for n, j in self.links.items()}
        names[-1] = self.root
        return [(names[p], names[c], fixed) for p, c, fixed in self._edges]
