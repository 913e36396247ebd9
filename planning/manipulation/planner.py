"""Collision-free joint paths: straight line first, OMPL RRT-Connect when it collides.

:class:`MotionPlanner` checks the straight joint-space segment start -> goal with the
:class:`~katazuke.planning.manipulation.collision.CollisionChecker`; only when it collides it
runs OMPL's RRT-Connect (``ompl.geometric``, Python bindings of PyPI ``ompl``) in the 7-D
joint box of the URDF limits, with the checker as state validity checker and a motion
validator that checks a whole segment in one vectorised call (at the checker's
``path_resolution_m``), then a greedy shortcut of the path (:func:`shortcut`;
OMPL's own simplifier optionally first) and a final dense re-check.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass as _plain_dataclass

import numpy as np

from katazuke.config import dataclass, field, positive
from katazuke.planning.manipulation.collision import CollisionChecker
from katazuke.planning.manipulation.errors import PlanningError

__all__ = ["PlannerConfig", "PlanResult", "MotionPlanner", "shortcut"]


@dataclass(frozen=True)
class PlannerConfig:
    """Settings of :class:`MotionPlanner`."""

    time_limit_s: float = positive(2.0, "OMPL planning time budget per attempt (wall s)")
    attempts: int = positive(2, "planning attempts before giving up")
    ompl_simplify: bool = field(default=False, metadata={
        "help": "run OMPL's path simplifier (SimpleSetup.simplifySolution) before our greedy "
                "shortcut; measured 0.3-0.6 s per path here, the greedy pass alone ~20 ms"})
    simplify_time_s: float = positive(0.1, "budget of OMPL's path simplifier (wall s)")
    range_rad: float = field(default=0.0, metadata={
        "help": "RRT-Connect extension length in joint space (rad; 0 = OMPL's default, 20 % "
                "of the space extent)", "check": "non_negative"})
    try_direct: bool = field(default=True, metadata={
        "help": "return the straight joint segment when it is collision free"})
    start_escape_rad: float = field(default=0.0, metadata={
        "help": "when the start collides (a held object's sphere touching the body model, a "
                "perceived point inside the gripper), start from the nearest free "
                "configuration within this joint distance (max over joints, rad): first along "
                "the straight segment to the goal, then among random samples (MoveIt's "
                "'fix start state collision'); 0 = fail", "check": "non_negative"})
    start_escape_samples: int = positive(300, "random samples of the start escape")


@_plain_dataclass(frozen=True)
class PlanResult:
    """A collision-free joint path.

    Attributes:
        path: ``(N, n)`` waypoints (rad), ``path[0]`` = start, ``path[-1]`` = goal; straight
            joint-space segments between them are collision free (but the first one of an
            escape, which leaves the colliding start).
        planner: ``"direct"`` or ``"rrtconnect"``, with ``"+escape"`` when the start
            collided and the path begins with the step out of collision
            (``start_escape_rad``).
        planning_time_s: wall time spent (s), checks and simplification included.
    """

    path: np.ndarray
    planner: str
    planning_time_s: float


class MotionPlanner:
    """Plans joint paths for one arm against the checker's current obstacles.

    Args:
        checker: the :class:`CollisionChecker` (its obstacles may be replaced between plans).
        config: :class:`PlannerConfig`.
    """

    def __init__(self, checker: CollisionChecker, config: PlannerConfig | None = None):
        self.checker = checker
        self.config = config or PlannerConfig()

    def plan(self, q_start, q_goal) -> PlanResult:
        """A collision-free joint path from ``q_start`` to ``q_goal`` (each ``(n,)``, rad).

        Args:
            q_start: start configuration.
            q_goal: goal configuration.

        OMPL samples with its process-wide generator, which can be seeded only before its
        first use, so RRT-Connect paths differ from call to call (the direct path does not).

        Raises:
            PlanningError: start or goal collide (naming the links) or is outside the limits,
                or no path was found within the attempts.
        """
        t0 = time.perf_counter()
        arm, cc, cfg = self.checker.arm, self.checker, self.config
        qs = arm.check_q(q_start, "q_start")
        qg = arm.check_q(q_goal, "q_goal")
        q_from = None          # the colliding start, when an escape replaced it
        for name, q in (("start", qs), ("goal", qg)):
            if not arm.within_limits(q, tol=1e-6):
                raise PlanningError(f"plan: the {name} configuration is outside the joint limits")
            if not cc.is_collision_free(np.clip(q, arm.lower, arm.upper)):
                if name == "start" and cfg.start_escape_rad > 0:
                    qe = self._escape(np.clip(q, arm.lower, arm.upper), qg)
                    if qe is not None:
                        q_from, qs = np.clip(q, arm.lower, arm.upper), qe
                        continue
                raise PlanningError(f"plan: the {name} configuration collides "
                                    f"({', '.join(cc.colliding_links(q)) or 'limits'}); "
                                    "move it clear of the obstacles first")
        qs, qg = np.clip(qs, arm.lower, arm.upper), np.clip(qg, arm.lower, arm.upper)

        def done(path: np.ndarray, how: str) -> PlanResult:
            if q_from is not None:
                path, how = np.vstack([q_from[None], path]), how + "+escape"
            return PlanResult(path, how, time.perf_counter() - t0)
        if cfg.try_direct and cc.path_collision_free(np.stack([qs, qg])):
            return done(np.stack([qs, qg]), "direct")
        for _ in range(cfg.attempts):
            path = self._rrt_connect(qs, qg)
            if path is not None and cc.path_collision_free(path):
                path[0], path[-1] = qs, qg
                return done(path, "rrtconnect")
        raise PlanningError(f"plan: RRT-Connect found no collision-free path in "
                            f"{cfg.attempts} x {cfg.time_limit_s} s; the goal may be walled in "
                            "by obstacles (check the obstacle model) or choose another goal")

    def _escape(self, qs: np.ndarray, qg: np.ndarray) -> np.ndarray | None:
        """The nearest collision-free configuration within ``start_escape_rad`` of a colliding
        start: along the straight segment to the goal, else the nearest of random samples."""
        arm, cc, cfg = self.checker.arm, self.checker, self.config
        r = cfg.start_escape_rad
        d = qg - qs
        span = float(np.max(np.abs(d)))
        if span > 0:
            for f in np.linspace(0.0, min(1.0, r / span), 12)[1:]:
                q = qs + f * d
                if cc.is_collision_free(q):
                    return q
        rng = np.random.default_rng(0)    # deterministic: the same start escapes the same way
        qq = np.clip(qs + rng.uniform(-r, r, (cfg.start_escape_samples, arm.n)), arm.lower,
                     arm.upper)
        order = np.argsort(np.max(np.abs(qq - qs), axis=1))
        for q in qq[order]:
            if cc.is_collision_free(q):
                return q
        return None

    def _rrt_connect(self, qs: np.ndarray, qg: np.ndarray) -> np.ndarray | None:
        from ompl import base as ob
        from ompl import geometric as og
        from ompl import util as ou

        arm, cc, cfg = self.checker.arm, self.checker, self.config
        ou.setLogLevel(ou.LogLevel.LOG_WARN)
        n = arm.n
        space = ob.RealVectorStateSpace(n)
        bounds = ob.RealVectorBounds(n)
        for i in range(n):
            bounds.setLow(i, float(arm.lower[i]))
            bounds.setHigh(i, float(arm.upper[i]))
        space.setBounds(bounds)
        ss = og.SimpleSetup(space)

        def valid(state) -> bool:
            return bool(cc.is_collision_free(np.array([state[i] for i in range(n)])))

        ss.setStateValidityChecker(valid)
        si = ss.getSpaceInformation()
        validator = _motion_validator_class()(si, cc, n)
        si.setMotionValidator(validator)
        start, goal = space.allocState(), space.allocState()
        for i in range(n):
            start[i], goal[i] = float(qs[i]), float(qg[i])
        ss.setStartAndGoalStates(start, goal)
        planner = og.RRTConnect(si)
        if cfg.range_rad > 0:
            planner.setRange(cfg.range_rad)
        ss.setPlanner(planner)
        ss.solve(cfg.time_limit_s)
        if not ss.haveExactSolutionPath():
            return None
        if cfg.ompl_simplify:
            ss.simplifySolution(cfg.simplify_time_s)
        p = ss.getSolutionPath()
        path = np.array([[p.getState(k)[i] for i in range(n)] for k in range(p.getStateCount())])
        return shortcut(path, cc)


def shortcut(path: np.ndarray, checker: CollisionChecker) -> np.ndarray:
    """Greedy shortcut of a collision-free joint path ``(N, n) -> (K, n)``, K <= N.

    From each kept waypoint, jump to the farthest later waypoint reachable by a
    collision-free straight segment (always possible to the next one, as the input is free).
    """
    keep = [0]
    i, N = 0, len(path)
    while i < N - 1:
        j = N - 1
        while j > i + 1 and not checker.path_collision_free(path[[i, j]]):
            j -= 1
        keep.append(j)
        i = j
    return path[keep].copy()


@functools.cache
def _motion_validator_class() -> type:
    """An OMPL ``MotionValidator`` subclass (built on first use: OMPL imports lazily)."""
    from ompl import base as ob

    class BatchMotionValidator(ob.MotionValidator):
        """Checks a whole straight segment in one vectorised call (not state by state)."""

        def __init__(self, si, checker: CollisionChecker, n: int):
            super().__init__(si)
            self._checker, self._n = checker, n

        def checkMotion(self, s1, s2) -> bool:  # noqa: N802 (OMPL's name)
            n = self._n
            a = np.array([s1[i] for i in range(n)])
            b = np.array([s2[i] for i in range(n)])
            return bool(self._checker.path_collision_free(np.stack([a, b])))

    return BatchMotionValidator
