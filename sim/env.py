"""``TidyEnv``: the PyBullet tidy-up room with a mobile manipulator.

Example:
    >>> from katazuke.sim import TidyEnv, EnvConfig, Action
    >>> env = TidyEnv(EnvConfig(profile="train"))
    >>> obs = env.reset(seed=3)
    >>> obs = env.step(Action(base_twist=(0.2, 0.0, 0.0)))
    >>> frame = env.render_head()          # CameraFrame: rgb, depth (m), segmentation, K
    >>> env.close()

Every environment owns its own ``BulletClient`` (DIRECT unless ``gui=True``); several
environments in one process do not interfere. ``reset(seed)`` rebuilds the episode
(room, robot, 10-40 objects, randomization) as a pure function of the seed; ``step``
advances ``1/control_hz`` seconds in ``physics_substeps`` physics steps.

``TidyEnv`` composes its parts like DROID's ``Droid``: :mod:`katazuke.sim.scene` (room,
spawning, scattering, placing, ground truth), :mod:`katazuke.sim.base` (base dynamics and
odometry) and :mod:`katazuke.sim.cameras` (intrinsics, camera poses, rendering); it owns the
physics client, the episode, the robot body (:mod:`katazuke.sim.robot`) and its joint
targets, and the randomizers.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from katazuke.errors import KatazukeError
from katazuke.geometry import pose_to_matrix
from katazuke.sim.base import Base
from katazuke.sim.cameras import CameraFrame, Cameras, intrinsics_from_fov
from katazuke.sim.objects import CATEGORIES, KINDS, SpawnedObject, kinds_for_profile
from katazuke.sim.profiles import get_profile
from katazuke.sim.randomization import TextureBank
from katazuke.sim.robot import (ARM_HOME, ARM_JOINTS, BASE_JOINTS, FINGER_JOINTS,
                                HEAD_CAMERA_LINK, HEAD_JOINTS, JOINT_NAMES, RobotModel,
                                write_robot_urdf)
from katazuke.sim.scene import Scene
from katazuke.sim.world import ContainerInfo, Room

__all__ = ["TidyEnv", "EnvConfig", "Action", "Observation", "CameraFrame", "ObjectState",
           "ContainerInfo", "SimError", "intrinsics_from_fov", "CATEGORIES"]


class SimError(KatazukeError, ValueError):
    """Invalid use of the simulator (bad action, bad config, unknown camera)."""


@dataclass(frozen=True)
class EnvConfig:
    """Configuration of :class:`TidyEnv` (loadable with ``katazuke.config.load_config``)."""

    profile: Literal["none", "train", "test"] = field(
        default="train", metadata={"help": "randomization profile: none, train or test"})
    gui: bool = field(default=False, metadata={"help": "open the PyBullet GUI instead of DIRECT"})
    control_hz: float = field(default=30.0, metadata={"help": "step() rate, Hz"})
    physics_substeps: int = field(default=8, metadata={"help": "physics steps per step()"})
    image_width: int = field(default=320, metadata={"help": "camera image width, px"})
    image_height: int = field(default=240, metadata={"help": "camera image height, px"})
    hfov_deg: float = field(default=70.0, metadata={"help": "nominal horizontal field of view"})
    near: float = field(default=0.05, metadata={"help": "camera near plane, m"})
    far: float = field(default=8.0, metadata={"help": "camera far plane, m (no depth beyond)"})
    n_objects: tuple[int, int] = field(
        default=(10, 40), metadata={"help": "inclusive range of objects per episode"})
    ceiling_cameras: bool = field(
        default=False, metadata={"help": "enable ceiling_0..ceiling_3 cameras"})
    render_observation: bool = field(
        default=True, metadata={"help": "step()/reset() render the head camera into the "
                                        "Observation (set False for fast control loops)"})
    robot_start: tuple[float, float, float] = field(
        default=(0.0, 0.0, 1.5707963), metadata={"help": "base start x, y (m), yaw (rad)"})
    robot_clearance: float = field(
        default=0.75, metadata={"help": "no objects within this radius of the start, m"})
    base_max_lin_vel: float = field(default=0.8, metadata={"help": "base speed limit, m/s"})
    base_max_ang_vel: float = field(default=1.5, metadata={"help": "base yaw-rate limit, rad/s"})
    base_max_lin_acc: float = field(default=1.0, metadata={"help": "base accel limit, m/s^2"})
    base_max_ang_acc: float = field(default=2.0, metadata={"help": "yaw accel limit, rad/s^2"})
    base_mass: float = field(default=40.0, metadata={"help": "base body mass, kg"})
    base_velocity_gain: float = field(
        default=15.0, metadata={"help": "base velocity loop gain, 1/s (force = m k dv)"})
    base_yaw_inertia: float = field(
        default=6.0, metadata={"help": "yaw inertia used by the base velocity loop, kg m^2"})
    floor_friction: float = field(
        default=0.8, metadata={"help": "floor friction: limits base traction (mu m g) and "
                                       "object sliding"})
    gripper_force: float = field(default=40.0, metadata={"help": "force per finger, N"})
    odom_noise_lin: float = field(
        default=0.02, metadata={"help": "odometry linear speed noise, fraction of speed"})
    odom_noise_ang: float = field(
        default=0.02, metadata={"help": "odometry yaw-rate noise, fraction of rate"})
    settle_steps: int = field(
        default=48, metadata={"help": "physics steps to let objects settle after placement"})
    cache_dir: str = field(
        default="", metadata={"help": "folder for generated URDF/texture files (empty: a "
                                      "temporary folder removed on close())"})
    texture_size: int = field(default=64, metadata={"help": "procedural texture side, px"})
    include_robot: bool = field(default=True, metadata={"help": "spawn the robot"})

    def __post_init__(self):
        if self.profile not in ("none", "train", "test"):
            raise SimError(f"EnvConfig.profile={self.profile!r}: use none, train or test")
        if not self.control_hz > 0 or self.physics_substeps < 1:
            raise SimError("EnvConfig.control_hz must be > 0 and physics_substeps >= 1")
        if self.image_width < 8 or self.image_height < 8:
            raise SimError("EnvConfig.image_width/image_height must be >= 8 px")
        lo, hi = self.n_objects
        if not 0 <= lo <= hi <= 60:
            raise SimError(f"EnvConfig.n_objects={self.n_objects}: need 0 <= min <= max <= 60")
        if not 0 < self.near < self.far:
            raise SimError("EnvConfig.near/far: need 0 < near < far")


@dataclass(frozen=True)
class Action:
    """One control command (see the module docstring for units and frames).

    Attributes:
        base_twist: ``(vx, vy, wz)`` m/s, m/s, rad/s in the base frame.
        arm_positions: ``(7,)`` Panda joint targets (rad), or None to hold.
        gripper_width: finger opening in metres (0 closed .. 0.08 open), or None to hold.
        head_pan_tilt: ``(pan, tilt)`` rad, or None to hold.
    """

    base_twist: tuple[float, float, float] = (0.0, 0.0, 0.0)
    arm_positions: np.ndarray | None = None
    gripper_width: float | None = None
    head_pan_tilt: tuple[float, float] | None = None


@dataclass
class Observation:
    """What :meth:`TidyEnv.step` returns.

    Attributes:
        time: sim time, s.
        joint_names: names aligned with the arrays below.
        joint_positions, joint_velocities, joint_efforts: ``(J,)`` float64.
        odometry: ``(6,)`` ``x, y, yaw, vx, vy, wz`` (drifting, base frame velocities).
        head: head camera frame, or None when ``render_observation`` is False.
    """

    time: float
    joint_names: list[str]
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    joint_efforts: np.ndarray
    odometry: np.ndarray
    head: CameraFrame | None = None


@dataclass
class ObjectState:
    """Ground truth of one object (for evaluation only; never feed it to algorithms).

    Attributes:
        id: PyBullet body uid (matches ``CameraFrame.segmentation``).
        kind: kind name.
        category: one of the 6 categories.
        T_world_obj: ``(4, 4)`` pose of the object's bounding-box centre frame.
        extent: ``(3,)`` bounding-box size in the object frame, m.
        container: id of the destination container.
        held_out: whether the kind is held out of the ``train`` profile.
    """

    id: int
    kind: str
    category: str
    T_world_obj: np.ndarray
    extent: np.ndarray
    container: str
    held_out: bool = False


def _finite_vector(name: str, value, n: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SimError(f"Action.{name} must be {n} numbers, got {value!r}") from exc
    if arr.shape != (n,):
        raise SimError(f"Action.{name} must have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SimError(f"Action.{name} contains NaN/inf: {arr.tolist()}")
    return arr


class TidyEnv:
    """The tidy-up room simulation (see the module docstring).

    The environment composes three parts along its seams, each its own module:
    :attr:`scene` (:class:`~katazuke.sim.scene.Scene`: room, spawning, scattering,
    placing, ground truth), :attr:`base` (:class:`~katazuke.sim.base.Base`: twist ->
    forces, base dynamics, odometry) and :attr:`cameras`
    (:class:`~katazuke.sim.cameras.Cameras`: intrinsics, camera poses, rendering). It
    owns the physics client, the episode (``reset``/``step``), the robot body with its
    arm, gripper and head targets, and the randomizers.

    Args:
        config: an :class:`EnvConfig` (defaults when None).
    """

    def __init__(self, config: EnvConfig | None = None):
        import pybullet as p
        import pybullet_data
        from pybullet_utils.bullet_client import BulletClient

        self.config = config or EnvConfig()
        self.profile = get_profile(self.config.profile)
        self._p = p
        self.client = BulletClient(connection_mode=p.GUI if self.config.gui else p.DIRECT)
        self._data_path = pybullet_data.getDataPath()
        if not self.config.cache_dir:
            self._tmp = tempfile.mkdtemp(prefix="katazuke_sim_")
            self.cache_dir = self._tmp
        else:
            self._tmp = None
            self.cache_dir = self.config.cache_dir
            os.makedirs(self.cache_dir, exist_ok=True)
        self._robot_urdf = write_robot_urdf(self.cache_dir, self._data_path,
                                            self.config.base_mass)
        self.texture_bank = (TextureBank(os.path.join(self.cache_dir, "textures"),
                                         self.profile.texture_families,
                                         size=self.config.texture_size)
                             if self.profile.texture_families else None)
        self._dt = 1.0 / (self.config.control_hz * self.config.physics_substeps)
        self.scene = Scene(p, self.client, self._data_path, self.config, error=SimError)
        self.base = Base(p, self.client, self.config, self._dt)
        self.cameras = Cameras(p, self.client, self.config)
        self.randomizers: list = []
        self.robot: RobotModel | None = None
        self.robot_uid = -1
        self.time = 0.0
        self.seed: int | None = None
        self._targets: dict[str, float] = {}
        self._closed = False

    # ------------------------------------------------------ parts' state, by name
    @property
    def room(self) -> Room | None:
        """The room bodies and surfaces (None before the first reset)."""
        return self.scene.room

    @property
    def objects(self) -> list[SpawnedObject]:
        """The episode's objects (parked ones included)."""
        return self.scene.objects

    @property
    def containers(self) -> list[ContainerInfo]:
        """The tidy-up destinations (empty before the first reset)."""
        return self.scene.containers

    @property
    def light(self) -> dict:
        """Renderer light settings (``getCameraImage`` keyword arguments)."""
        return self.cameras.light

    @light.setter
    def light(self, value: dict) -> None:
        self.cameras.light = value

    @property
    def camera_perturbation(self) -> dict:
        """Head camera intrinsics / mount perturbation of the episode ({} = none)."""
        return self.cameras.camera_perturbation

    @camera_perturbation.setter
    def camera_perturbation(self, value: dict) -> None:
        self.cameras.camera_perturbation = value

    @property
    def image_effects(self) -> dict:
        """Image-noise effects applied to rendered rgb ({} = none)."""
        return self.cameras.image_effects

    @image_effects.setter
    def image_effects(self, value: dict) -> None:
        self.cameras.image_effects = value

    @property
    def robot_urdf_path(self) -> str:
        """The robot's URDF file (planar base joints, Panda with gripper, head mast): what a
        kinematics library or robot_description reads; the meshes are absolute paths."""
        return self._robot_urdf

    @property
    def joint_names(self) -> list[str]:
        """Arm joints, finger joints, head pan/tilt (ROS names)."""
        return list(JOINT_NAMES)

    @property
    def physics_dt(self) -> float:
        """Physics step, s."""
        return self._dt

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int = 0, kinds: list[str] | None = None,
              n_objects: int | None = None) -> Observation:
        """Build a new episode.

        Args:
            seed: episode seed; the episode (scene, randomization, noise) depends on it only.
            kinds: restrict spawned kinds to these names (evaluation); default: the
                profile's kinds.
            n_objects: exact object count (default: drawn from ``config.n_objects``).

        Returns:
            The first observation.
        """
        self._check_open()
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise SimError(f"reset(seed={seed!r}): seed must be a non-negative integer")
        seed = int(seed)
        p, c, cfg = self._p, self.client, self.config
        self.seed = seed
        c.resetSimulation()
        c.setGravity(0, 0, -9.81)
        c.setPhysicsEngineParameter(fixedTimeStep=self._dt, numSolverIterations=50,
                                    deterministicOverlappingPairs=1)
        if cfg.gui:
            c.configureDebugVisualizer(p.COV_ENABLE_SHADOWS, 0)
        self.time = 0.0
        ss = np.random.SeedSequence([seed, 7])
        self._scene_rng = np.random.Generator(np.random.PCG64(ss.spawn(1)[0]))
        self.cameras.reset(seed)
        self.base.reset(seed)
        if self.texture_bank is not None:
            self.texture_bank.load(c)
        scene = self.scene
        scene.build_room()
        self._load_robot()
        scene.spawn_distractors(self._scene_rng, self.profile.distractors)
        if kinds is not None:
            unknown = [k for k in kinds if k not in {kk.name for kk in KINDS}]
            if unknown:
                raise SimError(f"reset(kinds=...): unknown kind(s) {unknown}")
            pool = [kk for kk in KINDS if kk.name in kinds]
        else:
            pool = kinds_for_profile(self.profile.include_held_out_kinds)
        lo, hi = cfg.n_objects
        n = int(n_objects) if n_objects is not None else int(self._scene_rng.integers(lo, hi + 1))
        scene.objects = []
        for _ in range(n):
            kind = pool[int(self._scene_rng.integers(len(pool)))]
            scene.spawn(kind, float(self._scene_rng.uniform(0.92, 1.05)))
        scene.rebuild_seg_lut()
        self.scatter_objects(self._scene_rng)
        self.set_floor_friction(cfg.floor_friction)
        self.randomizers = self.profile.make_randomizers(seed)
        for r in self.randomizers:
            r.randomize(self)
        self.base.start_odometry(*self.base_pose())
        return self._observation()

    def _check_open(self):
        if self._closed:
            raise SimError("this TidyEnv was closed; create a new one")

    def _require_reset(self):
        if self.room is None:
            raise SimError("call reset(seed) before step()/render")

    def _load_robot(self) -> None:
        c, cfg = self.client, self.config
        if not cfg.include_robot:
            self.robot, self.robot_uid = None, -1
            return
        uid = c.loadURDF(self._robot_urdf, [0, 0, 0], useFixedBase=True,
                         flags=self._p.URDF_USE_INERTIA_FROM_FILE)
        self.robot_uid = uid
        self.robot = rm = RobotModel(c, uid)
        x, y, yaw = cfg.robot_start
        for name, val in zip(BASE_JOINTS, (x, y, yaw)):
            c.resetJointState(uid, rm.index(name), val)
        for name, q in zip(ARM_JOINTS, ARM_HOME):
            c.resetJointState(uid, rm.index(name), float(q))
        for name in FINGER_JOINTS:
            c.resetJointState(uid, rm.index(name), 0.04)
        c.resetJointState(uid, rm.index("head_tilt_joint"), 0.5)
        # passive joints: the default velocity motors would act as brakes
        for j in rm.movable:
            c.setJointMotorControl2(uid, j, self._p.VELOCITY_CONTROL, targetVelocity=0, force=0)
        self.base.attach(uid, rm)
        for link in (rm.link("panda_leftfinger"), rm.link("panda_rightfinger")):
            c.changeDynamics(uid, link, lateralFriction=1.2, spinningFriction=0.01,
                             frictionAnchor=True)
        self._targets = {n: float(c.getJointState(uid, rm.index(n))[0])
                         for n in self.joint_names}
        self._apply_joint_targets()
        self.base.apply_velocity(np.zeros(3))

    # --------------------------------------------------------------- placement
    def scatter_objects(self, rng: np.random.Generator, settle: bool = True) -> None:
        """Place every object on the floor, table or shelf without overlaps, then settle.

        Candidate footprints are checked against each other (oriented rectangles, with a
        1 cm gap), the robot's clearance circle and the containers before any body moves.

        Args:
            rng: placement randomness.
            settle: run ``config.settle_steps`` physics steps afterwards.
        """
        robot_xy = self.base_pose()[:2] if self.robot is not None else self.config.robot_start[:2]
        self.scene.scatter(rng, robot_xy, settle=settle)

    def place_object(self, uid: int, x: float, y: float, yaw: float, support_z: float,
                     settle_steps: int = 24) -> None:
        """Put object ``uid`` upright at ``(x, y)`` with ``yaw``, resting on height
        ``support_z`` (m), and let it settle (evaluation set-ups)."""
        self.scene.place_object(uid, x, y, yaw, support_z, settle_steps)

    def set_base_pose(self, x: float, y: float, yaw: float) -> None:
        """Teleport the base to ``(x, y, yaw)`` at rest (evaluation set-ups)."""
        self._require_reset()
        if self.robot is None:
            raise SimError("set_base_pose: this env has no robot")
        self.base.set_pose(x, y, yaw)

    # ---------------------------------------------------------------- stepping
    def step(self, action: Action) -> Observation:
        """Apply ``action`` and advance ``1/control_hz`` s of simulated time.

        Raises:
            SimError: NaN, out-of-limit or wrong-shape action fields (the message names
                the field).
        """
        self._check_open()
        self._require_reset()
        if not isinstance(action, Action):
            raise SimError(f"step() needs an Action, got {type(action).__name__}")
        cfg = self.config
        twist = _finite_vector("base_twist", action.base_twist, 3)
        if np.hypot(twist[0], twist[1]) > cfg.base_max_lin_vel + 1e-9:
            raise SimError(f"Action.base_twist linear speed {np.hypot(*twist[:2]):.3f} m/s "
                           f"exceeds base_max_lin_vel={cfg.base_max_lin_vel}")
        if abs(twist[2]) > cfg.base_max_ang_vel + 1e-9:
            raise SimError(f"Action.base_twist wz={twist[2]:.3f} rad/s exceeds "
                           f"base_max_ang_vel={cfg.base_max_ang_vel}")
        if self.robot is None:
            if action.arm_positions is not None or action.gripper_width is not None or \
                    action.head_pan_tilt is not None or np.any(twist != 0):
                raise SimError("this env has no robot (include_robot=False): send Action()")
        else:
            self._set_joint_targets(action)
        base = self.base
        state = base.true_state() if self.robot is not None else None
        for _ in range(cfg.physics_substeps):
            if self.robot is not None:
                base.apply_velocity(twist, state)
                base.push()
            self.client.stepSimulation()
            self.time += self._dt
            if self.robot is not None:
                state = base.true_state()
                base.integrate_odometry(state)
        # keep the float exact at control ticks (no accumulated substep rounding)
        self.time = round(self.time * cfg.control_hz) / cfg.control_hz
        return self._observation()

    def _set_joint_targets(self, action: Action) -> None:
        """Check the arm, gripper and head fields of ``action`` and make them the targets."""
        rm = self.robot
        if action.arm_positions is not None:
            q = _finite_vector("arm_positions", action.arm_positions, 7)
            for name, v in zip(ARM_JOINTS, q):
                j = rm.joints[name]
                if not j.lower - 1e-6 <= v <= j.upper + 1e-6:
                    raise SimError(f"Action.arm_positions: {name}={v:.4f} rad outside "
                                   f"[{j.lower}, {j.upper}]")
            for name, v in zip(ARM_JOINTS, q):
                self._targets[name] = float(v)
        if action.gripper_width is not None:
            w = _finite_vector("gripper_width", [action.gripper_width], 1)[0]
            if not 0.0 <= w <= 0.08 + 1e-9:
                raise SimError(f"Action.gripper_width={w} m outside [0, 0.08]")
            self._targets["panda_finger_joint1"] = self._targets["panda_finger_joint2"] = \
                float(w) / 2
        if action.head_pan_tilt is not None:
            ht = _finite_vector("head_pan_tilt", action.head_pan_tilt, 2)
            for name, v in zip(HEAD_JOINTS, ht):
                j = rm.joints[name]
                if not j.lower <= v <= j.upper:
                    raise SimError(f"Action.head_pan_tilt: {name}={v:.4f} rad outside "
                                   f"[{j.lower}, {j.upper}]")
                self._targets[name] = float(v)
        self._apply_joint_targets()

    def _apply_joint_targets(self) -> None:
        p, c, rm = self._p, self.client, self.robot
        for name in ARM_JOINTS + HEAD_JOINTS:
            j = rm.joints[name]
            c.setJointMotorControl2(self.robot_uid, j.index, p.POSITION_CONTROL,
                                    targetPosition=self._targets[name], force=j.effort,
                                    maxVelocity=j.velocity, positionGain=0.3, velocityGain=1.0)
        for name in FINGER_JOINTS:
            j = rm.joints[name]
            c.setJointMotorControl2(self.robot_uid, j.index, p.POSITION_CONTROL,
                                    targetPosition=self._targets[name],
                                    force=self.config.gripper_force, maxVelocity=0.1)

    # ------------------------------------------------------------------- state
    def base_pose(self) -> tuple[float, float, float]:
        """Ground-truth base pose ``(x, y, yaw)`` in the world frame (m, m, rad)."""
        self._require_reset()
        if self.robot is None:
            return tuple(float(v) for v in self.config.robot_start)
        x, y, yaw = self.base.true_state()[:3]
        return float(x), float(y), float(np.arctan2(np.sin(yaw), np.cos(yaw)))

    def base_velocity(self) -> np.ndarray:
        """Ground-truth base twist ``(vx, vy, wz)`` in the base frame."""
        return self.base.velocity()

    def odometry(self) -> tuple[float, float, float, float, float, float]:
        """Wheel-odometry-like ``(x, y, yaw, vx, vy, wz)``: integrated noisy base velocity."""
        self._require_reset()
        return self.base.odometry()

    def joint_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(positions, velocities, efforts)`` aligned with :attr:`joint_names`."""
        self._require_reset()
        n = len(self.joint_names)
        if self.robot is None:
            return np.zeros(n), np.zeros(n), np.zeros(n)
        st = self.client.getJointStates(self.robot_uid,
                                        [self.robot.index(j) for j in self.joint_names])
        return (np.array([s[0] for s in st]), np.array([s[1] for s in st]),
                np.array([s[3] for s in st]))

    def link_tree(self) -> list[tuple[str, str, bool]]:
        """The robot's URDF link tree as ``(parent, child, fixed)`` link-name edges.

        One edge per joint of the robot body, in joint-index order; ``fixed`` is True for
        fixed joints. The root link (``world_anchor``) is nobody's child. Empty without a
        robot.
        """
        self._require_reset()
        return self.robot.edges() if self.robot is not None else []

    def link_poses(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """World poses of robot links from the current joint state (forward kinematics).

        Args:
            names: link names (see :meth:`link_tree`); default: every child link.

        Returns:
            ``{name: T_world_link}``, each ``(4, 4)`` float64 (URDF link frames).

        Raises:
            SimError: no robot, or an unknown link name.
        """
        self._require_reset()
        if self.robot is None:
            raise SimError("link_poses: this env has no robot (include_robot=False)")
        rm = self.robot
        names = list(rm.links) if names is None else list(names)
        unknown = [n for n in names if n not in rm.links]
        if unknown:
            raise SimError(f"link_poses: unknown link(s) {unknown}; links: {sorted(rm.links)}")
        if not names:
            return {}
        states = self.client.getLinkStates(self.robot_uid, [rm.link(n) for n in names],
                                           computeForwardKinematics=1)
        T = pose_to_matrix([st[4] for st in states], [st[5] for st in states])
        return dict(zip(names, T))

    def room_boxes(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """World axis-aligned boxes ``(name, lo (3,), hi (3,))`` of the walls (``"wall"``),
        the table and the shelf, m (for maps and markers; see :meth:`Scene.room_boxes`)."""
        self._require_reset()
        return self.scene.room_boxes()

    def ground_truth_objects(self) -> list[ObjectState]:
        """Ground truth of every object in the room (evaluation only)."""
        self._require_reset()
        scene = self.scene
        out = []
        for o in scene.objects:
            if o.uid in scene.parked:  # found no free spot this episode: not in the room
                continue
            out.append(ObjectState(o.uid, o.kind.name, o.kind.category,
                                   scene.object_centre_pose(o), o.extent.copy(),
                                   scene.destination(o), o.kind.held_out))
        return out

    def object_in_container(self, uid: int, container_id: str) -> bool:
        """Whether the bbox centre of body ``uid`` lies inside the container's walls."""
        return self.scene.object_in_container(uid, container_id)

    def set_base_disturbance(self, force_xy) -> None:
        """Apply a constant world-frame push ``(fx, fy)`` N to the base until changed."""
        f = np.asarray(force_xy, dtype=np.float64)
        if f.shape != (2,) or not np.all(np.isfinite(f)):
            raise SimError(f"set_base_disturbance(force_xy): need 2 finite numbers, got {force_xy}")
        self.base.disturbance = f

    def set_floor_friction(self, mu: float) -> None:
        """Floor friction coefficient: object sliding and the base's traction limit."""
        if not (np.isfinite(mu) and 0.0 <= mu <= 2.0):
            raise SimError(f"set_floor_friction(mu={mu}): need 0 <= mu <= 2")
        self.base.floor_mu = float(mu)
        self.scene.set_floor_friction(mu)

    # ------------------------------------------------------------ appearance API
    def textured_bodies(self) -> list[tuple[int, str]]:
        """``(body, role)`` pairs the appearance randomizer recolours."""
        return self.scene.textured_bodies()

    def visual_links(self, body: int) -> list[int]:
        """Link indices of ``body`` that carry visual shapes."""
        return self.scene.visual_links(body)

    def nominal_colour(self, body: int):
        """The catalogue colour of ``body`` (RGBA) or None."""
        return self.scene.nominal_colour(body)

    # --------------------------------------------------------------- rendering
    def camera_names(self) -> list[str]:
        """Available camera names."""
        names = ["head"] if self.robot is not None else []
        if self.config.ceiling_cameras:
            names += [f"ceiling_{i}" for i in range(4)]
        return names

    def head_intrinsics(self) -> np.ndarray:
        """``K`` (3, 3) of the head camera, including any intrinsics randomization."""
        return self.cameras.head_intrinsics()

    def head_camera_pose(self) -> np.ndarray:
        """``T_world_cam`` (4, 4) of the head camera optical frame (with mount noise)."""
        self._require_reset()
        if self.robot is None:
            raise SimError("no head camera: include_robot=False")
        return self.cameras.head_pose(self.robot_uid, self.robot.link(HEAD_CAMERA_LINK))

    def ceiling_camera_pose(self, i: int) -> np.ndarray:
        """``T_world_cam`` of ceiling camera ``i`` (0..3): room corners looking inwards."""
        return self.cameras.ceiling_pose(i, self.room.size)

    def render_head(self) -> CameraFrame:
        """Render the head RGB-D camera (see :class:`CameraFrame`)."""
        return self.render_camera("head")

    def render_camera(self, name: str) -> CameraFrame:
        """Render camera ``name`` (``"head"`` or, when enabled, ``"ceiling_0".."ceiling_3"``)."""
        self._check_open()
        self._require_reset()
        if name not in self.camera_names():
            raise SimError(f"unknown camera {name!r}: available {self.camera_names()}")
        if name == "head":
            T, K = self.head_camera_pose(), self.head_intrinsics()
        else:
            T = self.ceiling_camera_pose(int(name.split("_")[1]))
            K = self.cameras.ceiling_intrinsics()
        return self.render(T, K, name=name)

    def render(self, T_world_cam: np.ndarray, K: np.ndarray, name: str = "free",
               width: int | None = None, height: int | None = None,
               effects: bool = True) -> CameraFrame:
        """Render from an arbitrary optical-frame pose with intrinsics ``K``.

        Args:
            T_world_cam: ``(4, 4)`` optical frame pose (z forward, x right, y down).
            K: ``(3, 3)`` intrinsics in pixels.
            name: camera name stored in the frame.
            width, height: image size (default: the config's).
            effects: apply the image-noise randomizer's effects to ``rgb``.
        """
        return self.cameras.render(T_world_cam, K, self.scene.seg_lut, self.time, name=name,
                                   width=width, height=height, effects=effects)

    def _observation(self) -> Observation:
        q, dq, tau = self.joint_state()
        head = self.render_head() if (self.config.render_observation and self.robot) else None
        return Observation(self.time, self.joint_names, q, dq, tau,
                           np.asarray(self.odometry()), head)

    # ----------------------------------------------------------------- closing
    def close(self) -> None:
        """Disconnect the physics client and remove temporary files."""
        if self._closed:
            return
        self._closed = True
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001 - already disconnected by the server
            pass
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "TidyEnv":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
