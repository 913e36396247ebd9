"""LQR vs GPC base tracking in the simulator under scripted pushes and friction changes: the
experiment harness of ``katazuke bench control-sim`` (:mod:`katazuke.bench.control_sim`).

The harness drives :class:`katazuke.sim.TidyEnv`'s holonomic base with
:func:`katazuke.control.base_tracker` (the same ROS-free tracker the ``controller`` node
runs) along a time-parametrised reference (a figure-eight, a room tour), while a
scripted :class:`DisturbanceEvent` schedule pushes the base (steps, pulses, periodic
shoves, world frame, N) and changes the floor friction. The controller sees only the
simulator's wheel-odometry-like estimate; the ground-truth base pose is used to score
the run and for nothing else. Both modes run the identical schedule, seed and
reference, so their errors are comparable within one run.

Frames and units: world frame = odometry frame at the start (the odometry is
initialised at the true start pose); poses ``(x m, y m, yaw rad)``; commands are
odom-frame velocities rotated into the base frame with the odometry yaw before being
sent to the simulator.

The tracked model is the tracker's per-axis integrator ``e_{k+1} = e_k + dt u_k + w_k``
(tracking error ``e``). With ``feedforward`` the reference's finite-difference velocity
is added to the tracker's command, so that a perfectly modelled plant would make
``w = 0`` without disturbances; what is left in ``w`` is the push, the traction limit,
the base's velocity lag and acceleration limit, and odometry noise.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass as _plain_dataclass
from typing import Any, Callable, Sequence

import numpy as np

from katazuke.config import dataclass, field, in_range, non_negative, positive
from katazuke.control import GPC, ControllerConfig, base_tracker, identify, wrap_angle
from katazuke.errors import InputError
from katazuke.geometry import world_to_base_twist

__all__ = ["ControlSimConfig", "DisturbanceEvent", "EpisodeResult", "Reference",
           "figure_eight", "room_tour", "default_schedule", "constant_push_schedule",
           "force_and_friction", "run_episode", "identify_base_model", "compare_controllers",
           "plot_comparison", "describe_schedule", "TRACKING_TOUR_WAYPOINTS"]

# The tracking experiment's own tour, deliberately not the demo tour (TourConfig.waypoints:
# (x, y) pairs relative to the start pose, followed by the tour node): a timed reference
# needs yaws and stop-and-go segments. (x m, y m, yaw rad) in the 5 x 5 m room, keeping the
# 0.55 x 0.45 m base (circumradius 0.36 m) >= 0.25 m clear of the table (x -0.2..1.0,
# y 0.95..1.65), the shelf (y >= 2.13), and the bins along the -y and +x walls. Yaws are
# unwrapped so interpolation turns the short way.
TRACKING_TOUR_WAYPOINTS: tuple[tuple[float, float, float], ...] = (
    (0.0, -0.4, 0.0), (1.2, -0.9, 0.0), (1.25, 0.3, 0.5 * math.pi), (-0.9, 0.3, 0.5 * math.pi),
    (-1.6, 1.3, math.pi), (-1.6, -1.1, 1.5 * math.pi), (0.0, -0.4, 2.0 * math.pi))


def _experiment_controller() -> ControllerConfig:
    # The controller node's defaults except ``max_linear_speed``: 0.45 m/s here (node: 0.5),
    # the value every control-sim figure in docs/bench/control_sim.md was measured with. It
    # caps only the feedback part; the sum with the feedforward is clipped to the sim's limit.
    return ControllerConfig(max_linear_speed=0.45)


@dataclass(frozen=True)
class ControlSimConfig:
    """Settings of one simulated tracking experiment (both modes use the same).

    The tracker's settings are the nested :class:`ControllerConfig` (the one the ROS
    ``controller`` node runs); ``controller.mode`` is replaced per run, and
    ``controller.rate_hz`` is the control and sim step rate.
    """

    controller: ControllerConfig = field(default_factory=_experiment_controller, metadata={
        "help": "the tracker's settings (LQR weights, saturation, GPC, guards); its rate_hz "
                "is the control and sim step rate. Default: the node's defaults with "
                "max_linear_speed 0.45 m/s"})
    physics_substeps: int = in_range(12, "physics steps per control step", 1, math.inf)
    duration_s: float = positive(
        60.0, "length of the figure-eight reference (s); the tour takes as long as its "
              "segments need")
    speed: float = positive(
        0.33, "peak reference speed (m/s) of the figure-eight and of each tour segment")
    feedforward: bool = field(default=True, metadata={
        "help": "add the reference velocity to the tracker's command"})
    push_scale: float = non_negative(1.0, "multiplies every scripted push force (0 = no pushes)")

    @property
    def control_hz(self) -> float:
        """Control and sim step rate (Hz): the nested controller's ``rate_hz``."""
        return self.controller.rate_hz

    @property
    def dt(self) -> float:
        return 1.0 / self.control_hz

    def controller_config(self, mode: str) -> ControllerConfig:
        """The :class:`ControllerConfig` the tracker (and the ROS node) would use in ``mode``."""
        return dataclasses.replace(self.controller, mode=mode)


@_plain_dataclass
class Reference:
    """A time-parametrised base reference sampled at the control ticks.

    Attributes:
        name: label ("figure_eight", "room_tour", ...).
        t: (N,) float64 tick times (s), ``t[k] = k dt``.
        poses: (N, 3) float64 ``(x m, y m, yaw rad)`` world frame; yaw unwrapped.
    """

    name: str
    t: np.ndarray
    poses: np.ndarray

    @property
    def dt(self) -> float:
        return float(self.t[1] - self.t[0])

    def feedforward(self) -> np.ndarray:
        """(N, 3) finite-difference velocity ``(poses[k+1] - poses[k]) / dt`` (zero at the end)."""
        v = np.zeros_like(self.poses)
        v[:-1] = np.diff(self.poses, axis=0) / self.dt
        return v


def _ticks(duration_s: float, dt: float) -> np.ndarray:
    n = int(round(duration_s / dt)) + 1
    return np.arange(n, dtype=np.float64) * dt


def figure_eight(duration_s: float, dt: float, speed: float = 0.33,
                 centre: tuple[float, float] = (0.0, -0.4), half_size: tuple[float, float] = (1.1, 0.55),
                 yaw_amplitude: float = 0.3, ramp_s: float = 1.5) -> Reference:
    """A lemniscate-like figure-eight ``x = cx + ax sin(phi)``, ``y = cy + ay sin(2 phi)``.

    The phase rate ramps up smoothly from 0 (``phi' = omega (1 - exp(-t / ramp_s))``) so the
    reference starts at rest; ``omega`` is chosen so the peak speed is ``speed`` (m/s).
    The yaw swings ``yaw_amplitude sin(phi)`` (rad) to exercise the yaw loop.
    """
    if not (duration_s > 0 and dt > 0 and speed > 0):
        raise InputError(f"figure_eight needs duration_s, dt, speed > 0; got {duration_s}, {dt}, {speed}")
    ax, ay = half_size
    omega = speed / math.hypot(ax, 2.0 * ay)   # peak speed is at phi = 0 (both cosines 1)
    t = _ticks(duration_s, dt)
    phi = omega * (t - ramp_s * (1.0 - np.exp(-t / ramp_s)))
    poses = np.stack([centre[0] + ax * np.sin(phi), centre[1] + ay * np.sin(2.0 * phi),
                      yaw_amplitude * np.sin(phi)], axis=1)
    return Reference("figure_eight", t, poses)


def room_tour(dt: float, speed: float = 0.33,
              waypoints: Sequence[Sequence[float]] = TRACKING_TOUR_WAYPOINTS, dwell_s: float = 1.0
              ) -> Reference:
    """Stop-and-go tour through ``waypoints`` ((x m, y m, yaw rad), yaw unwrapped).

    Each segment follows a minimum-jerk profile ``s = 10 tau^3 - 15 tau^4 + 6 tau^5`` whose
    peak speed is ``speed`` (segment time ``1.875 L / speed``, at least 2 s, long enough
    for the yaw change at 0.5 rad/s peak), with ``dwell_s`` at rest at each waypoint.
    """
    w = np.asarray(waypoints, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != 3 or len(w) < 2 or not np.all(np.isfinite(w)):
        raise InputError(f"waypoints must be a finite (K >= 2, 3) array of (x, y, yaw); got {w.shape}")
    if not (dt > 0 and speed > 0 and dwell_s >= 0):
        raise InputError("room_tour needs dt > 0, speed > 0, dwell_s >= 0")
    pieces = [np.repeat(w[:1], int(round(dwell_s / dt)), axis=0)]
    for a, b in zip(w[:-1], w[1:]):
        seg_t = max(2.0, 1.875 * float(np.hypot(*(b[:2] - a[:2]))) / speed,
                    1.875 * abs(float(b[2] - a[2])) / 0.5)
        tau = np.arange(1, int(math.ceil(seg_t / dt)) + 1) * dt / seg_t
        tau = np.minimum(tau, 1.0)
        s = tau ** 3 * (10.0 - 15.0 * tau + 6.0 * tau ** 2)
        pieces.append(a + s[:, None] * (b - a))
        pieces.append(np.repeat(b[None], int(round(dwell_s / dt)), axis=0))
    poses = np.concatenate(pieces, axis=0)
    return Reference("room_tour", np.arange(len(poses), dtype=np.float64) * dt, poses)


@_plain_dataclass(frozen=True)
class DisturbanceEvent:
    """One scripted disturbance.

    Attributes:
        kind: 'push' (constant force while active), 'periodic' (square wave of period
            ``period_s`` between +force and -force), or 'friction' (floor friction ``mu``
            while active).
        t_start, t_end: active interval (s, sim time), ``t_start <= t < t_end``.
        force: (fx, fy) world-frame force (N) for pushes.
        period_s: period of a periodic shove (s).
        mu: friction coefficient for 'friction' events.
    """

    kind: str
    t_start: float
    t_end: float
    force: tuple[float, float] = (0.0, 0.0)
    period_s: float = 0.0
    mu: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("push", "periodic", "friction"):
            raise InputError(f"DisturbanceEvent.kind must be push, periodic or friction; got {self.kind!r}")
        if not self.t_end > self.t_start:
            raise InputError(f"DisturbanceEvent needs t_end > t_start; got {self.t_start}, {self.t_end}")
        if self.kind == "periodic" and not self.period_s > 0:
            raise InputError("a periodic DisturbanceEvent needs period_s > 0")
        if self.kind == "friction" and not 0.0 <= self.mu <= 2.0:
            raise InputError(f"a friction DisturbanceEvent needs 0 <= mu <= 2; got {self.mu}")


def force_and_friction(events: Sequence[DisturbanceEvent], t: float, mu_nominal: float
                       ) -> tuple[np.ndarray, float]:
    """Total world-frame push (2,) N and floor friction at sim time ``t`` (s).

    Pushes add up; the latest-starting active friction event wins, otherwise
    ``mu_nominal``.
    """
    f = np.zeros(2)
    mu, mu_start = mu_nominal, -math.inf
    for ev in events:
        if not ev.t_start <= t < ev.t_end:
            continue
        if ev.kind == "push":
            f += ev.force
        elif ev.kind == "periodic":
            sign = 1.0 if ((t - ev.t_start) % ev.period_s) < 0.5 * ev.period_s else -1.0
            f += sign * np.asarray(ev.force)
        elif ev.t_start >= mu_start:
            mu, mu_start = ev.mu, ev.t_start
    return f, mu


def default_schedule(duration_s: float, rng: np.random.Generator, scale: float = 1.0
                     ) -> list[DisturbanceEvent]:
    """The benchmark's scripted disturbances over ``duration_s`` seconds.

    A step push (30 N) over 15-45 % of the run, a low-friction patch (mu 0.25) over
    35-70 %, a periodic shove (square wave +-25 N, 4 s period) over 55-85 %, and three
    0.4 s pulses of 80 N. Directions, exact times and the pulse instants are drawn from
    ``rng``; forces are multiplied by ``scale``. The total force stays below the
    low-friction traction limit (0.25 * 40 kg * g = 98 N) except during pulses.
    """
    def direction() -> tuple[float, float]:
        a = float(rng.uniform(-math.pi, math.pi))
        return math.cos(a), math.sin(a)

    D = float(duration_s)
    j = lambda: float(rng.uniform(-0.02, 0.02)) * D  # noqa: E731 - tiny timing jitter
    dx, dy = direction()
    events = [DisturbanceEvent("push", 0.15 * D + j(), 0.45 * D + j(),
                               (30.0 * scale * dx, 30.0 * scale * dy)),
              DisturbanceEvent("friction", 0.35 * D + j(), 0.70 * D + j(), mu=0.25)]
    dx, dy = direction()
    events.append(DisturbanceEvent("periodic", 0.55 * D + j(), 0.85 * D + j(),
                                   (25.0 * scale * dx, 25.0 * scale * dy), period_s=4.0))
    for t0 in np.sort(rng.uniform(0.1 * D, 0.95 * D, size=3)):
        dx, dy = direction()
        events.append(DisturbanceEvent("push", float(t0), float(t0) + 0.4,
                                       (80.0 * scale * dx, 80.0 * scale * dy)))
    return events


def describe_schedule(events: Sequence[DisturbanceEvent], duration_s: float,
                      mu_nominal: float) -> str:
    """One line of prose describing ``events`` (read from the events, never retyped).

    Single events are given as a share of ``duration_s`` (percent); events that repeat
    with the same kind, force and length (the pulses) are counted.

    Args:
        events: a schedule, e.g. from :func:`default_schedule`.
        duration_s: the run length the percentages refer to (s).
        mu_nominal: the floor friction outside friction events.
    """
    groups: dict[tuple, list[DisturbanceEvent]] = {}
    for ev in events:
        key = (ev.kind, round(float(np.hypot(*ev.force)), 1), round(ev.t_end - ev.t_start, 2),
               ev.period_s, ev.mu)
        groups.setdefault(key, []).append(ev)
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
    parts = []
    for (kind, force, length, period, mu), evs in groups.items():
        span = (f"over {100 * evs[0].t_start / duration_s:.0f}-"
                f"{100 * evs[0].t_end / duration_s:.0f} %")
        if kind == "friction":
            parts.append(f"floor friction {mu_nominal:g} -> {mu:g} {span}" if len(evs) == 1 else
                         f"{len(evs)} patches of floor friction {mu:g} ({length:g} s each)")
        elif kind == "periodic":
            parts.append(f"a +-{force:.0f} N square-wave shove ({period:g} s period) {span}"
                         if len(evs) == 1 else
                         f"{len(evs)} +-{force:.0f} N square-wave shoves ({period:g} s period)")
        elif len(evs) == 1:
            parts.append(f"{force:.0f} N step push {span}")
        else:
            parts.append(f"{words.get(len(evs), str(len(evs)))} {length:g} s pulses of {force:.0f} N")
    return ", ".join(parts)


def constant_push_schedule(force: tuple[float, float], t_start: float = 0.5,
                           t_end: float = 1e9) -> list[DisturbanceEvent]:
    """A single constant world-frame push ``force`` (N) from ``t_start`` on."""
    return [DisturbanceEvent("push", t_start, t_end, tuple(float(v) for v in force))]


@_plain_dataclass
class EpisodeResult:
    """Log and scores of one tracking run.

    Attributes:
        mode: 'lqr' or 'gpc'. reference: the reference name.
        t: (N,) tick times (s).
        ref: (N, 3) reference poses (yaw unwrapped).
        pose_true: (N, 3) ground-truth poses at the ticks (evaluation only).
        pose_odom: (N, 3) odometry poses at the ticks (what the controller saw).
        u_world: (N, 3) commanded odom-frame twist (m/s, m/s, rad/s) incl. feedforward.
        force: (N, 2) applied push (N, world frame). mu: (N,) floor friction.
        gpc_active: (N,) bool, GPC (not the LQR fallback) produced the command.
        saturated: (N,) bool, the tracker scaled the command down.
        fallback_reasons: distinct guard messages.
        metrics: scores (see :func:`_metrics`).
    """

    mode: str
    reference: str
    t: np.ndarray
    ref: np.ndarray
    pose_true: np.ndarray
    pose_odom: np.ndarray
    u_world: np.ndarray
    force: np.ndarray
    mu: np.ndarray
    gpc_active: np.ndarray
    saturated: np.ndarray
    fallback_reasons: list[str]
    metrics: dict[str, float]

    @property
    def pos_error(self) -> np.ndarray:
        """(N,) ground-truth planar position error (m)."""
        return np.hypot(*(self.pose_true[:, :2] - self.ref[:, :2]).T)

    @property
    def yaw_error(self) -> np.ndarray:
        """(N,) ground-truth yaw error (rad, wrapped)."""
        return np.asarray(wrap_angle(self.pose_true[:, 2] - self.ref[:, 2]))


def _metrics(res: EpisodeResult) -> dict[str, float]:
    pe, ye = res.pos_error, res.yaw_error
    disturbed = np.linalg.norm(res.force, axis=1) > 0
    odom_drift = np.hypot(*(res.pose_odom[-1, :2] - res.pose_true[-1, :2]))
    return {
        "rms_pos_m": float(np.sqrt(np.mean(pe ** 2))),
        "max_pos_m": float(pe.max()),
        "rms_pos_pushed_m": float(np.sqrt(np.mean(pe[disturbed] ** 2))) if disturbed.any() else 0.0,
        "rms_yaw_deg": float(np.degrees(np.sqrt(np.mean(ye ** 2)))),
        "max_yaw_deg": float(np.degrees(np.abs(ye).max())),
        "final_odom_drift_m": float(odom_drift),
        "gpc_fraction": float(res.gpc_active.mean()),
        "saturated_fraction": float(res.saturated.mean()),
        "steps": float(len(res.t)),
    }


def _make_env(cfg: ControlSimConfig, start: Sequence[float], seed: int):
    from katazuke.sim import EnvConfig, TidyEnv

    env = TidyEnv(EnvConfig(profile="none", control_hz=cfg.control_hz,
                            physics_substeps=cfg.physics_substeps, render_observation=False,
                            n_objects=(0, 0), robot_start=tuple(float(v) for v in start)))
    env.reset(seed=seed, n_objects=0)
    return env


def _clip_twist(u: np.ndarray, max_lin: float, max_ang: float) -> np.ndarray:
    out = u.copy()
    n = math.hypot(out[0], out[1])
    if n > max_lin:
        out[:2] *= max_lin / n
    out[2] = min(max(out[2], -max_ang), max_ang)
    return out


def run_episode(reference: Reference, events: Sequence[DisturbanceEvent], mode: str,
                cfg: ControlSimConfig, seed: int = 0,
                progress: Callable[[int], Any] | None = None,
                gpc_model: tuple[np.ndarray, np.ndarray] | None = None) -> EpisodeResult:
    """Track ``reference`` in a fresh simulator episode with the ``mode`` tracker.

    Args:
        reference: the reference (its ``dt`` must equal ``cfg.dt``).
        events: scripted disturbances (sim time).
        mode: 'lqr' or 'gpc'.
        cfg: experiment settings.
        seed: simulator seed (odometry noise); use the same for both modes.
        progress: called with the number of ticks done every 100 ticks (progress bars).
        gpc_model: ``(A (3, 3), B (3, 3))`` for GPC's disturbance estimate and counterfactual
            rollout instead of the tracker's nominal ``(I, dt I)`` (e.g. from
            :func:`identify_base_model`); the stabilising K stays the nominal LQR gain.

    Returns:
        The :class:`EpisodeResult` with metrics against ground truth.
    """
    if abs(reference.dt - cfg.dt) > 1e-9:
        raise InputError(f"reference dt {reference.dt} s differs from the control period {cfg.dt} s")
    if mode not in ("lqr", "gpc"):
        raise InputError(f"mode must be 'lqr' or 'gpc'; got {mode!r}")
    tracker = base_tracker(cfg.controller_config(mode))
    if gpc_model is not None:
        if mode != "gpc":
            raise InputError("gpc_model is only meaningful with mode='gpc'")
        tracker.gpc = GPC(np.asarray(gpc_model[0]), np.asarray(gpc_model[1]), tracker.Q,
                          tracker.R, tracker.config.gpc_config(), K=tracker.K)
    n = len(reference.t)
    ff = reference.feedforward() if cfg.feedforward else np.zeros_like(reference.poses)
    env = _make_env(cfg, reference.poses[0], seed)
    mu0 = env.config.floor_friction
    max_lin = env.config.base_max_lin_vel * 0.999
    max_ang = env.config.base_max_ang_vel * 0.999
    log = {k: np.zeros((n, d)) for k, d in (("true", 3), ("odom", 3), ("u", 3), ("force", 2))}
    mu_log = np.zeros(n)
    gpc_active = np.zeros(n, dtype=bool)
    saturated = np.zeros(n, dtype=bool)
    reasons: list[str] = []
    try:
        for k in range(n):
            t = float(reference.t[k])
            x, y, yaw = env.base_pose()
            ox, oy, oyaw = env.odometry()[:3]
            ref = reference.poses[k]
            log["true"][k] = (x, y, ref[2] + wrap_angle(yaw - ref[2]))
            log["odom"][k] = (ox, oy, ref[2] + wrap_angle(oyaw - ref[2]))
            e = np.array([ox - ref[0], oy - ref[1], wrap_angle(oyaw - ref[2])])
            out = tracker.step(e)
            u = _clip_twist(out.u + ff[k], max_lin, max_ang)
            f, mu = force_and_friction(events, t, mu0)
            env.set_base_disturbance(f)
            if k == 0 or mu != mu_log[k - 1]:
                env.set_floor_friction(mu)
            env.step(_action(world_to_base_twist(u, oyaw)))
            log["u"][k], log["force"][k], mu_log[k] = u, f, mu
            gpc_active[k] = out.mode == "gpc"
            saturated[k] = out.saturated
            if out.fallback_reason and out.fallback_reason not in reasons:
                reasons.append(out.fallback_reason)
            if progress is not None and (k + 1) % 100 == 0:
                progress(k + 1)
    finally:
        env.close()
    res = EpisodeResult(mode, reference.name, reference.t.copy(), reference.poses.copy(),
                        log["true"], log["odom"], log["u"], log["force"], mu_log, gpc_active,
                        saturated, reasons, {})
    res.metrics = _metrics(res)
    return res


def _action(twist: tuple[float, float, float]):
    from katazuke.sim import Action

    return Action(base_twist=twist)


def identify_base_model(cfg: ControlSimConfig, seed: int = 0, steps: int = 400,
                        explore: float = 0.15, hold: int = 1) -> dict[str, Any]:
    """Least-squares fit of ``e_{k+1} = A e_k + B u_k`` from an excitation run in the sim.

    The base holds its start pose under LQR plus i.i.d. exploration noise (``explore``
    m/s or rad/s per axis, :func:`katazuke.control.exploration_actions`, each draw held
    for ``hold`` ticks) without pushes;
    states are odometry errors, actions the commands sent.

    Returns:
        ``{"A": (3, 3), "B": (3, 3), "A_nominal": I, "B_nominal": dt I,
        "rel_err_B": ||B - dt I||_F / ||dt I||_F, "rel_err_A": ||A - I||_F / sqrt(3),
        "B_diag_over_dt": (3,), "residual_rms": (3,), "nominal_residual_rms": (3,)}``;
        residuals are one-step prediction errors of the fitted and nominal models on
        the same data.
    """
    from katazuke.control import exploration_actions

    rng = np.random.default_rng(seed)
    start = np.array([0.0, -0.4, 0.0])
    env = _make_env(cfg, start, seed)
    tracker = base_tracker(cfg.controller_config("lqr"))
    # i.i.d. noise per tick is filtered away by the base's acceleration limit (0.05 m/s per
    # tick at 1 m/s^2); holding each draw for ``hold`` ticks excites the slow response too
    noise = np.repeat(exploration_actions(rng, -(-steps // hold), 3, explore), hold, axis=0)[:steps]
    X, U = np.zeros((steps + 1, 3)), np.zeros((steps, 3))
    try:
        for k in range(steps + 1):
            ox, oy, oyaw = env.odometry()[:3]
            X[k] = (ox - start[0], oy - start[1], oyaw - start[2])
            if k == steps:
                break
            u = _clip_twist(tracker.step(X[k]).u + noise[k], 0.5, 1.0)
            U[k] = u
            env.step(_action(world_to_base_twist(u, oyaw)))
    finally:
        env.close()
    A, B, resid = identify(X, U)
    dt = cfg.dt
    nominal_resid = X[1:] - X[:-1] - dt * U
    return {
        "A": A, "B": B, "A_nominal": np.eye(3), "B_nominal": dt * np.eye(3),
        "rel_err_A": float(np.linalg.norm(A - np.eye(3)) / math.sqrt(3.0)),
        "rel_err_B": float(np.linalg.norm(B - dt * np.eye(3)) / (dt * math.sqrt(3.0))),
        "B_diag_over_dt": np.diag(B) / dt,
        "residual_rms": np.sqrt(np.mean(resid ** 2, axis=0)),
        "nominal_residual_rms": np.sqrt(np.mean(nominal_resid ** 2, axis=0)),
        "steps": steps, "explore": explore, "hold": hold,
    }


def compare_controllers(references: Sequence[Reference], cfg: ControlSimConfig,
                        seeds: Sequence[int] = (0,),
                        progress: Callable[[int], Any] | None = None
                        ) -> list[dict[str, Any]]:
    """Run LQR and GPC on every reference x seed with the same schedule and sim seed.

    The schedule of seed ``s`` comes from ``np.random.default_rng([s, 101])`` and spans
    the reference's duration.

    Returns:
        One dict per (reference, seed): ``{"reference", "seed", "events", "lqr":
        EpisodeResult, "gpc": EpisodeResult, "ratio": gpc rms / lqr rms}``.
    """
    out = []
    for ref in references:
        for s in seeds:
            events = default_schedule(float(ref.t[-1]), np.random.default_rng([s, 101]),
                                      cfg.push_scale)
            runs = {m: run_episode(ref, events, m, cfg, seed=s, progress=progress)
                    for m in ("lqr", "gpc")}
            out.append({"reference": ref.name, "seed": s, "events": events, **runs,
                        "ratio": runs["gpc"].metrics["rms_pos_m"] / runs["lqr"].metrics["rms_pos_m"]})
    return out


_MAGNIFY = 20.0
# tidy-up bins (centre x, y; footprint x, y in m) for the plots, from sim.world's layout
_BINS = (((-1.9, -1.9), (0.4, 0.32)), ((-0.9, -1.95), (0.4, 0.32)),
         ((1.95, -0.9), (0.32, 0.4)), ((1.95, 0.2), (0.32, 0.4)))


def plot_comparison(run: dict[str, Any], path_prefix: str) -> list[str]:
    """Plot one :func:`compare_controllers` entry: trajectories over the reference, error
    vs time, disturbance timeline. Writes ``<path_prefix>_{traj,error}.png``; returns paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lqr, gpc = run["lqr"], run["gpc"]
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 6))
    # left: the paths in the room; right: deviations from the reference magnified, since
    # the errors are millimetres on a metre-scale path
    for ax, gain in zip(axes, (1.0, _MAGNIFY)):
        ax.plot(lqr.ref[:, 0], lqr.ref[:, 1], "k--", lw=1.2, label="reference")
        for res, colour in ((lqr, "tab:blue"), (gpc, "tab:red")):
            xy = lqr.ref[:, :2] + gain * (res.pose_true[:, :2] - res.ref[:, :2])
            ax.plot(xy[:, 0], xy[:, 1], color=colour, lw=1,
                    label=f"{res.mode.upper()} (ground truth)")
        ax.add_patch(plt.Rectangle((-0.2, 0.95), 1.2, 0.7, color="0.7", alpha=0.5, label="table"))
        ax.add_patch(plt.Rectangle((-2.0, 2.13), 1.0, 0.35, color="0.5", alpha=0.5, label="shelf"))
        for (cx, cy), (ex, ey) in _BINS:
            ax.add_patch(plt.Rectangle((cx - ex / 2, cy - ey / 2), ex, ey, color="tab:olive",
                                       alpha=0.5))
        ax.set_xlim(-2.5, 2.5)
        ax.set_ylim(-2.5, 2.5)
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
    axes[0].set_title(f"{run['reference']} (seed {run['seed']}): base path")
    axes[1].set_title(f"deviation from the reference x{_MAGNIFY:g}")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    paths.append(f"{path_prefix}_traj.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, axs = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
    axs[0].plot(lqr.t, lqr.pos_error * 100, color="tab:blue", lw=1,
                label=f"LQR  RMS {lqr.metrics['rms_pos_m'] * 100:.2f} cm")
    axs[0].plot(gpc.t, gpc.pos_error * 100, color="tab:red", lw=1,
                label=f"GPC  RMS {gpc.metrics['rms_pos_m'] * 100:.2f} cm")
    axs[0].set_ylabel("position error (cm)")
    axs[0].legend(fontsize=8)
    axs[1].plot(lqr.t, lqr.force[:, 0], lw=1, label="push fx")
    axs[1].plot(lqr.t, lqr.force[:, 1], lw=1, label="push fy")
    axs[1].set_ylabel("force (N, world)")
    axs[1].legend(fontsize=8)
    axs[2].plot(lqr.t, lqr.mu, color="k", lw=1)
    axs[2].set_ylabel("floor friction mu")
    axs[2].set_xlabel("time (s)")
    axs[0].set_title(f"{run['reference']} (seed {run['seed']}): tracking error vs ground truth")
    fig.tight_layout()
    paths.append(f"{path_prefix}_error.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths

