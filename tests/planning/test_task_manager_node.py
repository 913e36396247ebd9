"""The ``task_manager`` ROS 2 node, for real with rclpy: a test node plays the navigator and
the manipulator (fake action servers), the object map and tf; outputs are awaited."""
from __future__ import annotations

import math
from typing import Any, Callable

import pytest

from katazuke.testing import wait_for

pytestmark = pytest.mark.ros

#: (id, category, kind, (x, y, z)) of the test room; robot at the origin; the duck is far
#: (3.2 m) and planned last.
OBJECTS = [(1, "toy", "duck", (2.5, 2.0, 0.05)),
           (2, "kitchenware", "mug", (-0.3, -1.0, 0.05)),
           (3, "stationery", "marker", (1.2, -0.5, 0.02))]
#: the containers of tidy.yaml (id, colour, centre, footprint)
CONTAINERS = [("bin_red", "red", (-1.9, -1.9, 0.09), (0.4, 0.32)),
              ("bin_blue", "blue", (-0.9, -1.95, 0.09), (0.4, 0.32)),
              ("bin_green", "green", (1.95, -0.9, 0.09), (0.32, 0.4)),
              ("bin_yellow", "yellow", (1.95, 0.2, 0.09), (0.32, 0.4))]
DESTINATION = {1: "bin_red", 2: "bin_blue", 3: "bin_green"}
CENTRE = {c[0]: c[2] for c in CONTAINERS}


class FakeServer:
    """An action server that finishes each goal after ``ticks`` polls of 20 ms.

    ``outcome(request) -> (success, cause)`` decides the result; ``hold`` keeps goals
    running until they are cancelled; ``on_success(request)`` runs before a success result.
    """

    def __init__(self, node: Any, action: Any, name: str, ticks: int = 3) -> None:
        from rclpy.action import ActionServer, CancelResponse, GoalResponse

        self.action, self.ticks = action, ticks
        self.goals: list[Any] = []
        self.cancelled: list[Any] = []
        self.hold = False
        self.outcome: Callable[[Any], tuple[bool, str]] = lambda req: (True, "")
        self.on_success: Callable[[Any], None] = lambda req: None
        self._pending: list[list[Any]] = []
        self.server = ActionServer(node, action, name, execute_callback=self._execute,
                                   goal_callback=lambda g: GoalResponse.ACCEPT,
                                   cancel_callback=lambda gh: CancelResponse.ACCEPT)
        node.create_timer(0.02, self._step)

    @property
    def active(self) -> int:
        return len(self._pending)

    async def _execute(self, gh: Any) -> Any:
        from rclpy.task import Future

        self.goals.append(gh.request)
        done = Future()
        self._pending.append([gh, done, self.ticks])
        verdict = await done
        res = self.action.Result()
        if verdict == "cancel":
            res.cause = "cancelled"
            gh.canceled()
            return res
        res.success, res.cause = self.outcome(gh.request)
        if res.success:
            self.on_success(gh.request)
            gh.succeed()
        else:
            gh.abort()
        return res

    def _step(self) -> None:
        for entry in list(self._pending):
            gh, done, left = entry
            if gh.is_cancel_requested:
                self.cancelled.append(gh.request)
                self._pending.remove(entry)
                done.set_result("cancel")
            elif not self.hold:
                entry[2] = left - 1
                if entry[2] <= 0:
                    self._pending.remove(entry)
                    done.set_result("done")


class Harness:
    """A task manager, a fake navigator and manipulator, the object map and tf."""

    def __init__(self, ctx: Any, navigator: bool = True, **params: Any) -> None:
        import rclpy
        from nav_msgs.msg import Path
        from katazuke.ros.actions import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from std_msgs.msg import String
        from tf2_msgs.msg import TFMessage

        import numpy as np
        from katazuke.ros.conversions import transform_stamped
        from katazuke_interfaces.action import Manipulate, Navigate, Tidy
        from katazuke_interfaces.msg import ObjectMap, TaskStatus
        from katazuke_ros import qos
        from katazuke_ros.task_manager_node import TaskManagerNode

        base = {"tick_hz": 50.0, "status_period_s": 0.2, "skills.explore_directions": 2,
                "skills.server_wait_s": 2.0}
        base.update(params)
        self.tm = TaskManagerNode(context=ctx, parameter_overrides=[
            Parameter(k, value=v) for k, v in base.items()])
        self.node = n = rclpy.create_node("task_manager_test", context=ctx)
        self.map_pub = n.create_publisher(ObjectMap, "object_map", qos.LATCHED)
        self.instr_pub = n.create_publisher(String, "instruction", qos.EVENTS)
        tf_pub = n.create_publisher(TFMessage, "/tf_static", qos.LATCHED)
        tf_pub.publish(TFMessage(transforms=[transform_stamped(
            np.eye(4), "map", "base_link", n.get_clock().now().to_msg())]))
        self.statuses: list[Any] = []
        self.says: list[str] = []
        self.paths: list[Any] = []
        n.create_subscription(TaskStatus, "task_status", self.statuses.append, qos.EVENTS)
        n.create_subscription(String, "say", lambda m: self.says.append(m.data), qos.EVENTS)
        n.create_subscription(Path, "path", self.paths.append, qos.COMMAND)
        self.tidy = ActionClient(n, Tidy, "tidy")
        self.nav = FakeServer(n, Navigate, "navigate") if navigator else None
        self.manip = FakeServer(n, Manipulate, "manipulate")
        self.held = 0
        self.positions = {oid: pos for oid, _, _, pos in OBJECTS}
        self.manip.on_success = self._manipulated
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.tm)
        self.ex.add_node(n)
        self.publish_map()

    def _manipulated(self, req: Any) -> None:
        from katazuke_interfaces.action import Manipulate

        if req.mode == Manipulate.Goal.MODE_PICK:
            self.held = req.object_id
        elif req.mode == Manipulate.Goal.MODE_PLACE and self.held:
            # the perceived object map shows the object inside the bin afterwards
            self.positions[self.held] = (req.target.point.x + 0.02, req.target.point.y, 0.1)
            self.held = 0
            self.publish_map()

    def publish_map(self) -> None:
        from katazuke.ros.conversions import instance_msg
        from katazuke_interfaces.msg import ObjectMap

        now = self.node.get_clock().now().nanoseconds * 1e-9
        m = ObjectMap()
        m.header.frame_id = "map"
        m.header.stamp = self.node.get_clock().now().to_msg()
        for oid, cat, kind, _ in OBJECTS:
            m.objects.append(instance_msg(oid, cat, 0.9, self.positions[oid], (0.1, 0.08, 0.1),
                                          now - 5.0, now, 10, DESTINATION[oid], kind=kind))
        for k, (cid, colour, pos, size) in enumerate(CONTAINERS):
            m.objects.append(instance_msg(100 + k, "container", 1.0, pos, (*size, 0.18), now,
                                          now, 5, f"{cid}:{colour}", dominant_color=colour))
        self.map_pub.publish(m)

    def spin_until(self, cond: Callable[[], bool], timeout: float = 10.0) -> bool:
        return wait_for(cond, timeout, spin=lambda: self.ex.spin_once(timeout_sec=0.01))

    def connected(self) -> bool:
        skills = self.tm.skills
        return (self.tidy.server_is_ready() and skills.manip.server_is_ready()
                and (self.nav is None or skills.nav.server_is_ready())
                and self.tm.skills.instances != {})

    def send(self, mode: int, **fields: Any) -> tuple[Any, list[Any]]:
        """Send a Tidy goal; returns its goal handle and the list its feedback goes to."""
        from katazuke_interfaces.action import Tidy

        feedback: list[Any] = []
        fut = self.tidy.send_goal_async(Tidy.Goal(mode=mode, **fields),
                                        feedback_callback=lambda f: feedback.append(f.feedback))
        assert self.spin_until(fut.done), "tidy goal not answered"
        gh = fut.result()
        assert gh.accepted
        return gh, feedback

    def result(self, gh: Any, timeout: float = 30.0) -> Any:
        fut = gh.get_result_async()
        assert self.spin_until(fut.done, timeout), f"no result; last status {self.last_status()}"
        return fut.result()

    def last_status(self) -> str:
        st = self.tm.status
        return "none" if st is None else f"{st.state.name} '{st.current_step}' {st.message}"

    def instruct(self, text: str) -> None:
        from std_msgs.msg import String

        self.instr_pub.publish(String(data=text))

    def close(self) -> None:
        self.ex.shutdown()
        for fake in (self.nav, self.manip):
            if fake is not None:
                fake.server.destroy()
        self.tidy.destroy()
        self.tm.destroy_node()
        self.node.destroy_node()


@pytest.fixture
def harness(ros_context):
    made: list[Harness] = []

    def make(**kw: Any) -> Harness:
        h = Harness(ros_context, **kw)
        made.append(h)
        assert h.spin_until(h.connected), "task manager, fake servers and map not connected"
        return h

    yield make
    for h in made:
        h.close()


def _xy(point_stamped: Any) -> tuple[float, float]:
    return point_stamped.point.x, point_stamped.point.y


def _near(a: tuple[float, ...], b: tuple[float, ...], tol: float = 1e-3) -> bool:
    return math.dist(a[:2], b[:2]) < tol


def test_tidy_all_picks_and_places_every_object(harness) -> None:
    from action_msgs.msg import GoalStatus
    from katazuke_interfaces.action import Manipulate, Navigate, Tidy
    from katazuke_interfaces.msg import TaskItem, TaskStatus

    h = harness()
    gh, feedback = h.send(Tidy.Goal.MODE_TIDY_ALL, instruction="tidy up")
    resp = h.result(gh)
    r = resp.result
    assert resp.status == GoalStatus.STATUS_SUCCEEDED, r.message
    assert r.success and (r.items_placed, r.items_failed, r.items_skipped) == (3, 0, 0)
    assert {it.object_id: it.state for it in r.items} == {i: TaskItem.PLACED for i in (1, 2, 3)}
    assert {it.object_id: it.destination for it in r.items} == DESTINATION
    assert r.duration_s > 0 and "3 placed" in r.message
    # explore (2 looks), then per object: pre-grasp, look, pick, pre-place, place, stow
    picks = [g for g in h.manip.goals if g.mode == Manipulate.Goal.MODE_PICK]
    places = [g for g in h.manip.goals if g.mode == Manipulate.Goal.MODE_PLACE]
    order = [g.object_id for g in picks]
    assert sorted(order) == [1, 2, 3] and order[-1] == 1     # the far duck last
    start = {oid: pos for oid, _, _, pos in OBJECTS}
    for g in picks:
        assert g.category == {o[0]: o[1] for o in OBJECTS}[g.object_id]
        assert g.target.header.frame_id == "map" and _near(_xy(g.target), start[g.object_id])
        assert g.extent.x == pytest.approx(0.1)
    size = {c[0]: c[3] for c in CONTAINERS}
    for g, oid in zip(places, order, strict=True):      # over the bin, with its footprint
        assert _near(_xy(g.target), CENTRE[DESTINATION[oid]])
        assert (g.extent.x, g.extent.y) == pytest.approx(size[DESTINATION[oid]])
    assert sum(g.mode == Manipulate.Goal.MODE_STOW for g in h.manip.goals) >= 3
    purposes = [g.purpose for g in h.nav.goals]
    n_vp = len(h.tm.tidy_config.behaviour.viewpoints)      # then the viewpoints of tidy.yaml
    assert purposes == ([Navigate.Goal.PURPOSE_PREGRASP, Navigate.Goal.PURPOSE_PREPLACE] * 3
                        + [Navigate.Goal.PURPOSE_GOTO] * n_vp)
    vps = {(round(g.pose.pose.position.x, 3), round(g.pose.pose.position.y, 3))
           for g in h.nav.goals[6:]}
    assert vps == set(h.tm.tidy_config.behaviour.viewpoints) and n_vp > 0
    assert all(g.yaw_tolerance_rad == pytest.approx(math.pi) for g in h.nav.goals[6:])
    pregrasp = h.nav.goals[0]
    assert _near(_xy(pregrasp.target), start[order[0]]) and pregrasp.clear_radius_m > 0.06
    assert h.nav.goals[1].clear_radius_m == 0.0        # never clear a container away
    # feedback is the behaviour's TaskStatus; the status topic carries the same
    states = {f.status.state for f in feedback}
    assert {TaskStatus.NAVIGATING, TaskStatus.GRASPING, TaskStatus.PLACING} <= states
    assert any(f.status.current_step == "verify placed" for f in feedback)
    assert h.spin_until(lambda: h.statuses and h.statuses[-1].state == TaskStatus.SUCCEEDED)
    assert h.statuses[-1].progress == pytest.approx(1.0)


def test_placed_is_decided_by_the_object_map(harness) -> None:
    from action_msgs.msg import GoalStatus
    from katazuke_interfaces.action import Manipulate, Tidy
    from katazuke_interfaces.msg import TaskItem

    h = harness(**{"skills.verify_wait_s": 0.3, "planner.max_failures": 1})

    def drop_beside(req: Any) -> None:     # the place "succeeds" but the object lands outside
        if req.mode == Manipulate.Goal.MODE_PLACE and h.held:
            h.positions[h.held] = (req.target.point.x + 0.5, req.target.point.y, 0.03)
            h.held = 0
            h.publish_map()
        elif req.mode == Manipulate.Goal.MODE_PICK:
            h.held = req.object_id
    h.manip.on_success = drop_beside
    gh, _ = h.send(Tidy.Goal.MODE_MOVE, object_id=2)
    resp = h.result(gh)
    assert resp.status == GoalStatus.STATUS_ABORTED
    (item,) = resp.result.items
    assert item.state == TaskItem.FAILED and item.cause == "dropped"
    assert "not inside" in resp.result.message and "bin_blue" in resp.result.message
    modes = [g.mode for g in h.manip.goals]
    place = modes.index(Manipulate.Goal.MODE_PLACE)
    # it looked into the bin to verify, then stowed the (empty) arm
    assert modes[place + 1:] == [Manipulate.Goal.MODE_LOOK_AT, Manipulate.Goal.MODE_STOW]


def test_cancel_mid_task_stops_the_robot_and_ends_canceled(harness) -> None:
    from action_msgs.msg import GoalStatus
    from katazuke_interfaces.action import Navigate, Tidy
    from katazuke_interfaces.msg import TaskStatus

    h = harness()
    h.nav.hold = True                      # the base never arrives
    gh, _ = h.send(Tidy.Goal.MODE_TIDY_ALL)
    assert h.spin_until(lambda: h.nav.active == 1), h.last_status()
    assert h.nav.goals[-1].purpose == Navigate.Goal.PURPOSE_PREGRASP
    n_paths = len(h.paths)
    cancel = gh.cancel_goal_async()
    resp = h.result(gh)
    assert cancel.done() and resp.status == GoalStatus.STATUS_CANCELED
    assert "cancelled" in resp.result.message and not resp.result.success
    assert h.spin_until(lambda: len(h.paths) > n_paths and not h.paths[-1].poses)
    assert h.spin_until(lambda: h.nav.active == 0 and len(h.nav.cancelled) == 1)
    assert h.tm.skills.active_goals == 0
    assert h.spin_until(lambda: h.statuses[-1].state == TaskStatus.CANCELLED)
    # the node keeps serving: a new goal is accepted and runs
    h.nav.hold = False
    gh2, _ = h.send(Tidy.Goal.MODE_MOVE, object_description="the mug")
    assert h.result(gh2).result.success


def test_instruction_preempts_then_the_tidy_resumes(harness) -> None:
    from action_msgs.msg import GoalStatus
    from katazuke_interfaces.action import Manipulate, Navigate, Tidy

    h = harness()
    h.nav.ticks = 10                        # a window in which the first approach runs
    gh, _ = h.send(Tidy.Goal.MODE_TIDY_ALL)
    assert h.spin_until(lambda: h.nav.active == 1), h.last_status()
    first = h.nav.goals[-1]
    assert not _near(_xy(first.target), (2.5, 2.0))          # not the duck; nothing in hand
    n_nav = len(h.nav.goals)
    h.instruct("put the duck in the red bin")
    assert h.spin_until(lambda: any("duck" in s and "red bin" in s for s in h.says))
    # the approach to the mug is cancelled and the duck is handled first
    assert h.spin_until(lambda: len(h.nav.goals) > n_nav), h.last_status()
    assert h.nav.cancelled and _near(_xy(h.nav.cancelled[0].target), _xy(first.target))
    nxt = h.nav.goals[n_nav]
    assert nxt.purpose == Navigate.Goal.PURPOSE_PREGRASP and _near(_xy(nxt.target), (2.5, 2.0))
    resp = h.result(gh, timeout=40.0)
    assert resp.status == GoalStatus.STATUS_SUCCEEDED, resp.result.message
    assert resp.result.items_placed == 3
    picks = [g.object_id for g in h.manip.goals if g.mode == Manipulate.Goal.MODE_PICK]
    assert picks[0] == 1 and sorted(picks) == [1, 2, 3]
    first_place = next(g for g in h.manip.goals if g.mode == Manipulate.Goal.MODE_PLACE)
    assert _near(_xy(first_place.target), CENTRE["bin_red"][:2])
    moves = [r for r in h.tm.results if r.goal.mode.name == "MOVE"]
    assert len(moves) == 1 and moves[0].success and moves[0].items_placed == 1
    assert any("1 placed" in s for s in h.says)   # the instruction's task reports back


def test_unknown_container_is_answered_and_nothing_moves(harness) -> None:
    from action_msgs.msg import GoalStatus
    from katazuke_interfaces.action import Tidy

    h = harness()
    h.instruct("put the duck in the purple bin")
    assert h.spin_until(lambda: any("purple" in s for s in h.says))
    said = next(s for s in h.says if "purple" in s)
    assert "red bin" in said                           # it says which containers it knows
    n = len(h.statuses)
    assert h.spin_until(lambda: len(h.statuses) >= n + 3)      # ~0.6 s of status periods
    assert not h.tm.behaviour.busy and not h.nav.goals and not h.manip.goals
    # the same through the action: the goal fails at once, naming the container
    gh, _ = h.send(Tidy.Goal.MODE_MOVE, object_id=1, container="bin_purple")
    resp = h.result(gh, timeout=5.0)
    assert resp.status == GoalStatus.STATUS_ABORTED and not resp.result.success
    assert "unknown container 'bin_purple'" in resp.result.message
    assert not h.nav.goals and not h.manip.goals


def test_grounding_results_drive_tasks_when_chosen(harness) -> None:
    """instruction_source=grounding: a MOVE result becomes a task, a pending question and
    the 'instruction' topic do nothing, STOP cancels."""
    from katazuke_interfaces.msg import GroundingCandidate, GroundingResult
    from katazuke_interfaces.action import Manipulate
    from katazuke_ros import qos

    h = harness(instruction_source="grounding")
    pub = h.node.create_publisher(GroundingResult, "grounding", qos.EVENTS)
    assert h.spin_until(lambda: pub.get_subscription_count() > 0)
    h.instruct("put the duck in the red bin")          # left to the grounding node
    asked = GroundingResult(intent=GroundingResult.INTENT_MOVE, target_id=1,
                            destination="bin_red", needs_clarification=True,
                            instruction="put the toy in the red bin")
    pub.publish(asked)
    assert not h.spin_until(lambda: bool(h.manip.goals) or h.tm.behaviour.busy, timeout=1.0)
    go = GroundingResult(intent=GroundingResult.INTENT_MOVE, target_id=1, destination="bin_red",
                         instruction="put the duck in the red bin", selected=0,
                         candidates=[GroundingCandidate(object_id=1, category="toy",
                                                        description="the duck", score=0.9)])
    pub.publish(go)
    assert h.spin_until(lambda: any(g.mode == Manipulate.Goal.MODE_PLACE
                                    for g in h.manip.goals), timeout=30.0), h.last_status()
    picks = [g.object_id for g in h.manip.goals if g.mode == Manipulate.Goal.MODE_PICK]
    assert picks == [1]
    assert h.spin_until(lambda: any(r.goal.mode.name == "MOVE" for r in h.tm.results))
    move = next(r for r in h.tm.results if r.goal.mode.name == "MOVE")
    assert move.success and move.goal.object_id == 1 and move.goal.container == "bin_red"
    h.nav.hold = True
    pub.publish(GroundingResult(intent=GroundingResult.INTENT_TIDY_ALL, instruction="tidy up"))
    assert h.spin_until(lambda: h.nav.active == 1, timeout=10.0), h.last_status()
    pub.publish(GroundingResult(intent=GroundingResult.INTENT_STOP, instruction="stop"))
    assert h.spin_until(lambda: any(r.goal.mode.name == "TIDY_ALL" and not r.success
                                    for r in h.tm.results), timeout=20.0), h.last_status()
    assert h.spin_until(lambda: bool(h.nav.cancelled)), "the running approach was not cancelled"


def test_missing_navigator_fails_with_a_clear_cause(harness) -> None:
    from action_msgs.msg import GoalStatus
    from katazuke_interfaces.action import Tidy
    from katazuke_interfaces.msg import TaskItem

    h = harness(navigator=False, **{"skills.server_wait_s": 0.3, "planner.max_failures": 1})
    gh, _ = h.send(Tidy.Goal.MODE_TIDY_ALL)
    resp = h.result(gh, timeout=20.0)
    r = resp.result
    assert resp.status == GoalStatus.STATUS_ABORTED and not r.success
    assert r.items_failed == 3 and all(it.state == TaskItem.FAILED and it.cause == "unavailable"
                                       for it in r.items)
    assert "unavailable x3" in r.message and "navigator" in r.message and "'navigate'" in r.message
    assert h.tm.skills.active_goals == 0
    # the node keeps running: it still answers
    h.says.clear()
    h.instruct("where is the duck")
    assert h.spin_until(lambda: bool(h.says)) and "duck" in h.says[0]


def test_a_navigator_that_does_not_answer_is_unavailable(harness, ros_context) -> None:
    import rclpy
    from action_msgs.msg import GoalStatus
    from rclpy.action import ActionServer
    from katazuke_interfaces.action import Navigate, Tidy

    h = harness(navigator=False, **{"skills.server_wait_s": 0.3, "planner.max_failures": 1})
    # a navigator in the graph whose node is never spun: goals are never answered
    hung = rclpy.create_node("hung_navigator", context=ros_context)
    executed: list[Any] = []
    server = ActionServer(hung, Navigate, "navigate", execute_callback=executed.append)
    try:
        assert h.spin_until(h.tm.skills.nav.server_is_ready)
        gh, _ = h.send(Tidy.Goal.MODE_MOVE, object_description="the mug")
        resp = h.result(gh, timeout=10.0)
        assert resp.status == GoalStatus.STATUS_ABORTED and not executed
        assert "did not answer" in resp.result.message and "unavailable" in resp.result.message
        assert h.tm.skills.active_goals == 0
    finally:
        server.destroy()
        hung.destroy_node()
