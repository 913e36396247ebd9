"""The tidy-up behaviour: an explicit, tickable state machine over :class:`Skills`.

Why a state machine and not a py-trees tree: the flow is one pipeline per item with
step-specific recovery (re-perceive, another approach, put the object down before a retry),
and pre-emption / cancellation must land in a known safe state at any tick. A flat table of
steps with one "make safe, then continue" queue states that directly and is exhaustively
testable; the step names are the ``TaskStatus.current_step`` texts.

Flow of a tidy-all task::

    explore -> choose (plan) -> navigate to pre-grasp -> look -> perceive -> grasp
      -> lift and verify [IN_HAND] -> navigate to container -> place -> verify placed
      [PLACED] -> stow -> choose ...

When the plan is empty, the robot drives to the nearest configured viewpoint it has not
visited (``behaviour.viewpoints_xy``) and scans from there, then chooses again; the task
ends when nothing is left to do and every viewpoint was visited (an unreachable one counts).

Recovery: a failed perception is retried (``max_perceive_retries``); any other failed step
counts one failure of the item and the next try starts again from the navigation with the
next approach pose (so it re-perceives); an object in hand is first put down (``release``).
After ``planner.max_failures`` failures the item is FAILED with the last cause. Budgets: each
skill call (``skill_timeout_s``), each item (time and ticks), each task (time and ticks);
making the robot safe is bounded by ``safe_timeout_s`` per step. Nothing can loop forever.

Pre-emption (a new MOVE / LOOK_AT goal while a task runs): if nothing is in hand, the
current skill is cancelled, ``stop()`` is called, the arm is stowed and the item goes back
to PENDING (no failure counted); the new task runs at once. If an object is in hand, the
behaviour *carries on* to that object's container (placing is the safest way to free the
gripper and finishes work already paid for), then runs the new task. When the new task ends
the interrupted task resumes by re-planning. A new TIDY_ALL while tidying only re-plans.

Cancel, at any tick: the running skill is cancelled, ``stop()`` is called, every task on the
stack ends CANCELLED; an object in hand stays IN_HAND in the items and the message says so
(the next task starts by carrying it to its container).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

from katazuke.planning.tasks.config import TidyConfig
from katazuke.planning.tasks.items import Container, ItemState, MapObject, TaskItem, TaskPhase
from katazuke.planning.tasks.parser import (GoalMode, InstructionParser, Intent, ParseResult,
                                            TidyGoal)
from katazuke.planning.tasks.planner import TaskPlanner, TravelCost
from katazuke.planning.tasks.skills import NavTarget, SkillHandle, SkillResult, Skills, SkillStatus

__all__ = ["TaskStatus", "TaskResult", "TidyBehaviour"]


@dataclasses.dataclass(frozen=True)
class TaskStatus:
    """Feedback of one tick (``TaskStatus.msg`` field for field; ``stamp_s`` = header stamp)."""

    stamp_s: float
    task_id: str
    state: TaskPhase
    current_step: str
    object_id: int
    destination: str
    progress: float
    items: tuple[TaskItem, ...]
    message: str


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """Result of a finished task (``Tidy`` result field for field, plus the final phase)."""

    task_id: str
    goal: TidyGoal
    state: TaskPhase
    success: bool
    items_placed: int
    items_failed: int
    items_skipped: int
    items: tuple[TaskItem, ...]
    duration_s: float
    message: str


@dataclasses.dataclass
class _Task:
    id: str
    goal: TidyGoal
    started_s: float
    ticks: int = 0
    item_ids: list[int] | None = None       # None: every item of the planner (TIDY_ALL)
    explored: bool = False
    tries: int = 0                          # LOOK_AT tries / searches for the object
    spent: bool = False                     # budget exhausted: only making safe remains
    scan_failures: int = 0                  # failed scans of the room (explore)
    scan_retry_at: float = 0.0              # robot clock: no new scan before this
    viewpoints_left: list[tuple[float, float]] | None = None   # None: not started yet
    message: str = ""


@dataclasses.dataclass
class _Step:
    name: str                 # current_step text
    phase: TaskPhase
    start: Callable[[], SkillHandle]
    on_success: Callable[[SkillResult], None]
    on_failure: Callable[[SkillResult], None]
    timeout_s: float
    #: polled every tick while the skill runs: a non-empty cause cancels it (stop) and the
    #: step fails with that cause
    abort_if: Callable[[], str] | None = None


class TidyBehaviour:
    """Tickable tidy-up behaviour.

    Example:
        >>> b = TidyBehaviour(cfg, skills)                       # doctest: +SKIP
        >>> b.update_map(objects, containers); b.update_robot((x, y))
        >>> b.submit(TidyGoal(GoalMode.TIDY_ALL), now_s=t)
        >>> while True:
        ...     status = b.tick(t); t += 0.1                     # feedback every tick
        ...     for r in b.pop_results(): ...                    # finished tasks

    Args:
        config: the task manager's configuration.
        skills: the robot's skills.
        travel_cost: the navigator's cost callback for planning (default Euclidean).
    """

    def __init__(self, config: TidyConfig, skills: Skills,
                 travel_cost: TravelCost | None = None) -> None:
        self.config = config
        self.cfg = config.behaviour
        self.skills = skills
        self.travel_cost = travel_cost
        self.planner = TaskPlanner(config)
        self.parser = InstructionParser(config)
        self._robot_xy = (0.0, 0.0)
        self._stack: list[_Task] = []
        self._queued: list[_Task] = []       # waits for the object in hand to be placed
        self._results: list[TaskResult] = []
        self._step: _Step | None = None
        self._handle: SkillHandle | None = None
        self._step_started = 0.0
        self._safe: list[tuple[str, Callable[[], SkillHandle]]] = []
        self._after_safe: Callable[[], None] | None = None
        self._item_id = 0
        self._item_time: dict[int, float] = {}
        self._item_ticks: dict[int, int] = {}
        self._last_tick_s = 0.0
        self._approach: dict[int, int] = {}              # object id -> next approach index
        self._container_approach: dict[str, int] = {}    # container id -> next approach index
        self._perceive_retries = 0
        self._trapped = 0        # consecutive 'trapped' recoveries (reset by a drive)
        self._holding = 0                     # object id in hand (IN_HAND), 0 if none
        self._now = 0.0
        self._counter = 0
        self._message = ""
        self._final_phase = TaskPhase.IDLE
        self._final_task = ""

    # ------------------------------------------------------------------ inputs
    def update_map(self, objects: Iterable[MapObject],
                   containers: Iterable[Container] | None = None) -> bool:
        """A new object map (see :meth:`TaskPlanner.update_map`); the next choice re-plans.

        Items the planner handed over to a re-created object (a new id) are followed: the
        current item, the object in hand, the tasks' item lists and the approach counters
        take the new id; a running skill's handle keeps the id it was started with (the
        skills look the object up by the id the planner resolves when they start).
        """
        changed = self.planner.update_map(objects, containers)
        ren = self.planner.pop_renames()
        if ren:
            r = self.planner.resolve
            self._item_id, self._holding = r(self._item_id), r(self._holding)
            for t in self._stack + self._queued:
                if t.item_ids is not None:
                    t.item_ids = [r(i) for i in t.item_ids]
            for table in (self._approach, self._item_time, self._item_ticks):
                for old in [k for k in table if k in ren]:
                    table[r(old)] = table.pop(old)
        return changed

    def update_robot(self, robot_xy: Sequence[float]) -> None:
        """The robot's position in the map frame, m (for planning and grounding)."""
        self._robot_xy = (float(robot_xy[0]), float(robot_xy[1]))

    @property
    def busy(self) -> bool:
        """Whether a task is running."""
        return bool(self._stack)

    @property
    def holding(self) -> int:
        """Object id in the gripper (IN_HAND), 0 if none."""
        return self._holding

    def pop_results(self) -> list[TaskResult]:
        """Results of the tasks finished since the last call, oldest first."""
        out, self._results = self._results, []
        return out

    def instruct(self, text: str, now_s: float) -> ParseResult:
        """Parse an instruction and act on it: STOP cancels, TIDY_ALL / MOVE / LOOK_AT
        submit (pre-empting a running task), WHERE_IS only answers (``message``), anything
        not understood changes nothing.

        Returns:
            The parse result; for WHERE_IS its ``message`` is the answer from the map.
        """
        res = self.parser.parse(text)
        if not res.understood:
            return res
        if res.intent == Intent.STOP:
            self.cancel(now_s)
        elif res.intent == Intent.WHERE_IS and res.query is not None:
            answer = self.parser.where_is_answer(res.query, list(self.planner.objects.values()),
                                                 self._robot_xy)
            res = dataclasses.replace(res, message=answer)
        elif res.goal is not None and res.intent in (Intent.TIDY_ALL, Intent.MOVE,
                                                      Intent.LOOK_AT):
            self.submit(res.goal, now_s)
        return res

    def submit(self, goal: TidyGoal, now_s: float) -> str:
        """Start a task, pre-empting the running one (see the module docstring).

        Returns:
            The task id.
        """
        self._now = float(now_s)
        self._counter += 1
        task = _Task(f"task-{self._counter}", goal, float(now_s))
        if goal.mode == GoalMode.TIDY_ALL:
            tidy = next((t for t in self._stack if t.goal.mode == GoalMode.TIDY_ALL), None)
            if tidy is not None:         # already tidying: re-plan at the next choice
                self._message = "new tidy-up command: re-planning"
                return tidy.id
        if not self._stack:
            self._begin(task)
        elif self._holding:
            if (goal.mode == GoalMode.MOVE and self._step is not None
                    and self._step.name == "navigate to the container"
                    and self._targets_held(goal)):
                self._retarget_held(task)
            else:
                self._queued.append(task)
                self._message = (f"new command queued: placing object {self._holding} in its "
                                 "container first")
        else:
            self._make_safe_for_preemption()
            prev = self._after_safe

            def then() -> None:
                if prev is not None:
                    prev()
                self._begin(task)
            self._after_safe = then
        return task.id

    def _targets_held(self, goal: TidyGoal) -> bool:
        """Whether a MOVE goal is about the object in hand."""
        held = self.planner.objects.get(self._holding)
        if held is None:
            return goal.object_id == self._holding
        if goal.object_id:
            return goal.object_id == self._holding
        q, _ = self.parser.parse_object(goal.object_description)
        return q is not None and self.parser.resolve(q, [held], self._robot_xy).found

    def _retarget_held(self, task: _Task) -> None:
        """A MOVE about the object in hand, while carrying it: carry it to the new container."""
        held = self._holding
        self._begin(task)
        if not self._stack or self._stack[-1] is not task:
            return                                   # unknown container: task already failed
        task.item_ids = [held]
        it = self.planner.item(held)
        if task.goal.container:
            it.destination, it.user_destination = task.goal.container, True
        self._abort_motion()                         # the next tick drives to the new container
        self._message = f"carrying object {held} to {it.destination} instead"

    def cancel(self, now_s: float) -> None:
        """Cancel every task now: cancel the running skill, ``stop()``, tasks CANCELLED."""
        self._now = float(now_s)
        if self._handle is not None:
            self._handle.cancel()
        self.skills.stop()
        self._handle, self._step, self._safe, self._after_safe = None, None, [], None
        tasks = list(reversed(self._stack)) + self._queued
        self._stack, self._queued = [], []
        for t in tasks:
            self._cancel_items(t)
            held = (f"; still holding object {self._holding} (IN_HAND)" if self._holding else "")
            self._finish(t, TaskPhase.CANCELLED, False, f"cancelled{held}")
        self._item_id = 0

    # ------------------------------------------------------------------ tick
    def tick(self, now_s: float) -> TaskStatus:
        """Advance the behaviour by one tick and return its feedback.

        Args:
            now_s: the robot's clock (sim seconds in simulation); no wall clock is read.
        """
        self._now = float(now_s)
        if self._stack:
            task = self._stack[-1]
            task.ticks += 1
            self._account()
            self._check_budgets(task)
            self._advance()
        else:
            self._last_tick_s = self._now
        return self._status()

    def _advance(self) -> None:
        # At most a few synchronous transitions per tick (choose -> start a skill).
        for _ in range(8):
            if self._step is None:
                if self._safe:
                    self._start_safe()
                    continue
                if self._after_safe is not None:
                    cont, self._after_safe = self._after_safe, None
                    cont()
                    continue
                if not self._stack:
                    return
                self._choose()
                if self._step is None:
                    continue
            if self._handle is None:
                self._step_started = self._now
                self._handle = self._step.start()
            st = self._handle.status()
            if st == SkillStatus.RUNNING:
                why = self._step.abort_if() if self._step.abort_if is not None else ""
                what = why
                if not why and self._now - self._step_started > self._step.timeout_s:
                    why, what = "timeout", "timed out"
                if not why:
                    return
                self._handle.cancel()
                self.skills.stop()
                self._finish_step(SkillResult(SkillStatus.FAILURE, why,
                                              f"{self._step.name}: {what}"))
                continue
            self._finish_step(self._handle.result())
            if self._step is not None and self._handle is None:
                # next step set synchronously: start it on the next tick so a tick is one
                # poll of one skill (keeps pre-emption latency at one tick).
                return

    def _finish_step(self, res: SkillResult) -> None:
        step = self._step
        self._step, self._handle = None, None
        assert step is not None
        if res.status == SkillStatus.SUCCESS:
            if step.phase == TaskPhase.NAVIGATING:
                self._trapped = 0
            step.on_success(res)
        else:
            if res.message:
                self._message = res.message
            step.on_failure(res)

    def _set(self, name: str, phase: TaskPhase, start: Callable[[], SkillHandle],
             on_success: Callable[[SkillResult], None],
             on_failure: Callable[[SkillResult], None] | None = None,
             abort_if: Callable[[], str] | None = None) -> None:
        self._step = _Step(name, phase, start, on_success,
                           on_failure or (lambda r: self._fail_try(r.cause or "failed")),
                           self.cfg.skill_timeout_s, abort_if)

    def _vanished(self, oid: int) -> Callable[[], str]:
        """An ``abort_if`` for steps that need object ``oid`` in the map: ``"not_found"`` once
        it has been out of the map (under its id or the id its item was handed over to) for
        ``vanished_grace_s``."""
        since: list[float] = []

        def check() -> str:
            if self.planner.resolve(oid) in self.planner.objects:
                since.clear()
                return ""
            if not since:
                since.append(self._now)
            return "not_found" if self._now - since[0] >= self.cfg.vanished_grace_s else ""
        return check

    # ------------------------------------------------------------------ safety
    def _make_safe_for_preemption(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self.skills.stop()
        self._step, self._handle = None, None
        if self._item_id and self.planner.has_item(self._item_id):
            it = self.planner.item(self._item_id)
            if it.state == ItemState.ACTIVE:
                it.transition(ItemState.PENDING)
        self._item_id = 0
        self._safe = [("stow the arm", self.skills.stow_arm)]

    def _start_safe(self) -> None:
        name, start = self._safe.pop(0)

        def done(_r: SkillResult) -> None:
            return None

        def failed(r: SkillResult) -> None:
            self._message = f"{name} failed ({r.cause or 'failed'}); continuing"

        self._step = _Step(name, TaskPhase.RECOVERING, start, done, failed, self.cfg.safe_timeout_s)

    def _release_steps(self) -> list[tuple[str, Callable[[], SkillHandle]]]:
        steps = []
        if self._holding:
            steps.append(("put the object down", self.skills.release))
        steps.append(("stow the arm", self.skills.stow_arm))
        return steps

    # ------------------------------------------------------------------ budgets
    def _account(self) -> None:
        """Charge the elapsed time and this tick to the current item's budget."""
        dt = max(0.0, self._now - self._last_tick_s)
        self._last_tick_s = self._now
        if self._item_id:
            self._item_time[self._item_id] = self._item_time.get(self._item_id, 0.0) + dt
            self._item_ticks[self._item_id] = self._item_ticks.get(self._item_id, 0) + 1

    def _abort_motion(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self.skills.stop()
        self._step, self._handle = None, None

    def _check_budgets(self, task: _Task) -> None:
        """Enforce the task and item budgets: stop, make safe (bounded), give up."""
        if task.spent:
            return
        if (self._now - task.started_s > self.cfg.task_budget_s
                or task.ticks > self.cfg.task_budget_ticks):
            for t in self._stack:
                t.spent = True
            self._abort_motion()
            held = self._holding
            self._safe = self._release_steps()
            self._item_id = 0

            def end() -> None:
                for t in list(reversed(self._stack)):
                    for oid in self._task_ids(t):
                        it = self.planner.item(oid)
                        if oid == held and it.state == ItemState.IN_HAND:
                            it.transition(ItemState.FAILED, "timeout")
                        elif it.state in (ItemState.PENDING, ItemState.ACTIVE):
                            it.transition(ItemState.SKIPPED, "timeout")
                self._holding = 0
                stack, self._stack = self._stack, []
                for t in reversed(stack):
                    self._finish(t, TaskPhase.FAILED, False, "task budget exhausted")
                self._start_queued()
            self._after_safe = end
            return
        oid = self._item_id
        if oid and (self._item_time.get(oid, 0.0) > self.cfg.item_budget_s
                    or self._item_ticks.get(oid, 0) > self.cfg.item_budget_ticks):
            self._abort_motion()
            self._safe = self._release_steps()
            self._item_id = 0

            def fail_item() -> None:
                it = self.planner.item(oid)
                if it.state in (ItemState.ACTIVE, ItemState.IN_HAND):
                    it.transition(ItemState.FAILED, "timeout")
                elif it.state == ItemState.PENDING:
                    it.transition(ItemState.ACTIVE)
                    it.transition(ItemState.FAILED, "timeout")
                self._holding = 0
                self._message = f"object {oid}: item budget exhausted -> FAILED (timeout)"
                self._start_queued_if_preempting()
            self._after_safe = fail_item

    # ------------------------------------------------------------------ tasks
    def _task_ids(self, task: _Task) -> list[int]:
        if task.item_ids is not None:
            return [i for i in task.item_ids if self.planner.has_item(i)]
        return [it.object_id for it in self.planner.items]

    def _begin(self, task: _Task) -> None:
        self._stack.append(task)
        g = task.goal
        if g.mode == GoalMode.TIDY_ALL:
            task.explored = not self.cfg.explore_first
            for it in self.planner.items:
                if it.state == ItemState.SKIPPED and it.cause in ("cancelled", "timeout"):
                    it.transition(ItemState.PENDING)
            return
        task.explored = True        # MOVE / LOOK_AT: explore only when the object is not found
        task.item_ids = []          # before any early end: the result counts only this task's items
        if g.container and g.container not in {c.id for c in self.config.containers}:
            known = ", ".join(self.parser.known_containers())
            self._stack.pop()
            self._finish(task, TaskPhase.FAILED, False,
                         f"unknown container '{g.container}'; I know: {known}")
            return

    def _resolve(self, task: _Task) -> int:
        g = task.goal
        if g.object_id:
            return g.object_id if g.object_id in self.planner.objects else 0
        q, bad = self.parser.parse_object(g.object_description)
        if q is None:
            task.message = self._message = self.parser.unknown_object_message(bad)
            return 0
        res = self.parser.resolve(q, list(self.planner.objects.values()), self._robot_xy)
        task.message = self._message = res.message
        return res.object_id

    def _choose(self) -> None:
        task = self._stack[-1]
        if self._holding:
            self._carry(self._holding)
            return
        if not task.explored:
            if self._now < task.scan_retry_at:
                return                              # wait before the next scan try

            def scan_failed(r: SkillResult) -> None:
                task.scan_failures += 1
                self._message = f"exploration failed ({r.cause})"
                if task.scan_failures <= self.cfg.explore_retries:
                    task.explored = False           # try again after explore_retry_s
                    task.scan_retry_at = self._now + self.cfg.explore_retry_s

            task.explored = True
            self._set("scan the room", TaskPhase.EXPLORING, self.skills.explore,
                      lambda r: None, scan_failed)
            return
        g = task.goal
        if g.mode != GoalMode.TIDY_ALL and task.item_ids == []:
            oid = self._resolve(task)
            if not oid:
                if task.tries == 0:
                    task.tries += 1
                    self._set("scan the room to find the object", TaskPhase.EXPLORING,
                              self.skills.explore, lambda r: None, lambda r: None)
                    return
                self._end_task(task, TaskPhase.FAILED, False,
                               task.message or f"object {g.object_id} not found")
                return
            task.tries = 0
            if g.mode == GoalMode.LOOK_AT:
                task.item_ids = [oid]
                self._look_at_target(task, oid)
                return
            self.planner.ensure_item(oid, g.container)
            task.item_ids = [oid]
        if g.mode == GoalMode.LOOK_AT:
            assert task.item_ids
            self._look_at_target(task, task.item_ids[0])     # resumed after a pre-emption
            return
        order = self.planner.plan(self._robot_xy, self.travel_cost, only=task.item_ids)
        if (not order and g.mode == GoalMode.TIDY_ALL
                and task.scan_failures <= self.cfg.explore_retries   # scanning works at all
                and self._next_viewpoint(task)):
            return
        if not order:
            ids = self._task_ids(task)
            if not ids and task.scan_failures > self.cfg.explore_retries:
                # nothing known and the room was never scanned: not "nothing to tidy"
                self._end_task(task, TaskPhase.FAILED, False,
                               f"could not scan the room ({task.scan_failures} tries): "
                               f"{self._message}")
                return
            its = [self.planner.item(i) for i in ids]
            ok = all(it.state == ItemState.PLACED
                     or it.cause in ("already_in_container", "in_another_container")
                     for it in its)
            self._end_task(task, TaskPhase.SUCCEEDED if ok else TaskPhase.FAILED, ok, "")
            return
        self._start_item(order[0])

    def _next_viewpoint(self, task: _Task) -> bool:
        """Nothing left to tidy: drive to the nearest viewpoint not yet visited and scan the
        room from there (``behaviour.viewpoints_xy``). False when none is left."""
        if task.viewpoints_left is None:
            task.viewpoints_left = self.cfg.viewpoints
        if not task.viewpoints_left:
            return False
        rx, ry = self._robot_xy
        vp = min(task.viewpoints_left, key=lambda p: ((p[0] - rx) ** 2 + (p[1] - ry) ** 2, p))
        task.viewpoints_left.remove(vp)
        n_left = len(task.viewpoints_left)

        def scan(_r: SkillResult) -> None:
            self._set("scan the room", TaskPhase.EXPLORING, self.skills.explore,
                      lambda r: None, lambda r: None)

        def unreachable(r: SkillResult) -> None:
            self._message = (f"viewpoint ({vp[0]:.2f}, {vp[1]:.2f}) not reached "
                             f"({r.cause or 'failed'}); {n_left} left")

        self._message = f"looking for more objects from ({vp[0]:.2f}, {vp[1]:.2f})"
        self._set("drive to a viewpoint", TaskPhase.EXPLORING,
                  lambda: self.skills.navigate_to(NavTarget((vp[0], vp[1], 0.0), "goto")),
                  scan, unreachable)
        return True

    def _end_task(self, task: _Task, phase: TaskPhase, success: bool, message: str) -> None:
        self._stack.remove(task)
        self._finish(task, phase, success, message)
        self._start_queued()

    def _start_queued(self) -> None:
        if self._queued:
            nxt = self._queued.pop(0)
            self._begin(nxt)

    def _cancel_items(self, task: _Task) -> None:
        for oid in self._task_ids(task):
            it = self.planner.item(oid)
            if it.state in (ItemState.PENDING, ItemState.ACTIVE):
                it.transition(ItemState.SKIPPED, "cancelled")

    def _finish(self, task: _Task, phase: TaskPhase, success: bool, message: str) -> None:
        items = tuple(self.planner.item(i).copy() for i in self._task_ids(task))
        n = {s: sum(it.state == s for it in items) for s in ItemState}
        if task.goal.mode == GoalMode.LOOK_AT:
            summary = "looked at the object" if success else "could not look at the object"
        else:
            summary = (f"{n[ItemState.PLACED]} placed, {n[ItemState.FAILED]} failed, "
                       f"{n[ItemState.SKIPPED]} skipped of {len(items)}")
        msg = "; ".join(x for x in (message, summary) if x)
        self._results.append(TaskResult(task.id, task.goal, phase, success, n[ItemState.PLACED],
                                        n[ItemState.FAILED], n[ItemState.SKIPPED], items,
                                        self._now - task.started_s, msg))
        self._final_phase, self._final_task, self._message = phase, task.id, msg

    # ------------------------------------------------------------------ LOOK_AT
    def _look_at_target(self, task: _Task, oid: int) -> None:
        pos = self.planner.objects[oid].position

        def failed(r: SkillResult) -> None:
            task.tries += 1
            self._approach[oid] = self._approach.get(oid, 0) + 1
            if task.tries >= self.config.planner.max_failures:
                self._end_task(task, TaskPhase.FAILED, False,
                               f"could not look at object {oid} ({r.cause or 'failed'})")
            else:
                self._look_at_target(task, oid)

        def perceive() -> None:
            self._set("segment the object", TaskPhase.LOOKING,
                      lambda: self.skills.perceive(oid),
                      lambda r: self._end_task(task, TaskPhase.SUCCEEDED, True,
                                               f"looked at object {oid}"), failed)

        def look() -> None:
            self._set("look at the object", TaskPhase.LOOKING,
                      lambda: self.skills.look_at(pos), lambda r: perceive(), failed)

        target = NavTarget(pos, "look", self._approach.get(oid, 0) % self.cfg.approach_poses, oid)
        self._set("navigate to the object", TaskPhase.NAVIGATING,
                  lambda: self.skills.navigate_to(target), lambda r: look(), failed)

    # ------------------------------------------------------------------ item pipeline
    def _start_item(self, oid: int) -> None:
        it = self.planner.item(oid)
        it.transition(ItemState.ACTIVE)
        self._item_id = oid
        self._perceive_retries = 0
        pos = self.planner.objects[oid].position
        target = NavTarget(pos, "pregrasp", self._approach.get(oid, 0) % self.cfg.approach_poses,
                           oid)
        self._set("navigate to pre-grasp pose", TaskPhase.NAVIGATING,
                  lambda: self.skills.navigate_to(target), lambda r: self._look(oid, pos),
                  lambda r: self._fail_try(r.cause or "navigation_failed"),
                  abort_if=self._vanished(oid))

    def _look(self, oid: int, pos: tuple[float, float, float]) -> None:
        self._set("look at the object", TaskPhase.LOOKING, lambda: self.skills.look_at(pos),
                  lambda r: self._perceive(self.planner.resolve(oid)),
                  lambda r: self._fail_try(r.cause or "look_failed"),
                  abort_if=self._vanished(oid))

    def _perceive(self, oid: int) -> None:
        gone = self._vanished(oid)

        def failed(r: SkillResult) -> None:
            if r.cause == "not_found" and gone():
                # out of the map, not merely unseen for a while: looking again cannot help
                self._fail_try("not_found")
            elif self._perceive_retries < self.cfg.max_perceive_retries:
                self._perceive_retries += 1
                self._set("re-perceive the object", TaskPhase.RECOVERING,
                          lambda: self.skills.perceive(self.planner.resolve(oid)),
                          lambda r2: self._grasp(self.planner.resolve(oid)), failed,
                          abort_if=gone)
            else:
                self._fail_try(r.cause or "not_found")

        self._set("segment the object", TaskPhase.LOOKING,
                  lambda: self.skills.perceive(self.planner.resolve(oid)),
                  lambda r: self._grasp(self.planner.resolve(oid)), failed, abort_if=gone)

    def _grasp(self, oid: int) -> None:
        def start() -> SkillHandle:
            self.planner.item(oid).attempts += 1
            return self.skills.grasp(self.planner.resolve(oid))

        self._set("grasp", TaskPhase.GRASPING, start,
                  lambda r: self._lift(self.planner.resolve(oid)),
                  lambda r: self._fail_try(r.cause or "grasp_failed", arm_out=True))

    def _lift(self, oid: int) -> None:
        def ok(_r: SkillResult) -> None:
            self.planner.item(oid).transition(ItemState.IN_HAND)
            self._holding = self.planner.resolve(oid)
            self._carry(self._holding)

        self._set("lift and verify", TaskPhase.GRASPING, self.skills.lift_and_verify, ok,
                  lambda r: self._fail_try(r.cause or "dropped", arm_out=True))

    def _carry(self, oid: int) -> None:
        it = self.planner.item(oid)
        self._item_id = oid
        dest = it.destination
        cont = self.planner.containers.get(dest)
        if cont is None:
            self._fail_try("no_container")
            return
        target = NavTarget(cont.position, "preplace",
                           self._container_approach.get(dest, 0) % self.cfg.approach_poses, 0,
                           dest)

        def failed(r: SkillResult) -> None:
            self._container_approach[dest] = self._container_approach.get(dest, 0) + 1
            self._fail_try(r.cause or "container_unreachable")

        self._set("navigate to the container", TaskPhase.NAVIGATING,
                  lambda: self.skills.navigate_to(target), lambda r: self._place(oid, dest), failed)

    def _place(self, oid: int, dest: str) -> None:
        self._set("place into the container", TaskPhase.PLACING, lambda: self.skills.place(dest),
                  lambda r: self._verify(oid, dest),
                  lambda r: self._fail_try(r.cause or "place_failed", arm_out=True))

    def _verify(self, oid: int, dest: str) -> None:
        def ok(_r: SkillResult) -> None:
            self.planner.item(oid).transition(ItemState.PLACED)
            self._holding = 0
            self._approach.pop(oid, None)
            self._set("stow the arm", TaskPhase.PLACING, self.skills.stow_arm,
                      lambda r: self._item_done(), lambda r: self._item_done())

        def failed(r: SkillResult) -> None:
            # released but not seen inside: it fell outside; the map will show where
            self._holding = 0
            self._fail_try(r.cause or "dropped", arm_out=True)

        self._set("verify placed", TaskPhase.PLACING,
                  lambda: self.skills.verify_placed(oid, dest), ok, failed)

    def _item_done(self) -> None:
        self._item_id = 0
        self._start_queued_if_preempting()

    def _start_queued_if_preempting(self) -> None:
        if self._queued and not self._holding:
            self._start_queued()

    def _fail_try(self, cause: str, arm_out: bool = False) -> None:
        """One failed try of the current item: count it, make the robot safe (put down what
        is in hand, stow), then continue with the next choice."""
        oid0 = self._item_id
        if cause == "trapped" and self._trapped < self.cfg.max_trapped_recoveries:
            self._recover_trapped(oid0)
            return
        self._safe = self._release_steps() if (self._holding or arm_out) else []
        held = self._holding

        def after() -> None:
            oid = self.planner.resolve(oid0)
            if oid and self.planner.has_item(oid):
                it = self.planner.item(oid)
                if it.state in (ItemState.ACTIVE, ItemState.IN_HAND):
                    failed = self.planner.record_failure(oid, cause)
                    self._approach[oid] = self._approach.get(oid, 0) + 1
                    self._message = (f"object {oid}: {cause}"
                                     + (" -> FAILED" if failed else ", retrying"))
            if held:
                self._holding = 0
            self._item_id = 0 if not self.planner.has_item(oid) or \
                self.planner.item(oid).state != ItemState.PENDING else oid
            self._start_queued_if_preempting()
        self._after_safe = after

    def _recover_trapped(self, oid0: int) -> None:
        """The navigator found the robot hemmed in (cause ``trapped``) even after clearing its
        cost map around the robot: scan the room so the cells around the robot are seen
        afresh (what hemmed it in may be stale: a dropped object since moved, odometry drift)
        and try the same item again, uncharged. What is in hand stays in hand (the carry is
        retried). Bounded by ``max_trapped_recoveries`` in a row; a drive resets the count."""
        self._trapped += 1
        n, cap = self._trapped, self.cfg.max_trapped_recoveries
        self._message = f"the robot is hemmed in: recovery {n}/{cap} (scan the room, try again)"
        self._safe = [] if self._holding else [("stow the arm", self.skills.stow_arm)]
        self._safe.append((f"recovery {n}/{cap}: scan the room", self.skills.explore))

        def after() -> None:
            if self._holding:
                return                      # _choose carries what is in hand again
            oid = self.planner.resolve(oid0)
            if oid and self.planner.has_item(oid):
                it = self.planner.item(oid)
                if it.state == ItemState.ACTIVE:
                    it.transition(ItemState.PENDING)
            self._item_id = 0
            self._start_queued_if_preempting()
        self._after_safe = after

    # ------------------------------------------------------------------ feedback
    def _status(self) -> TaskStatus:
        if self._stack:
            task = self._stack[-1]
            ids = self._task_ids(task)
            items = tuple(self.planner.item(i).copy() for i in ids)
            if self._step is not None:
                phase, step = self._step.phase, self._step.name
            else:
                phase, step = TaskPhase.PLANNING, "choose the next item"
            oid = self._item_id or self._holding
            dest = self.planner.item(oid).destination if oid and self.planner.has_item(oid) else ""
            done = sum(it.finished for it in items)
            progress = done / len(items) if items else 0.0
            msg = self._message
            st = TaskStatus(self._now, task.id, phase, step, oid, dest, progress, items, msg)
        else:
            st = TaskStatus(self._now, self._final_task, self._final_phase, "", 0, "",
                            1.0 if self._final_task else 0.0,
                            tuple(it.copy() for it in self.planner.items), self._message)
        return st
