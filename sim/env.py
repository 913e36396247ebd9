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
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from katazuke.errors import KatazukeError
from katazuke.sim.geometry import look_at, pose_to_matrix, quat_to_matrix
from katazuke.sim.objects import (CATEGORIES, KINDS, ObjectKind, SpawnedObject,
                                  kinds_for_profile, spawn_object)
from katazuke.sim.world import CATEGORY_TO_CONTAINER, ContainerInfo, Room, build_room

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
class CameraFrame:
    """One rendered camera frame.

    Attributes:
        rgb: ``(H, W, 3)`` uint8.
        depth: ``(H, W)`` float32 metres along the optical axis; ``inf`` where nothing.
        segmentation: ``(H, W)`` int32 object body uid (see ``ObjectState.id``) or -1.
        K: ``(3, 3)`` float64 pinhole intrinsics (pixels).
        T_world_cam: ``(4, 4)`` float64 optical frame (z forward, x right, y down).
        stamp: sim time of the frame, s.
        name: camera name (``"head"``, ``"ceiling_0"``, ...).
    """

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray
    stamp: float
    name: str = "head"


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


def intrinsics_from_fov(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Pinhole ``K`` (3, 3) with square pixels and a centred principal point."""
    fx = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1.0]])


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

    Args:
        config: an :class:`EnvConfig` (defaults when None).
    """

    def __init__(self, config: EnvConfig | None = None):
        import pybullet as p
        import pybullet_data
        from pybullet_utils.bullet_client import BulletClient

        from katazuke.sim.profiles import get_profile
        from katazuke.sim.randomization import DEFAULT_LIGHT, TextureBank
        from katazuke.sim.robot import write_robot_urdf

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
        self.light = dict(DEFAULT_LIGHT)
        self.camera_perturbation: dict = {}
        self.image_effects: dict = {}
        self.randomizers: list = []
        self.objects: list[SpawnedObject] = []
        self.room: Room | None = None
        self.robot = None
        self.robot_uid = -1
        self.time = 0.0
        self.seed: int | None = None
        self._floor_mu = self.config.floor_friction
        self._disturbance = np.zeros(2)
        self._cmd_vel = np.zeros(3)         # current (acceleration-limited) base twist, world
        self._distractors: list[int] = []
        self._visual_links: dict[int, list[int]] = {}
        self._nominal: dict[int, tuple] = {}
        self._seg_lut = np.full(1, -1, dtype=np.int32)
        self._noise_banks: dict = {}
        self._parked: set[int] = set()
        self._closed = False
        self._dt = 1.0 / (self.config.control_hz * self.config.physics_substeps)

    # ------------------------------------------------------------------ episode
    @property
    def containers(self) -> list[ContainerInfo]:
        """The tidy-up destinations (empty before the first reset)."""
        return list(self.room.containers) if self.room else []

    @property
    def joint_names(self) -> list[str]:
        """Arm joints, finger joints, head pan/tilt (ROS names)."""
        from katazuke.sim.robot import JOINT_NAMES

        return list(JOINT_NAMES)

    @property
    def physics_dt(self) -> float:
        """Physics step, s."""
        return self._dt

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
        self._shape_cache: dict = {}
        self._noise_banks: dict = {}
        self._parked: set[int] = set()
        self.time = 0.0
        self._disturbance = np.zeros(2)
        self._cmd_vel = np.zeros(3)
        self._visual_links = {}
        self._nominal = {}
        ss = np.random.SeedSequence([seed, 7])
        self._scene_rng = np.random.Generator(np.random.PCG64(ss.spawn(1)[0]))
        self._noise_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 8])))
        self._odom_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 9])))
        if self.texture_bank is not None:
            self.texture_bank.load(c)
        self.room = build_room(c)
        for b in [self.room.floor, *self.room.walls, self.room.table, self.room.shelf,
                  *self.room.container_bodies]:
            c.changeDynamics(b, -1, lateralFriction=0.8, restitution=0.05)
        self._load_robot()
        self._spawn_distractors()
        if kinds is not None:
            unknown = [k for k in kinds if k not in {kk.name for kk in KINDS}]
            if unknown:
                raise SimError(f"reset(kinds=...): unknown kind(s) {unknown}")
            pool = [kk for kk in KINDS if kk.name in kinds]
        else:
            pool = kinds_for_profile(self.profile.include_held_out_kinds)
        lo, hi = cfg.n_objects
        n = int(n_objects) if n_objects is not None else int(self._scene_rng.integers(lo, hi + 1))
        self.objects = []
        for _ in range(n):
            kind = pool[int(self._scene_rng.integers(len(pool)))]
            self._spawn(kind, float(self._scene_rng.uniform(0.92, 1.05)))
        self._rebuild_seg_lut()
        self.scatter_objects(self._scene_rng)
        self.set_floor_friction(cfg.floor_friction)
        self.randomizers = self.profile.make_randomizers(seed)
        for r in self.randomizers:
            r.randomize(self)
        self._odom = np.array([*self.base_pose(), 0.0, 0.0, 0.0])
        return self._observation()

    def _check_open(self):
        if self._closed:
            raise SimError("this TidyEnv was closed; create a new one")

    def _spawn(self, kind: ObjectKind, scale: float) -> SpawnedObject:
        # spawn far below the room, unrotated (so the bbox is measured tight), then place
        obj = spawn_object(self.client, kind, (0, 0, -5 - 0.5 * len(self.objects)), (0, 0, 0, 1),
                           scale, self._data_path, self._shape_cache)
        self.objects.append(obj)
        self._register_visual(obj.uid, kind.colour)
        return obj

    def _register_visual(self, body: int, colour) -> None:
        shapes = self.client.getVisualShapeData(body)
        self._visual_links[body] = sorted({s[1] for s in shapes})
        self._nominal[body] = tuple(colour) if colour is not None else tuple(shapes[0][7])
        if colour is not None:
            for link in self._visual_links[body]:
                self.client.changeVisualShape(body, link, rgbaColor=list(colour))

    def _rebuild_seg_lut(self) -> None:
        # index uid + 1 holds the object uid (or -1); the padding keeps the last entry -1
        lut = np.full(self.client.getNumBodies() + 64, -1, dtype=np.int32)
        for o in self.objects:
            lut[o.uid + 1] = o.uid
        self._seg_lut = lut

    def _noise_bank(self, h: int, w: int) -> np.ndarray:
        """Unit Gaussian noise ``(h + 32, w + 32, 3)`` float32 for this episode and size;
        each frame reads a randomly offset window (much cheaper than fresh noise)."""
        bank = self._noise_banks.get((h, w))
        if bank is None:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
                [self.seed or 0, 17, h, w])))
            bank = self._noise_banks[(h, w)] = rng.standard_normal((h + 32, w + 32, 3),
                                                                   dtype=np.float32)
        return bank

    def _load_robot(self) -> None:
        from katazuke.sim.robot import ARM_HOME, ARM_JOINTS, FINGER_JOINTS, RobotModel

        c, cfg = self.client, self.config
        if not cfg.include_robot:
            self.robot, self.robot_uid = None, -1
            return
        uid = c.loadURDF(self._robot_urdf, [0, 0, 0], useFixedBase=True,
                         flags=self._p.URDF_USE_INERTIA_FROM_FILE)
        self.robot_uid = uid
        self.robot = rm = RobotModel(c, uid)
        x, y, yaw = cfg.robot_start
        for name, val in zip(("base_x_joint", "base_y_joint", "base_yaw_joint"), (x, y, yaw)):
            c.resetJointState(uid, rm.index(name), val)
        for name, q in zip(ARM_JOINTS, ARM_HOME):
            c.resetJointState(uid, rm.index(name), float(q))
        for name in FINGER_JOINTS:
            c.resetJointState(uid, rm.index(name), 0.04)
        c.resetJointState(uid, rm.index("head_tilt_joint"), 0.5)
        # passive joints: the default velocity motors would act as brakes
        for j in rm.movable:
            c.setJointMotorControl2(uid, j, self._p.VELOCITY_CONTROL, targetVelocity=0, force=0)
        self._base_mass = sum(c.getDynamicsInfo(uid, j)[0] for j in range(c.getNumJoints(uid)))
        for link in (rm.link("panda_leftfinger"), rm.link("panda_rightfinger")):
            c.changeDynamics(uid, link, lateralFriction=1.2, spinningFriction=0.01,
                             frictionAnchor=True)
        self._targets = {n: float(c.getJointState(uid, rm.index(n))[0])
                         for n in self.joint_names}
        self._apply_joint_targets()
        self._apply_base_velocity(np.zeros(3))

    def _spawn_distractors(self) -> None:
        """Rugs on the floor and posters on the walls: textured clutter that is not an object."""
        p, c = self._p, self.client
        rng = self._scene_rng
        self._distractors = []
        lo, hi = self.profile.distractors
        h = self.room.size / 2
        for _ in range(int(rng.integers(lo, hi + 1))):
            if rng.random() < 0.5:
                he = [rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.6), 0.002]
                pos = [rng.uniform(-h + 1, h - 1), rng.uniform(-h + 1, h - 1), 0.002]
                yaw = rng.uniform(0, np.pi)
            else:
                wall = int(rng.integers(4))
                he = [rng.uniform(0.2, 0.5), 0.004, rng.uniform(0.2, 0.4)]
                along, z = rng.uniform(-h + 0.6, h - 0.6), rng.uniform(1.0, 1.7)
                pos, yaw = [[along, h - 0.006, z], [along, -h + 0.006, z],
                            [h - 0.006, along, z], [-h + 0.006, along, z]][wall], \
                    [0, 0, np.pi / 2, np.pi / 2][wall]
            vis = c.createVisualShape(p.GEOM_BOX, halfExtents=he)
            body = c.createMultiBody(0, -1, vis, pos, p.getQuaternionFromEuler([0, 0, yaw]))
            self._distractors.append(body)
            self._register_visual(body, None)

    # --------------------------------------------------------------- placement
    def scatter_objects(self, rng: np.random.Generator, settle: bool = True) -> None:
        """Place every object on the floor, table or shelf without overlaps, then settle.

        Candidate footprints are checked against each other (oriented rectangles, with a
        1 cm gap), the robot's clearance circle and the containers before any body moves.

        Args:
            rng: placement randomness.
            settle: run ``config.settle_steps`` physics steps afterwards.
        """
        c, cfg = self.client, self.config
        surfaces = self.room.surfaces
        weights = np.array([0.5, 0.3, 0.1, 0.1])[:len(surfaces)]
        weights = weights / weights.sum()
        placed: dict[str, list[np.ndarray]] = {s.name: [] for s in surfaces}
        boxes: dict[str, list[np.ndarray]] = {s.name: [] for s in surfaces}
        blocked = self.room.floor_obstacles
        blocked_boxes = [np.concatenate([b.min(axis=0), b.max(axis=0)]) for b in blocked]
        rx, ry = self.base_pose()[:2] if self.robot is not None else cfg.robot_start[:2]

        def hits(poly, box, polys, pboxes) -> bool:
            # axis-aligned boxes first (cheap), the separating-axis test only on overlap
            for q, qb in zip(polys, pboxes):
                if box[0] < qb[2] and qb[0] < box[2] and box[1] < qb[3] and qb[1] < box[3] \
                        and _polys_overlap(poly, q):
                    return True
            return False

        for obj in self.objects:
            for attempt in range(40):
                s = surfaces[int(rng.choice(len(surfaces), p=weights))]
                xy = rng.uniform(s.xy_min, s.xy_max)
                yaw = float(rng.uniform(-np.pi, np.pi))
                poly = _footprint(xy, yaw, obj.rest_extent[:2] + 0.01)
                box = np.concatenate([poly.min(axis=0), poly.max(axis=0)])
                if s.name == "floor":
                    if np.hypot(xy[0] - rx, xy[1] - ry) < cfg.robot_clearance + 0.5 * max(
                            obj.rest_extent[:2]):
                        continue
                    if hits(poly, box, blocked, blocked_boxes):
                        continue
                if hits(poly, box, placed[s.name], boxes[s.name]):
                    continue
                placed[s.name].append(poly)
                boxes[s.name].append(box)
                if obj.uid in self._parked:
                    self._parked.discard(obj.uid)
                    c.changeDynamics(obj.uid, -1, mass=obj.kind.mass)
                self._set_object_pose(obj, xy[0], xy[1],
                                      s.z + 0.5 * obj.rest_extent[2] + 0.002, yaw)
                break
            else:  # no free spot: park it out of sight below the floor, frozen
                self._set_object_pose(obj, 0.0, 0.0, -3.0 - obj.uid * 0.3, 0.0)
                c.changeDynamics(obj.uid, -1, mass=0)
                self._parked.add(obj.uid)
        if settle:
            for _ in range(cfg.settle_steps):
                c.stepSimulation()

    def _set_object_pose(self, obj: SpawnedObject, x: float, y: float, z: float, yaw: float):
        """Put the bbox centre of ``obj`` at ``(x, y, z)`` in its resting orientation turned
        by ``yaw`` about world z; zero its velocity."""
        from katazuke.sim.geometry import matrix_to_quat, rotation_z

        R = rotation_z(yaw) @ obj.rest_R
        com = np.array([x, y, z]) - R @ obj.centre_offset
        self.client.resetBasePositionAndOrientation(obj.uid, com.tolist(),
                                                    matrix_to_quat(R).tolist())
        self.client.resetBaseVelocity(obj.uid, [0, 0, 0], [0, 0, 0])

    def place_object(self, uid: int, x: float, y: float, yaw: float, support_z: float,
                     settle_steps: int = 24) -> None:
        """Put object ``uid`` upright at ``(x, y)`` with ``yaw``, resting on height
        ``support_z`` (m), and let it settle (evaluation set-ups)."""
        obj = next((o for o in self.objects if o.uid == uid), None)
        if obj is None:
            raise SimError(f"place_object: body {uid} is not an object of this episode")
        self._set_object_pose(obj, x, y, support_z + 0.5 * obj.rest_extent[2] + 0.002, yaw)
        for _ in range(settle_steps):
            self.client.stepSimulation()

    def set_base_pose(self, x: float, y: float, yaw: float) -> None:
        """Teleport the base to ``(x, y, yaw)`` at rest (evaluation set-ups)."""
        self._require_reset()
        if self.robot is None:
            raise SimError("set_base_pose: this env has no robot")
        for name, v in zip(("base_x_joint", "base_y_joint", "base_yaw_joint"), (x, y, yaw)):
            self.client.resetJointState(self.robot_uid, self.robot.index(name), float(v), 0.0)
        self._cmd_vel = np.zeros(3)
        self._odom = np.array([x, y, yaw, 0.0, 0.0, 0.0])

    @staticmethod
    def _container_footprint(ci: ContainerInfo) -> np.ndarray:
        T = ci.T_world_container
        yaw = np.arctan2(T[1, 0], T[0, 0])
        return _footprint(T[:2, 3], yaw, ci.extent[:2] + 0.1)

    # ---------------------------------------------------------------- stepping
    def step(self, action: Action) -> Observation:
        """Apply ``action`` and advance ``1/control_hz`` s of simulated time.

        Raises:
            SimError: NaN, out-of-limit or wrong-shape action fields (the message names
                the field).
        """
        self._check_open()
        self._require_reset()
        from katazuke.sim.robot import ARM_JOINTS, HEAD_JOINTS

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
        state = self._true_base_state() if self.robot is not None else None
        for _ in range(cfg.physics_substeps):
            if self.robot is not None:
                self._apply_base_velocity(twist, state)
                if np.any(self._disturbance):
                    bl = self.robot.link("base_link")
                    pos = self.client.getLinkState(self.robot_uid, bl)[0]
                    self.client.applyExternalForce(self.robot_uid, bl,
                                                   [*self._disturbance, 0.0], pos,
                                                   self._p.WORLD_FRAME)
            self.client.stepSimulation()
            self.time += self._dt
            if self.robot is not None:
                state = self._true_base_state()
                self._integrate_odometry(state)
        # keep the float exact at control ticks (no accumulated substep rounding)
        self.time = round(self.time * cfg.control_hz) / cfg.control_hz
        return self._observation()

    def _require_reset(self):
        if self.room is None:
            raise SimError("call reset(seed) before step()/render")

    def _apply_joint_targets(self) -> None:
        from katazuke.sim.robot import ARM_JOINTS, FINGER_JOINTS, HEAD_JOINTS

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

    def _apply_base_velocity(self, twist_base: np.ndarray, state: np.ndarray | None = None
                             ) -> None:
        """Drive the base like a wheeled platform: the commanded twist is rate-limited by
        the acceleration limits, then tracked by a proportional velocity loop whose force
        is capped by floor traction (``mu * m * g``). External pushes therefore slow or
        deflect the base instead of being absorbed by an ideal velocity constraint."""
        cfg, c, rm = self.config, self.client, self.robot
        x, y, yaw, vx, vy, wz = self._true_base_state() if state is None else state
        cy, sy = np.cos(yaw), np.sin(yaw)
        want = np.array([cy * twist_base[0] - sy * twist_base[1],
                         sy * twist_base[0] + cy * twist_base[1], twist_base[2]])
        dv = want - self._cmd_vel
        max_dv = cfg.base_max_lin_acc * self._dt
        n = np.hypot(dv[0], dv[1])
        if n > max_dv:
            dv[:2] *= max_dv / n
        dv[2] = np.clip(dv[2], -cfg.base_max_ang_acc * self._dt, cfg.base_max_ang_acc * self._dt)
        self._cmd_vel = self._cmd_vel + dv
        k = cfg.base_velocity_gain
        traction = self._floor_mu * self._base_mass * 9.81
        fx = self._base_mass * k * (self._cmd_vel[0] - vx)
        fy = self._base_mass * k * (self._cmd_vel[1] - vy)
        fn = math.hypot(fx, fy)
        if fn > traction:
            fx, fy = fx * traction / fn, fy * traction / fn
        # wheel traction also bounds the yaw torque (lever arm ~ half the wheel base)
        torque = min(max(cfg.base_yaw_inertia * k * (self._cmd_vel[2] - wz), -0.25 * traction),
                     0.25 * traction)
        for name, f in zip(("base_x_joint", "base_y_joint", "base_yaw_joint"),
                           (fx, fy, torque)):
            c.setJointMotorControl2(self.robot_uid, rm.index(name), self._p.TORQUE_CONTROL,
                                    force=float(f))

    def _integrate_odometry(self, state: np.ndarray) -> None:
        cfg = self.config
        x, y, yaw, vx_w, vy_w, wz = state
        c, s = np.cos(yaw), np.sin(yaw)
        v_base = np.array([c * vx_w + s * vy_w, -s * vx_w + c * vy_w, wz])
        r = self._odom_rng
        v_meas = v_base * (1 + np.array([r.normal(0, cfg.odom_noise_lin),
                                         r.normal(0, cfg.odom_noise_lin),
                                         r.normal(0, cfg.odom_noise_ang)]))
        ox, oy, oyaw = self._odom[:3]
        co, so = np.cos(oyaw), np.sin(oyaw)
        self._odom = np.array([ox + self._dt * (co * v_meas[0] - so * v_meas[1]),
                               oy + self._dt * (so * v_meas[0] + co * v_meas[1]),
                               oyaw + self._dt * v_meas[2], *v_meas])

    def _true_base_state(self) -> np.ndarray:
        rm = self.robot
        st = self.client.getJointStates(self.robot_uid, [rm.index("base_x_joint"),
                                                         rm.index("base_y_joint"),
                                                         rm.index("base_yaw_joint")])
        return np.array([st[0][0], st[1][0], st[2][0], st[0][1], st[1][1], st[2][1]])

    # ------------------------------------------------------------------- state
    def base_pose(self) -> tuple[float, float, float]:
        """Ground-truth base pose ``(x, y, yaw)`` in the world frame (m, m, rad)."""
        self._require_reset()
        if self.robot is None:
            return tuple(float(v) for v in self.config.robot_start)
        x, y, yaw = self._true_base_state()[:3]
        return float(x), float(y), float(np.arctan2(np.sin(yaw), np.cos(yaw)))

    def base_velocity(self) -> np.ndarray:
        """Ground-truth base twist ``(vx, vy, wz)`` in the base frame."""
        x, y, yaw, vx, vy, wz = self._true_base_state()
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * vx + s * vy, -s * vx + c * vy, wz])

    def odometry(self) -> tuple[float, float, float, float, float, float]:
        """Wheel-odometry-like ``(x, y, yaw, vx, vy, wz)``: integrated noisy base velocity."""
        self._require_reset()
        o = self._odom
        return (float(o[0]), float(o[1]), float(np.arctan2(np.sin(o[2]), np.cos(o[2]))),
                float(o[3]), float(o[4]), float(o[5]))

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

    def ground_truth_objects(self) -> list[ObjectState]:
        """Ground truth of every object in the room (evaluation only)."""
        self._require_reset()
        out = []
        for o in self.objects:
            if o.uid in self._parked:  # found no free spot this episode: not in the room
                continue
            pos, orn = self.client.getBasePositionAndOrientation(o.uid)
            T = pose_to_matrix(pos, orn)
            T[:3, 3] = T[:3, 3] + T[:3, :3] @ o.centre_offset
            out.append(ObjectState(o.uid, o.kind.name, o.kind.category, T, o.extent.copy(),
                                   CATEGORY_TO_CONTAINER[o.kind.category], o.kind.held_out))
        return out

    def object_in_container(self, uid: int, container_id: str) -> bool:
        """Whether the bbox centre of body ``uid`` lies inside the container's walls."""
        ci = next((c for c in self.containers if c.id == container_id), None)
        if ci is None:
            raise SimError(f"unknown container {container_id!r}: use one of "
                           f"{[c.id for c in self.containers]}")
        obj = next((o for o in self.objects if o.uid == uid), None)
        if obj is None:
            raise SimError(f"body {uid} is not an object of this episode")
        pos, orn = self.client.getBasePositionAndOrientation(uid)
        centre = np.asarray(pos) + quat_to_matrix(orn) @ obj.centre_offset
        local = np.linalg.inv(ci.T_world_container) @ np.append(centre, 1.0)
        return bool(abs(local[0]) < ci.extent[0] / 2 and abs(local[1]) < ci.extent[1] / 2
                    and 0.0 <= local[2] <= ci.extent[2] + 0.05)

    def set_base_disturbance(self, force_xy) -> None:
        """Apply a constant world-frame push ``(fx, fy)`` N to the base until changed."""
        f = np.asarray(force_xy, dtype=np.float64)
        if f.shape != (2,) or not np.all(np.isfinite(f)):
            raise SimError(f"set_base_disturbance(force_xy): need 2 finite numbers, got {force_xy}")
        self._disturbance = f

    def set_floor_friction(self, mu: float) -> None:
        """Floor friction coefficient: object sliding and the base's traction limit."""
        if not (np.isfinite(mu) and 0.0 <= mu <= 2.0):
            raise SimError(f"set_floor_friction(mu={mu}): need 0 <= mu <= 2")
        self._floor_mu = float(mu)
        if self.room is not None:
            self.client.changeDynamics(self.room.floor, -1, lateralFriction=float(mu))

    # ------------------------------------------------------------ appearance API
    def textured_bodies(self) -> list[tuple[int, str]]:
        """``(body, role)`` pairs the appearance randomizer recolours."""
        out = list(self.room.textured)
        out += [(ci, "container") for ci in self.room.container_bodies]
        out += [(d, "distractor") for d in self._distractors]
        out += [(o.uid, "object") for o in self.objects]
        return out

    def visual_links(self, body: int) -> list[int]:
        """Link indices of ``body`` that carry visual shapes."""
        if body not in self._visual_links:
            self._visual_links[body] = sorted({s[1] for s in
                                               self.client.getVisualShapeData(body)})
        return self._visual_links[body]

    def nominal_colour(self, body: int):
        """The catalogue colour of ``body`` (RGBA) or None."""
        if body not in self._nominal:
            shapes = self.client.getVisualShapeData(body)
            self._nominal[body] = tuple(shapes[0][7]) if shapes else None
        return self._nominal[body]

    # --------------------------------------------------------------- rendering
    def camera_names(self) -> list[str]:
        """Available camera names."""
        names = ["head"] if self.robot is not None else []
        if self.config.ceiling_cameras:
            names += [f"ceiling_{i}" for i in range(4)]
        return names

    def head_intrinsics(self) -> np.ndarray:
        """``K`` (3, 3) of the head camera, including any intrinsics randomization."""
        cfg = self.config
        K = intrinsics_from_fov(cfg.image_width, cfg.image_height, cfg.hfov_deg)
        cp = self.camera_perturbation
        if cp:
            K[0, 0] *= cp["focal_scale"][0]
            K[1, 1] *= cp["focal_scale"][1]
            K[0, 2] += cp["pp_shift"][0] * cfg.image_width * 0.5
            K[1, 2] += cp["pp_shift"][1] * cfg.image_height * 0.5
        return K

    def head_camera_pose(self) -> np.ndarray:
        """``T_world_cam`` (4, 4) of the head camera optical frame (with mount noise)."""
        from katazuke.sim.robot import HEAD_CAMERA_LINK

        self._require_reset()
        if self.robot is None:
            raise SimError("no head camera: include_robot=False")
        ls = self.client.getLinkState(self.robot_uid, self.robot.link(HEAD_CAMERA_LINK),
                                      computeForwardKinematics=True)
        T = pose_to_matrix(ls[4], ls[5])
        cp = self.camera_perturbation
        if cp:
            rx, ry, rz = cp["rot"]
            R = np.asarray(self._p.getMatrixFromQuaternion(
                self._p.getQuaternionFromEuler([rx, ry, rz]))).reshape(3, 3)
            T[:3, :3] = T[:3, :3] @ R
            T[:3, 3] = T[:3, 3] + T[:3, :3] @ np.asarray(cp["trans"])
        return T

    def ceiling_camera_pose(self, i: int) -> np.ndarray:
        """``T_world_cam`` of ceiling camera ``i`` (0..3): room corners looking inwards."""
        h = self.room.size / 2 - 0.15
        corners = [(h, h), (-h, h), (-h, -h), (h, -h)]
        cx, cy = corners[i]
        return look_at((cx, cy, 2.15), (0.3 * cx, 0.3 * cy, 0.0))

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
            K = intrinsics_from_fov(self.config.image_width, self.config.image_height, 90.0)
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
        cfg = self.config
        w = int(width or cfg.image_width)
        h = int(height or cfg.image_height)
        near, far = cfg.near, cfg.far
        view = np.diag([1.0, -1.0, -1.0, 1.0]) @ np.linalg.inv(T_world_cam)
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        proj = np.array([[2 * fx / w, 0, 1 - 2 * cx / w, 0],
                         [0, 2 * fy / h, 2 * cy / h - 1, 0],
                         [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)],
                         [0, 0, -1, 0]])
        _, _, rgba, zbuf, seg = self.client.getCameraImage(
            w, h, viewMatrix=view.T.flatten().tolist(), projectionMatrix=proj.T.flatten().tolist(),
            renderer=self._p.ER_TINY_RENDERER, shadow=0, **self.light)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3]
        # OpenGL depth buffer -> metric z (float32 keeps < 0.1 mm error inside `far`)
        zbuf = np.asarray(zbuf, dtype=np.float32).reshape(h, w)
        depth = np.float32(far * near) / (np.float32(far) - np.float32(far - near) * zbuf)
        depth[zbuf >= np.float32(1.0 - 1e-7)] = np.inf
        # body uid -> object uid or -1; the table is shifted by one so background (-1) -> 0
        seg = np.asarray(seg, dtype=np.int32).reshape(h, w)
        lut = self._seg_lut
        segm = lut[np.clip(seg + 1, 0, len(lut) - 1)]
        if effects and self.image_effects:
            from katazuke.sim.randomization import apply_image_effects

            rgb = apply_image_effects(rgb, self.image_effects, self._noise_rng,
                                      self._noise_bank(h, w))
        return CameraFrame(np.ascontiguousarray(rgb), depth, segm, np.asarray(K, np.float64),
                           np.asarray(T_world_cam, np.float64), float(self.time), name)

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


def _footprint(xy, yaw: float, size) -> np.ndarray:
    """Corners ``(4, 2)`` of a ``size`` (2,) rectangle centred at ``xy`` rotated by ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    hx, hy = 0.5 * np.asarray(size)
    local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
    return local @ np.array([[c, s], [-s, c]]) + np.asarray(xy)


def _polys_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex polygons ``(N, 2)``."""
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        for e in edges:
            n = np.array([-e[1], e[0]])
            pa, pb = a @ n, b @ n
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True
