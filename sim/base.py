"""The holonomic base of :class:`~katazuke.sim.TidyEnv`: twist -> forces, dynamics, odometry.

The base is three virtual joints (``base_x``, ``base_y`` prismatic, ``base_yaw`` revolute;
:mod:`katazuke.sim.robot`) driven like a wheeled platform: the commanded twist is
rate-limited by the acceleration limits, then tracked by a proportional velocity loop
whose force is capped by floor traction (``mu * m * g``). Wheel odometry integrates the
true base-frame velocity with multiplicative noise (``odom_noise_lin``/``odom_noise_ang``
as fractions of speed), so it drifts while moving and not while standing still.
"""
from __future__ import annotations

import math

import numpy as np

from katazuke.sim.robot import BASE_JOINTS, RobotModel

__all__ = ["Base"]


class Base:
    """Base dynamics and odometry of one environment.

    Args:
        p: the ``pybullet`` module (constants).
        client: the environment's ``BulletClient``.
        config: the environment's :class:`~katazuke.sim.EnvConfig` (limits, gains, noise).
        dt: physics step, s.
    """

    def __init__(self, p, client, config, dt: float):
        self._p, self._client, self._config, self._dt = p, client, config, dt
        self.floor_mu = config.floor_friction  # traction coefficient (set_floor_friction)
        self.disturbance = np.zeros(2)         # constant world-frame push (fx, fy), N
        self.cmd_vel = np.zeros(3)             # current (acceleration-limited) twist, world
        self.odom = np.zeros(6)                # x, y, yaw, vx, vy, wz (base frame velocity)
        self.mass = 0.0
        self._uid = -1
        self._joints: list[int] = []
        self._base_link = -1
        self._odom_rng: np.random.Generator | None = None

    def reset(self, seed: int) -> None:
        """New episode: at rest, no push, odometry noise stream from ``seed``."""
        self.disturbance = np.zeros(2)
        self.cmd_vel = np.zeros(3)
        self._odom_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 9])))

    def attach(self, uid: int, robot: RobotModel) -> None:
        """Drive the base joints of the freshly loaded robot body ``uid``."""
        c = self._client
        self._uid = uid
        self._joints = [robot.index(n) for n in BASE_JOINTS]
        self._base_link = robot.link("base_link")
        self.mass = sum(c.getDynamicsInfo(uid, j)[0] for j in range(c.getNumJoints(uid)))

    # ------------------------------------------------------------------- state
    def true_state(self) -> np.ndarray:
        """``(6,)`` true ``x, y, yaw, vx, vy, wz`` (world-frame velocities)."""
        st = self._client.getJointStates(self._uid, self._joints)
        return np.array([st[0][0], st[1][0], st[2][0], st[0][1], st[1][1], st[2][1]])

    def velocity(self) -> np.ndarray:
        """True base twist ``(vx, vy, wz)`` in the base frame (m/s, m/s, rad/s)."""
        x, y, yaw, vx, vy, wz = self.true_state()
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([c * vx + s * vy, -s * vx + c * vy, wz])

    def set_pose(self, x: float, y: float, yaw: float) -> None:
        """Teleport to ``(x, y, yaw)`` at rest; odometry restarts there."""
        for j, v in zip(self._joints, (x, y, yaw)):
            self._client.resetJointState(self._uid, j, float(v), 0.0)
        self.cmd_vel = np.zeros(3)
        self.odom = np.array([x, y, yaw, 0.0, 0.0, 0.0])

    def start_odometry(self, x: float, y: float, yaw: float) -> None:
        """Start the odometry at ``(x, y, yaw)`` with zero velocity."""
        self.odom = np.array([x, y, yaw, 0.0, 0.0, 0.0])

    # ---------------------------------------------------------------- dynamics
    def apply_velocity(self, twist_base: np.ndarray, state: np.ndarray | None = None) -> None:
        """Set the base joint torques for one physics step tracking ``twist_base``.

        Args:
            twist_base: ``(3,)`` commanded ``(vx, vy, wz)`` in the base frame.
            state: the current :meth:`true_state` (read when None).
        """
        cfg, c = self._config, self._client
        x, y, yaw, vx, vy, wz = self.true_state() if state is None else state
        cy, sy = np.cos(yaw), np.sin(yaw)
        want = np.array([cy * twist_base[0] - sy * twist_base[1],
                         sy * twist_base[0] + cy * twist_base[1], twist_base[2]])
        dv = want - self.cmd_vel
        max_dv = cfg.base_max_lin_acc * self._dt
        n = np.hypot(dv[0], dv[1])
        if n > max_dv:
            dv[:2] *= max_dv / n
        dv[2] = np.clip(dv[2], -cfg.base_max_ang_acc * self._dt, cfg.base_max_ang_acc * self._dt)
        self.cmd_vel = self.cmd_vel + dv
        k = cfg.base_velocity_gain
        traction = self.floor_mu * self.mass * 9.81
        fx = self.mass * k * (self.cmd_vel[0] - vx)
        fy = self.mass * k * (self.cmd_vel[1] - vy)
        fn = math.hypot(fx, fy)
        if fn > traction:
            fx, fy = fx * traction / fn, fy * traction / fn
        # wheel traction also bounds the yaw torque (lever arm ~ half the wheel base)
        torque = min(max(cfg.base_yaw_inertia * k * (self.cmd_vel[2] - wz), -0.25 * traction),
                     0.25 * traction)
        for j, f in zip(self._joints, (fx, fy, torque)):
            c.setJointMotorControl2(self._uid, j, self._p.TORQUE_CONTROL, force=float(f))

    def push(self) -> None:
        """Apply the current disturbance force to the base body for one physics step."""
        if np.any(self.disturbance):
            c = self._client
            pos = c.getLinkState(self._uid, self._base_link)[0]
            c.applyExternalForce(self._uid, self._base_link, [*self.disturbance, 0.0], pos,
                                 self._p.WORLD_FRAME)

    def integrate_odometry(self, state: np.ndarray) -> None:
        """Advance the odometry by one physics step from the true ``state`` (6,)."""
        cfg = self._config
        x, y, yaw, vx_w, vy_w, wz = state
        c, s = np.cos(yaw), np.sin(yaw)
        v_base = np.array([c * vx_w + s * vy_w, -s * vx_w + c * vy_w, wz])
        r = self._odom_rng
        v_meas = v_base * (1 + np.array([r.normal(0, cfg.odom_noise_lin),
                                         r.normal(0, cfg.odom_noise_lin),
                                         r.normal(0, cfg.odom_noise_ang)]))
        ox, oy, oyaw = self.odom[:3]
        co, so = np.cos(oyaw), np.sin(oyaw)
        self.odom = np.array([ox + self._dt * (co * v_meas[0] - so * v_meas[1]),
                              oy + self._dt * (so * v_meas[0] + co * v_meas[1]),
                              oyaw + self._dt * v_meas[2], *v_meas])

    def odometry(self) -> tuple[float, float, float, float, float, float]:
        """Wheel-odometry ``(x, y, yaw, vx, vy, wz)``: yaw wrapped to (-pi, pi]."""
        o = self.odom
        return (float(o[0]), float(o[1]), float(np.arctan2(np.sin(o[2]), np.cos(o[2]))),
                float(o[3]), float(o[4]), float(o[5]))
