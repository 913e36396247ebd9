"""The manipulation library driving the simulated Panda: approach, grasp, verify, lift.

The library never sees the simulator: the test hands it the robot URDF the simulator wrote,
the grasp pose in ``base_link`` (from ground truth, standing in for a grasp planner), and
the finger joint states. The trajectory is executed by stepping ``TidyEnv`` with the
sampled positions; the object's ground truth judges the outcome.
"""
from __future__ import annotations

import numpy as np
import pytest

from katazuke.planning.manipulation import (ArmModel, CollisionChecker, MotionPlanner,
                                            Obstacles, TrajectoryConfig, solve_approach,
                                            time_parameterize, verify_grasp)

pytestmark = [pytest.mark.sim, pytest.mark.slow]

READY = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785])


@pytest.fixture(scope="module")
def env():
    from katazuke.sim.pick_place import make_eval_env

    e = make_eval_env()
    yield e
    e.close()


def _run(env, traj, gripper, settle_s=0.3):
    from katazuke.sim import Action

    dt = 1.0 / env.config.control_hz
    for t in np.arange(dt, traj.duration_s + settle_s, dt):
        q, _, _ = traj.sample([t])
        env.step(Action(arm_positions=q[0], gripper_width=gripper))


def _fingers(env):
    names = env.joint_names
    idx = [names.index("panda_finger_joint1"), names.index("panda_finger_joint2")]
    pos, _, eff = env.joint_state()
    return pos[idx], eff[idx]


def test_pick_with_library_ik_and_verify(env):
    from katazuke.geometry import se2_to_matrix
    from katazuke.sim import Action
    from katazuke.sim.pick_place import grasp_pose

    env.reset(seed=0, kinds=["toy_block"], n_objects=1)
    env.set_base_pose(0.0, 0.0, 0.3)
    obj = env.objects[0]
    T_world_base = se2_to_matrix(*env.base_pose())
    spot = T_world_base @ np.array([0.62, -0.05, 0.0, 1.0])
    env.place_object(obj.uid, spot[0], spot[1], 0.4, 0.0)
    for _ in range(15):
        env.step(Action(arm_positions=READY, gripper_width=0.08))
    gt = env.ground_truth_objects()[0]
    T_world_grasp, width = grasp_pose(gt.T_world_obj, gt.extent, 0.0)
    T_base_grasp = np.linalg.inv(T_world_base) @ T_world_grasp

    arm = ArmModel(env.robot_urdf_path)
    q_now = env.joint_state()[0][:7]
    plan = solve_approach(arm, T_base_grasp, q_now, rng=np.random.default_rng(0))
    cc = CollisionChecker(arm, Obstacles([(lo, hi) for _, lo, hi in arm.static_collision_boxes()]))
    to_pre = MotionPlanner(cc).plan(np.clip(q_now, arm.lower, arm.upper), plan.q_pregrasp)
    cfg = TrajectoryConfig()
    _run(env, time_parameterize(to_pre.path, arm.velocity_limits, arm.joint_names, cfg), 0.08)
    # the simulated tip reaches the library's pre-grasp pose (FK/IK agree with the sim)
    T_tip = np.linalg.inv(T_world_base) @ env.link_poses(["panda_grasptarget"])[
        "panda_grasptarget"]
    assert np.linalg.norm(T_tip[:3, 3] - plan.T_base_pregrasp[:3, 3]) < 0.01
    slow = TrajectoryConfig(velocity_scale=0.2)
    _run(env, time_parameterize(plan.approach_path, arm.velocity_limits, config=slow), 0.08)
    for _ in range(25):
        env.step(Action(arm_positions=plan.q_grasp, gripper_width=0.0))
    pos, eff = _fingers(env)
    assert verify_grasp(pos, eff, 0.0, width) == (True, "ok")
    z0 = env.ground_truth_objects()[0].T_world_obj[2, 3]
    _run(env, time_parameterize(plan.lift_path, arm.velocity_limits, config=slow), 0.0)
    pos, eff = _fingers(env)
    assert verify_grasp(pos, eff, 0.0, width) == (True, "ok")
    assert env.ground_truth_objects()[0].T_world_obj[2, 3] > z0 + 0.07   # really lifted

    # dropped: open, then close on nothing
    for _ in range(20):
        env.step(Action(arm_positions=plan.q_lift, gripper_width=0.08))
    for _ in range(30):
        env.step(Action(arm_positions=plan.q_lift, gripper_width=0.0))
    pos, eff = _fingers(env)
    assert verify_grasp(pos, eff, 0.0, width) == (False, "missed")
