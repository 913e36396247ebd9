"""The tidy-up behaviour's :class:`~katazuke.planning.tasks.Skills` over ROS 2 actions.

Each skill starts at once and returns a handle that the behaviour polls once per tick (never
blocking the executor):

* ``navigate_to`` -> a ``navigate`` goal (katazuke_interfaces/action/Navigate): purpose from
  ``NavTarget.purpose``, ``target`` the point in the map frame, ``approach`` the alternative
  index, ``clear_radius_m`` half the handled object's footprint plus ``clear_margin_m`` for a
  pre-grasp / look goal (0 for a container: the base must not drive into it).
  A ``"goto"`` target (a viewpoint) is a PURPOSE_GOTO to its xy, any heading. The
  navigator's causes ``no_path`` / ``no_base_pose`` become ``"unreachable"``.
* ``look_at`` -> ``manipulate`` MODE_LOOK_AT; ``explore`` -> ``explore_directions`` LOOK_AT
  goals at points on a circle of ``explore_radius_m`` around the robot, one after another.
* ``perceive(id)`` -> succeeds once the latest ``object_map`` holds the object with a
  ``last_seen`` at most ``perceive_max_age_s`` old (0 = any age, for ground-truth maps whose
  instances carry no detection times); fails ``"not_found"`` after ``perceive_wait_s``.
  ``result().data`` is the ``ObjectInstance`` (the manipulator segments the points itself).
* ``grasp(id)`` -> MODE_PICK with the object's centre, extent and category from the map. A
  PICK includes lifting and verifying from finger width and effort, so ``lift_and_verify``
  is a finished handle: SUCCESS when the last PICK reported the object held.
* ``place(cid)`` -> MODE_PLACE over the container's centre (the map's container, else the
  prior of tidy.yaml) with its footprint as ``extent``.
* ``verify_placed(id, cid)`` -> a LOOK_AT into the container, then succeeds once an
  ``object_map`` received *after the place started* shows the object's centre inside the
  container footprint (half size plus ``verify_margin_m``; ``planner.container_radius_m``
  when the footprint is unknown), or shows there an object it did not have when the place
  started (the map re-creates a carried object under a new id where it lands); fails
  ``"dropped"`` after ``verify_wait_s`` (the message says where the object was seen, or that
  it was not seen). Perception, not the manipulator's word, decides PLACED.
* ``release`` / ``stow_arm`` -> MODE_RELEASE / MODE_STOW.
* ``stop()`` cancels every active goal and publishes an empty ``path`` (the controller
  clears its base goal and stops the base on an empty path); the manipulator stops the arm
  where it is when its goal is cancelled.

A handle whose action server is not there within ``server_wait_s`` (node clock) fails with
cause ``"unavailable"`` and a logged error naming the missing node.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from action_msgs.msg import GoalStatus
from nav_msgs.msg import Path
from rclpy.node import Node

from katazuke.config import dataclass, field, non_negative, positive
from katazuke.planning.tasks import (Container, DoneHandle, NavTarget, SkillHandle, SkillResult,
                                     SkillStatus, TidyConfig, split_object_map)
from katazuke.ros.actions import ActionClient
from katazuke.ros.conversions import sec_to_stamp, stamp_to_sec
from katazuke_interfaces.action import Manipulate, Navigate
from katazuke_ros import qos
from katazuke_ros.node_utils import LogOnce

__all__ = ["TaskSkillsConfig", "RosSkills", "ActionHandle", "PollHandle", "SequenceHandle"]

_PURPOSES = {"pregrasp": Navigate.Goal.PURPOSE_PREGRASP, "preplace": Navigate.Goal.PURPOSE_PREPLACE,
             "look": Navigate.Goal.PURPOSE_LOOK, "goto": Navigate.Goal.PURPOSE_GOTO}
_UNREACHABLE = ("no_path", "no_base_pose")


@dataclass(frozen=True)
class TaskSkillsConfig:
    """Parameters of the ROS skills (declared under ``skills.``)."""

    navigate_action: str = field(default="navigate", metadata={
        "help": "the navigator's Navigate action server"})
    manipulate_action: str = field(default="manipulate", metadata={
        "help": "the manipulator's Manipulate action server"})
    path_topic: str = field(default="path", metadata={
        "help": "nav_msgs/Path topic of the controller; stop() publishes an empty path there"})
    server_wait_s: float = positive(5.0, "a skill whose action server is not available within "
                                    "this long fails with cause 'unavailable', s (node clock)")
    perceive_wait_s: float = positive(2.0, "perceive: time for a fresh sighting of the object "
                                      "in object_map before 'not_found', s")
    perceive_max_age_s: float = non_negative(10.0, "perceive: the object's last_seen may be "
                                             "this old, s; 0 = any age (ground-truth maps)")
    verify_wait_s: float = positive(3.0, "verify_placed: time for an object_map showing the "
                                    "object inside the container before 'dropped', s")
    verify_margin_m: float = non_negative(0.03, "verify_placed: slack around the container "
                                          "footprint, m")
    clear_margin_m: float = non_negative(0.1, "navigate: clear_radius_m = half the handled "
                                         "object's footprint diagonal + this, m")
    explore_directions: int = non_negative(4, "explore: LOOK_AT goals around the robot "
                                           "(0 = explore does nothing)")
    explore_radius_m: float = positive(1.5, "explore: distance of the LOOK_AT points from the "
                                       "robot, m")
    grasp_planner: str = field(default="", metadata={
        "help": "Manipulate.planner of PICK goals ('' = the manipulator's default)"})


class ActionHandle:
    """One action goal as a :class:`~katazuke.planning.tasks.SkillHandle`.

    Non-blocking: :meth:`status` advances the goal (send once the server is there, read the
    result once it arrived). The futures complete in the node's executor.

    Args:
        skills: the owner (clock, logging, the registry of active goals).
        client: the action client.
        goal: the goal message.
        what: text for messages (``"navigate to pre-grasp pose"``).
        interpret: result message -> SkillResult for a goal that finished SUCCEEDED / ABORTED.
    """

    def __init__(self, skills: "RosSkills", client: ActionClient, goal: Any, what: str,
                 interpret: Callable[[Any], SkillResult]) -> None:
        self._skills, self._client, self._goal, self._what = skills, client, goal, what
        self._interpret = interpret
        self._t0 = self._t_sent = skills.now_s()
        self._send_future: Any = None
        self._goal_handle: Any = None
        self._result_future: Any = None
        self._result: SkillResult | None = None
        self._cancelled = False
        skills._active.add(self)

    def _done(self, result: SkillResult) -> None:
        self._result = result
        self._skills._active.discard(self)
        self._skills.note(result)

    def status(self) -> SkillStatus:
        if self._result is not None:
            return self._result.status
        if self._send_future is None:
            if self._client.server_is_ready():
                self._skills._log.clear(f"missing_{self._skills.name_of(self._client)}")
                self._send_future = self._client.send_goal_async(self._goal)
                self._t_sent = self._skills.now_s()
                self._send_future.add_done_callback(self._on_sent)
            elif self._skills.now_s() - self._t0 > self._skills.cfg.server_wait_s:
                self._done(self._skills.unavailable(self._client, self._what))
                return self._result.status  # type: ignore[union-attr]
            return SkillStatus.RUNNING
        if self._goal_handle is None:
            if self._send_future.done() and self._send_future.result() is not None \
                    and not self._send_future.result().accepted:
                self._done(SkillResult(SkillStatus.FAILURE, "rejected",
                                       f"{self._what}: goal rejected by "
                                       f"'{self._skills.name_of(self._client)}'"))
                return SkillStatus.FAILURE
            if self._skills.now_s() - self._t_sent > self._skills.cfg.server_wait_s:
                # the server is in the graph but does not answer (it died; discovery lags)
                self._done(self._skills.unavailable(self._client, self._what, answered=False))
                return SkillStatus.FAILURE
            return SkillStatus.RUNNING
        if self._result_future is not None and self._result_future.done():
            resp = self._result_future.result()
            if resp is None:
                self._done(SkillResult(SkillStatus.FAILURE, "failed", f"{self._what}: no result"))
            elif resp.status == GoalStatus.STATUS_CANCELED:
                self._done(SkillResult(SkillStatus.FAILURE, "cancelled",
                                       f"{self._what}: cancelled by the server"))
            else:
                self._done(self._interpret(resp.result))
            return self._result.status  # type: ignore[union-attr]
        return SkillStatus.RUNNING

    def _on_sent(self, future: Any) -> None:
        gh = future.result()
        if gh is None or not gh.accepted:
            return
        self._goal_handle = gh
        if self._cancelled or self._result is not None:   # cancelled / given up meanwhile
            gh.cancel_goal_async()
            return
        self._result_future = gh.get_result_async()

    def result(self) -> SkillResult:
        if self._result is None:
            return SkillResult(SkillStatus.RUNNING)
        return self._result

    def cancel(self) -> None:
        if self._cancelled or self._result is not None:
            return
        self._cancelled = True
        if self._goal_handle is not None:
            self._goal_handle.cancel_goal_async()
        self._done(SkillResult(SkillStatus.FAILURE, "cancelled", f"{self._what}: cancelled"))


class PollHandle:
    """A skill that finishes when ``check()`` returns a result, or ``on_timeout()`` after
    ``timeout_s`` (node clock)."""

    def __init__(self, skills: "RosSkills", check: Callable[[], SkillResult | None],
                 timeout_s: float, on_timeout: Callable[[], SkillResult]) -> None:
        self._skills, self._check, self._on_timeout = skills, check, on_timeout
        self._deadline = skills.now_s() + timeout_s
        self._result: SkillResult | None = None

    def status(self) -> SkillStatus:
        if self._result is None:
            self._result = self._check()
            if self._result is None and self._skills.now_s() > self._deadline:
                self._result = self._on_timeout()
                self._skills.note(self._result)
        return SkillStatus.RUNNING if self._result is None else self._result.status

    def result(self) -> SkillResult:
        return self._result if self._result is not None else SkillResult(SkillStatus.RUNNING)

    def cancel(self) -> None:
        if self._result is None:
            self._result = SkillResult(SkillStatus.FAILURE, "cancelled", "cancelled")


class SequenceHandle:
    """Skills started one after another; fails with the first failure."""

    def __init__(self, starts: list[Callable[[], SkillHandle]]) -> None:
        self._starts = list(starts)
        self._current: SkillHandle | None = None
        self._result: SkillResult | None = None if starts else SkillResult(SkillStatus.SUCCESS)

    def status(self) -> SkillStatus:
        while self._result is None:
            if self._current is None:
                if not self._starts:
                    self._result = SkillResult(SkillStatus.SUCCESS)
                    break
                self._current = self._starts.pop(0)()
            st = self._current.status()
            if st == SkillStatus.RUNNING:
                return st
            if st == SkillStatus.FAILURE:
                self._result = self._current.result()
            self._current = None
        return self._result.status

    def result(self) -> SkillResult:
        return self._result if self._result is not None else SkillResult(SkillStatus.RUNNING)

    def cancel(self) -> None:
        if self._current is not None:
            self._current.cancel()
        if self._result is None:
            self._result = SkillResult(SkillStatus.FAILURE, "cancelled", "cancelled")


class RosSkills:
    """:class:`~katazuke.planning.tasks.Skills` over the navigator's and the manipulator's
    actions and the latest object map (see the module docstring).

    The node feeds it :meth:`update_map` (every ``object_map``) and :attr:`robot_xy`; every
    method runs on the node's executor thread.

    Args:
        node: the task manager node (clock, logger, action clients, publisher).
        config: skill parameters.
        tidy: the task configuration (container priors, ``container_radius_m``).
        map_frame: frame of the object map and of every goal point.
    """

    def __init__(self, node: Node, config: TaskSkillsConfig, tidy: TidyConfig,
                 map_frame: str = "map") -> None:
        self.node, self.cfg, self.tidy, self.map_frame = node, config, tidy, map_frame
        self._log = LogOnce(node)
        self.nav = ActionClient(node, Navigate, config.navigate_action)
        self.manip = ActionClient(node, Manipulate, config.manipulate_action)
        self._path_pub = node.create_publisher(Path, config.path_topic, qos.COMMAND)
        self._active: set[ActionHandle] = set()
        self.robot_xy = (0.0, 0.0)
        self.instances: dict[int, Any] = {}          # id -> ObjectInstance (not containers)
        self.containers: dict[str, Container] = {}   # from the map
        self.map_seq = 0                             # object maps received
        self.held = 0                                # object id the last PICK reported held
        self.failures: dict[str, str] = {}           # cause -> message of its latest failure
        self._place_seq = 0
        self._before_place: set[int] = set()
        self._priors = {c.id: c for c in tidy.containers}

    # ------------------------------------------------------------------ inputs
    def now_s(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def update_map(self, msg: Any) -> None:
        """Store the latest ``ObjectMap`` (katazuke_interfaces/ObjectMap)."""
        _, containers = split_object_map([o for o in msg.objects if o.category == "container"])
        self.instances = {int(o.id): o for o in msg.objects if o.category != "container"}
        self.containers = {c.id: c for c in containers}
        self.map_seq += 1

    @property
    def active_goals(self) -> int:
        """Action goals sent or waiting for their server and not finished."""
        return len(self._active)

    def name_of(self, client: ActionClient) -> str:
        """The action name of one of the two clients."""
        return self.cfg.navigate_action if client is self.nav else self.cfg.manipulate_action

    def note(self, result: SkillResult) -> None:
        """Remember the message of a failure by its cause (for task result messages)."""
        if result.status == SkillStatus.FAILURE and result.cause != "cancelled" and \
                result.message:
            self.failures[result.cause] = result.message

    def unavailable(self, client: ActionClient, what: str, answered: bool = True
                    ) -> SkillResult:
        """The failure of a skill whose action server is missing (logged once per server)."""
        name = self.name_of(client)
        who = "navigator" if client is self.nav else "manipulator"
        state = "is not available" if answered else "did not answer the goal"
        text = (f"{what}: the {who}'s action server '{name}' {state} within "
                f"{self.cfg.server_wait_s:g} s; is the {who} node running?")
        self._log.error(f"missing_{name}", text)
        return SkillResult(SkillStatus.FAILURE, "unavailable", text)

    # ------------------------------------------------------------------ helpers
    def _point(self, goal_point: Any, xyz: tuple[float, float, float]) -> None:
        goal_point.header.frame_id = self.map_frame
        goal_point.header.stamp = sec_to_stamp(self.now_s())
        goal_point.point.x, goal_point.point.y, goal_point.point.z = (float(v) for v in xyz)

    def _container(self, cid: str) -> Container | None:
        if cid in self.containers:
            return self.containers[cid]
        spec = self._priors.get(cid)
        if spec is None or spec.position is None:
            return None
        return Container(cid, spec.position, spec.colour, spec.size_xy)

    def _manipulate(self, mode: int, what: str, target: tuple[float, float, float] | None = None,
                    object_id: int = 0, category: str = "",
                    extent: tuple[float, float, float] = (0.0, 0.0, 0.0),
                    on_success: Callable[[Any], None] | None = None) -> ActionHandle:
        g = Manipulate.Goal()
        g.mode = mode
        g.object_id = int(object_id)
        g.category = category
        g.planner = self.cfg.grasp_planner if mode == Manipulate.Goal.MODE_PICK else ""
        if target is not None:
            self._point(g.target, target)
        g.extent.x, g.extent.y, g.extent.z = (float(v) for v in extent)

        def interpret(res: Any) -> SkillResult:
            if res.success:
                if on_success is not None:
                    on_success(res)
                return SkillResult(SkillStatus.SUCCESS, "", res.message, res)
            return SkillResult(SkillStatus.FAILURE, res.cause or "failed",
                               f"{what}: {res.cause or 'failed'}"
                               + (f" ({res.message})" if res.message else ""), res)
        return ActionHandle(self, self.manip, g, what, interpret)

    # ------------------------------------------------------------------ skills
    def explore(self) -> SkillHandle:
        n = self.cfg.explore_directions
        x, y = self.robot_xy
        r = self.cfg.explore_radius_m
        points = [(x + r * math.cos(2 * math.pi * k / n), y + r * math.sin(2 * math.pi * k / n),
                   0.0) for k in range(n)]
        return SequenceHandle([(lambda p=p: self.look_at(p)) for p in points])

    def navigate_to(self, target: NavTarget) -> SkillHandle:
        g = Navigate.Goal()
        purpose = _PURPOSES.get(target.purpose)
        if purpose is None:
            return DoneHandle(SkillResult(SkillStatus.FAILURE, "bad_goal",
                                          f"unknown navigation purpose '{target.purpose}'"))
        g.purpose = purpose
        self._point(g.target, target.position)
        g.pose.header.frame_id = self.map_frame
        g.pose.header.stamp = g.target.header.stamp
        g.pose.pose.orientation.w = 1.0
        if target.purpose == "goto":        # GOTO drives to the pose itself, any heading
            g.pose.pose.position.x, g.pose.pose.position.y = (float(v) for v in
                                                              target.position[:2])
            g.yaw_tolerance_rad = math.pi
        g.approach = int(target.approach)
        inst = self.instances.get(target.object_id) if target.object_id else None
        if inst is not None and not target.container:
            g.clear_radius_m = 0.5 * math.hypot(inst.extent.x, inst.extent.y) + \
                self.cfg.clear_margin_m
        what = f"navigate ({target.purpose}) to " + (
            f"container {target.container}" if target.container else
            f"object {target.object_id}" if target.object_id else
            f"({target.position[0]:.2f}, {target.position[1]:.2f})")

        def interpret(res: Any) -> SkillResult:
            if res.success:
                return SkillResult(SkillStatus.SUCCESS, "", res.message, res)
            cause = "unreachable" if res.cause in _UNREACHABLE else (res.cause or
                                                                      "navigation_failed")
            return SkillResult(SkillStatus.FAILURE, cause,
                               f"{what}: {res.cause or 'failed'}"
                               + (f" ({res.message})" if res.message else ""), res)
        return ActionHandle(self, self.nav, g, what, interpret)

    def look_at(self, point: tuple[float, float, float]) -> SkillHandle:
        return self._manipulate(Manipulate.Goal.MODE_LOOK_AT, "look at", tuple(point))

    def perceive(self, object_id: int) -> SkillHandle:
        max_age = self.cfg.perceive_max_age_s

        def check() -> SkillResult | None:
            inst = self.instances.get(object_id)
            if inst is None:
                return None
            if max_age > 0 and self.now_s() - stamp_to_sec(inst.last_seen) > max_age:
                return None
            return SkillResult(SkillStatus.SUCCESS, "", "", inst)

        def timeout() -> SkillResult:
            inst = self.instances.get(object_id)
            why = ("not in the object map" if inst is None else
                   f"last seen {self.now_s() - stamp_to_sec(inst.last_seen):.1f} s ago")
            return SkillResult(SkillStatus.FAILURE, "not_found", f"object {object_id}: {why}")
        return PollHandle(self, check, self.cfg.perceive_wait_s, timeout)

    def grasp(self, object_id: int) -> SkillHandle:
        inst = self.instances.get(object_id)
        if inst is None:
            return DoneHandle(SkillResult(SkillStatus.FAILURE, "not_found",
                                          f"grasp: object {object_id} is not in the object map"))
        self.held = 0

        def held(_res: Any) -> None:
            self.held = object_id
        return self._manipulate(Manipulate.Goal.MODE_PICK, f"pick object {object_id}",
                                (inst.position.x, inst.position.y, inst.position.z), object_id,
                                inst.category, (inst.extent.x, inst.extent.y, inst.extent.z),
                                held)

    def lift_and_verify(self) -> SkillHandle:
        # PICK lifts and verifies the grasp from finger width and effort (Manipulate.action).
        if self.held:
            return DoneHandle(SkillResult(SkillStatus.SUCCESS))
        return DoneHandle(SkillResult(SkillStatus.FAILURE, "dropped",
                                      "lift and verify: the last pick did not report the "
                                      "object held"))

    def place(self, container_id: str) -> SkillHandle:
        c = self._container(container_id)
        if c is None:
            return DoneHandle(SkillResult(SkillStatus.FAILURE, "no_container",
                                          f"place: container '{container_id}' is neither in the "
                                          "object map nor has a position in tidy.yaml"))
        self._place_seq = self.map_seq
        self._before_place = set(self.instances)

        def released(_res: Any) -> None:
            self.held = 0
        return self._manipulate(Manipulate.Goal.MODE_PLACE, f"place into {container_id}",
                                c.position, extent=(c.size_xy[0], c.size_xy[1], 0.0),
                                on_success=released)

    def _in_footprint(self, inst: Any, c: Container) -> bool:
        dx, dy = inst.position.x - c.position[0], inst.position.y - c.position[1]
        m = self.cfg.verify_margin_m
        if c.size_xy[0] > 0 and c.size_xy[1] > 0:
            return abs(dx) <= c.size_xy[0] / 2 + m and abs(dy) <= c.size_xy[1] / 2 + m
        return math.hypot(dx, dy) <= self.tidy.planner.container_radius_m + m

    def inside(self, object_id: int, container_id: str, new_since: set[int] | None = None
               ) -> tuple[bool, str]:
        """Whether the latest map shows the object inside the container, and where it is.

        With ``new_since`` (the map's ids when the place started), an object the map did not
        have then and now sees inside the container also counts: the map forgets the
        object while the gripper carries it and makes it again, under a new id, where it
        lands.
        """
        inst = self.instances.get(object_id)
        c = self._container(container_id)
        if c is None:
            return False, f"container '{container_id}' is unknown"
        if inst is not None and self._in_footprint(inst, c):
            return True, f"object {object_id} seen inside {container_id}"
        if new_since is not None:
            for oid, o in self.instances.items():
                if oid not in new_since and self._in_footprint(o, c):
                    return True, (f"object {oid} ({o.category}) appeared inside {container_id} "
                                  "after the place")
        if inst is None:
            return False, f"object {object_id} is not in the object map"
        dx, dy = inst.position.x - c.position[0], inst.position.y - c.position[1]
        return False, (f"object {object_id} seen at ({inst.position.x:.2f}, "
                       f"{inst.position.y:.2f}), {math.hypot(dx, dy):.2f} m from the centre of "
                       f"{container_id}")

    def verify_placed(self, object_id: int, container_id: str) -> SkillHandle:
        after = self._place_seq
        before = set(self._before_place)

        def check() -> SkillResult | None:
            if self.map_seq <= after:
                return None                  # no map since the place started
            ok, why = self.inside(object_id, container_id, before)
            return SkillResult(SkillStatus.SUCCESS, "", why) if ok else None

        def timeout() -> SkillResult:
            if self.map_seq <= after:
                why = "no object map arrived after the place"
            else:
                why = self.inside(object_id, container_id, before)[1] + ", not inside"
            return SkillResult(SkillStatus.FAILURE, "dropped", f"verify placed: {why}")
        c = self._container(container_id)

        def poll() -> SkillHandle:
            return PollHandle(self, check, self.cfg.verify_wait_s, timeout)
        if c is None:
            return poll()
        # look into the container so the detector can see the object there
        return SequenceHandle([lambda: self.look_at(c.position), poll])

    def release(self) -> SkillHandle:
        def released(_res: Any) -> None:
            self.held = 0
        return self._manipulate(Manipulate.Goal.MODE_RELEASE, "release", on_success=released)

    def stow_arm(self) -> SkillHandle:
        return self._manipulate(Manipulate.Goal.MODE_STOW, "stow the arm")

    def destroy(self) -> None:
        """Destroy the action clients (before the node)."""
        self.nav.destroy()
        self.manip.destroy()

    def stop(self) -> None:
        for h in list(self._active):
            h.cancel()
        msg = Path()
        msg.header.frame_id = self.map_frame
        msg.header.stamp = sec_to_stamp(self.now_s())
        self._path_pub.publish(msg)
