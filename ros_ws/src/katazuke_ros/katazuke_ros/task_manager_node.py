"""task_manager: the tidy-up task manager, a thin adapter over :mod:`katazuke.planning.tasks`.

Action server ``tidy`` (katazuke_interfaces/action/Tidy): a goal is submitted to the
:class:`~katazuke.planning.tasks.TidyBehaviour` (pre-empting a running task by the library's
policy: a new MOVE / LOOK_AT runs first and the interrupted task resumes afterwards), the
feedback is the behaviour's ``TaskStatus``, a cancel request cancels the behaviour (every
running skill is cancelled and the base and arm are stopped) and the goal ends CANCELED once
its task reports CANCELLED; the result is the task's (items placed / failed / skipped, the
items, the duration on the node clock, a message with the failure causes).

Subscribes:
    object_map (katazuke_interfaces/ObjectMap, LATCHED): objects and containers for the
        planner (``split_object_map``) and the skills (positions, extents, freshness).
    instruction (std_msgs/String, EVENTS): text commands for the rule-based parser; a
        ``tidy up`` without an action goal starts a task too (its result is logged and said).
        Ignored when ``instruction_source`` is ``grounding`` (the grounding node reads it).
    grounding (katazuke_interfaces/GroundingResult, EVENTS): used when ``instruction_source``
        is ``grounding``: STOP cancels; TIDY_ALL, and MOVE / LOOK_AT with a target (or with a
        ``search_description`` for an object not seen yet: the task explores to find it) and
        no pending question, start a task (``katazuke.planning.tasks.grounded.task_command``).
    /tf, /tf_static: the robot's position ``map_frame`` -> ``base_frame`` (TransformBuffer).
Publishes:
    task_status (katazuke_interfaces/TaskStatus, EVENTS): on every change, and at least
        every ``status_period_s`` (node clock).
    say (std_msgs/String, EVENTS): answers to instructions (what will happen, what was not
        understood, where an object is) and the summary of instruction-started tasks.
    path (nav_msgs/Path, COMMAND): an empty path when the behaviour stops the robot.
Action clients: ``navigate`` (Navigate) and ``manipulate`` (Manipulate), see
:mod:`katazuke_ros.task_skills`.

Parameters: the node's own (:class:`TaskManagerNodeConfig`: ``config_file``, ``tick_hz``,
``skills.*`` ...) and the task configuration (``planner.*``, ``behaviour.*``,
``containers.<id>.*``, ``vocabulary.*``). The task configuration's structure (which
containers, kinds, furniture exist) comes from ``config_file`` (default: the repository's
``launch/params/tidy.yaml``, else the installed ``share/katazuke_ros/launch/params``); every
leaf of it is declared as a parameter with the file's value as default, so a params file
(``tidy.yaml`` itself, as every launch file passes it) or ``-p behaviour.skill_timeout_s:=30``
override single values. Overrides of names the file does not have (a new container) are
declared too.

The behaviour ticks at ``tick_hz`` on the node clock (``use_sim_time`` honoured); every
callback runs on the one thread of ``run_node``'s executor, so nothing needs a lock.
"""
from __future__ import annotations

import array
import dataclasses
from collections import Counter
from pathlib import Path as FsPath
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.task import Future
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from katazuke.config import dataclass, field, positive, read_yaml
from katazuke.errors import ConfigError, InputError
from katazuke.planning.tasks import (BehaviourConfig, GoalMode, ItemState, TaskPhase,
                                     TaskPlannerConfig, TaskResult, TaskStatus, TidyBehaviour,
                                     TidyConfig, TidyGoal, split_object_map,
                                     tidy_config_from_params)
from katazuke.ros.conversions import sec_to_stamp
from katazuke.planning.tasks.grounded import task_command
from katazuke_interfaces.action import Tidy
from katazuke_interfaces.msg import GroundingResult
from katazuke_interfaces.msg import ObjectMap as ObjectMapMsg
from katazuke_interfaces.msg import TaskItem as TaskItemMsg
from katazuke_interfaces.msg import TaskStatus as TaskStatusMsg
from katazuke_ros import qos
from katazuke_ros.node_utils import LogOnce, declare_config, run_node
from katazuke_ros.task_skills import RosSkills, TaskSkillsConfig
from katazuke_ros.tf_buffer import TransformBuffer

__all__ = ["TaskManagerNode", "TaskManagerNodeConfig", "status_msg", "result_msg", "with_causes",
           "declare_tidy_config", "main"]

#: top-level parameter groups of the task configuration (TidyConfig)
TIDY_GROUPS = ("planner", "behaviour", "containers", "vocabulary")


@dataclass(frozen=True)
class TaskManagerNodeConfig:
    """Parameters of the task manager node itself (the task configuration is separate)."""

    config_file: str = field(default="", metadata={
        "help": "tidy.yaml whose 'task_manager: ros__parameters:' block gives the task "
                "configuration's structure and defaults; '' = the repository's "
                "launch/params/tidy.yaml (else the installed share/katazuke_ros copy)"})
    tick_hz: float = positive(10.0, "behaviour ticks per second (node clock)")
    status_period_s: float = positive(1.0, "task_status / feedback is published on every "
                                      "change and at least this often, s (node clock)")
    map_frame: str = field(default="map", metadata={"help": "frame of the object map and goals"})
    base_frame: str = field(default="base_link", metadata={"help": "the robot's base frame"})
    tf_tolerance_s: float = positive(0.5, "tf lookup tolerance for the robot pose, s")
    instruction_source: str = field(default="parser", metadata={
        "help": "'parser': 'instruction' text is parsed by the rule-based parser here; "
                "'grounding': 'grounding' results (the grounding node: speech and typed "
                "text) drive tasks and 'instruction' is left to that node"})
    skills: TaskSkillsConfig = field(default_factory=TaskSkillsConfig, metadata={
        "help": "the ROS skills (action names, timeouts, perception checks)"})


# ----------------------------------------------------------------------------- parameters
def _default_config_file() -> FsPath:
    from katazuke.rosenv import repo_root

    p = repo_root() / "launch" / "params" / "tidy.yaml"
    if p.is_file():
        return p
    try:
        from ament_index_python.packages import get_package_share_directory

        return FsPath(get_package_share_directory("katazuke_ros")) / "launch" / "params" / \
            "tidy.yaml"
    except (ImportError, LookupError):   # not installed: the error names the repository path
        return p


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}{k}.", out)
    elif value is not None:
        out[prefix[:-1]] = value


def _set_nested(tree: dict[str, Any], name: str, value: Any) -> None:
    *path, leaf = name.split(".")
    for k in path:
        tree = tree.setdefault(k, {})
        if not isinstance(tree, dict):
            raise ConfigError(f"task_manager parameter '{name}': '{k}' is a value, not a group")
    tree[leaf] = value


def _plain(value: Any) -> Any:
    if isinstance(value, (array.array, tuple)):
        return list(value)
    return value


def declare_tidy_config(node: Node, config_file: str) -> TidyConfig:
    """Declare the task configuration as parameters and build it (see the module docstring).

    Raises:
        ConfigError: missing file / block, unknown keys, bad values (the message names them).
    """
    path = FsPath(config_file) if config_file else _default_config_file()
    data = read_yaml(path)
    block = data.get("task_manager") if isinstance(data, dict) else None
    if not isinstance(block, dict) or not isinstance(block.get("ros__parameters"), dict):
        raise ConfigError(f"{path}: no 'task_manager: ros__parameters:' block; set the "
                          "config_file parameter to a tidy.yaml")
    own = {f.name for f in dataclasses.fields(TaskManagerNodeConfig)}
    stray = sorted(set(block["ros__parameters"]) - set(TIDY_GROUPS) - own)
    if stray:
        raise ConfigError(f"{path}: task_manager.ros__parameters: unknown key(s) {stray}; "
                          f"valid: the task groups {list(TIDY_GROUPS)} and the node's own "
                          f"{sorted(own)}")
    # the node's own keys in the file reach it as ROS parameters (the launch params file)
    base = {k: v for k, v in block["ros__parameters"].items() if k in TIDY_GROUPS}
    # every planner / behaviour knob is a parameter, also those the file leaves out
    for key, cls in (("planner", TaskPlannerConfig), ("behaviour", BehaviourConfig)):
        base[key] = {**dataclasses.asdict(cls()), **(base.get(key) or {})}
    flat: dict[str, Any] = {}
    _flatten(base, "", flat)
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    for name in overrides:
        if name.split(".", 1)[0] in TIDY_GROUPS and name not in flat:
            flat[name] = None             # declared from its override alone
    tree: dict[str, Any] = {}
    desc = ParameterDescriptor(dynamic_typing=True,
                               description=f"task configuration (defaults from {path})")
    for name, default in flat.items():
        if default is None:                       # only an override gives it
            value = node.declare_parameter(name, None, desc).value
        elif isinstance(default, list) and not default:
            # an empty list has no element type to infer (rclpy would make it a byte array)
            value = node.declare_parameter(name, Parameter.Type.STRING_ARRAY, desc).value
            value = [] if value is None else value
        else:
            value = node.declare_parameter(name, default, desc).value
        _set_nested(tree, name, _plain(value))
    return tidy_config_from_params(tree, where=f"node '{node.get_name()}' task parameters "
                                   f"(structure from {path})")


# ----------------------------------------------------------------------------- messages
def _item_msgs(items: Any) -> list[TaskItemMsg]:
    return [TaskItemMsg(object_id=int(it.object_id), category=it.category,
                        destination=it.destination, state=int(it.state),
                        attempts=int(it.attempts), cause=it.cause) for it in items]


def status_msg(st: TaskStatus) -> TaskStatusMsg:
    """``TaskStatus`` message of the behaviour's feedback (stamp = ``st.stamp_s``)."""
    m = TaskStatusMsg()
    m.header.stamp = sec_to_stamp(st.stamp_s)
    m.task_id = st.task_id
    m.state = int(st.state)
    m.current_step = st.current_step
    m.object_id = int(st.object_id)
    m.destination = st.destination
    m.progress = float(st.progress)
    m.items = _item_msgs(st.items)
    m.message = st.message
    return m


def with_causes(r: TaskResult, details: dict[str, str] | None = None) -> str:
    """The task's message plus its items' failure / skip causes counted, each with the
    latest skill message of that cause from ``details`` (e.g. which server is missing)."""
    causes = Counter(it.cause for it in r.items if it.cause and it.state != ItemState.PLACED)
    if not causes:
        return r.message
    details = details or {}
    text = ", ".join(f"{c} x{n}" + (f" ({details[c]})" if c in details else "")
                     for c, n in sorted(causes.items()))
    return f"{r.message}; causes: {text}"


def result_msg(r: TaskResult, message: str) -> Tidy.Result:
    """``Tidy`` result of a finished task."""
    return Tidy.Result(success=bool(r.success), items_placed=int(r.items_placed),
                       items_failed=int(r.items_failed), items_skipped=int(r.items_skipped),
                       items=_item_msgs(r.items), duration_s=float(r.duration_s),
                       message=message)


def _status_key(st: TaskStatus) -> tuple:
    """What makes a status different from the previous one (not its stamp)."""
    return (st.task_id, st.state, st.current_step, st.object_id, st.destination, st.message,
            tuple((it.object_id, it.state, it.attempts, it.cause, it.destination)
                  for it in st.items))


# ----------------------------------------------------------------------------- node
class TaskManagerNode(Node):
    """The tidy-up task manager (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("task_manager", **kwargs)
        self.node_config: TaskManagerNodeConfig = declare_config(self, TaskManagerNodeConfig)
        self.tidy_config = declare_tidy_config(self, self.node_config.config_file)
        cfg = self.node_config
        self._log = LogOnce(self)
        self._tf = TransformBuffer()
        self.skills = RosSkills(self, cfg.skills, self.tidy_config, cfg.map_frame)
        self.behaviour = TidyBehaviour(self.tidy_config, self.skills)
        self._goals: dict[str, list[tuple[Any, Future]]] = {}   # task id -> (goal handle, done)
        self._last_key: tuple | None = None
        self._last_step: tuple | None = None      # (task, step, object) last logged
        self._last_message = ""
        self._last_pub_s = -1e18
        self.status: TaskStatus | None = None
        self.results: list[TaskResult] = []       # every finished task (for tests, logs)
        self._status_pub = self.create_publisher(TaskStatusMsg, "task_status", qos.EVENTS)
        self._say_pub = self.create_publisher(String, "say", qos.EVENTS)
        self.create_subscription(ObjectMapMsg, "object_map", self._on_map, qos.LATCHED)
        if cfg.instruction_source not in ("parser", "grounding"):
            raise ConfigError(f"task_manager instruction_source "
                              f"'{cfg.instruction_source}': use 'parser' or 'grounding'")
        self.create_subscription(String, "instruction", self._on_instruction, qos.EVENTS)
        self.create_subscription(GroundingResult, "grounding", self._on_grounding, qos.EVENTS)
        self.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), qos.STATE)
        self.create_subscription(TFMessage, "/tf_static", lambda m: self._on_tf(m, True),
                                 qos.LATCHED)
        self._server = ActionServer(self, Tidy, "tidy", execute_callback=self._execute,
                                    goal_callback=self._on_goal,
                                    cancel_callback=self._on_cancel)
        self.create_timer(1.0 / cfg.tick_hz, self._tick)
        self.get_logger().info(
            f"task_manager: {len(self.tidy_config.containers)} containers, "
            f"{len(self.tidy_config.vocabulary.kinds)} kinds, tick {cfg.tick_hz:g} Hz, "
            f"skills via '{cfg.skills.navigate_action}' and '{cfg.skills.manipulate_action}'")

    # ------------------------------------------------------------------ inputs
    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_tf(self, msg: TFMessage, static: bool) -> None:
        for reason in self._tf.add_tf_message(msg, static):
            self._log.warn(f"tf_{reason}", f"tf rejected: {reason}")

    def _on_map(self, msg: ObjectMapMsg) -> None:
        if msg.header.frame_id and msg.header.frame_id != self.node_config.map_frame:
            self._log.warn("map_frame", f"object_map frame '{msg.header.frame_id}' is not "
                           f"map_frame '{self.node_config.map_frame}'; using it as is")
        try:
            objects, containers = split_object_map(msg.objects)
        except InputError as exc:
            self._log.error("bad_map", f"object_map rejected: {exc}")
            return
        self._log.clear("bad_map")
        self.skills.update_map(msg)
        self.behaviour.update_map(objects, containers if containers else None)

    def _say(self, text: str) -> None:
        if text:
            self.get_logger().info(f"say: {text}")
            self._say_pub.publish(String(data=text))

    def _on_instruction(self, msg: String) -> None:
        text = msg.data.strip()
        if not text or self.node_config.instruction_source != "parser":
            return
        res = self.behaviour.instruct(text, self.now_s())
        self.get_logger().info(f"instruction '{text}': {res.intent.name}"
                               + ("" if res.understood else f" (not understood: {res.unknown})"))
        self._say(res.message)

    def _on_grounding(self, msg: GroundingResult) -> None:
        if self.node_config.instruction_source != "grounding":
            return
        desc = (msg.candidates[msg.selected].description
                if 0 <= msg.selected < len(msg.candidates) else "")
        what, goal = task_command(msg.intent, msg.target_id, msg.destination,
                                  msg.needs_clarification, desc, msg.instruction,
                                  msg.search_description)
        if what == "stop":
            self.get_logger().info(f"grounding '{msg.instruction}': STOP")
            self.behaviour.cancel(self.now_s())
        elif what == "submit" and goal is not None:
            task_id = self.behaviour.submit(goal, self.now_s())
            self.get_logger().info(f"grounding '{msg.instruction}': {goal.mode.name} "
                                   f"object {goal.object_id} -> {goal.container or '-'} "
                                   f"({task_id})")

    # ------------------------------------------------------------------ action
    def _on_goal(self, goal: Tidy.Goal) -> GoalResponse:
        if goal.mode not in (Tidy.Goal.MODE_TIDY_ALL, Tidy.Goal.MODE_MOVE,
                             Tidy.Goal.MODE_LOOK_AT):
            self.get_logger().error(f"tidy goal rejected: mode {goal.mode} is not one of "
                                    "MODE_TIDY_ALL (0), MODE_MOVE (1), MODE_LOOK_AT (2)")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, goal_handle: Any) -> CancelResponse:
        self.get_logger().info("tidy goal cancel requested: cancelling the task")
        self.behaviour.cancel(self.now_s())
        return CancelResponse.ACCEPT

    async def _execute(self, goal_handle: Any) -> Tidy.Result:
        g = goal_handle.request
        goal = TidyGoal(GoalMode(int(g.mode)), int(g.object_id), g.object_description,
                        g.container, g.instruction)
        task_id = self.behaviour.submit(goal, self.now_s())
        self.get_logger().info(f"tidy goal {goal.mode.name} -> {task_id}"
                               + (f" ('{g.instruction}')" if g.instruction else ""))
        done = Future()
        self._goals.setdefault(task_id, []).append((goal_handle, done))
        r: TaskResult = await done
        res = result_msg(r, with_causes(r, self.skills.failures))
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif r.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return res

    # ------------------------------------------------------------------ tick
    def _robot_pose(self) -> None:
        cfg = self.node_config
        T, reason = self._tf.lookup(cfg.map_frame, cfg.base_frame, self.now_s(),
                                    cfg.tf_tolerance_s)
        if T is None:
            if not self.behaviour.busy:
                return                    # matters only while a task runs
            self._log.warn("no_pose", f"no robot pose {cfg.map_frame} -> {cfg.base_frame}: "
                           f"{reason}; planning from the last known position")
            return
        self._log.clear("no_pose")
        xy = (float(T[0, 3]), float(T[1, 3]))
        self.behaviour.update_robot(xy)
        self.skills.robot_xy = xy

    def _tick(self) -> None:
        self._robot_pose()
        now = self.now_s()
        st = self.behaviour.tick(now)
        self.status = st
        key = _status_key(st)
        changed = key != self._last_key
        if self.behaviour.busy:
            step = (st.task_id, st.current_step, st.object_id)
            if step != self._last_step:
                self._last_step = step
                inst = self.skills.instances.get(st.object_id)
                at = (f" {inst.category} at ({inst.position.x:.2f}, {inst.position.y:.2f}, "
                      f"{inst.position.z:.2f})" if inst is not None else "")
                what = (f" (object {st.object_id}{at} -> {st.destination or '?'})"
                        if st.object_id else "")
                self.get_logger().info(f"{st.task_id}: {st.current_step or 'choosing'}{what}")
            if st.message and st.message != self._last_message:
                self._last_message = st.message
                self.get_logger().info(f"{st.task_id}: {st.message}")
        if changed or now - self._last_pub_s >= self.node_config.status_period_s:
            self._last_key, self._last_pub_s = key, now
            m = status_msg(st)
            self._status_pub.publish(m)
            fb = Tidy.Feedback(status=m)
            for handles in self._goals.values():
                for gh, _ in handles:
                    if gh.is_active:
                        gh.publish_feedback(fb)
        for r in self.behaviour.pop_results():
            self._finished(r)

    def _finished(self, r: TaskResult) -> None:
        self.results.append(r)
        text = with_causes(r, self.skills.failures)
        self.get_logger().info(f"{r.task_id} ({r.goal.mode.name}) {r.state.name} in "
                               f"{r.duration_s:.1f} s: {text}")
        waiting = self._goals.pop(r.task_id, [])
        for _, done in waiting:
            done.set_result(r)
        if not waiting and r.state != TaskPhase.CANCELLED:
            # an instruction-started task: tell the user how it went
            self._say(f"{'Done' if r.success else 'I could not finish'}: {text}")

    def destroy_node(self) -> None:
        """Cancel running skills, then destroy the action server and clients with the node
        (rclpy does not destroy action entities with their node)."""
        if self.behaviour.busy:
            if rclpy.ok(context=self.context):
                self.behaviour.cancel(self.now_s())
            else:  # shut down by a signal: nothing can be published to stop the robot
                self.get_logger().warning("shut down with a task running; the controller's "
                                          "path watchdog stops the base")
        self._server.destroy()
        self.skills.destroy()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(TaskManagerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
