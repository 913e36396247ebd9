"""Arm kinematics from the robot URDF with Pinocchio: forward kinematics, Jacobian, IK.

:class:`ArmModel` parses the URDF's kinematic tree (no meshes), locks every joint that is
not an arm joint at a given value (``pinocchio.buildReducedModel``) and works in the
``base_frame`` (``base_link``): ``fk(q)`` is ``T_base_tip``, the pose of the ``tip_frame``
(``panda_grasptarget``, the point between the fingertips: z = approach direction, y =
closing axis) in ``base_link``.

IK (:meth:`ArmModel.solve_ik`) is damped least squares (Levenberg-Marquardt) on the SE(3)
log error ``log6(T_tip^-1 T_target)`` with the Jacobian of the log (``Jlog6``), joints
clamped to their URDF limits at every step, and restarts from random configurations drawn
with the caller's ``np.random.Generator`` when an attempt stalls. A top-down parallel-jaw
grasp is symmetric under a half turn about its approach axis; ``flip_yaw=True`` accepts the
target or the target turned by pi about its z and returns the solution nearer the seed.

An :class:`ArmModel` keeps one ``pinocchio.Data`` workspace: it is not thread-safe (one
model per thread).
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass as _plain_dataclass
from typing import Mapping, Sequence

import numpy as np

from katazuke.config import dataclass, field, in_range, non_negative, positive
from katazuke.errors import InputError
from katazuke.planning.manipulation.errors import IKError

__all__ = ["PANDA_ARM_JOINTS", "ArmModel", "IKConfig", "IKSolution", "as_pose"]

#: The Panda's seven arm joints, base to wrist.
PANDA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))

_FLIP_Z = np.diag([-1.0, -1.0, 1.0, 1.0])  # half turn about the tip's z (approach) axis


@dataclass(frozen=True)
class IKConfig:
    """Settings of the damped-least-squares IK (:meth:`ArmModel.solve_ik`)."""

    position_tolerance_m: float = positive(1e-3, "accepted tip position error (m)")
    rotation_tolerance_rad: float = positive(1e-2, "accepted tip rotation error (rad)")
    max_iterations: int = positive(60, "iterations per attempt (one seed)")
    damping: float = positive(1e-4, "Levenberg-Marquardt damping added to J J^T (the "
                                    "error-dependent term |e|^2 is added on top)")
    max_step_rad: float = positive(0.4, "largest joint change per iteration (rad, inf-norm)")
    restarts: int = field(default=30, metadata={
        "help": "random restarts after the seeded attempt fails (0 = seed only)",
        "check": "non_negative"})
    limit_margin_rad: float = non_negative(1e-3, "solutions stay this far inside the URDF "
                                                 "limits (rad)")
    stall_ratio: float = in_range(0.995, "an attempt is abandoned after 8 iterations whose "
                                  "error shrank by less than this factor each", 0.0, 1.0)
    seed: int = field(default=0, metadata={"help": "seed of the restart generator when the "
                                                   "caller passes no rng"})


@_plain_dataclass(frozen=True)
class IKSolution:
    """Result of :meth:`ArmModel.solve_ik`.

    Attributes:
        q: ``(7,)`` joint angles (rad), inside the limits.
        position_error_m: tip position error (m).
        rotation_error_rad: tip rotation error (rad).
        iterations: iterations over all attempts.
        attempts: attempts made (1 = the seed converged).
        flipped: the solution reaches the target turned by pi about its z axis.
    """

    q: np.ndarray
    position_error_m: float
    rotation_error_rad: float
    iterations: int
    attempts: int
    flipped: bool


def as_pose(T, name: str = "pose") -> np.ndarray:
    """Check and return a ``(4, 4)`` float64 rigid transform.

    Raises:
        InputError: wrong shape, non-finite values, or a rotation block that is not a rotation.
    """
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise InputError(f"{name} must be a finite (4, 4) homogeneous transform; got shape "
                         f"{T.shape}")
    R = T[:3, :3]
    if (not np.allclose(R.T @ R, np.eye(3), atol=1e-6) or np.linalg.det(R) < 0
            or not np.allclose(T[3], [0, 0, 0, 1])):
        raise InputError(f"{name}: the top-left 3x3 block must be a rotation matrix and the "
                         "last row [0, 0, 0, 1]")
    return T


class ArmModel:
    """Kinematics of a serial arm mounted on a robot described by a URDF.

    Args:
        urdf: a URDF file path or the URDF XML text (meshes are not loaded).
        base_frame: the frame every pose is expressed in (``base_link``).
        tip_frame: the frame IK places (``panda_grasptarget``).
        arm_joints: the joints that move, in order (``q`` follows this order).
        locked_positions: values of the other joints, by name (rad or m; missing ones are
            held at 0). They move frames between the root and ``base_frame`` only, so poses
            in ``base_frame`` do not depend on the base joints.

    Raises:
        InputError: the URDF cannot be read or parsed, or a frame / joint name is unknown.
    """

    def __init__(self, urdf: str | os.PathLike, base_frame: str = "base_link",
                 tip_frame: str = "panda_grasptarget",
                 arm_joints: Sequence[str] = PANDA_ARM_JOINTS,
                 locked_positions: Mapping[str, float] | None = None):
        import pinocchio as pin

        self._pin = pin
        self._xml = _read_urdf(urdf)
        try:
            full = pin.buildModelFromXML(self._xml)
        except (RuntimeError, ValueError) as e:
            raise InputError(f"ArmModel: Pinocchio could not parse the URDF: {e}") from e
        names = list(full.names)
        missing = [j for j in arm_joints if j not in names]
        if missing:
            raise InputError(f"ArmModel: arm joint(s) {missing} not in the URDF; its joints: "
                             f"{names[1:]}")
        locked_positions = dict(locked_positions or {})
        unknown = [j for j in locked_positions if j not in names]
        if unknown:
            raise InputError(f"ArmModel.locked_positions: unknown joint(s) {unknown}")
        q_ref = pin.neutral(full)
        for jname, v in locked_positions.items():
            jid = full.getJointId(jname)
            idx, nq = full.joints[jid].idx_q, full.joints[jid].nq
            if nq == 1:
                q_ref[idx] = float(v)
            elif nq == 2:  # continuous joint: (cos, sin)
                q_ref[idx:idx + 2] = np.cos(v), np.sin(v)
            else:
                raise InputError(f"ArmModel.locked_positions: joint {jname} has nq={nq}; only "
                                 "1-DoF joints can be given a value")
        lock = [full.getJointId(n) for n in names[1:] if n not in arm_joints]
        model = pin.buildReducedModel(full, lock, q_ref)
        if model.nq != len(arm_joints) or model.nv != len(arm_joints):
            raise InputError(f"ArmModel: arm joints {list(arm_joints)} must be 1-DoF revolute or "
                             f"prismatic joints (reduced model has nq={model.nq})")
        self.model = model
        self.data = model.createData()
        self.joint_names: tuple[str, ...] = tuple(model.names[1:])
        if self.joint_names != tuple(arm_joints):
            # buildReducedModel keeps tree order; the arm order must be base -> tip
            raise InputError(f"ArmModel: arm_joints must be listed base to tip as in the URDF "
                             f"tree: {self.joint_names}")
        self.base_frame, self.tip_frame = base_frame, tip_frame
        self._base_id = self.frame_id(base_frame)
        self._tip_id = self.frame_id(tip_frame)
        pin.framesForwardKinematics(model, self.data, pin.neutral(model))
        self._oMbase = self.data.oMf[self._base_id].copy()
        if self._frame_moves(self._base_id):
            raise InputError(f"ArmModel: base_frame {base_frame!r} moves with the arm joints; "
                             "pick a frame upstream of the arm")
        self._placements = [model.jointPlacements[j].homogeneous for j in range(model.njoints)]
        self._axes = _joint_axes(model)
        #: ``(7,)`` lower / upper joint limits (rad) from the URDF.
        self.lower = np.array(model.lowerPositionLimit, dtype=np.float64)
        self.upper = np.array(model.upperPositionLimit, dtype=np.float64)
        #: ``(7,)`` joint velocity limits (rad/s) from the URDF.
        self.velocity_limits = np.array(model.velocityLimit, dtype=np.float64)
        #: ``(7,)`` joint effort limits (N m) from the URDF.
        self.effort_limits = np.array(model.effortLimit, dtype=np.float64)
        if not np.all(np.isfinite(self.lower) & np.isfinite(self.upper)) or np.any(
                self.lower >= self.upper):
            raise InputError(f"ArmModel: every arm joint needs finite URDF limits lower < upper; "
                             f"got {self.lower} .. {self.upper}")

    # ------------------------------------------------------------------ basics
    @property
    def T_root_base(self) -> np.ndarray:
        """``(4, 4)`` pose of ``base_frame`` in the model's root frame (fixed: the locked
        joints do not move)."""
        return self._oMbase.homogeneous.copy()

    @property
    def n(self) -> int:
        """Number of arm joints."""
        return len(self.joint_names)

    def frame_id(self, name: str) -> int:
        """Pinocchio frame index of a URDF link or joint name.

        Raises:
            InputError: unknown name.
        """
        if not self.model.existFrame(name):
            raise InputError(f"ArmModel: no frame {name!r} in the URDF; frames: "
                             f"{[f.name for f in self.model.frames]}")
        return int(self.model.getFrameId(name))

    def _frame_moves(self, fid: int) -> bool:
        return int(self.model.frames[fid].parentJoint) != 0

    def check_q(self, q, name: str = "q") -> np.ndarray:
        """Check a ``(n,)`` joint vector (finite) and return it as float64.

        Raises:
            InputError: wrong shape or non-finite values.
        """
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (self.n,) or not np.all(np.isfinite(q)):
            raise InputError(f"{name} must be {self.n} finite joint values ({', '.join(self.joint_names)}); "
                             f"got shape {q.shape}")
        return q

    def within_limits(self, q, tol: float = 1e-9) -> bool:
        """Whether ``q`` ``(n,)`` lies inside the URDF joint limits (with ``tol`` rad)."""
        q = self.check_q(q)
        return bool(np.all(q >= self.lower - tol) and np.all(q <= self.upper + tol))

    def clip(self, q, margin: float = 0.0) -> np.ndarray:
        """``q`` clamped into ``[lower + margin, upper - margin]``."""
        return np.clip(self.check_q(q), self.lower + margin, self.upper - margin)

    def random_configuration(self, rng: np.random.Generator, size: int | None = None
                             ) -> np.ndarray:
        """Uniform joint vector(s) in the limits: ``(n,)`` or ``(size, n)``."""
        shape = (self.n,) if size is None else (int(size), self.n)
        return rng.uniform(self.lower, self.upper, size=shape)

    # --------------------------------------------------------------- kinematics
    def _forward(self, q: np.ndarray) -> None:
        pin = self._pin
        pin.forwardKinematics(self.model, self.data, q)

    def _base_pose(self, fid: int) -> np.ndarray:
        self._pin.updateFramePlacement(self.model, self.data, fid)
        return (self._oMbase.actInv(self.data.oMf[fid])).homogeneous

    def fk(self, q) -> np.ndarray:
        """Tip pose ``T_base_tip`` ``(4, 4)`` for joint angles ``q`` ``(n,)`` (rad)."""
        q = self.check_q(q)
        self._forward(q)
        return self._base_pose(self._tip_id)

    def frame_poses(self, q, frames: Sequence[str | int]) -> np.ndarray:
        """Poses ``T_base_frame`` ``(F, 4, 4)`` of several frames (names or ids) at ``q``."""
        q = self.check_q(q)
        ids = [f if isinstance(f, (int, np.integer)) else self.frame_id(f) for f in frames]
        self._forward(q)
        return np.stack([self._base_pose(int(i)) for i in ids]) if ids else np.zeros((0, 4, 4))

    def jacobian(self, q) -> np.ndarray:
        """Tip Jacobian ``(6, n)`` in ``base_frame`` axes: rows ``[v (m/s), w (rad/s)]``.

        ``v`` is the velocity of the tip origin and ``w`` the angular velocity, both
        expressed in the base frame, per unit joint rate.
        """
        pin = self._pin
        q = self.check_q(q)
        J = pin.computeFrameJacobian(self.model, self.data, q, self._tip_id,
                                     pin.ReferenceFrame.LOCAL_WORLD_ALIGNED)
        R = self._oMbase.rotation.T
        return np.vstack([R @ J[:3], R @ J[3:]])

    def joint_poses(self, Q) -> np.ndarray:
        """World poses of every joint frame (Pinocchio's ``oMi``) for many configurations.

        Vectorised over configurations (numpy) when every arm joint is a revolute or
        prismatic joint about a frame axis, which is the case for URDF joints with an axis
        along x, y or z; otherwise a loop over Pinocchio's forward kinematics.

        Args:
            Q: ``(M, n)`` joint angles (rad).

        Returns:
            ``(M, njoints, 4, 4)``; index 0 is the universe (identity), index i the i-th arm
            joint (the model's own root frame, not ``base_frame``).
        """
        Q = np.asarray(Q, dtype=np.float64).reshape(-1, self.n)
        model = self.model
        M, nj = len(Q), model.njoints
        out = np.empty((M, nj, 4, 4))
        out[:, 0] = np.eye(4)
        if self._axes is None:
            for m, qm in enumerate(Q):
                self._pin.forwardKinematics(model, self.data, qm)
                for j in range(1, nj):
                    out[m, j] = self.data.oMi[j].homogeneous
            return out
        for j in range(1, nj):
            kind, axis = self._axes[j - 1]
            q = Q[:, model.joints[j].idx_q]
            J = np.broadcast_to(self._placements[j], (M, 4, 4)).copy()
            if kind == "R":
                c, s = np.cos(q), np.sin(q)
                a, b = [(1, 2), (2, 0), (0, 1)][axis]
                Rm = np.zeros((M, 3, 3))
                Rm[:, axis, axis] = 1.0
                Rm[:, a, a], Rm[:, a, b], Rm[:, b, a], Rm[:, b, b] = c, -s, s, c
                J[:, :3, :3] = J[:, :3, :3] @ Rm
            else:
                J[:, :3, 3] += J[:, :3, axis] * q[:, None]
            out[:, j] = out[:, int(model.parents[j])] @ J
        return out

    # ----------------------------------------------------------------------- IK
    def ik(self, T_base_tip_target, q_seed, config: IKConfig | None = None,
           rng: np.random.Generator | None = None, flip_yaw: bool = False) -> np.ndarray:
        """Joint angles ``(n,)`` reaching ``T_base_tip_target``; see :meth:`solve_ik`."""
        return self.solve_ik(T_base_tip_target, q_seed, config, rng, flip_yaw).q

    def solve_ik(self, T_base_tip_target, q_seed, config: IKConfig | None = None,
                 rng: np.random.Generator | None = None, flip_yaw: bool = False
                 ) -> IKSolution:
        """Solve IK: the joint angles placing the tip frame at a target pose.

        Args:
            T_base_tip_target: ``(4, 4)`` target pose of the tip in the base frame (m).
            q_seed: ``(n,)`` start of the first attempt (rad); the solution found from it is
                usually the one nearest to it.
            config: :class:`IKConfig` (defaults when None).
            rng: generator of the restart configurations (default: one seeded with
                ``config.seed``).
            flip_yaw: also accept the target turned by pi about its own z axis (symmetric
                parallel-jaw grasps); the solution nearer ``q_seed`` is returned.

        Returns:
            An :class:`IKSolution` within tolerance and joint limits.

        Raises:
            IKError: no attempt met the tolerances (with the best errors found).
            InputError: malformed target or seed.
        """
        cfg = config or IKConfig()
        T = as_pose(T_base_tip_target, "T_base_tip_target")
        seed = self.clip(self.check_q(q_seed, "q_seed"), cfg.limit_margin_rad)
        rng = rng if rng is not None else np.random.default_rng(cfg.seed)
        targets = [(T, False)] + ([(T @ _FLIP_Z, True)] if flip_yaw else [])
        found: list[IKSolution] = []
        best = (np.inf, np.inf)
        iters = attempts = 0
        starts = [seed]
        for k in range(cfg.restarts + 1):
            if k >= len(starts):
                starts.append(self.random_configuration(rng))
            for Tt, flipped in targets:
                if any(s.flipped == flipped for s in found):
                    continue
                q, pe, re, it = self._dls(Tt, starts[k], cfg)
                iters += it
                attempts += 1
                if pe <= cfg.position_tolerance_m and re <= cfg.rotation_tolerance_rad:
                    found.append(IKSolution(q, pe, re, iters, attempts, flipped))
                elif pe + re < best[0] + best[1]:
                    best = (pe, re)
            if len(found) == len(targets) or (found and k > 0):
                break
        if not found:
            raise IKError(f"IK: no joint configuration within the limits reaches the target "
                          f"(position {T[:3, 3].round(3).tolist()} m in {self.base_frame}) after "
                          f"{attempts} attempts; best error {best[0] * 1000:.1f} mm / "
                          f"{best[1]:.3f} rad. Move the base closer or choose another pose.",
                          best[0], best[1])
        sol = min(found, key=lambda s: float(np.sum((s.q - seed) ** 2)))
        return IKSolution(sol.q, sol.position_error_m, sol.rotation_error_rad, iters, attempts,
                          sol.flipped)

    def _dls(self, T_target: np.ndarray, q0: np.ndarray, cfg: IKConfig
             ) -> tuple[np.ndarray, float, float, int]:
        """One damped-least-squares attempt from ``q0``: ``(q, pos_err, rot_err, iters)``."""
        pin = self._pin
        model, data, fid = self.model, self.data, self._tip_id
        oMdes = self._oMbase * pin.SE3(T_target[:3, :3].copy(), T_target[:3, 3].copy())
        lo, hi = self.lower + cfg.limit_margin_rad, self.upper - cfg.limit_margin_rad
        q = np.clip(q0, lo, hi)
        eye6 = np.eye(6)
        pe = re = np.inf
        prev = np.inf
        slow = 0
        it = 0
        for it in range(1, cfg.max_iterations + 1):
            pin.forwardKinematics(model, data, q)
            pin.updateFramePlacement(model, data, fid)
            iMd = data.oMf[fid].actInv(oMdes)
            err = pin.log6(iMd).vector
            pe = float(np.linalg.norm(oMdes.translation - data.oMf[fid].translation))
            re = float(np.linalg.norm(err[3:]))
            if pe <= cfg.position_tolerance_m and re <= cfg.rotation_tolerance_rad:
                return q, pe, re, it
            e2 = float(err @ err)
            slow = slow + 1 if e2 > prev * cfg.stall_ratio ** 2 else 0
            if slow >= 8:
                break
            prev = min(prev, e2)
            J = pin.computeFrameJacobian(model, data, q, fid, pin.ReferenceFrame.LOCAL)
            J = pin.Jlog6(iMd.inverse()) @ J
            dq = J.T @ np.linalg.solve(J @ J.T + (cfg.damping + e2) * eye6, err)
            m = float(np.max(np.abs(dq)))
            if m > cfg.max_step_rad:
                dq *= cfg.max_step_rad / m
            q = np.clip(q + dq, lo, hi)
        return q, pe, re, it

    # --------------------------------------------------------------- geometry
    def static_collision_boxes(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Axis-aligned boxes of the URDF's box collision shapes that do not move with the arm.

        The robot's own body (the base box) as obstacles for the arm, in ``base_frame``.

        Returns:
            ``[(link, lo (3,), hi (3,))]`` corners in the base frame (m).
        """
        out = []
        root = ET.fromstring(self._xml)
        for link in root.iter("link"):
            name = link.get("name")
            if not self.model.existFrame(name) or self._frame_moves(self.frame_id(name)):
                continue
            self._pin.updateFramePlacement(self.model, self.data, self.frame_id(name))
            T_base_link = self._oMbase.actInv(self.data.oMf[self.frame_id(name)]).homogeneous
            for col in link.findall("collision"):
                box = col.find("geometry/box")
                if box is None:
                    continue
                size = np.array([float(v) for v in box.get("size").split()])
                T_link_col = _origin(col.find("origin"))
                T = T_base_link @ T_link_col
                corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1)
                                    for sz in (-1, 1)]) * size / 2
                pts = corners @ T[:3, :3].T + T[:3, 3]
                out.append((name, pts.min(axis=0), pts.max(axis=0)))
        return out


def _joint_axes(model) -> list[tuple[str, int]] | None:
    """``[(kind 'R'|'P', axis 0..2)]`` per joint when all are axis-aligned 1-DoF joints."""
    out = []
    for j in range(1, model.njoints):
        name = model.joints[j].shortname()
        if len(name) == len("JointModelRZ") and name[:-2] == "JointModel" and name[-2] in "RP" \
                and name[-1] in "XYZ":
            out.append((name[-2], "XYZ".index(name[-1])))
        else:
            return None
    return out


def _read_urdf(urdf: str | os.PathLike) -> str:
    s = os.fspath(urdf)
    if "<robot" in s:
        return s
    try:
        with open(s, encoding="utf-8") as fh:
            return fh.read()
    except OSError as e:
        raise InputError(f"ArmModel: cannot read the URDF file {s!r} ({e}); pass a path or "
                         "the XML text") from e


def _origin(el) -> np.ndarray:
    """``(4, 4)`` transform of a URDF ``<origin xyz rpy>`` element (identity when absent)."""
    T = np.eye(4)
    if el is None:
        return T
    xyz = [float(v) for v in el.get("xyz", "0 0 0").split()]
    r, p, y = [float(v) for v in el.get("rpy", "0 0 0").split()]
    cr, sr, cp, sp, cy, sy = np.cos(r), np.sin(r), np.cos(p), np.sin(p), np.cos(y), np.sin(y)
    T[:3, :3] = np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                          [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                          [-sp, cp * sr, cp * cr]])
    T[:3, 3] = xyz
    return T
