"""Scripted pick-and-place with ground-truth grasp poses (the physics-quality check).

For one object kind and seed: the object is spawned alone on the floor in front of the
robot, whose base is placed next to the object's destination container. The Panda
grasps from above across the object's narrow horizontal side (IK with
``calculateInverseKinematics``, refined on a saved state), lifts, carries the object over
the container and opens the gripper. Success: the object's centre ends up inside the
container. Grasps hold by finger friction only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from katazuke.sim.env import Action, EnvConfig, SimError, TidyEnv
from katazuke.sim.scene import Scene, footprint, polys_overlap
from katazuke.geometry import matrix_to_quat, rotation_z
from katazuke.sim.objects import KIND_BY_NAME
from katazuke.sim.robot import ARM_JOINTS, GRASP_LINK

__all__ = ["PickPlaceResult", "pick_and_place", "grasp_pose", "solve_ik"]


@dataclass
class PickPlaceResult:
    """Outcome of one scripted pick-and-place.

    Attributes:
        kind: object kind.
        seed: episode seed.
        success: object ended inside its container.
        stage: last stage reached (``"grasp"``, ``"lift"``, ``"carry"``, ``"release"``,
            ``"done"``).
        lifted: the object was off the floor after lifting.
        sim_time: simulated seconds used.
    """

    kind: str
    seed: int
    success: bool
    stage: str
    lifted: bool
    sim_time: float


def grasp_pose(T_world_obj: np.ndarray, extent: np.ndarray, support_z: float
               ) -> tuple[np.ndarray, float]:
    """Top-down grasp for an object at rest.

    Args:
        T_world_obj: ``(4, 4)`` bbox-centre pose.
        extent: ``(3,)`` bbox size, m.
        support_z: height of the supporting surface, m.

    Returns:
        ``T_world_grasp`` (4, 4): the ``panda_grasptarget`` pose (z down, fingers closing
        along y), and the object's width across the fingers (m).
    """
    R = T_world_obj[:3, :3]
    # the box axis closest to vertical gives the height; the fingers close across the
    # narrower of the two others (objects may rest on any face)
    k = int(np.argmax(np.abs(R[2, :])))
    i, j = [m for m in range(3) if m != k]
    if extent[i] > extent[j]:
        i, j = j, i
    width = float(extent[i])
    a = R[:, i] - R[2, i] * np.array([0.0, 0.0, 1.0])
    a /= np.linalg.norm(a)
    z = np.array([0.0, 0.0, -1.0])
    x = np.cross(a, z)
    T = np.eye(4)
    T[:3, :3] = np.stack([x, a, z], axis=1)
    # vertical size of the (possibly tilted) box
    h = float(np.abs(R[2, :]) @ extent)
    top = T_world_obj[2, 3] + h / 2
    bottom = top - h
    gz = max(bottom + 0.5 * h, top - 0.035, support_z + 0.014)
    T[:3, 3] = [T_world_obj[0, 3], T_world_obj[1, 3], min(gz, top - 0.005)]
    return T, float(width)


READY = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])


def solve_ik(env: TidyEnv, T_world_grasp: np.ndarray, iterations: int = 3,
             q_seed: np.ndarray | None = None) -> np.ndarray:
    """Arm joint angles ``(7,)`` putting ``panda_grasptarget`` at ``T_world_grasp``.

    ``q_seed`` (7,) is where the iterative solver starts (default: the current arm state).

    The base, head and finger joints are held (high damping); the solution is refined by
    re-solving from the previous solution on a saved physics state, which is restored.
    """

    c, rm, uid = env.client, env.robot, env.robot_uid
    movable = rm.movable
    arm_idx = [rm.index(n) for n in ARM_JOINTS]
    # pybullet's IK moves every DOF; heavy damping pins the base, head and fingers
    damp = [0.05 if j in arm_idx else 100.0 for j in movable]
    q_save = c.saveState()
    pos = T_world_grasp[:3, 3].tolist()
    orn = matrix_to_quat(T_world_grasp[:3, :3]).tolist()
    link = rm.link(GRASP_LINK)
    try:
        if q_seed is not None:
            for j, v in zip(arm_idx, q_seed):
                c.resetJointState(uid, j, float(v))
        for _ in range(iterations):
            sol = c.calculateInverseKinematics(uid, link, pos, orn, jointDamping=damp,
                                               maxNumIterations=200, residualThreshold=1e-5)
            q = np.array([sol[movable.index(j)] for j in arm_idx])
            for j, v in zip(arm_idx, q):
                c.resetJointState(uid, j, float(v))
    finally:
        c.restoreState(q_save)
        c.removeState(q_save)
    lim = np.array([[rm.joints[n].lower, rm.joints[n].upper] for n in ARM_JOINTS])
    return np.clip(q, lim[:, 0], lim[:, 1])


def _move(env: TidyEnv, q_goal: np.ndarray, seconds: float, gripper: float | None = None,
          settle: float = 0.3) -> None:
    """Joint-space interpolation to ``q_goal`` over ``seconds``, then hold for ``settle``."""
    lim = np.array([[env.robot.joints[j].lower, env.robot.joints[j].upper] for j in ARM_JOINTS])
    q0 = np.clip(env.joint_state()[0][:7], lim[:, 0], lim[:, 1])
    n = max(1, int(seconds * env.config.control_hz))
    for k in range(1, n + 1):
        s = k / n
        s = s * s * (3 - 2 * s)
        env.step(Action(arm_positions=q0 + s * (q_goal - q0), gripper_width=gripper))
    for _ in range(int(settle * env.config.control_hz)):
        env.step(Action(arm_positions=q_goal, gripper_width=gripper))


def _cartesian(env: TidyEnv, T_from: np.ndarray, T_to: np.ndarray, seconds: float,
               gripper: float | None, waypoints: int = 4) -> None:
    for k in range(1, waypoints + 1):
        T = T_to.copy()
        T[:3, 3] = T_from[:3, 3] + (T_to[:3, 3] - T_from[:3, 3]) * k / waypoints
        _move(env, solve_ik(env, T), seconds / waypoints, gripper, settle=0.0)


def _place_robot(env: TidyEnv, container, rng: np.random.Generator):
    """Base pose with ``container`` beside the arm and a free floor spot in front.

    Returns:
        ``(x, y, yaw)`` of the base and the object's ``(x, y)``.
    """
    h = env.room.size / 2
    C = container.T_world_container[:3, 3]
    others = [Scene.container_footprint(ci) for ci in env.containers if ci.id != container.id]
    allf = [Scene.container_footprint(ci) for ci in env.containers]
    yaws = rng.permutation(np.linspace(-np.pi, np.pi, 24, endpoint=False))
    for yaw in yaws:
        for side in (1.0, -1.0):
            R = rotation_z(yaw)[:2, :2]
            mount = C[:2] - R @ np.array([0.05, side * 0.6])
            base = mount - R @ np.array([0.12, 0.0])
            obj = mount + R @ np.array([0.55, -side * 0.05])
            bfp = footprint(base, yaw, (0.6, 0.5))
            if np.any(np.abs(bfp) > h - 0.05) or any(polys_overlap(bfp, f) for f in allf):
                continue
            ofp = footprint(obj, 0.0, (0.35, 0.35))
            if np.any(np.abs(obj) > h - 0.25) or any(polys_overlap(ofp, f) for f in others):
                continue
            return (float(base[0]), float(base[1]), float(yaw)), obj
    raise SimError(f"no free base pose next to {container.id}")


def pick_and_place(env: TidyEnv, kind: str, seed: int) -> PickPlaceResult:
    """Run one scripted pick-and-place of ``kind`` (see the module docstring)."""
    if kind not in KIND_BY_NAME:
        raise SimError(f"unknown kind {kind!r}")
    if not env.config.include_robot:
        raise SimError("pick_and_place needs an env with the robot (include_robot=True)")
    env.reset(seed=seed, kinds=[kind], n_objects=1)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 77])))
    gt = env.ground_truth_objects()[0]
    container = next(c for c in env.containers if c.id == gt.container)
    (bx, by, byaw), oxy = _place_robot(env, container, rng)
    env.set_base_pose(bx, by, byaw)
    obj = env.objects[0]
    oxy = oxy + rng.uniform(-0.06, 0.06, 2)
    env.place_object(obj.uid, oxy[0], oxy[1], float(rng.uniform(-np.pi, np.pi)), 0.0)
    for _ in range(15):
        env.step(Action(gripper_width=0.08))
    gt = env.ground_truth_objects()[0]
    T_g, width = grasp_pose(gt.T_world_obj, gt.extent, 0.0)
    stage, lifted = "grasp", False
    pre = T_g.copy()
    pre[2, 3] += 0.15
    _move(env, READY, 1.0, 0.08, settle=0.0)
    _move(env, solve_ik(env, pre, q_seed=READY), 1.0, 0.08)
    _cartesian(env, pre, T_g, 1.2, 0.08)
    for _ in range(int(0.8 * env.config.control_hz)):
        env.step(Action(arm_positions=solve_ik(env, T_g), gripper_width=0.0))
    stage = "lift"
    up = T_g.copy()
    up[2, 3] = max(T_g[2, 3] + 0.25, 0.42)
    _cartesian(env, T_g, up, 1.2, 0.0)
    z_obj = env.ground_truth_objects()[0].T_world_obj[2, 3]
    lifted = z_obj > gt.T_world_obj[2, 3] + 0.1
    if lifted:
        stage = "carry"
        over = up.copy()
        over[:3, 3] = [container.T_world_container[0, 3], container.T_world_container[1, 3],
                       up[2, 3]]
        _cartesian(env, up, over, 1.5, 0.0, waypoints=6)
        stage = "release"
        for _ in range(int(1.0 * env.config.control_hz)):
            env.step(Action(gripper_width=0.08))
        stage = "done"
    success = env.object_in_container(obj.uid, container.id)
    return PickPlaceResult(kind, seed, bool(success), stage, bool(lifted), env.time)


def make_eval_env(**overrides) -> TidyEnv:
    """An environment set up for the pick-and-place evaluation (nominal physics)."""
    cfg = dict(profile="none", render_observation=False, n_objects=(1, 1))
    cfg.update(overrides)
    return TidyEnv(EnvConfig(**cfg))
