"""Command validation of the ``sim_bridge`` node: what the robot is told to do, checked.

:class:`SimCommands` holds the newest valid commands of the simulated robot (base twist,
arm, gripper and head targets, and the simulation-only push and floor friction), written
by the node's command handlers (called once per tick by the simulation thread, see
:class:`katazuke_ros.command_inputs.CommandInputs`) and read by it under one lock.
Bad commands (NaN, unknown joint, wrong length, out of limits) are rejected with a reason:
logged (rate-limited per kind by :class:`Throttle`), counted in :attr:`SimCommands.rejected`
and announced through the node's callback (``sim_bridge/rejected``); the previous valid
targets stay. Velocities over the limits are clipped with a warning. A target the bridge
cannot check itself is stepped as a *candidate* (:class:`Targets`) and dropped when the
simulator refuses it.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable

import numpy as np
from geometry_msgs.msg import Twist, Vector3
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory

from katazuke.errors import KatazukeError
from katazuke_interfaces.msg import GripperCommand
from katazuke_ros.command_inputs import Throttle  # re-exported: its home before

__all__ = ["SimCommands", "Targets", "Throttle"]


class Targets:
    """Command targets of one actuator.

    ``accepted`` has been stepped by the simulator without complaint; ``candidate`` is
    the newest command, not yet stepped. Each new candidate gets a new ``version`` so a
    step only accepts (or drops) the candidate it actually used, never one that arrived
    while it ran.
    """

    def __init__(self) -> None:
        self.accepted: Any = None
        self.candidate: Any = None
        self.version = 0
        self.source = ""

    def propose(self, value: Any, source: str) -> None:
        self.candidate, self.source = value, source
        self.version += 1

    def current(self) -> tuple[Any, int | None]:
        """The value to step with and the candidate version it is (None: the accepted one)."""
        if self.candidate is not None:
            return self.candidate, self.version
        return self.accepted, None

    def settle(self, value: Any, version: int | None, ok: bool) -> str | None:
        """After a step that used candidate ``value`` (``version``): accept it (``ok``) or
        drop it. Returns the command's source when a candidate was dropped."""
        if version is None:
            return None
        used_is_newest = self.version == version
        if ok:
            # the used candidate was valid even if a newer one is already waiting
            self.accepted = value
            if used_is_newest:
                self.candidate = None
            return None
        if used_is_newest:
            self.candidate = None
        return self.source


class SimCommands:
    """The robot's command state, validated against the simulator's joints and limits.

    Args:
        env: the simulator (:class:`katazuke.sim.TidyEnv` API): ``joint_names``,
            ``joint_state()``, ``time``; optional ``robot.joints`` (URDF limits),
            ``config.base_max_lin_vel``/``base_max_ang_vel``, ``set_base_disturbance``,
            ``set_floor_friction``.
        cmd_timeout_s: the base stops when no ``cmd_vel`` arrived for this long (sim s).
        max_linear_speed, max_angular_speed: base limits (m/s, rad/s); the env's own
            limits win when lower.
        throttle: rate-limited warning log.
        announce: publishes one ``"kind: reason"`` rejection line.
        info: logs one info line (push and friction changes).

    Raises:
        KatazukeError: the env does not have 7 arm joints and 2 head joints.
    """

    def __init__(self, env: Any, cmd_timeout_s: float, max_linear_speed: float,
                 max_angular_speed: float, throttle: Throttle, announce: Callable[[str], Any],
                 info: Callable[[str], Any]) -> None:
        self.env = env
        self._timeout = cmd_timeout_s
        self._log, self._announce, self._info = throttle, announce, info
        self.lock = threading.Lock()
        self.rejected: dict[str, int] = {}
        self._twist = (0.0, 0.0, 0.0)
        self._twist_time = -math.inf  # sim time of the newest cmd_vel
        self.arm, self.gripper, self.head = Targets(), Targets(), Targets()
        # simulation-only inputs, applied by the loop thread before its next step (the
        # simulator's client is not thread-safe): None = nothing new
        self._pending_force: tuple[float, float] | None = None
        self._pending_friction: float | None = None
        self._applied_force: tuple[float, float] = (0.0, 0.0)
        self._applied_friction: float | None = None
        self._setup_joints(max_linear_speed, max_angular_speed)

    def _setup_joints(self, max_linear_speed: float, max_angular_speed: float) -> None:
        env = self.env
        names = list(env.joint_names)
        self.joint_names = names
        self.head_joints = [n for n in names if "head" in n]
        self.arm_joints = [n for n in names if n not in self.head_joints
                           and "finger" not in n][:7]
        if len(self.arm_joints) != 7 or len(self.head_joints) != 2:
            raise KatazukeError(
                f"sim_bridge expects 7 arm joints and 2 head joints (pan, tilt) in "
                f"env.joint_names, got {names}")
        pos, _, _ = env.joint_state()
        pos = np.asarray(pos, dtype=np.float64)
        index = {n: i for i, n in enumerate(names)}
        self._initial_arm = pos[[index[n] for n in self.arm_joints]].copy()
        self._initial_head = pos[[index[n] for n in self.head_joints]].copy()
        # {name: (lower, upper)} from the URDF when the env exposes its robot model;
        # the env's own check (SimError at step time) stays as the last line of defence.
        self.limits: dict[str, tuple[float, float]] = {}
        joints = getattr(getattr(env, "robot", None), "joints", None) or {}
        for n in self.arm_joints + self.head_joints:
            if n in joints:
                self.limits[n] = (float(joints[n].lower), float(joints[n].upper))
        fingers = [joints[n] for n in names if "finger" in n and n in joints]
        # parallel gripper: the opening is the sum of the two finger travels
        self._gripper_max = (sum(float(j.upper) for j in fingers) if len(fingers) == 2
                             else None)
        env_cfg = getattr(env, "config", None)
        self.max_lin = min(max_linear_speed, float(getattr(env_cfg, "base_max_lin_vel", math.inf)))
        self.max_ang = min(max_angular_speed, float(getattr(env_cfg, "base_max_ang_vel", math.inf)))

    # ----------------------------------------------------------------- reject
    def reject(self, kind: str, reason: str) -> None:
        """Count, log (rate-limited) and announce one rejected command."""
        self.rejected[kind] = self.rejected.get(kind, 0) + 1
        self._log.warn(kind, f"rejected {kind}: {reason}")
        self._announce(f"{kind}: {reason}")

    # -------------------------------------------------------------- callbacks
    def on_cmd_vel(self, msg: Twist) -> None:
        v = (msg.linear.x, msg.linear.y, msg.angular.z)
        if not all(math.isfinite(c) for c in v):
            self.reject("cmd_vel", f"non-finite velocity (vx, vy, wz) = {v}; base stopped")
            with self.lock:
                self._twist, self._twist_time = (0.0, 0.0, 0.0), self.env.time
            return
        ignored = (msg.linear.z, msg.angular.x, msg.angular.y)
        if any(abs(c) > 1e-9 for c in ignored):
            self._log.warn("cmd_vel_3d", f"cmd_vel linear.z/angular.x/angular.y = {ignored} "
                                         "ignored: the base is planar")
        vx, vy, wz = v
        speed = math.hypot(vx, vy)
        vmax, wmax = self.max_lin, self.max_ang
        if speed > vmax:
            self._log.warn("cmd_vel_clip", f"cmd_vel |v| = {speed:.3f} m/s over the limit "
                                           f"{vmax:g} m/s: clipped (parameter max_linear_speed)")
            vx, vy = vx * vmax / speed, vy * vmax / speed
        if abs(wz) > wmax:
            self._log.warn("cmd_vel_clip_w", f"cmd_vel |wz| = {abs(wz):.3f} rad/s over the limit "
                                             f"{wmax:g} rad/s: clipped (parameter max_angular_speed)")
            wz = math.copysign(wmax, wz)
        with self.lock:
            self._twist, self._twist_time = (vx, vy, wz), self.env.time

    def _trajectory_targets(self, kind: str, msg: JointTrajectory, joints: list[str],
                            base: np.ndarray) -> np.ndarray | None:
        """Merge the last point of ``msg`` into ``base``; None (and a rejection) if invalid."""
        names = list(msg.joint_names)
        if not names:
            self.reject(kind, "empty joint_names")
            return None
        unknown = [n for n in names if n not in joints]
        if unknown:
            self.reject(kind, f"unknown joint name(s) {unknown}; valid: {joints}")
            return None
        if len(set(names)) != len(names):
            self.reject(kind, f"duplicate joint names {names}")
            return None
        if not msg.points:
            self.reject(kind, "no trajectory points")
            return None
        pos = list(msg.points[-1].positions)
        if len(pos) != len(names):
            self.reject(kind, f"{len(pos)} positions for {len(names)} joint names "
                              "(the last point's positions must match joint_names)")
            return None
        if not all(math.isfinite(p) for p in pos):
            self.reject(kind, f"non-finite joint position(s) {pos}")
            return None
        out = base.copy()
        for n, p in zip(names, pos):
            lim = self.limits.get(n)
            if lim is not None and not (lim[0] <= p <= lim[1]):
                self.reject(kind, f"{n} target {p:.4f} rad outside its limits "
                                  f"[{lim[0]:.4f}, {lim[1]:.4f}]")
                return None
            out[joints.index(n)] = p
        return out

    def on_arm(self, msg: JointTrajectory) -> None:
        with self.lock:
            base = self.arm.current()[0]
        base = self._initial_arm if base is None else base
        target = self._trajectory_targets("arm/command", msg, self.arm_joints, base)
        if target is not None:
            with self.lock:
                self.arm.propose(target, "arm/command")

    def on_head(self, msg: JointTrajectory) -> None:
        with self.lock:
            base = self.head.current()[0]
        base = self._initial_head if base is None else base
        target = self._trajectory_targets("head/command", msg, self.head_joints, base)
        if target is not None:
            with self.lock:
                self.head.propose(target, "head/command")

    def on_gripper(self, msg: GripperCommand) -> None:
        w = float(msg.position)  # finger opening, m (control_msgs/GripperCommand layout)
        if not math.isfinite(w) or w < 0.0:
            self.reject("gripper/command", f"position {w} must be a finite finger opening "
                                           ">= 0 (metres)")
            return
        max_w = self._gripper_max
        if max_w is not None and w > float(max_w) + 1e-9:
            self.reject("gripper/command", f"position {w:.4f} m over the gripper's maximum "
                                           f"opening {float(max_w):.4f} m")
            return
        with self.lock:
            self.gripper.propose(w, "gripper/command")

    def on_base_force(self, msg: Vector3) -> None:
        f = (float(msg.x), float(msg.y))
        if not all(math.isfinite(c) for c in f) or not hasattr(self.env, "set_base_disturbance"):
            self.reject("sim/disturbance/base_force",
                        f"(fx, fy) = {f} N must be finite and the simulator must support pushes")
            return
        if abs(msg.z) > 1e-9:
            self._log.warn("force_z", f"sim/disturbance/base_force z = {msg.z} N ignored: "
                                      "pushes are planar (x, y, world frame)")
        with self.lock:
            self._pending_force = f

    def on_friction(self, msg: Float64) -> None:
        mu = float(msg.data)
        if not (math.isfinite(mu) and 0.0 <= mu <= 2.0) or not hasattr(self.env,
                                                                      "set_floor_friction"):
            self.reject("sim/friction", f"friction {mu} must be a finite coefficient in "
                                        "[0, 2] and the simulator must support it")
            return
        with self.lock:
            self._pending_friction = mu

    # ------------------------------------------------------------ loop thread
    def apply_sim_inputs(self) -> None:
        """Hand the newest push and floor friction to the simulator (loop thread only)."""
        with self.lock:
            force, mu = self._pending_force, self._pending_friction
            self._pending_force = self._pending_friction = None
        if force is not None:
            self.env.set_base_disturbance(force)
            if force != self._applied_force:
                self._info(f"base push set to ({force[0]:.1f}, {force[1]:.1f}) N (world frame)")
            self._applied_force = force
        if mu is not None:
            self.env.set_floor_friction(mu)
            if mu != self._applied_friction:
                self._info(f"floor friction set to {mu:g}")
            self._applied_friction = mu

    def action(self, accepted_only: bool = False) -> tuple[Any, list[tuple[Any, int | None]]]:
        """The :class:`katazuke.sim.Action` for the next step and the (value, candidate
        version) of the arm, gripper and head targets it uses (for :meth:`settle`)."""
        from katazuke.sim import Action

        with self.lock:
            twist = self._twist
            if self.env.time - self._twist_time > self._timeout:
                twist = (0.0, 0.0, 0.0)
            picks = [(t.accepted, None) if accepted_only else t.current()
                     for t in (self.arm, self.gripper, self.head)]
        (arm, _), (grip, _), (head, _) = picks
        action = Action(base_twist=twist,
                        arm_positions=None if arm is None else np.asarray(arm, dtype=np.float64),
                        gripper_width=grip,
                        head_pan_tilt=None if head is None else (float(head[0]), float(head[1])))
        return action, picks

    def settle(self, used: list[tuple[Any, int | None]], ok: bool) -> list[str]:
        """After a step with :meth:`action`'s ``used`` targets: accept them (``ok``) or drop
        them. Returns the sources of the dropped candidates."""
        with self.lock:
            dropped = [t.settle(*u, ok=ok) for t, u in zip((self.arm, self.gripper, self.head),
                                                           used)]
        return [d for d in dropped if d]

    def step(self) -> None:
        """Step the simulator once with the newest commands (loop thread only).

        A target the simulator refuses (``SimError``: one the bridge could not check itself)
        is dropped and rejected, and the step is taken with the last valid targets.
        """
        from katazuke.sim import SimError

        self.apply_sim_inputs()
        action, used = self.action()
        try:
            self.env.step(action)
        except SimError as exc:
            dropped = self.settle(used, ok=False)
            self.reject(dropped[0] if len(dropped) == 1 else "command",
                        f"the simulator refused it: {exc}")
            self.env.step(self.action(accepted_only=True)[0])
            return
        self.settle(used, ok=True)
