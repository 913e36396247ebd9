"""Tidy-up task library: item model, planner, parser, behaviour (with scripted skills)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from katazuke.errors import ConfigError, InputError
from katazuke.planning.tasks import (Container, GoalMode, InstructionParser, Intent, ItemState,
                                     MapObject, SkillResult, SkillStatus, TaskItem, TaskPhase,
                                     TaskPlanner, TidyBehaviour, TidyGoal, TransitionError,
                                     load_tidy_config, order_cost, progress_fraction,
                                     split_object_map)

REPO = Path(__file__).resolve().parents[2]
CFG = load_tidy_config(REPO / "launch" / "params" / "tidy.yaml")


# ---------------------------------------------------------------- config
def test_config_assignment_matches_sim_world():
    # the YAML mirrors the simulated room; checked against sim (tests may import it)
    from katazuke.sim.objects import KINDS
    from katazuke.sim.world import CATEGORY_TO_CONTAINER
    for cat, cid in CATEGORY_TO_CONTAINER.items():
        assert CFG.container_for(cat) == cid
    assert {k.name: k.category for k in KINDS} == {k.name: k.category for k in CFG.vocabulary.kinds}


def test_config_rejects_bad_assignment_and_unknown_keys():
    bad = {"task_manager": {"ros__parameters": {"containers": {
        "a": {"colour": "red", "categories": ["toy"]},
        "b": {"colour": "blue", "categories": ["toy"]}}}}}
    with pytest.raises(ConfigError, match="toy"):
        load_tidy_config(bad)
    with pytest.raises(ConfigError, match="unknown key"):
        load_tidy_config({"task_manager": {"ros__parameters": {"planer": {}}}})
    with pytest.raises(ConfigError, match="not found"):
        load_tidy_config(REPO / "no_such.yaml")


# ---------------------------------------------------------------- items
def test_transitions_validated():
    it = TaskItem(1, "toy", "bin_red")
    with pytest.raises(TransitionError, match="PENDING to PLACED"):
        it.transition(ItemState.PLACED)
    with pytest.raises(TransitionError, match="cause"):
        it.transition(ItemState.SKIPPED)
    it.transition(ItemState.ACTIVE)
    it.transition(ItemState.IN_HAND)
    it.transition(ItemState.PLACED)
    assert it.finished and it.cause == ""
    with pytest.raises(TransitionError):
        it.transition(ItemState.IN_HAND)
    it2 = TaskItem(2, "toy", "bin_red")
    it2.transition(ItemState.SKIPPED, "unreachable")
    assert it2.cause == "unreachable"
    assert progress_fraction([it, it2, TaskItem(3, "toy", "bin_red")]) == pytest.approx(2 / 3)
    assert progress_fraction([]) == 1.0


def test_map_object_input_checks():
    with pytest.raises(InputError):
        MapObject(0, "toy", (0, 0, 0))
    with pytest.raises(InputError):
        MapObject(1, "toy", (0, math.nan, 0))


# ---------------------------------------------------------------- planner
def line_objects(xs, cat="toy", y=1.0):
    # y = 1 m: clear of the configured bins (objects inside a container are not planned)
    return [MapObject(i + 1, cat, (x, y, 0.05)) for i, x in enumerate(xs)]


def test_planner_nearest_first_on_a_line():
    p = TaskPlanner(CFG)
    # a container at the origin so every object's leg starts from there
    p.update_map(line_objects([3.0, 1.0, 2.0, 4.0]), [Container("bin_red", (0.0, 0.0, 0.1))])
    assert p.plan((0.0, 0.0)) == [2, 3, 1, 4]
    assert all(p.item(i).state == ItemState.PENDING for i in (1, 2, 3, 4))


def test_planner_improvement_never_worse_than_greedy():
    rng = np.random.default_rng(3)
    objs = [MapObject(i + 1, ["toy", "box", "bottle", "stationery"][i % 4],
                      (*rng.uniform(-2, 2, 2), 0.05)) for i in range(12)]
    greedy = TaskPlanner(load_tidy_config({"task_manager": {"ros__parameters": {
        **_params(), "planner": {"improve_rounds": 0}}}}))
    best = TaskPlanner(CFG)
    for p in (greedy, best):
        p.update_map(objs)
    og, ob = greedy.plan((0, 0)), best.plan((0, 0))
    assert sorted(og) == sorted(ob)

    def cost(order):
        tot, here = 0.0, (0.0, 0.0)
        for oid in order:
            o = best.objects[oid].position
            c = best.containers[best.item(oid).destination].position
            tot += math.dist(here, o[:2]) + math.dist(o[:2], c[:2])
            here = c[:2]
        return tot
    assert cost(ob) <= cost(og) + 1e-9


def _params():
    import yaml
    return yaml.safe_load((REPO / "launch/params/tidy.yaml").read_text())["task_manager"][
        "ros__parameters"]


def test_planner_unreachable_skipped_then_retried_after_map_change():
    p = TaskPlanner(CFG)
    p.update_map(line_objects([1.0, 2.0, 3.0]))
    wall = {"x": 2.5}

    def cost(a, b):   # a wall at x = wall["x"] between y = -2 and 2 blocks crossing
        if wall["x"] is not None and (a[0] - wall["x"]) * (b[0] - wall["x"]) < 0 and abs(b[1]) < 2:
            return math.inf
        return math.dist(a, b)
    order = p.plan((0.0, 0.0), cost)
    assert 3 not in order and p.item(3).state == ItemState.SKIPPED
    assert p.item(3).cause == "unreachable"
    wall["x"] = None                         # the costmap changed
    assert p.update_map(line_objects([1.0, 2.0, 3.2]))  # ... and object 3 moved: re-plan
    assert 3 in p.plan((0.0, 0.0), cost) and p.item(3).state == ItemState.PENDING


def test_planner_in_container_not_planned_and_states_stable():
    p = TaskPlanner(CFG)
    red = CFG.containers[0].position
    objs = line_objects([1.0, 2.0]) + [MapObject(7, "toy", (red[0] + 0.05, red[1], 0.1))]
    p.update_map(objs)
    assert not p.has_item(7)                 # already in its container: not planned
    order = p.plan((0, 0))
    assert order == [1, 2]
    p.item(1).transition(ItemState.ACTIVE)
    p.item(1).attempts = 2
    # re-plan after a map change: object 2 moved, a new one appears, ids stable
    objs2 = [MapObject(1, "toy", (1.0, 0.1, 0.05)), MapObject(2, "toy", (0.5, 0.0, 0.05)),
             MapObject(3, "box", (0.2, 0.0, 0.05))]
    assert p.update_map(objs2)
    assert p.item(1).state == ItemState.ACTIVE and p.item(1).attempts == 2
    assert p.plan((0, 0)) == [3, 2]          # the active item is not re-planned
    assert p.item(3).destination == "bin_yellow"
    # object 2 vanished -> skipped not_found; it comes back -> pending again
    p.update_map([objs2[0], objs2[2]])
    assert p.item(2).state == ItemState.SKIPPED and p.item(2).cause == "not_found"
    p.update_map(objs2)
    assert 2 in p.plan((0, 0))


def test_planner_hands_an_item_over_to_its_re_created_object():
    """The object map forgets an object and makes it again under a new id: the item follows
    (state, attempts, failures kept; the old id resolves to the new one); a failed item
    stays failed instead of coming back as a fresh PENDING one; far objects get new items,
    and an object in hand is expected to move, so its item is not handed over."""
    p = TaskPlanner(CFG)
    p.update_map(line_objects([1.0, 2.0, 3.0]))
    p.plan((0, 0))
    p.item(1).transition(ItemState.ACTIVE)
    p.item(1).attempts = 2
    for _ in range(CFG.planner.max_failures):
        p.item(2).transition(ItemState.ACTIVE) if p.item(2).state == ItemState.PENDING else None
        p.record_failure(2, "grasp_failed")
    assert p.item(2).state == ItemState.FAILED
    p.item(3).transition(ItemState.ACTIVE)
    p.item(3).transition(ItemState.IN_HAND)
    moved = [MapObject(11, "stationery", (1.1, 1.05, 0.05)),   # object 1, recategorised
             MapObject(12, "toy", (2.05, 1.0, 0.05)),          # object 2
             MapObject(13, "toy", (3.0, 1.1, 0.3)),            # near 3's old place: not 3
             MapObject(14, "toy", (5.0, 1.0, 0.05))]           # a new object
    assert p.update_map(moved)
    assert p.pop_renames() == {1: 11, 2: 12} and p.pop_renames() == {}
    assert p.resolve(1) == 11 and p.item(1) is p.item(11) and p.has_item(1)
    assert p.item(11).state == ItemState.ACTIVE and p.item(11).attempts == 2
    assert p.item(12).state == ItemState.FAILED and p.item(12).cause == "grasp_failed"
    assert p.item(3).state == ItemState.IN_HAND
    assert p.item(13).state == ItemState.PENDING and p.item(14).state == ItemState.PENDING
    assert len(p.items) == 5
    # chained: forgotten again -> the alias of the first id follows
    p.update_map([MapObject(21, "toy", (1.15, 1.05, 0.05))] + moved[1:])
    assert p.resolve(1) == 21 and p.resolve(11) == 21 and p.item(1).attempts == 2
    off = TaskPlanner(load_tidy_config({"task_manager": {"ros__parameters": {
        "planner": {"reassociate_radius_m": 0.0}}}}))
    off.update_map(line_objects([1.0]))
    off.update_map([MapObject(9, "toy", (1.0, 1.0, 0.05))])
    assert off.item(1).cause == "not_found" and off.item(9).state == ItemState.PENDING


def test_planner_gives_no_new_item_to_a_failed_object_or_a_second_instance_of_one():
    p = TaskPlanner(CFG)
    leg = MapObject(1, "bottle", (-0.15, 1.6, 0.05))       # a table leg taken for a bottle
    duck = MapObject(2, "toy", (1.0, 1.0, 0.05))
    p.update_map([leg, duck])
    p.plan((0, 0))
    for _ in range(CFG.planner.max_failures):
        if p.item(1).state == ItemState.PENDING:
            p.item(1).transition(ItemState.ACTIVE)
        p.record_failure(1, "not_found")
    assert p.item(1).state == ItemState.FAILED
    # seen again, under a new id, while the old instance is still there, and after it left
    p.update_map([leg, duck, MapObject(7, "bottle", (-0.13, 1.62, 0.05))])
    p.update_map([duck, MapObject(8, "box", (-0.17, 1.58, 0.06))])
    assert not p.has_item(7) and p.item(8) is p.item(1)           # handed over, still FAILED
    assert p.item(8).state == ItemState.FAILED
    # a second instance of the duck (its category disagreed, so the map kept both)
    p.update_map([duck, MapObject(9, "soft", (1.05, 1.0, 0.05))])
    assert not p.has_item(9)
    # a different object 20 cm from the duck is its own item
    p.update_map([duck, MapObject(10, "toy", (1.2, 1.0, 0.05))])
    assert p.has_item(10)


def test_planner_leaves_objects_in_other_containers_unless_a_user_moves_them():
    p = TaskPlanner(CFG)
    blue = next(c for c in CFG.containers if c.id == "bin_blue").position
    # a "bottle" seen in the red bin's place (a container's rim detected as an object)
    red = next(c for c in CFG.containers if c.id == "bin_red").position
    p.update_map(line_objects([1.0]) + [MapObject(5, "bottle", (red[0], red[1], 0.15))])
    assert not p.has_item(5) and p.plan((0, 0)) == [1]
    # an item that rolls into another container while pending is skipped with the cause
    p.update_map([MapObject(1, "toy", (blue[0], blue[1], 0.1)),
                  MapObject(5, "bottle", (red[0], red[1], 0.15))])
    assert p.plan((0, 0)) == [] and p.item(1).cause == "in_another_container"
    # the user asks for it: planned all the same
    p.ensure_item(5, "bin_blue")
    assert p.plan((0, 0)) == [1, 5] or p.plan((0, 0)) == [5]
    assert p.item(5).state == ItemState.PENDING


def test_planner_failures_make_item_failed():
    p = TaskPlanner(CFG)
    p.update_map(line_objects([1.0]))
    for k in range(CFG.planner.max_failures):
        p.plan((0, 0))
        p.item(1).transition(ItemState.ACTIVE)
        failed = p.record_failure(1, "grasp_failed")
        assert failed == (k == CFG.planner.max_failures - 1)
    assert p.item(1).state == ItemState.FAILED and p.item(1).cause == "grasp_failed"
    assert p.plan((0, 0)) == [] and p.progress() == 1.0


def test_order_cost():
    start = np.array([1.0, 2.0])
    link = np.array([[0.0, 5.0], [7.0, 0.0]])
    assert order_cost([0, 1], start, link) == 6.0 and order_cost([1, 0], start, link) == 9.0


# ---------------------------------------------------------------- parser
P = InstructionParser(CFG)

PARSES = [
    ("tidy up", Intent.TIDY_ALL, ""),
    ("Clean the room!", Intent.TIDY_ALL, ""),
    ("put everything away", Intent.TIDY_ALL, ""),
    ("please tidy up the room", Intent.TIDY_ALL, ""),
    ("clean up", Intent.TIDY_ALL, ""),
    ("put the toy in the red bin", Intent.MOVE, "bin_red"),
    ("move the mug to the blue box", Intent.MOVE, "bin_blue"),
    ("move the mug to the blue bin", Intent.MOVE, "bin_blue"),
    ("Please put the soft toy into the red bin", Intent.MOVE, "bin_red"),
    ("put the shoe box in the yellow bin", Intent.MOVE, "bin_yellow"),
    ("put the box in the yellow box", Intent.MOVE, "bin_yellow"),
    ("could you put the pen in the green bin", Intent.MOVE, "bin_green"),
    ("put the red mug on the table in the blue bin", Intent.MOVE, "bin_blue"),
    ("put the duck away", Intent.MOVE, ""),
    ("put away the teddy bear", Intent.MOVE, ""),
    ("put the lego in the bin", Intent.MOVE, ""),
    ("go and look at the duck", Intent.LOOK_AT, ""),
    ("look at the beanbag", Intent.LOOK_AT, ""),
    ("where is the mug?", Intent.WHERE_IS, ""),
    ("where are the markers", Intent.WHERE_IS, ""),
    ("stop", Intent.STOP, ""),
    ("Cancel!", Intent.STOP, ""),
    ("stop it now", Intent.STOP, ""),
    ("yes", Intent.YES, ""),
]


@pytest.mark.parametrize("text,intent,container", PARSES)
def test_parser_understands(text, intent, container):
    r = P.parse(text)
    assert r.understood, r.message
    assert r.intent == intent
    if intent == Intent.MOVE:
        assert r.goal is not None and r.goal.mode == GoalMode.MOVE
        assert r.goal.container == container and r.goal.instruction == text
    if intent in (Intent.STOP, Intent.YES):
        assert r.goal is None


def test_parser_object_details():
    r = P.parse("put the red mug on the table in the blue bin")
    assert r.query.kinds == ("mug", "proc_mug") and r.query.colour == "red"
    assert r.query.furniture == "table" and r.query.category == "kitchenware"
    assert P.parse("put the soft toy in the red bin").query.category == "soft"
    assert P.parse("where are the markers").query.plural


@pytest.mark.parametrize("text,unknown,known", [
    ("put the toy in the purple bin", "purple bin", "red bin, blue bin, green bin, yellow bin"),
    ("put the giraffe in the red bin", "giraffe", "duck"),
    ("put the bottle on the table", "table", "red bin"),
    ("look at the shelf", "shelf", "mug"),
    ("dance", "dance", "tidy up"),
    ("move the mug to the attic", "attic", "red bin"),
])
def test_parser_unknown_names_move_nothing(text, unknown, known):
    r = P.parse(text)
    assert not r.understood and r.goal is None
    assert r.unknown == unknown and known in r.message
    if "purple" in text:
        assert r.message == ("I don't know a container called 'purple bin'; I know: "
                             "red bin, blue bin, green bin, yellow bin.")


def test_resolve_nearest_and_ambiguity():
    objs = [MapObject(1, "kitchenware", (2.0, 0, 0.05), kind="mug"),
            MapObject(2, "kitchenware", (1.0, 0, 0.05), kind="proc_mug", colour="red"),
            MapObject(3, "kitchenware", (0.5, 0, 0.05), kind="bowl"),
            MapObject(4, "toy", (0.4, 1.3, 0.6))]
    q = P.parse("move the mug to the blue bin").query
    res = P.resolve(q, objs, (0, 0))
    assert res.found and res.object_id == 2 and res.candidates == (2, 1) and res.ambiguous
    res = P.resolve(P.parse_object("blue mug")[0], objs, (0, 0))
    assert res.candidates == (1,) and not res.ambiguous          # colour of 2 is red
    res = P.resolve(P.parse_object("toy on the table")[0], objs, (0, 0))
    assert res.object_id == 4
    assert not P.resolve(P.parse_object("toy on the floor")[0], objs, (0, 0)).found
    assert "haven't seen" in P.resolve(P.parse_object("stapler")[0], objs, (0, 0)).message
    assert "table" in P.where_is_answer(P.parse_object("toy")[0], objs, (0, 0))


# ---------------------------------------------------------------- behaviour
class FakeHandle:
    def __init__(self, skills, name, outcome, ticks):
        self.skills, self.name, self.outcome, self.left = skills, name, outcome, ticks
        self.cancelled = False

    def status(self):
        if self.cancelled:
            return SkillStatus.FAILURE
        if self.left > 0:
            self.left -= 1
            return SkillStatus.RUNNING
        return self.outcome.status

    def result(self):
        if self.cancelled:
            return SkillResult(SkillStatus.FAILURE, "cancelled")
        if self.outcome.status == SkillStatus.SUCCESS:
            self.skills.effect(self.name)
        return self.outcome

    def cancel(self):
        self.cancelled = True


class FakeSkills:
    """Scripted skills: ``script[name]`` is a list of outcomes consumed in order (then
    success); each call runs ``ticks[name]`` polls. Tracks what the gripper holds."""

    def __init__(self, script=None, ticks=None, default_ticks=2, fail_all=False):
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.ticks = ticks or {}
        self.default_ticks = default_ticks
        self.fail_all = fail_all
        self.calls: list[tuple] = []
        self.stops = 0
        self.holding = False

    def effect(self, name):
        if name == "lift_and_verify":
            self.holding = True
        elif name in ("place", "release"):
            self.holding = False

    def _call(self, name, *args):
        self.calls.append((name, *args))
        seq = self.script.get(name)
        if self.fail_all:
            out = SkillResult(SkillStatus.FAILURE, f"{name}_failed")
        elif seq:
            out = seq.pop(0)
        else:
            out = SkillResult(SkillStatus.SUCCESS)
        return FakeHandle(self, name, out, self.ticks.get(name, self.default_ticks))

    def explore(self): return self._call("explore")
    def navigate_to(self, target): return self._call("navigate_to", target)
    def look_at(self, point): return self._call("look_at", point)
    def perceive(self, object_id): return self._call("perceive", object_id)
    def grasp(self, object_id): return self._call("grasp", object_id)
    def lift_and_verify(self): return self._call("lift_and_verify")
    def place(self, container_id): return self._call("place", container_id)
    def verify_placed(self, object_id, container_id):
        return self._call("verify_placed", object_id, container_id)
    def release(self): return self._call("release")
    def stow_arm(self): return self._call("stow_arm")

    def stop(self):
        self.stops += 1

    def names(self):
        return [c[0] for c in self.calls]


FAIL = SkillResult(SkillStatus.FAILURE, "grasp_failed")


def room(n=3):
    return ([MapObject(1, "toy", (1.0, 0.0, 0.05), kind="duck"),
             MapObject(2, "kitchenware", (2.0, 0.5, 0.05), kind="mug"),
             MapObject(3, "stationery", (0.0, 1.5, 0.05), kind="marker")][:n])


def make(skills, n=3, cfg=CFG):
    b = TidyBehaviour(cfg, skills)
    b.update_map(room(n))
    b.update_robot((0.0, 0.0))
    return b


def run(b, t=0.0, dt=0.1, max_ticks=20000, until=None):
    """Tick until idle (or ``until(status)``); returns (last status, time, ticks)."""
    for k in range(max_ticks):
        st = b.tick(t)
        t += dt
        if until is not None and until(st):
            return st, t, k
        if not b.busy:
            return st, t, k
    raise AssertionError("behaviour did not finish within the tick limit")


def test_all_items_placed_with_feedback():
    sk = FakeSkills()
    b = make(sk)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    seen = set()
    t = 0.0
    progress = []
    while True:
        st = b.tick(t)
        t += 0.1
        seen.add(st.state)
        progress.append(st.progress)
        if not b.busy:
            break
    (res,) = b.pop_results()
    assert res.success and res.state == TaskPhase.SUCCEEDED and res.items_placed == 3
    assert all(it.state == ItemState.PLACED and it.attempts == 1 for it in res.items)
    assert {TaskPhase.EXPLORING, TaskPhase.NAVIGATING, TaskPhase.LOOKING, TaskPhase.GRASPING,
            TaskPhase.PLACING} <= seen
    assert progress == sorted(progress) and pytest.approx(2 / 3) in progress
    assert progress[-1] == 1.0
    assert sk.names()[0] == "explore"
    verified = sorted((c[1], c[2]) for c in sk.calls if c[0] == "verify_placed")
    assert verified == [(1, "bin_red"), (2, "bin_blue"), (3, "bin_green")]
    assert not sk.holding and res.duration_s > 0


def test_the_pipeline_follows_an_object_re_created_under_a_new_id():
    """While the robot drives to an object the map re-creates it under a new id: the same
    item goes on (perceive and grasp ask for the new id) and ends PLACED; no second item."""
    sk = FakeSkills(ticks={"navigate_to": 6})
    b = make(sk, n=1)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    st, t, _ = run(b, until=lambda s: s.current_step == "navigate to pre-grasp pose")
    b.update_map([MapObject(41, "toy", (1.05, 0.02, 0.05), kind="duck")])
    st, t, _ = run(b, t)
    (res,) = b.pop_results()
    assert res.success and res.items_placed == 1 and len(res.items) == 1
    assert res.items[0].object_id == 41
    assert [c[1] for c in sk.calls if c[0] in ("perceive", "grasp")] == [41, 41]


def test_a_target_that_leaves_the_map_mid_drive_is_given_up_at_once():
    """The map drops the object the robot drives to (views that should show it did not: a
    table leg taken for a bottle from afar): after ``vanished_grace_s`` the drive is cancelled
    (stop) and the item is skipped 'not_found' without a look or a perception; the robot goes
    on with the next object. Gone while the robot waits to see it: no re-perception."""
    grace = CFG.behaviour.vanished_grace_s
    sk = FakeSkills(ticks={"navigate_to": 200})
    b = make(sk, n=2)
    b.update_robot((0.9, 0.0))                 # object 1 (1.0, 0.0) is the nearest
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    st, t, _ = run(b, until=lambda s: s.current_step == "navigate to pre-grasp pose")
    assert st.object_id == 1
    stops = sk.stops
    b.update_map(room(2)[1:])                  # object 1 gone
    st, t1, _ = run(b, t, until=lambda s: s.current_step == "navigate to pre-grasp pose"
                    and s.object_id == 2)
    assert t1 - t <= grace + 0.5               # not the 20 s the drive would still take
    assert sk.stops > stops
    assert [c[0] for c in sk.calls].count("look_at") == 0
    assert b.planner.item(1).state == ItemState.SKIPPED and b.planner.item(1).cause == "not_found"
    assert "not_found" in st.message

    # the object leaves the map while the robot waits to see it: one perception, no retries
    sk = FakeSkills({"perceive": [SkillResult(SkillStatus.FAILURE, "not_found")] * 3},
                    ticks={"perceive": 30})
    b = make(sk, n=2)
    b.update_robot((0.9, 0.0))
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    st, t, _ = run(b, until=lambda s: s.current_step == "segment the object")
    b.update_map(room(2)[1:])
    st, t, _ = run(b, t, until=lambda s: s.object_id == 2)
    assert sk.names().count("perceive") == 1
    assert b.planner.item(1).cause == "not_found"


def test_a_hemmed_in_robot_recovers_without_failing_its_items():
    """Navigation failing with cause 'trapped' (the robot's own start stuck in the cost map's
    inflation) is not the item's fault: the robot scans the room and tries the same item
    again, uncharged, up to max_trapped_recoveries times in a row (a train room under load
    lost all 15 items in 3 s when each such failure counted). Carrying an object, it keeps
    it. Past the cap the failures count, so a robot really stuck still ends its task."""
    cap = CFG.behaviour.max_trapped_recoveries
    assert cap >= 1
    trapped = SkillResult(SkillStatus.FAILURE, "trapped")

    def episode(script, n=2):
        sk = FakeSkills(script)
        b = make(sk, n=n)
        b.update_robot((0.9, 0.0))
        b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
        run(b)
        (res,) = b.pop_results()
        return sk, b, res

    scans = episode({})[0].names().count("explore")        # first scan + viewpoint scans
    sk, b, res = episode({"navigate_to": [trapped] * cap})
    assert res.success, res.message
    assert all(b.planner.item(i).state == ItemState.PLACED for i in (1, 2))
    assert b.planner.item(1).failures == 0
    assert sk.names().count("explore") == scans + cap      # one scan per recovery
    assert sk.names().count("release") == 0

    # in hand: trapped on the way to the container; the carry is retried, nothing put down
    ok = SkillResult(SkillStatus.SUCCESS)
    sk, b, res = episode({"navigate_to": [ok, trapped, ok]}, n=1)
    assert res.success and b.planner.item(1).state == ItemState.PLACED
    assert sk.names().count("release") == 0 and sk.names().count("grasp") == 1
    i = sk.names().index("lift_and_verify")
    assert sk.names()[i:].count("explore") >= 1             # the recovery scan, object in hand

    # really stuck: every drive 'trapped'; bounded, and the items fail in the end
    sk, b, res = episode({"navigate_to": [trapped] * 1000})
    assert not res.success
    assert all(b.planner.item(i).state == ItemState.FAILED for i in (1, 2))
    assert all(b.planner.item(i).cause == "trapped" for i in (1, 2))
    assert sk.names().count("explore") <= scans + cap       # one run of recoveries only


def test_viewpoints_are_visited_nearest_first_and_what_they_reveal_is_tidied():
    """With nothing left to tidy the robot drives to each viewpoint (nearest first) and scans;
    an object a scan reveals is tidied before the next viewpoint; an unreachable viewpoint
    is skipped; the task ends after the last one."""
    cfg = load_tidy_config({"task_manager": {"ros__parameters": {
        **{k: v for k, v in _params().items() if k != "behaviour"},
        "behaviour": {"viewpoints_xy": [2.0, 0.0, -1.0, 0.0, 0.0, 3.0]}}}})
    nav_fail = SkillResult(SkillStatus.FAILURE, "unreachable")
    ok = SkillResult(SkillStatus.SUCCESS)
    # viewpoint 1, pre-grasp, pre-place of the revealed object, then viewpoint 2 fails
    sk = FakeSkills({"navigate_to": [ok, ok, ok, nav_fail]})
    b = TidyBehaviour(cfg, sk)
    b.update_map([])
    b.update_robot((0.0, 0.0))
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    revealed = [False]
    orig = sk.explore

    def explore():
        if sk.names().count("explore") == 1 and not revealed[0]:   # the first viewpoint's scan
            revealed[0] = True
            b.update_map([MapObject(5, "toy", (-1.5, 0.5, 0.05), kind="duck")])
        return orig()
    sk.explore = explore
    run(b)
    (res,) = b.pop_results()
    gotos = [c[1].position[:2] for c in sk.calls if c[0] == "navigate_to"
             and c[1].purpose == "goto"]
    assert gotos == [(-1.0, 0.0), (2.0, 0.0), (0.0, 3.0)]
    assert res.success and res.items_placed == 1
    names = sk.names()
    # the revealed object was handled before the second viewpoint
    assert names.index("grasp") < [i for i, c in enumerate(sk.calls)
                                    if c[0] == "navigate_to" and c[1].purpose == "goto"][1]
    assert names.count("explore") == 1 + 2      # start, viewpoint 1 and 3 (2 was unreachable)
    with pytest.raises(ConfigError, match="viewpoints_xy"):
        load_tidy_config({"task_manager": {"ros__parameters": {
            "behaviour": {"viewpoints_xy": [1.0, 2.0, 3.0]}}}})


def test_grasp_fails_twice_then_succeeds():
    sk = FakeSkills({"grasp": [FAIL, FAIL]})
    b = make(sk, n=1)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    run(b)
    (res,) = b.pop_results()
    assert res.success and res.items[0].attempts == 3
    navs = [c[1] for c in sk.calls if c[0] == "navigate_to" and c[1].purpose == "pregrasp"]
    assert [n.approach for n in navs] == [0, 1, 2]           # another approach each retry
    assert sk.names().count("perceive") == 3                  # re-perceived each retry


def test_item_failing_n_times_is_failed_and_task_continues():
    n = CFG.planner.max_failures
    sk = FakeSkills({"grasp": [FAIL] * n})                    # the first item tried fails n times
    b = make(sk, n=2)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    run(b)
    (res,) = b.pop_results()
    by_id = {it.object_id: it for it in res.items}
    assert by_id[1].state == ItemState.FAILED and by_id[1].cause == "grasp_failed"
    assert by_id[1].attempts == n
    assert by_id[2].state == ItemState.PLACED
    assert not res.success and res.state == TaskPhase.FAILED
    assert res.items_failed == 1 and res.items_placed == 1


def test_dropped_in_carry_puts_down_and_retries():
    sk = FakeSkills({"verify_placed": [SkillResult(SkillStatus.FAILURE, "dropped")],
                     "navigate_to": [SkillResult(SkillStatus.SUCCESS)] * 3
                     + [SkillResult(SkillStatus.FAILURE, "unreachable")]})
    b = make(sk, n=1)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    run(b)
    (res,) = b.pop_results()
    assert res.success
    names = sk.names()
    assert "release" in names                                # put down before the retry
    assert not sk.holding


def test_preemption_mid_navigate_then_resume():
    sk = FakeSkills(ticks={"navigate_to": 10})
    b = make(sk)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    st, t, _ = run(b, until=lambda s: s.current_step == "navigate to pre-grasp pose"
                   and s.object_id not in (0, 2))
    interrupted = st.object_id
    for _ in range(3):                                        # well inside the navigation
        st = b.tick(t)
        t += 0.1
    assert st.current_step == "navigate to pre-grasp pose" and st.object_id == interrupted
    stops = sk.stops
    r = b.instruct("put the mug in the red bin", t)          # its own container is blue
    assert r.understood and r.intent == Intent.MOVE
    assert sk.stops == stops + 1                              # base stopped at once
    assert b.planner.item(interrupted).state == ItemState.PENDING
    st, t, _ = run(b, t + 0.1, until=lambda s: bool(b._results))
    (move_res,) = b.pop_results()
    assert move_res.success and move_res.goal.mode == GoalMode.MOVE
    assert move_res.items[0].object_id == 2 and move_res.items[0].destination == "bin_red"
    assert b.busy                                             # the tidy-up resumes
    run(b, t)
    (tidy,) = b.pop_results()
    assert tidy.success and tidy.items_placed == 3
    by_id = {it.object_id: it for it in tidy.items}
    assert by_id[interrupted].attempts == 1                   # pre-emption is not a failure
    verified = [(c[1], c[2]) for c in sk.calls if c[0] == "verify_placed"]
    assert verified.count((2, "bin_red")) == 1 and (2, "bin_blue") not in verified


def test_preemption_with_object_in_hand_finishes_carry_first():
    sk = FakeSkills(ticks={"navigate_to": 10})
    b = make(sk, n=2)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    st, t, _ = run(b, until=lambda s: s.current_step == "navigate to the container")
    held = b.holding
    assert held
    b.submit(TidyGoal(GoalMode.LOOK_AT, object_description="mug"), t)
    st, t, _ = run(b, t, until=lambda s: bool(b._results))
    look, = b.pop_results()
    assert look.success
    assert b.planner.item(held).state == ItemState.PLACED     # carried on before the new task
    run(b, t)
    assert b.pop_results()[0].success


@pytest.mark.parametrize("seed", range(12))
def test_cancel_at_random_tick(seed):
    rng = np.random.default_rng(seed)
    sk = FakeSkills({"grasp": [FAIL] if seed % 3 == 0 else []},
                    ticks={"navigate_to": int(rng.integers(1, 6))})
    b = make(sk)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    k_cancel = int(rng.integers(1, 120))
    t = 0.0
    for _ in range(k_cancel):
        b.tick(t)
        t += 0.1
    stops = sk.stops
    b.cancel(t)
    st = b.tick(t + 0.1)
    assert sk.stops == stops + 1
    results = b.pop_results()
    if results:
        res = results[-1]
        assert res.state in (TaskPhase.CANCELLED, TaskPhase.SUCCEEDED)
        if k_cancel < 60:
            assert res.state == TaskPhase.CANCELLED
        holding_items = [it for it in res.items if it.state == ItemState.IN_HAND]
        # the arm never holds something unreported
        assert sk.holding == bool(holding_items)
        if sk.holding:
            assert "holding" in res.message
    assert not b.busy and st.state in (TaskPhase.CANCELLED, TaskPhase.SUCCEEDED)
    calls = len(sk.calls)
    b.tick(t + 0.2)
    assert len(sk.calls) == calls                             # nothing moves after cancel


def test_stop_instruction_cancels():
    sk = FakeSkills()
    b = make(sk)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    run(b, until=lambda s: s.state == TaskPhase.GRASPING)
    r = b.instruct("stop", 5.0)
    assert r.intent == Intent.STOP and sk.stops == 1
    (res,) = b.pop_results()
    assert res.state == TaskPhase.CANCELLED


def test_unknown_instruction_moves_nothing():
    sk = FakeSkills()
    b = make(sk)
    r = b.instruct("put the toy in the purple bin", 0.0)
    assert not r.understood and "purple bin" in r.message
    b.tick(0.1)
    assert not b.busy and sk.calls == []


def test_move_unknown_object_in_map_fails_after_search():
    sk = FakeSkills()
    b = make(sk)
    b.instruct("put the stapler in the green bin", 0.0)
    run(b)
    (res,) = b.pop_results()
    assert not res.success and "haven't seen" in res.message
    assert sk.names() == ["explore"]


def test_no_infinite_loop_when_every_skill_fails():
    sk = FakeSkills(fail_all=True)
    b = make(sk)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    st, t, ticks = run(b, max_ticks=5000)
    (res,) = b.pop_results()
    assert not res.success
    assert all(it.state == ItemState.FAILED for it in res.items)
    assert ticks < 2000


def test_task_budget_bounds_a_hanging_skill():
    cfg = load_tidy_config({"task_manager": {"ros__parameters": {
        **_params(), "behaviour": {"skill_timeout_s": 1000.0, "item_budget_s": 1000.0,
                                   "task_budget_s": 30.0, "safe_timeout_s": 2.0}}}})
    sk = FakeSkills(ticks={"navigate_to": 10 ** 9, "release": 10 ** 9, "stow_arm": 10 ** 9})
    b = make(sk, cfg=cfg)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    st, t, ticks = run(b, max_ticks=5000)
    (res,) = b.pop_results()
    assert res.state == TaskPhase.FAILED and "budget" in res.message
    assert 30.0 <= res.duration_s <= 40.0 and sk.stops >= 1
    assert all(it.state == ItemState.SKIPPED and it.cause == "timeout" for it in res.items)


def test_move_about_the_object_in_hand_retargets_the_carry():
    sk = FakeSkills(ticks={"navigate_to": 10})
    b = make(sk, n=1)                                         # only the duck (red bin)
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    st, t, _ = run(b, until=lambda s: s.current_step == "navigate to the container")
    assert b.holding == 1 and st.destination == "bin_red"
    b.instruct("put the duck in the yellow bin", t)
    st = b.tick(t + 0.1)
    assert st.current_step == "navigate to the container" and st.destination == "bin_yellow"
    run(b, t + 0.2)
    move, tidy = b.pop_results()                               # the MOVE, then the resumed tidy
    assert move.goal.mode == GoalMode.MOVE and move.success
    assert move.items[0].destination == "bin_yellow"
    assert [c[1] for c in sk.calls if c[0] == "place"] == ["bin_yellow"]
    assert tidy.success                          # the duck stays where the user put it


def test_look_at_and_where_is():
    sk = FakeSkills()
    b = make(sk)
    r = b.instruct("where is the marker?", 0.0)
    assert r.intent == Intent.WHERE_IS and "marker" in r.message and "1.5 m" in r.message
    assert not b.busy                                          # a question moves nothing
    r = b.instruct("go and look at the mug", 0.0)
    assert r.intent == Intent.LOOK_AT and b.busy
    run(b, 0.1)
    (res,) = b.pop_results()
    assert res.success and res.goal.mode == GoalMode.LOOK_AT
    assert sk.names() == ["navigate_to", "look_at", "perceive"]
    assert sk.calls[0][1].purpose == "look" and sk.calls[2][1] == 2


def test_move_unknown_container_id_fails_without_motion():
    sk = FakeSkills()
    b = make(sk)
    b.submit(TidyGoal(GoalMode.MOVE, object_id=1, container="bin_purple"), 0.0)
    (res,) = b.pop_results()
    assert not res.success and "bin_purple" in res.message and "red bin" in res.message
    # the result counts this task's items only (none), not every item of the planner
    assert len(res.items) == 0 and (res.items_placed, res.items_failed, res.items_skipped) == (0, 0, 0)
    b.tick(0.1)
    assert sk.calls == [] and not b.busy


def test_split_object_map_duck_typed_instances():
    from types import SimpleNamespace as NS
    q = NS(x=0.0, y=0.0, z=math.sin(math.pi / 4), w=math.cos(math.pi / 4))   # yaw 90 deg
    recs = [NS(id=5, category="toy", kind="duck", confidence=0.9, dominant_color="yellow",
               destination="", position=NS(x=1.0, y=2.0, z=0.05)),
            NS(id=9, category="container", destination="bin_green:green", has_orientation=True,
               orientation=q, extent=NS(x=0.4, y=0.32, z=0.18),
               position=NS(x=1.95, y=-0.9, z=0.09))]
    objs, conts = split_object_map(recs)
    assert objs[0].id == 5 and objs[0].kind == "duck" and objs[0].colour == "yellow"
    assert conts[0].id == "bin_green" and conts[0].colour == "green"
    assert conts[0].size_xy == pytest.approx((0.32, 0.4))
    with pytest.raises(InputError, match="ObjectInstance field"):
        split_object_map([NS(id=1)])


def test_unreachable_item_skipped_by_the_navigators_cost_and_feedback_consistent():
    sk = FakeSkills()

    def cost(a, b):                                   # object 2 sits in a closed-off corner
        return math.inf if math.dist(b, (2.0, 0.5)) < 1e-6 else math.dist(a, b)
    b = TidyBehaviour(CFG, sk, travel_cost=cost)
    b.update_map(room())
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    t = 0.0
    while b.busy:
        st = b.tick(t)
        t += 0.1
        assert 0.0 <= st.progress <= 1.0 and st.task_id
        if st.object_id:
            it = next(i for i in st.items if i.object_id == st.object_id)
            assert it.state in (ItemState.ACTIVE, ItemState.IN_HAND, ItemState.PLACED,
                                ItemState.PENDING)
            assert st.destination == it.destination
        if st.current_step == "navigate to the container":
            assert b.holding == st.object_id
    (res,) = b.pop_results()
    by_id = {it.object_id: it for it in res.items}
    assert by_id[2].state == ItemState.SKIPPED and by_id[2].cause == "unreachable"
    assert res.items_placed == 2 and res.items_skipped == 1 and not res.success
    assert all(c[1].object_id != 2 for c in sk.calls if c[0] == "navigate_to")


SCAN_FAIL = SkillResult(SkillStatus.FAILURE, "timeout", "look at: tf not available yet")


def test_a_failed_scan_is_tried_again_after_the_retry_delay_and_the_items_follow():
    sk = FakeSkills({"explore": [SCAN_FAIL, SCAN_FAIL]})
    b = TidyBehaviour(CFG, sk)
    b.update_robot((0.0, 0.0))
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    t, starts = 0.0, []
    while b.busy:
        n = len(sk.calls)
        b.tick(t)
        if len(sk.calls) > n and sk.calls[-1][0] == "explore":
            starts.append(t)
            if len(starts) == 3:
                b.update_map(room(2))   # the third scan sees the room (the nodes are up)
        t += 0.1
        assert t < 2000
    (res,) = b.pop_results()
    # three scans from the start pose (two failed), then one at each viewpoint
    assert len(starts) == 3 + len(CFG.behaviour.viewpoints)
    assert all(b2 - b1 >= CFG.behaviour.explore_retry_s - 1e-9
               for b1, b2 in zip(starts[:3], starts[1:3]))
    assert res.success and res.items_placed == 2


def test_a_room_that_can_never_be_scanned_fails_the_task_with_the_cause():
    sk = FakeSkills({"explore": [SCAN_FAIL] * 20})
    b = TidyBehaviour(CFG, sk)
    b.update_robot((0.0, 0.0))
    b.submit(TidyGoal(GoalMode.TIDY_ALL), 0.0)
    run(b)
    (res,) = b.pop_results()
    assert not res.success and res.state == TaskPhase.FAILED
    assert sk.names().count("explore") == CFG.behaviour.explore_retries + 1
    assert "could not scan the room" in res.message and "timeout" in res.message
